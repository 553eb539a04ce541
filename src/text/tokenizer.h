// DeepSeek-OCR's tokenizer: a byte-level BPE read from a Hugging Face tokenizer.json, matching
// the Rust `tokenizers` library id for id (golden/tokenizer/README.md describes every step).
//
// encode: added tokens are split off first (leftmost-longest), each remaining span is cut by the
// pre-tokenizer's Split regexes (PCRE2), mapped to GPT-2 byte characters and merged by BPE.
// decode: token bytes are concatenated and converted to text once, each invalid UTF-8 subpart
// becoming U+FFFD. Ids without a token (e.g. the embedding padding rows 128827..129279) are
// skipped silently, as the reference does.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsocr {

class Tokenizer {
 public:
  // Reads and validates a tokenizer.json; throws dsocr::Error naming the file and the problem.
  static Tokenizer from_file(const std::string& path);
  // Same, from the file's content; `name` is used in error messages.
  static Tokenizer from_json(std::string_view json, const std::string& name);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special_tokens=false semantics: no BOS. Invalid UTF-8 in `text` is read as U+FFFD.
  std::vector<int32_t> encode(std::string_view text) const;
  // Special tokens are kept unless skip_special; unknown ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // vocab or added token
  std::string id_to_token(int32_t id) const;  // raw token string, "" if the id has none
  bool is_special(int32_t id) const;
  int32_t vocab_size() const;  // highest id + 1

  // The bytes id stands for ("" if the id has none, or if skip_special and the id is special).
  std::string_view token_bytes(int32_t id, bool skip_special = false) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental decode for generation: push ids one by one and get the text that became complete.
// A character split across tokens is held back until its last byte arrives; bytes that can no
// longer form a character are released as U+FFFD. The concatenated pieces plus flush() equal
// Tokenizer::decode of all ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is held back (as U+FFFD), then resets

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace dsocr
