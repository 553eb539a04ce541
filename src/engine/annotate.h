// Layout annotation (`--boxes`): the page with every grounded block drawn on it, as the official
// drivers' result_with_boxes.jpg (spec §7).
//
// Per block one colour (R, G in [0, 200), B in [0, 255)); per box an outline (width 4 for `title`,
// 2 otherwise, drawn inward from the box edges), a translucent fill (alpha 20/255, the 1-pixel rim
// left clear) composited after everything else, and the label on a white box at
// (x1, max(0, y1 - 15)). Where dsocr differs from the official drawing:
//   * colours are a deterministic function of (seed, block index), so output is reproducible;
//   * boxes are clamped to the page (a box reaching 999 keeps its right/bottom outline visible)
//     and an inverted box (x2 < x1) is drawn with its corners swapped instead of being dropped;
//   * labels use a TrueType font (FreeType) at a readable size when one is found: $DSOCR_FONT or a
//     standard system font; otherwise a built-in 5x7 bitmap font, so annotation never fails.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/image.h"
#include "text/grounding.h"

namespace dsocr {

struct AnnotateOptions {
  uint64_t seed = 0;  // colours are a function of (seed, block index)
  // TrueType font for the labels. "" = $DSOCR_FONT if set, else the first standard system font
  // found. A font that cannot be loaded falls back to the built-in bitmap font.
  std::string font;
};

// A copy of `page` with the boxes of every block drawn; blocks without boxes are skipped.
Image annotate_page(const Image& page, const std::vector<Block>& blocks, const AnnotateOptions& opt = {});

}  // namespace dsocr
