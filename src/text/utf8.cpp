#include "text/utf8.h"

#include <algorithm>

namespace dsocr::utf8 {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

Unit next_unit(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  const unsigned char lead = s[0];
  if (lead < 0x80) return {Unit::kChar, 1, lead};

  // Sequence length and the allowed range of the second byte (Unicode Table 3-7), which rules
  // out overlong forms, surrogates and values above U+10FFFF.
  size_t length = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  char32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, cp = lead & 0x0F;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, cp = lead & 0x07;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {Unit::kInvalid, 1, 0};  // continuation byte or a byte that never starts a character
  }

  for (size_t i = 1; i < length; ++i) {
    if (i >= n) return {Unit::kTruncated, i, 0};
    const unsigned char b = s[i];
    const bool ok = i == 1 ? (b >= lo && b <= hi) : is_continuation(b);
    if (!ok) return {Unit::kInvalid, i, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Unit::kChar, length, cp};
}

bool is_valid(std::string_view bytes) {
  while (!bytes.empty()) {
    if (static_cast<unsigned char>(bytes[0]) < 0x80) {  // fast path for ASCII runs
      bytes.remove_prefix(1);
      continue;
    }
    const Unit unit = next_unit(bytes);
    if (unit.kind != Unit::kChar) return false;
    bytes.remove_prefix(unit.length);
  }
  return true;
}

std::string to_valid_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t clean_begin = 0, pos = 0;
  while (pos < bytes.size()) {
    if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Unit unit = next_unit(bytes.substr(pos));
    if (unit.kind == Unit::kChar) {
      pos += unit.length;
      continue;
    }
    out.append(bytes.substr(clean_begin, pos - clean_begin));
    out.append(kReplacement);
    pos += unit.length;
    clean_begin = pos;
  }
  out.append(bytes.substr(clean_begin));
  return out;
}

size_t incomplete_tail(std::string_view bytes) {
  // A character is at most 4 bytes, so only a lead byte among the last 3 can start a cut-off one.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto b = static_cast<unsigned char>(bytes[n - back]);
    if (is_continuation(b)) continue;
    const Unit unit = next_unit(bytes.substr(n - back));
    return unit.kind == Unit::kTruncated && unit.length == back ? back : 0;
  }
  return 0;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace dsocr::utf8
