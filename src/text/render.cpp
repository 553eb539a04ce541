#include "text/render.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include <fribidi.h>
#include <hb-ft.h>
#include <hb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "text/utf8.h"

namespace dsocr {

std::string standard_font_path() {
  static constexpr const char* kStandardFonts[] = {
      "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  // Debian/Ubuntu fonts-dejavu-core
      "/usr/share/fonts/dejavu/DejaVuSans.ttf",           // Fedora, Arch
      "/usr/share/fonts/TTF/DejaVuSans.ttf",              // Arch (older)
      "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
      "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
      "/System/Library/Fonts/Supplemental/Arial.ttf",     // macOS
      "/Library/Fonts/Arial.ttf",
  };
  std::error_code ec;
  for (const char* path : kStandardFonts)
    if (std::filesystem::is_regular_file(path, ec)) return path;
  return "";
}

void parse_page_size(const std::string& spec, double* width_mm, double* height_mm) {
  static const std::map<std::string, std::pair<double, double>> kNamed = {
      {"a4", {210, 297}}, {"a5", {148, 210}}, {"a3", {297, 420}}, {"letter", {215.9, 279.4}}, {"legal", {215.9, 355.6}}};
  std::string s = spec;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (auto it = kNamed.find(s); it != kNamed.end()) {
    *width_mm = it->second.first;
    *height_mm = it->second.second;
    return;
  }
  const size_t x = s.find('x');
  try {
    size_t used_w = 0, used_h = 0;
    if (x == std::string::npos) throw std::invalid_argument("no x");
    const double w = std::stod(s.substr(0, x), &used_w), h = std::stod(s.substr(x + 1), &used_h);
    if (used_w != x || used_h != s.size() - x - 1 || !(w >= 10 && w <= 2000) || !(h >= 10 && h <= 2000))
      throw std::invalid_argument("range");
    *width_mm = w;
    *height_mm = h;
  } catch (const std::exception&) {
    fail("page size '{}': expected a4, a5, a3, letter, legal or WxH in millimetres (10..2000 each)", spec);
  }
}

int page_width_px(const RenderOptions& o) { return int(std::lround(o.page_width_mm / 25.4 * o.dpi)); }
int page_height_px(const RenderOptions& o) { return int(std::lround(o.page_height_mm / 25.4 * o.dpi)); }

std::string describe_missing_glyphs(const std::vector<MissingGlyph>& missing, size_t max_listed) {
  if (missing.empty()) return "";
  std::string out = "no glyph for ";
  for (size_t i = 0; i < missing.size() && i < max_listed; ++i) {
    if (i) out += ", ";
    out += fmt::format("U+{:04X}", uint32_t(missing[i].codepoint));
    if (missing[i].count > 1) out += fmt::format(" ({} times)", missing[i].count);
  }
  if (missing.size() > max_listed) out += fmt::format(" and {} more characters", missing.size() - max_listed);
  return out;
}

namespace {

constexpr int kTabSpaces = 4;

bool is_cjk(char32_t c) {
  return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0xFF00 && c <= 0xFFEF) || (c >= 0x20000 && c <= 0x3FFFF);
}

bool is_mark(char32_t c) {
  const hb_unicode_general_category_t g = hb_unicode_general_category(hb_unicode_funcs_get_default(), c);
  return g == HB_UNICODE_GENERAL_CATEGORY_NON_SPACING_MARK || g == HB_UNICODE_GENERAL_CATEGORY_SPACING_MARK ||
         g == HB_UNICODE_GENERAL_CATEGORY_ENCLOSING_MARK;
}

struct Paragraph {
  std::vector<char32_t> text;
  std::vector<FriBidiLevel> levels;  // per character
  bool rtl = false;
};

// Input lines as characters, with their bidi levels.
std::vector<Paragraph> split_paragraphs(std::string_view bytes) {
  std::vector<Paragraph> out(1);
  for (size_t i = 0; i < bytes.size();) {
    const utf8::Unit u = utf8::next_unit(bytes.substr(i));
    i += u.length;
    const char32_t c = u.kind == utf8::Unit::kChar ? u.codepoint : 0xFFFD;
    if (c == '\r' && i < bytes.size() && bytes[i] == '\n') continue;
    if (c == '\n' || c == '\r' || c == 0x2029) {
      out.emplace_back();
    } else if (c == '\t') {
      out.back().text.insert(out.back().text.end(), kTabSpaces, U' ');
    } else {
      out.back().text.push_back(c < 0x20 || (c >= 0x7F && c < 0xA0) ? U' ' : c);
    }
  }
  if (out.size() > 1 && out.back().text.empty()) out.pop_back();  // a final newline ends the last line
  for (Paragraph& p : out) {
    const FriBidiStrIndex n = FriBidiStrIndex(p.text.size());
    p.levels.assign(p.text.size(), 0);
    if (n == 0) continue;
    const auto* chars = reinterpret_cast<const FriBidiChar*>(p.text.data());
    std::vector<FriBidiCharType> types(static_cast<size_t>(n));
    std::vector<FriBidiBracketType> brackets(static_cast<size_t>(n));
    fribidi_get_bidi_types(chars, n, types.data());
    fribidi_get_bracket_types(chars, n, types.data(), brackets.data());
    FriBidiParType base = FRIBIDI_PAR_ON;
    if (fribidi_get_par_embedding_levels_ex(types.data(), brackets.data(), n, &base, p.levels.data()) == 0)
      std::fill(p.levels.begin(), p.levels.end(), 0);
    p.rtl = FRIBIDI_IS_RTL(base);
  }
  return out;
}

struct LineRef {
  size_t paragraph;
  size_t begin, end;  // characters of the paragraph, trailing spaces excluded
};

struct GlyphBitmap {
  int left = 0, top = 0, width = 0, rows = 0;
  std::vector<uint8_t> coverage;
};

}  // namespace

