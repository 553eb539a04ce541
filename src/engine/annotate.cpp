#include "engine/annotate.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string_view>

#include "text/render.h"
#include "text/utf8.h"

// FreeType is optional at compile time: without its headers every label uses the bitmap font.
#if __has_include(<ft2build.h>)
#define DSOCR_LABELS_FREETYPE 1
#include <ft2build.h>
#include FT_FREETYPE_H
#endif

namespace dsocr {
namespace {

struct Rgb {
  uint8_t r, g, b;
};

constexpr uint8_t kFillAlpha = 20;  // the official RGBA overlay's alpha
constexpr int kLabelOffset = 15;    // label top = max(0, y1 - 15)
constexpr int kLabelHeight = 15;    // both fonts: a label fills the 15 rows above its box
constexpr int kTrueTypePixelSize = 12;  // DejaVu Sans at 12 px: ascent + descent = 15

// Rounded x / 255 for x in [0, 255 * 255], as PIL's DIV255.
inline uint8_t div255(int x) {
  const int t = x + 128;
  return uint8_t(((t >> 8) + t) >> 8);
}

inline uint8_t blend(uint8_t under, uint8_t over, int alpha) { return div255(under * (255 - alpha) + over * alpha); }

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The official np.random.randint ranges: R, G in [0, 200), B in [0, 255).
Rgb block_colour(uint64_t seed, size_t block_index) {
  const uint64_t h = splitmix64(splitmix64(seed) ^ uint64_t(block_index));
  return {uint8_t((h & 0xffff) % 200), uint8_t(((h >> 16) & 0xffff) % 200), uint8_t(((h >> 32) & 0xffff) % 255)};
}

// Inclusive rectangle [x1, x2] x [y1, y2], clipped to the image.
void fill_rect(Image& image, int x1, int y1, int x2, int y2, Rgb c) {
  x1 = std::max(x1, 0), y1 = std::max(y1, 0);
  x2 = std::min(x2, image.width - 1), y2 = std::min(y2, image.height - 1);
  for (int y = y1; y <= y2; ++y) {
    for (int x = x1; x <= x2; ++x) {
      uint8_t* p = image.pixel(x, y);
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
  }
}

// PIL's ImageDraw.rectangle(outline=c, width=w): w rings drawn inward from the box edges.
void draw_outline(Image& image, const PixelBox& b, int width, Rgb c) {
  fill_rect(image, b.x1, b.y1, b.x2, std::min(b.y1 + width - 1, b.y2), c);
  fill_rect(image, b.x1, std::max(b.y2 - width + 1, b.y1), b.x2, b.y2, c);
  fill_rect(image, b.x1, b.y1, std::min(b.x1 + width - 1, b.x2), b.y2, c);
  fill_rect(image, std::max(b.x2 - width + 1, b.x1), b.y1, b.x2, b.y2, c);
}

// The official translucent layer: each box's interior (its 1-pixel rim left clear) replaces what
// earlier boxes put there; the layer is composited onto the page once, at the end.
class FillLayer {
 public:
  FillLayer(int width, int height) : width_(width), colour_(size_t(width) * size_t(height), kEmpty) {}

  void fill(const PixelBox& b, Rgb c) {
    const uint32_t packed = uint32_t(c.r) << 16 | uint32_t(c.g) << 8 | c.b;
    for (int y = b.y1 + 1; y < b.y2; ++y)
      std::fill_n(colour_.begin() + ptrdiff_t(size_t(y) * size_t(width_) + size_t(b.x1 + 1)),
                  std::max(b.x2 - b.x1 - 1, 0), packed);
  }

  void composite_onto(Image& image) const {
    for (size_t i = 0; i < colour_.size(); ++i) {
      const uint32_t c = colour_[i];
      if (c == kEmpty) continue;
      uint8_t* p = image.rgb.data() + i * 3;
      p[0] = blend(p[0], uint8_t(c >> 16), kFillAlpha);
      p[1] = blend(p[1], uint8_t(c >> 8), kFillAlpha);
      p[2] = blend(p[2], uint8_t(c), kFillAlpha);
    }
  }

 private:
  static constexpr uint32_t kEmpty = 0xffffffffu;  // not an RGB value (those fit in 24 bits)
  int width_;
  std::vector<uint32_t> colour_;
};

// ---- label text ----------------------------------------------------------------------------------

// A rendered label: 8-bit ink coverage, row-major, kLabelHeight rows.
struct LabelMask {
  int width = 0, height = 0;
  std::vector<uint8_t> coverage;
};

// Classic 5x7 font for printable ASCII (0x20..0x7e): 5 columns per glyph, bit 0 = top row.
constexpr std::array<std::array<uint8_t, 5>, 95> kBitmapFont = {{
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5f, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00},  //  !"
    {0x14, 0x7f, 0x14, 0x7f, 0x14}, {0x24, 0x2a, 0x7f, 0x2a, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62},  // #$%
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1c, 0x22, 0x41, 0x00},  // &'(
    {0x00, 0x41, 0x22, 0x1c, 0x00}, {0x08, 0x2a, 0x1c, 0x2a, 0x08}, {0x08, 0x08, 0x3e, 0x08, 0x08},  // )*+
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00},  // ,-.
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3e, 0x51, 0x49, 0x45, 0x3e}, {0x00, 0x42, 0x7f, 0x40, 0x00},  // /01
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4b, 0x31}, {0x18, 0x14, 0x12, 0x7f, 0x10},  // 234
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3c, 0x4a, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03},  // 567
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1e}, {0x00, 0x36, 0x36, 0x00, 0x00},  // 89:
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14},  // ;<=
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3e},  // >?@
    {0x7e, 0x11, 0x11, 0x11, 0x7e}, {0x7f, 0x49, 0x49, 0x49, 0x36}, {0x3e, 0x41, 0x41, 0x41, 0x22},  // ABC
    {0x7f, 0x41, 0x41, 0x22, 0x1c}, {0x7f, 0x49, 0x49, 0x49, 0x41}, {0x7f, 0x09, 0x09, 0x09, 0x01},  // DEF
    {0x3e, 0x41, 0x49, 0x49, 0x7a}, {0x7f, 0x08, 0x08, 0x08, 0x7f}, {0x00, 0x41, 0x7f, 0x41, 0x00},  // GHI
    {0x20, 0x40, 0x41, 0x3f, 0x01}, {0x7f, 0x08, 0x14, 0x22, 0x41}, {0x7f, 0x40, 0x40, 0x40, 0x40},  // JKL
    {0x7f, 0x02, 0x0c, 0x02, 0x7f}, {0x7f, 0x04, 0x08, 0x10, 0x7f}, {0x3e, 0x41, 0x41, 0x41, 0x3e},  // MNO
    {0x7f, 0x09, 0x09, 0x09, 0x06}, {0x3e, 0x41, 0x51, 0x21, 0x5e}, {0x7f, 0x09, 0x19, 0x29, 0x46},  // PQR
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7f, 0x01, 0x01}, {0x3f, 0x40, 0x40, 0x40, 0x3f},  // STU
    {0x1f, 0x20, 0x40, 0x20, 0x1f}, {0x3f, 0x40, 0x38, 0x40, 0x3f}, {0x63, 0x14, 0x08, 0x14, 0x63},  // VWX
    {0x07, 0x08, 0x70, 0x08, 0x07}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7f, 0x41, 0x41, 0x00},  // YZ[
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7f, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04},  // \]^
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78},  // _`a
    {0x7f, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7f},  // bcd
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7e, 0x09, 0x01, 0x02}, {0x0c, 0x52, 0x52, 0x52, 0x3e},  // efg
    {0x7f, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7d, 0x40, 0x00}, {0x20, 0x40, 0x44, 0x3d, 0x00},  // hij
    {0x7f, 0x10, 0x28, 0x44, 0x00}, {0x00, 0x41, 0x7f, 0x40, 0x00}, {0x7c, 0x04, 0x18, 0x04, 0x78},  // klm
    {0x7c, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0x7c, 0x14, 0x14, 0x14, 0x08},  // nop
    {0x08, 0x14, 0x14, 0x18, 0x7c}, {0x7c, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20},  // qrs
    {0x04, 0x3f, 0x44, 0x40, 0x20}, {0x3c, 0x40, 0x40, 0x20, 0x7c}, {0x1c, 0x20, 0x40, 0x20, 0x1c},  // tuv
    {0x3c, 0x40, 0x30, 0x40, 0x3c}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x0c, 0x50, 0x50, 0x50, 0x3c},  // wxy
    {0x44, 0x64, 0x54, 0x4c, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7f, 0x00, 0x00},  // z{|
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x08, 0x04, 0x08, 0x10, 0x08},                                  // }~
}};

