// What both APIs read from a request: documents from data: (or allowed file://) URLs, and the
// generation options (mode, tokens, sampling, the n-gram guard with its vLLM spelling). Every
// problem is an ApiError (400) that names the field.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/request.h"

namespace dsocr::server {

// RFC 4648 base64 (the standard alphabet; "-_" of the URL alphabet accepted too); whitespace is
// skipped, padding is optional. Throws Error on any other character or a dangling bit.
std::string decode_base64(std::string_view text);
std::string encode_base64(std::string_view bytes);

// The bytes a URL points to: `data:[media type][;base64],DATA` (base64 or percent-encoded), or
// `file://PATH` when allow_files is a folder holding PATH (after resolving links). Remote URLs are
// never fetched. `field` names the URL in errors.
std::string load_url(std::string_view url, const std::string& allow_files, const std::string& field);

// A field that is there and not null.
bool has_field(const nlohmann::json& object, const char* name);

// The URL of object[key], given as "key": "URL" or "key": {"url": "URL"} (OpenAI's and Mistral's two
// spellings); `where` names the object in the 400 otherwise.
std::string url_field(const nlohmann::json& object, const std::string& key, const std::string& where);

// A document's kind from its first bytes: "pdf", "image" (anything decode_image may accept), or ""
// (neither: refused before decoding).
std::string sniff_document(std::string_view bytes);

// Applies the generation options of a request object to `request` (absent fields keep its values):
//   max_tokens | max_completion_tokens, temperature, top_p, seed, mode, max_tiles,
//   ngram_size (0: guard off), ngram_window, and vLLM's vllm_xargs {ngram_size, window_size,
//   whitelist_token_ids}. Checks every value and their couplings (the tile count for the mode).
void apply_generation_options(const nlohmann::json& body, OcrRequest& request);

}  // namespace dsocr::server