struct TextRenderer::Impl {
  FT_Library library = nullptr;
  FT_Face face = nullptr;
  hb_font_t* font = nullptr;
  hb_buffer_t* buffer = nullptr;
  int64_t size_26_6 = -1;  // pixel size the face is set to
  std::map<uint32_t, GlyphBitmap> bitmaps;
  std::map<char32_t, int> missing;

  ~Impl() {
    if (buffer) hb_buffer_destroy(buffer);
    if (font) hb_font_destroy(font);
    if (face) FT_Done_Face(face);
    if (library) FT_Done_FreeType(library);
  }

  void set_pixel_size(double pixels, const std::string& path) {
    const int64_t size = std::max<int64_t>(1, std::llround(pixels * 64));
    if (size == size_26_6) return;
    if (const FT_Error e = FT_Set_Char_Size(face, 0, FT_F26Dot6(size), 72, 72); e != 0)
      fail("{}: cannot set the font to {:.2f} px (FreeType error {})", path, pixels, e);
    if (font) hb_font_destroy(font);
    font = hb_ft_font_create_referenced(face);
    size_26_6 = size;
    bitmaps.clear();
  }

  // Shapes characters [begin, end) of the paragraph as one directional run (the whole paragraph is
  // context for the shaper). Positions in 26.6.
  void shape(const Paragraph& p, size_t begin, size_t end, bool rtl) {
    hb_buffer_clear_contents(buffer);
    hb_buffer_add_codepoints(buffer, reinterpret_cast<const uint32_t*>(p.text.data()), int(p.text.size()),
                             unsigned(begin), int(end - begin));
    hb_buffer_set_direction(buffer, rtl ? HB_DIRECTION_RTL : HB_DIRECTION_LTR);
    hb_buffer_guess_segment_properties(buffer);
    hb_shape(font, buffer, nullptr, 0);
  }

