// UTF-8 helpers with the conversion rules of Rust's String::from_utf8_lossy (and WHATWG
// TextDecoder): each maximal invalid subpart becomes one U+FFFD.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsocr::utf8 {

// What starts at the front of a byte string.
struct Unit {
  enum Kind { kChar, kTruncated, kInvalid } kind;
  size_t length;      // bytes: the character, the valid-but-cut-off prefix, or the invalid subpart (>= 1)
  char32_t codepoint; // valid only for kChar
};

// Examines bytes[0..]; bytes must not be empty.
Unit next_unit(std::string_view bytes);

bool is_valid(std::string_view bytes);

// bytes as valid UTF-8: every maximal invalid subpart (and a cut-off character at the end) is
// replaced by one U+FFFD.
std::string to_valid_lossy(std::string_view bytes);

// Number of trailing bytes (0..3) that form the valid beginning of a character still missing its
// last byte(s): a streaming decoder holds these back until more bytes arrive.
size_t incomplete_tail(std::string_view bytes);

void append(std::string& out, char32_t codepoint);

}  // namespace dsocr::utf8
