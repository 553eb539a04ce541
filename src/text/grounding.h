// Grounded model output -> blocks, markdown and image regions (spec §7, golden/postproc/README.md).
//
// The model writes `<|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|>` before each block of
// content, with coordinates in a 0..999 frame of the original image. The official drivers find these
// spans with a lazy regex and `eval` the box list; dsocr parses them with a small tag scanner and a
// strict box parser instead, and never throws on any input. Where the official post-processing is an
// accident dsocr deliberately does better (each point is pinned by tests/test_grounding.cpp):
//   * a ref not directly followed by its det does not swallow the text up to the next det; whitespace
//     between `<|/ref|>` and `<|det|>` is accepted; unclosed, stray or cut tags (a truncated output)
//     are removed from the markdown (they stay in the raw output);
//   * boxes are lists of 4 integers (optional sign, spaces, leading zeros); a box that is not is
//     skipped and reported (no floats, tuples, hex or names as Python's eval would take); values are
//     clamped to 0..999, so crops stay on the page;
//   * a region is an image exactly when its label is `image`; every box of it gives one crop and one
//     link, numbered together (the official links count matches while crops count boxes); image
//     boxes with no area are skipped instead of failing to save;
//   * `\coloneqq`/`\eqqcolon` replacement, blank-line collapse and the eval clean-ups always run,
//     to a fixed point, not once per non-image match;
//   * a page is never dropped; output containing `line_type` is plain text (no geometry eval).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dsocr {

// A box in the model's 0..999 frame (clamped to it by the parser).
struct Box {
  int x1, y1, x2, y2;
  bool operator==(const Box&) const = default;
};

struct Block {
  std::string label;       // verbatim between <|ref|> and <|/ref|> ("" for a det without ref)
  std::vector<Box> boxes;  // the well-formed boxes, in order
  // The content that follows the span, up to the next span (or the end): one leading "\n" and trailing
  // whitespace removed, the EOS text dropped. Raw model text: no markdown clean-ups.
  std::string text;
  size_t span_begin = 0, span_end = 0;  // byte range [begin, end) of the tags in the raw output
  bool malformed = false;  // unclosed/stray tag, ref without det (or det without ref), or a bad box
  std::string problem;     // what was malformed, for warnings ("" when well-formed)
};

// Every ref/det span of `raw`, in order. Also stray tags (a lone <|/ref|>, <|det|> or <|/det|>), as
// malformed blocks, so that each tag of the raw output belongs to exactly one block span.
std::vector<Block> parse_grounding(std::string_view raw);

struct PixelBox {
  int x1, y1, x2, y2;
  bool operator==(const PixelBox&) const = default;
};

// int(v / 999 * S) per value, as the official draw_bounding_boxes computes it: double division,
// then multiplication, then truncation toward zero (not exact integer arithmetic; see coord_map.json).
PixelBox to_pixels(const Box& b, int width, int height);

struct PostprocessOptions {
  int page_index = -1;               // -1: single image, links "images/K.jpg"; PDF page P: "images/P_K.jpg"
  bool link_images = true;           // image spans -> links + regions; false: deleted like the others (eval)
  bool formula_replacements = true;  // \coloneqq -> :=, \eqqcolon -> =:
  bool collapse_blank_lines = false; // runs of 3+ newlines -> one blank line (PDF and eval drivers)
  bool eval_cleanup = false;         // eval driver: drop `\quad (n)` inside one-line \[ \], drop <center> tags

  // The official drivers' settings: run_dpsk_ocr_image.py (and HF infer), run_dpsk_ocr_pdf.py (page
  // `page`, 0-based, counting every page), run_dpsk_ocr_eval_batch.py (which keeps \coloneqq).
  static PostprocessOptions image() { return {}; }
  static PostprocessOptions pdf_page(int page) { return {.page_index = page, .collapse_blank_lines = true}; }
  static PostprocessOptions eval() {
    return {.link_images = false, .formula_replacements = false, .collapse_blank_lines = true, .eval_cleanup = true};
  }
};

struct ImageRegion {
  int index;          // K of the link, counted per box over the page
  PixelBox box;       // the crop rectangle in page pixels (inside the page, non-empty)
  std::string link;   // "images/K.jpg" or "images/P_K.jpg"
};

struct PostprocessResult {
  std::string markdown;
  std::vector<ImageRegion> images;    // the caller crops and saves these
  std::vector<Block> blocks;
  std::vector<std::string> warnings;  // one line per malformed block or skipped image box
};

// The model output (special tokens kept; the EOS text may be present) of one page of size
// page_width x page_height -> markdown, crops to make, blocks. Never throws on any model output.
PostprocessResult postprocess(std::string_view raw, int page_width, int page_height,
                              const PostprocessOptions& opt);

// What the official PDF driver appends after every page, the last one included.
inline constexpr std::string_view kPageSplit = "\n\n<--- Page Split --->\n";

// The PDF document's markdown (or its raw `_det.mmd`): each page followed by kPageSplit.
std::string join_pages(const std::vector<std::string>& pages);

}  // namespace dsocr