  // Width in 26.6 of characters [begin, end), each run of one bidi level shaped on its own.
  int64_t measure(const Paragraph& p, size_t begin, size_t end) {
    int64_t width = 0;
    for (size_t s = begin; s < end;) {
      size_t e = s + 1;
      while (e < end && p.levels[e] == p.levels[s]) ++e;
      shape(p, s, e, p.levels[s] & 1);
      unsigned n = 0;
      const hb_glyph_position_t* pos = hb_buffer_get_glyph_positions(buffer, &n);
      for (unsigned i = 0; i < n; ++i) width += pos[i].x_advance;
      s = e;
    }
    return width;
  }

  const GlyphBitmap& bitmap(uint32_t glyph) {
    auto it = bitmaps.find(glyph);
    if (it != bitmaps.end()) return it->second;
    GlyphBitmap b;
    if (FT_Load_Glyph(face, glyph, FT_LOAD_RENDER) == 0 && face->glyph->bitmap.pixel_mode == FT_PIXEL_MODE_GRAY) {
      const FT_Bitmap& bm = face->glyph->bitmap;
      b.left = face->glyph->bitmap_left;
      b.top = face->glyph->bitmap_top;
      b.width = int(bm.width);
      b.rows = int(bm.rows);
      b.coverage.resize(size_t(b.width) * size_t(b.rows));
      for (int r = 0; r < b.rows; ++r)
        std::copy_n(bm.buffer + ptrdiff_t(r) * bm.pitch, b.width, b.coverage.begin() + ptrdiff_t(r) * b.width);
    }
    return bitmaps.emplace(glyph, std::move(b)).first->second;
  }

  // Lines of one paragraph that fit `width` (26.6).
  void break_lines(const Paragraph& p, size_t index, int64_t width, std::vector<LineRef>& lines) {
    const size_t n = p.text.size();
    if (n == 0) {
      lines.push_back({index, 0, 0});
      return;
    }
    // Break opportunities: after a run of spaces, and on either side of a CJK character.
    std::vector<size_t> starts{0};
    for (size_t i = 1; i < n; ++i) {
      if (p.text[i] == U' ' || is_mark(p.text[i])) continue;
      if (p.text[i - 1] == U' ' || is_cjk(p.text[i]) || is_cjk(p.text[i - 1])) starts.push_back(i);
    }
    starts.push_back(n);
    auto trimmed_end = [&](size_t begin, size_t end) {
      while (end > begin && p.text[end - 1] == U' ') --end;
      return end;
    };
    size_t line_begin = 0;
    while (line_begin < n) {
      // The most segments that fit, measured on the shaped line itself (binary search: a longer
      // line is never narrower).
      const size_t first = size_t(std::upper_bound(starts.begin(), starts.end(), line_begin) - starts.begin());
      auto fits = [&](size_t k) {
        const size_t end = trimmed_end(line_begin, starts[k]);
        return end <= line_begin || measure(p, line_begin, end) <= width;
      };
      size_t best = line_begin, k = first;
      if (fits(first)) {
        size_t lo = first, hi = starts.size() - 1;  // fits(lo)
        while (lo < hi) {
          const size_t mid = lo + (hi - lo + 1) / 2;
          if (fits(mid)) lo = mid;
          else hi = mid - 1;
        }
        best = starts[lo];
      }
      if (best == line_begin) {
        // One word wider than the column: as many characters as fit (at least one), not before a mark.
        size_t end = line_begin + 1, segment_end = k < starts.size() ? starts[k] : n;
        while (end < segment_end) {
          size_t next = end + 1;
          while (next < segment_end && is_mark(p.text[next])) ++next;
          if (measure(p, line_begin, next) > width) break;
          end = next;
        }
        while (end < segment_end && is_mark(p.text[end])) ++end;
        best = end;
      }
      lines.push_back({index, line_begin, trimmed_end(line_begin, best)});
      line_begin = best;
      while (line_begin < n && p.text[line_begin] == U' ' && line_begin > 0) ++line_begin;  // spaces end lines
    }
  }

