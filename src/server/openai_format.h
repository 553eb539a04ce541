// POST /v1/chat/completions in OpenAI's format, as vLLM serves DeepSeek-OCR.
//
// The request's messages hold one image (an `image_url` part: a data: URL, or file:// under
// --allow-files) and text parts; the text of the user messages, joined by newlines, is the prompt,
// with `<image>\n` put in front as the official template does when the text has no `<image>`; with
// no text at all the prompt is the markdown task's. Generation options: request_parsing.h. The
// answer's content is the model's text with its <|ref|>/<|det|> tags (as vLLM with
// skip_special_tokens: false, which DeepSeek-OCR clients send); skip_special_tokens: true removes
// the grounding spans. finish_reason: "stop" at the end of text, "length" at the token or context
// limit. usage: prompt tokens (image tokens included) and completion tokens.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/request.h"

namespace dsocr::server {

struct ChatRequest {
  std::string model;        // echoed back
  std::string image_bytes;  // the encoded image, not yet decoded
  OcrRequest ocr;
  bool stream = false;
  bool include_usage = false;       // stream_options.include_usage: one more chunk with the usage
  bool skip_special_tokens = false;
};

// Throws ApiError (400) naming the field for anything malformed.
ChatRequest parse_chat_request(const nlohmann::json& body, const std::string& allow_files);

const char* finish_reason(StopReason stop);  // "stop" or "length"

struct ChatIds {
  std::string id;     // "chatcmpl-..."
  std::string model;
  int64_t created = 0;  // Unix seconds
};

// The whole answer (stream: false).
nlohmann::json chat_completion(const ChatIds& ids, const std::string& content, StopReason stop, int prompt_tokens,
                               int completion_tokens);
// One chunk of a stream: a role-only first delta (role "assistant"), a content delta, or the last
// one (empty delta, finish_reason, usage). An SSE event is "data: " + chunk.dump() + "\n\n".
nlohmann::json chat_chunk_role(const ChatIds& ids);
nlohmann::json chat_chunk_content(const ChatIds& ids, std::string_view content);
nlohmann::json chat_chunk_finish(const ChatIds& ids, StopReason stop, int prompt_tokens, int completion_tokens);
nlohmann::json chat_chunk_usage(const ChatIds& ids, int prompt_tokens, int completion_tokens);  // choices: []

nlohmann::json models_list(const std::string& model_name, int64_t created);

}  // namespace dsocr::server