// The bitmap font drawn at twice its size: 12-pixel advance, 14 rows of ink under a 1-row margin.
LabelMask render_bitmap_label(std::string_view text, int max_width) {
  constexpr int kScale = 2, kAdvance = 6 * kScale;
  std::vector<int> glyphs;
  for (size_t i = 0; i < text.size() && int(glyphs.size()) * kAdvance < max_width;) {
    const utf8::Unit u = utf8::next_unit(text.substr(i));
    const bool printable = u.kind == utf8::Unit::kChar && u.codepoint >= 0x20 && u.codepoint <= 0x7e;
    glyphs.push_back(printable ? int(u.codepoint) - 0x20 : '?' - 0x20);
    i += u.length;
  }
  LabelMask mask{int(glyphs.size()) * kAdvance, kLabelHeight, {}};
  mask.coverage.assign(size_t(mask.width) * size_t(mask.height), 0);
  for (size_t g = 0; g < glyphs.size(); ++g) {
    const auto& columns = kBitmapFont[size_t(glyphs[g])];
    for (int col = 0; col < 5; ++col) {
      for (int row = 0; row < 7; ++row) {
        if (!(columns[size_t(col)] >> row & 1)) continue;
        for (int dy = 0; dy < kScale; ++dy) {
          const int y = 1 + row * kScale + dy, x0 = int(g) * kAdvance + 1 + col * kScale;
          std::fill_n(mask.coverage.begin() + ptrdiff_t(y * mask.width + x0), kScale, uint8_t(255));
        }
      }
    }
  }
  return mask;
}