  // Draws one line with its left edge at x (26.6 not needed: whole pixels) on `baseline`.
  void draw_line(const Paragraph& p, const LineRef& line, int x_left, int column_width_px, int baseline, Image* page,
                 std::vector<PlacedGlyph>* placed) {
    if (line.end <= line.begin) return;
    // Level runs in logical order, then reordered (UAX #9 rule L2): from the highest level down to
    // the lowest odd one, every maximal sequence of runs at that level or above is reversed.
    struct Run {
      size_t begin, end;
      FriBidiLevel level;
    };
    std::vector<Run> runs;
    for (size_t s = line.begin; s < line.end;) {
      size_t e = s + 1;
      while (e < line.end && p.levels[e] == p.levels[s]) ++e;
      runs.push_back({s, e, p.levels[s]});
      s = e;
    }
    FriBidiLevel highest = 0, lowest_odd = 255;
    for (const Run& r : runs) {
      highest = std::max(highest, r.level);
      if (r.level & 1) lowest_odd = std::min(lowest_odd, r.level);
    }
    for (int level = highest; level >= lowest_odd && level > 0; --level) {
      for (size_t i = 0; i < runs.size();) {
        if (runs[i].level < level) {
          ++i;
          continue;
        }
        size_t j = i;
        while (j < runs.size() && runs[j].level >= level) ++j;
        std::reverse(runs.begin() + ptrdiff_t(i), runs.begin() + ptrdiff_t(j));
        i = j;
      }
    }
    struct Glyph {
      uint32_t id;
      char32_t codepoint;
      int64_t x, y;  // 26.6, relative to the line's start
    };
    std::vector<Glyph> glyphs;
    int64_t pen = 0;
    for (const Run& r : runs) {
      shape(p, r.begin, r.end, r.level & 1);
      unsigned n = 0;
      const hb_glyph_info_t* info = hb_buffer_get_glyph_infos(buffer, &n);
      const hb_glyph_position_t* pos = hb_buffer_get_glyph_positions(buffer, &n);
      for (unsigned i = 0; i < n; ++i) {
        const char32_t c = p.text[info[i].cluster];
        if (info[i].codepoint == 0) ++missing[c];
        glyphs.push_back({info[i].codepoint, c, pen + pos[i].x_offset, int64_t(pos[i].y_offset)});
        pen += pos[i].x_advance;
      }
    }
    const int line_width = int((pen + 63) >> 6);
    const int origin = p.rtl ? x_left + std::max(0, column_width_px - line_width) : x_left;
    for (const Glyph& g : glyphs) {
      const int gx = origin + int((g.x + 32) >> 6), gy = baseline - int((g.y + 32) >> 6);
      if (placed) placed->push_back({g.codepoint, gx, gy});
      if (!page) continue;
      const GlyphBitmap& b = bitmap(g.id);
      for (int r = 0; r < b.rows; ++r) {
        const int y = gy - b.top + r;
        if (y < 0 || y >= page->height) continue;
        for (int c = 0; c < b.width; ++c) {
          const int x = gx + b.left + c;
          if (x < 0 || x >= page->width) continue;
          const uint8_t ink = b.coverage[size_t(r) * size_t(b.width) + size_t(c)];
          uint8_t* px = page->pixel(x, y);
          const uint8_t v = uint8_t(std::min<int>(px[0], 255 - ink));
          px[0] = px[1] = px[2] = v;
        }
      }
    }
  }
};

TextRenderer::TextRenderer(const std::string& font_path) : impl_(std::make_unique<Impl>()) {
  font_path_ = font_path.empty() ? standard_font_path() : font_path;
  if (font_path_.empty()) fail("no font found: install fonts-dejavu-core (Debian) or give a font file");
  if (FT_Init_FreeType(&impl_->library) != 0) fail("FreeType could not be initialised");
  if (const FT_Error e = FT_New_Face(impl_->library, font_path_.c_str(), 0, &impl_->face); e != 0) {
    impl_->face = nullptr;
    fail("{}: cannot load the font (FreeType error {}: not a TrueType/OpenType file, or unreadable)", font_path_, e);
  }
  if (!FT_IS_SCALABLE(impl_->face)) fail("{}: not a scalable (outline) font", font_path_);
  impl_->buffer = hb_buffer_create();
}

