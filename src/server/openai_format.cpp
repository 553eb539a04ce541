#include "server/openai_format.h"

#include "server/api_error.h"
#include "server/request_parsing.h"
#include "text/prompt.h"

using json = nlohmann::json;

namespace dsocr::server {

namespace {

json usage_json(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json chunk(const ChatIds& ids, json choices) {
  return {{"id", ids.id}, {"object", "chat.completion.chunk"}, {"created", ids.created}, {"model", ids.model},
          {"choices", std::move(choices)}};
}

}  // namespace

ChatRequest parse_chat_request(const json& body, const std::string& allow_files) {
  if (!body.is_object()) bad_request("", "the request body must be a JSON object");
  ChatRequest out;
  out.model = body.value("model", json()).is_string() ? body["model"].get<std::string>() : "";
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    bad_request("messages", "must be a non-empty array");
  std::string text;
  int images = 0;
  const json& messages = body["messages"];
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) bad_request(where, "must be an object with a role");
    if (m["role"] != "user") continue;  // the OCR model has no system prompt or dialogue
    const json& content = m.value("content", json());
    auto add_text = [&](const std::string& t) {
      if (t.empty()) return;
      if (!text.empty()) text += "\n";
      text += t;
    };
    if (content.is_string()) {
      add_text(content.get<std::string>());
      continue;
    }
    if (!content.is_array()) bad_request(where + ".content", "must be a string or an array of parts");
    for (size_t k = 0; k < content.size(); ++k) {
      const json& part = content[k];
      const std::string pwhere = fmt::format("{}.content[{}]", where, k);
      const std::string type = part.is_object() && part.contains("type") && part["type"].is_string() ? part["type"].get<std::string>() : "";
      if (type == "text") {
        if (!part.contains("text") || !part["text"].is_string()) bad_request(pwhere + ".text", "must be a string");
        add_text(part["text"].get<std::string>());
      } else if (type == "image_url") {
        if (++images > 1) bad_request(pwhere, "one image per request (send pages as separate requests, or a PDF to /v1/ocr)");
        out.image_bytes = load_url(url_field(part, "image_url", pwhere), allow_files, pwhere + ".image_url");
      } else {
        bad_request(pwhere + ".type", fmt::format("unsupported part type '{}' (text, image_url)", type));
      }
    }
  }
  if (images == 0) bad_request("messages", "no image: add an image_url part with a data: URL");
  const std::string kind = sniff_document(out.image_bytes);
  if (kind == "pdf") bad_request("messages", "a PDF is a document: send it to /v1/ocr (chat takes one image)");
  if (kind.empty()) bad_request("messages", "the image_url data is not an image (PNG, JPEG, WebP, TIFF, BMP or GIF)");

  const auto tag = text.find(kImageTag);
  if (text.empty()) {
    // OcrRequest's default: the markdown task.
  } else {
    try {
      out.ocr.prompt = normalize_prompt(tag == std::string::npos ? std::string(kImageTag) + "\n" + text : text);
    } catch (const Error& e) {
      bad_request("messages", e.what());
    }
  }
  apply_generation_options(body, out.ocr);
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) bad_request("stream", "must be true or false");
    out.stream = body["stream"].get<bool>();
  }
  if (body.contains("stream_options") && body["stream_options"].is_object())
    out.include_usage = body["stream_options"].value("include_usage", false);
  if (body.contains("skip_special_tokens") && !body["skip_special_tokens"].is_null()) {
    if (!body["skip_special_tokens"].is_boolean()) bad_request("skip_special_tokens", "must be true or false");
    out.skip_special_tokens = body["skip_special_tokens"].get<bool>();
  }
  return out;
}

const char* finish_reason(StopReason stop) { return stop == StopReason::Eos ? "stop" : "length"; }

json chat_completion(const ChatIds& ids, const std::string& content, StopReason stop, int prompt_tokens,
                     int completion_tokens) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", content}}},
                 {"logprobs", nullptr},
                 {"finish_reason", finish_reason(stop)}};
  return {{"id", ids.id},       {"object", "chat.completion"},       {"created", ids.created},
          {"model", ids.model}, {"choices", json::array({choice})}, {"usage", usage_json(prompt_tokens, completion_tokens)}};
}

json chat_chunk_role(const ChatIds& ids) {
  return chunk(ids, json::array({{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                                  {"finish_reason", nullptr}}}));
}

json chat_chunk_content(const ChatIds& ids, std::string_view content) {
  return chunk(ids, json::array({{{"index", 0}, {"delta", {{"content", std::string(content)}}}, {"logprobs", nullptr},
                                  {"finish_reason", nullptr}}}));
}

json chat_chunk_finish(const ChatIds& ids, StopReason stop, int prompt_tokens, int completion_tokens) {
  json c = chunk(ids, json::array({{{"index", 0}, {"delta", json::object()}, {"logprobs", nullptr},
                                    {"finish_reason", finish_reason(stop)}}}));
  c["usage"] = usage_json(prompt_tokens, completion_tokens);
  return c;
}

json chat_chunk_usage(const ChatIds& ids, int prompt_tokens, int completion_tokens) {
  json c = chunk(ids, json::array());
  c["usage"] = usage_json(prompt_tokens, completion_tokens);
  return c;
}

json models_list(const std::string& model_name, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model_name}, {"object", "model"}, {"created", created}, {"owned_by", "dsocr"}}})}};
}

}  // namespace dsocr::server