#ifdef DSOCR_LABELS_FREETYPE
// One TrueType face at the label size; valid() is false when the file could not be loaded.
class TrueTypeFont {
 public:
  explicit TrueTypeFont(const std::string& path) {
    if (FT_Init_FreeType(&library_) != 0) {
      library_ = nullptr;
      return;
    }
    if (FT_New_Face(library_, path.c_str(), 0, &face_) != 0 || FT_Set_Pixel_Sizes(face_, 0, kTrueTypePixelSize) != 0) {
      if (face_) FT_Done_Face(face_);
      face_ = nullptr;
    }
  }
  ~TrueTypeFont() {
    if (face_) FT_Done_Face(face_);
    if (library_) FT_Done_FreeType(library_);
  }
  TrueTypeFont(const TrueTypeFont&) = delete;
  TrueTypeFont& operator=(const TrueTypeFont&) = delete;

  bool valid() const { return face_ != nullptr; }

  // Glyphs side by side on the baseline, clipped to the label height (ascent + descent); glyphs
  // starting past max_width are not rendered.
  LabelMask render(std::string_view text, int max_width) const {
    const FT_Size_Metrics& m = face_->size->metrics;
    const int baseline = kLabelHeight - int((-m.descender + 63) >> 6);
    struct Placed {
      int x, y, width, rows;
      std::vector<uint8_t> ink;
    };
    std::vector<Placed> placed;
    int pen = 0, right = 0;
    for (size_t i = 0; i < text.size() && pen < max_width;) {
      const utf8::Unit u = utf8::next_unit(text.substr(i));
      i += u.length;
      const FT_ULong code = u.kind == utf8::Unit::kChar ? FT_ULong(u.codepoint) : 0xfffd;
      if (FT_Load_Char(face_, code, FT_LOAD_RENDER) != 0) continue;
      const FT_GlyphSlot slot = face_->glyph;
      const FT_Bitmap& bm = slot->bitmap;
      if (bm.pixel_mode == FT_PIXEL_MODE_GRAY && bm.width > 0 && bm.rows > 0) {
        Placed p{std::max(pen + slot->bitmap_left, 0), baseline - slot->bitmap_top, int(bm.width), int(bm.rows), {}};
        p.ink.resize(size_t(p.width) * size_t(p.rows));
        for (int r = 0; r < p.rows; ++r)
          std::copy_n(bm.buffer + ptrdiff_t(r) * bm.pitch, p.width, p.ink.begin() + ptrdiff_t(r) * p.width);
        right = std::max(right, p.x + p.width);
        placed.push_back(std::move(p));
      }
      pen += int(slot->advance.x >> 6);
      right = std::max(right, pen);
    }
    LabelMask mask{right, kLabelHeight, {}};
    mask.coverage.assign(size_t(mask.width) * size_t(mask.height), 0);
    for (const Placed& p : placed) {
      for (int r = 0; r < p.rows; ++r) {
        const int y = p.y + r;
        if (y < 0 || y >= mask.height) continue;
        for (int c = 0; c < p.width; ++c) {
          uint8_t& cov = mask.coverage[size_t(y) * size_t(mask.width) + size_t(p.x + c)];
          cov = std::max(cov, p.ink[size_t(r) * size_t(p.width) + size_t(c)]);
        }
      }
    }
    return mask;
  }