TextRenderer::~TextRenderer() = default;

RenderedText TextRenderer::render(std::string_view text, const RenderOptions& o, bool rasterise) {
  Impl& im = *impl_;
  if (!std::isfinite(o.dpi) || o.dpi < 18 || o.dpi > 1200) fail("render: dpi {} must be 18..1200", o.dpi);
  if (!std::isfinite(o.font_size) || o.font_size < 1 || o.font_size > 500)
    fail("render: font size {} pt must be 1..500", o.font_size);
  if (!std::isfinite(o.line_spacing) || o.line_spacing < 0.5 || o.line_spacing > 10)
    fail("render: line spacing {} must be 0.5..10", o.line_spacing);
  if (o.columns < 1 || o.columns > 16) fail("render: columns {} must be 1..16", o.columns);
  if (!(o.margin_mm >= 0) || !(o.column_gap_mm >= 0)) fail("render: margins and gaps must be >= 0");
  const int page_w = page_width_px(o), page_h = page_height_px(o);
  const double px_per_mm = o.dpi / 25.4;
  const int margin = int(std::lround(o.margin_mm * px_per_mm)), gap = int(std::lround(o.column_gap_mm * px_per_mm));
  const int column_w = (page_w - 2 * margin - (o.columns - 1) * gap) / o.columns;
  const double pixel_size = o.font_size * o.dpi / 72.0;
  im.set_pixel_size(pixel_size, font_path_);
  const int ascent = int((im.face->size->metrics.ascender + 63) >> 6);
  const int descent = int((-im.face->size->metrics.descender + 63) >> 6);
  const int line_h = std::max(1, int(std::lround(pixel_size * o.line_spacing)));
  const int usable_h = page_h - 2 * margin;
  const int lines_per_column = usable_h >= ascent + descent ? 1 + (usable_h - ascent - descent) / line_h : 0;
  if (column_w < 1 || lines_per_column < 1)
    fail("render: no room for a line of {} pt text on a {}x{} px page with {} mm margins and {} columns", o.font_size,
         page_w, page_h, o.margin_mm, o.columns);

  const std::vector<Paragraph> paragraphs = split_paragraphs(text);
  std::vector<LineRef> lines;
  for (size_t i = 0; i < paragraphs.size(); ++i) im.break_lines(paragraphs[i], i, int64_t(column_w) * 64, lines);

  RenderedText out;
  out.lines = int(lines.size());
  out.lines_per_page = lines_per_column * o.columns;
  out.page_count = std::max(1, (out.lines + out.lines_per_page - 1) / out.lines_per_page);
  const int last_used = out.lines - (out.page_count - 1) * out.lines_per_page;
  out.fill = out.lines == 0 ? 0 : (out.page_count - 1) + double(last_used) / out.lines_per_page;
  im.missing.clear();
  out.glyphs.resize(size_t(out.page_count));
  if (rasterise) out.pages.assign(size_t(out.page_count), make_image(page_w, page_h, 255, 255, 255));
  for (size_t k = 0; k < lines.size(); ++k) {
    const int page = int(k) / out.lines_per_page, slot = int(k) % out.lines_per_page;
    const int column = slot / lines_per_column, row = slot % lines_per_column;
    const int x = margin + column * (column_w + gap), baseline = margin + ascent + row * line_h;
    im.draw_line(paragraphs[lines[k].paragraph], lines[k], x, column_w, baseline,
                 rasterise ? &out.pages[size_t(page)] : nullptr, &out.glyphs[size_t(page)]);
  }
  for (const auto& [c, count] : im.missing) out.missing.push_back({c, count});
  return out;
}

}  // namespace dsocr
