// What layout_formats.cpp and searchable_pdf.cpp share (not part of the public API).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "io/layout_formats.h"

namespace dsocr::layout_detail {

// How a label is written (see io/layout_formats.h for the mapping).
enum class LayoutKind { Text, Title, Caption, Table, Image };
LayoutKind kind_of(std::string_view label);

bool is_space(char c);  // ASCII whitespace other than '\n' (which separates lines)

// Throws Error naming `path` and the page for a page without a size or with a page number below 1.
void check_page(const std::string& path, const LayoutPage& page);

// A line's text as the characters that share its width (ALTO words, PDF glyphs): each run of
// whitespace becomes one space (none at either end), invalid UTF-8 and control characters U+FFFD.
std::u32string line_glyphs(std::string_view text);

// The visual order of `glyphs` (logical order), left to right, as indices into it: a simplified
// Unicode bidirectional algorithm, enough for right-to-left scripts inside or around left-to-right
// text. Strong directions by script (Hebrew, Arabic, Syriac, Thaana, N'Ko... are right to left;
// other letters left to right), the line's direction from its first strong character, neutrals
// (spaces, punctuation) taking the direction of their neighbours when these agree and the line's
// otherwise, numbers staying left to right; no explicit embeddings, no mirroring.
struct VisualOrder {
  std::vector<size_t> order;   // order[k]: the glyph shown k-th from the left
  bool right_to_left = false;  // the line's direction
};
VisualOrder visual_order(std::u32string_view glyphs);

// Where a line's glyphs go, shared by ALTO and the PDF: glyphs of equal width in visual order, the
// k-th from the left spanning [x(k), x(k + 1)). The width is the line's over the glyph count, but at
// most kMaxAdvance of the line's height (a short last line of a paragraph is not stretched over its
// box: it starts at the box's left edge, or its right edge for a right-to-left line).
inline constexpr int64_t kMaxAdvanceNum = 4, kMaxAdvanceDen = 5;  // 0.8 of the height
struct LinePlacement {
  std::u32string glyphs;  // line_glyphs() of the line's text
  VisualOrder visual;
  int64_t start = 0;      // x(0), page pixels
  int64_t num = 0, den = 1;  // the advance, num / den pixels
  int x(size_t k) const { return int(start + int64_t(k) * num / den); }
  double advance() const { return double(num) / double(den); }
};
LinePlacement place_line(const LayoutLine& line);

std::string software_version(const LayoutWriterOptions& options);  // this build's unless given

}  // namespace dsocr::layout_detail