 private:
  FT_Library library_ = nullptr;
  FT_Face face_ = nullptr;
};

// The font file the labels should use: the option, else $DSOCR_FONT, else a standard system font.
std::string find_font(const std::string& requested) {
  if (!requested.empty()) return requested;
  if (const char* env = std::getenv("DSOCR_FONT"); env && *env) return env;
  return standard_font_path();
}
#endif

// Renders labels with the TrueType font when it loads, else with the bitmap font.
class LabelRenderer {
 public:
  explicit LabelRenderer(const std::string& requested_font) {
#ifdef DSOCR_LABELS_FREETYPE
    if (std::string path = find_font(requested_font); !path.empty()) {
      truetype_.emplace(path);
      if (!truetype_->valid()) truetype_.reset();
    }
#endif
  }

  // Glyphs past max_width pixels are not rendered (they would be off the page).
  LabelMask render(std::string_view text, int max_width) const {
#ifdef DSOCR_LABELS_FREETYPE
    if (truetype_) return truetype_->render(text, max_width);
#endif
    return render_bitmap_label(text, max_width);
  }

 private:
#ifdef DSOCR_LABELS_FREETYPE
  std::optional<TrueTypeFont> truetype_;
#endif
};

// The label on a white box with its top-left corner at (x, y), ink in colour c, clipped to the page.
void draw_label(Image& image, const LabelMask& mask, int x, int y, Rgb c) {
  for (int my = 0; my < mask.height; ++my) {
    const int py = y + my;
    if (py < 0 || py >= image.height) continue;
    for (int mx = 0; mx < mask.width; ++mx) {
      const int px = x + mx;
      if (px < 0 || px >= image.width) continue;
      const int ink = mask.coverage[size_t(my) * size_t(mask.width) + size_t(mx)];
      uint8_t* p = image.pixel(px, py);
      p[0] = blend(255, c.r, ink), p[1] = blend(255, c.g, ink), p[2] = blend(255, c.b, ink);
    }
  }
}

// The box in page pixels with its corners ordered, clamped to the page.
PixelBox page_rect(const Box& box, int width, int height) {
  const PixelBox p = to_pixels(box, width, height);
  return {std::clamp(std::min(p.x1, p.x2), 0, width - 1), std::clamp(std::min(p.y1, p.y2), 0, height - 1),
          std::clamp(std::max(p.x1, p.x2), 0, width - 1), std::clamp(std::max(p.y1, p.y2), 0, height - 1)};
}

}  // namespace

Image annotate_page(const Image& page, const std::vector<Block>& blocks, const AnnotateOptions& opt) {
  Image out = page;
  if (page.empty()) return out;
  const LabelRenderer labels(opt.font);
  FillLayer fill(page.width, page.height);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Block& block = blocks[i];
    if (block.boxes.empty()) continue;
    const Rgb colour = block_colour(opt.seed, i);
    const LabelMask label = labels.render(block.label, page.width);
    for (const Box& box : block.boxes) {
      const PixelBox rect = page_rect(box, page.width, page.height);
      draw_outline(out, rect, block.label == "title" ? 4 : 2, colour);
      fill.fill(rect, colour);
      if (label.width > 0) draw_label(out, label, rect.x1, std::max(0, rect.y1 - kLabelOffset), colour);
    }
  }
  fill.composite_onto(out);
  return out;
}

}  // namespace dsocr
