// libFuzzer target: tokenizer.json parsing (malformed files are rejected with an Error) and the
// encode -> decode round trip on arbitrary text with a small built-in vocabulary.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "text/tokenizer.h"

namespace {
// A byte-level vocabulary with a couple of merges and added tokens: enough to exercise every path.
const dsocr::Tokenizer& small_tokenizer() {
  static const dsocr::Tokenizer t = [] {
    std::string vocab;
    // Byte-level alphabet: printable ASCII maps to itself in GPT-2's byte->unicode table.
    int id = 0;
    for (int c = 33; c < 127; ++c) {
      if (c == '"' || c == '\\') continue;
      vocab += (id ? "," : "") + std::string("\"") + char(c) + "\":" + std::to_string(id++);
    }
    vocab += ",\"\\u0120\":" + std::to_string(id++);  // space
    vocab += ",\"ab\":" + std::to_string(id++);
    const std::string json = R"({"model":{"type":"BPE","vocab":{)" + vocab + R"(},"merges":["a b"]},)"
                             R"("added_tokens":[{"id":500,"content":"<image>","special":true,"normalized":false,)"
                             R"("lstrip":false,"rstrip":false,"single_word":false}],)"
                             R"("normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,)"
                             R"("use_regex":true},"decoder":{"type":"ByteLevel"}})";
    return dsocr::Tokenizer::from_json(json, "fuzz-vocab");
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    dsocr::Tokenizer::from_json(text, "fuzz.json");
  } catch (const dsocr::Error&) {
  }
  try {
    const auto ids = small_tokenizer().encode(text);
    small_tokenizer().decode(ids);
  } catch (const dsocr::Error&) {
  }
  return 0;
}
