// Text -> page images, for optical context compression (`dsocr render`, `dsocr compress-eval`,
// `dsocr context-compress`): the text is shaped with HarfBuzz, laid out in lines and columns on pages
// of a given size, and rasterised with FreeType as black on white.
//
// Contract:
//   * Deterministic: the same text, options and font file give the same pixels (integer layout in
//     26.6 fixed point, FreeType's own rasteriser, no system font lookup beyond the default path).
//   * Nothing is dropped silently: text that does not fit a page flows onto further pages (columns
//     first, then pages); a character the font has no glyph for is drawn as the font's .notdef box
//     and reported in RenderedText::missing with its count.
//   * Paragraphs are the input's lines ("\n"; "\r\n" is one break); an empty line is a blank line.
//     Lines break after spaces and between CJK characters; a word wider than the column is broken
//     between characters. Right-to-left text follows the Unicode bidirectional algorithm (FriBidi:
//     paragraph direction from its first strong character, runs reordered per line), and paragraphs
//     whose direction is right-to-left are right-aligned.
//   * Tabs become 4 spaces; other control characters become spaces.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.h"

namespace dsocr {

// The first standard sans-serif font found on this system (Debian's fonts-dejavu-core DejaVu Sans
// first), "" when there is none.
std::string standard_font_path();

struct RenderOptions {
  std::string font;                  // a TrueType/OpenType file; "" = standard_font_path()
  double font_size = 11;             // points
  double page_width_mm = 210, page_height_mm = 297;  // A4
  double dpi = 144;                  // 144: the official PDF path's resolution (A4 = 1191 x 1684 px)
  double margin_mm = 12;
  int columns = 1;
  double column_gap_mm = 6;
  double line_spacing = 1.2;         // baseline distance in multiples of the font size
};

// Named page sizes in millimetres: a4, a5, letter, legal; or "WxH" in millimetres. Throws Error.
void parse_page_size(const std::string& spec, double* width_mm, double* height_mm);

// Page pixels for the options: round(mm / 25.4 * dpi).
int page_width_px(const RenderOptions& o);
int page_height_px(const RenderOptions& o);

struct MissingGlyph {
  char32_t codepoint = 0;
  int count = 0;
  bool operator==(const MissingGlyph&) const = default;
};

// Where one glyph was drawn (pen position on the baseline, page pixels), for tests and tools.
struct PlacedGlyph {
  char32_t codepoint;  // the character it was shaped from (its cluster's first)
  int x, y;
};

struct RenderedText {
  std::vector<Image> pages;                       // empty when rasterise was false
  std::vector<std::vector<PlacedGlyph>> glyphs;   // per page
  int page_count = 0;
  int lines = 0;              // line slots used, blank lines included
  int lines_per_page = 0;     // line slots of a page (all columns)
  double fill = 0;            // pages used, the last one counted by the share of its line slots used
  std::vector<MissingGlyph> missing;  // by codepoint
};

// One loaded font. Not thread-safe (FreeType faces are not): one renderer per thread.
class TextRenderer {
 public:
  // Loads `font_path` ("" = standard_font_path()); throws Error naming the file when it cannot.
  explicit TextRenderer(const std::string& font_path = "");
  ~TextRenderer();
  TextRenderer(const TextRenderer&) = delete;
  TextRenderer& operator=(const TextRenderer&) = delete;

  const std::string& font_path() const { return font_path_; }

  // Lays out (and with rasterise, draws) the text. Throws Error on options that leave no room for a
  // line (margins wider than the page, a font size of 0, ...). Invalid UTF-8 is read as U+FFFD.
  RenderedText render(std::string_view text, const RenderOptions& options, bool rasterise = true);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string font_path_;
};

// A message for the missing glyphs: "no glyph for U+05D0 (3 times), U+4E2D" ("" when none).
std::string describe_missing_glyphs(const std::vector<MissingGlyph>& missing, size_t max_listed = 8);

}  // namespace dsocr
