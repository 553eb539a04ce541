// Text rendering (text/render.h), vision-token accounting (vision/preprocess.h vision_token_count)
// and the font-size fit of `dsocr render --fit` (engine/compress.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "engine/compress.h"
#include "io/files.h"
#include "text/render.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

bool have_font() { return !standard_font_path().empty(); }

std::string words(int n, uint32_t seed = 1) {
  static const char* kWords[] = {"optical", "context", "compression", "the",   "of",   "page",  "token",
                                 "vision",  "decoder", "memory",      "ratio", "text", "model", "reads"};
  std::string out;
  for (int i = 0; i < n; ++i) {
    seed = seed * 1103515245u + 12345u;
    if (i) out += (i % 17 == 0) ? "\n" : " ";
    out += kWords[(seed >> 16) % 14];
  }
  return out;
}

size_t non_space_chars(const std::string& s) {
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return c != ' ' && c != '\n'; }));
}

}  // namespace

TEST(Render, SameBytesForTheSameInput) {
  if (!have_font()) GTEST_SKIP() << "no standard font (fonts-dejavu-core)";
  const std::string text = words(400);
  RenderOptions o;
  o.font_size = 9;
  TextRenderer a, b;
  const RenderedText ra = a.render(text, o), rb = b.render(text, o), ra2 = a.render(text, o);
  ASSERT_EQ(ra.pages.size(), rb.pages.size());
  for (size_t i = 0; i < ra.pages.size(); ++i) {
    EXPECT_EQ(ra.pages[i].rgb, rb.pages[i].rgb);
    EXPECT_EQ(ra.pages[i].rgb, ra2.pages[i].rgb);  // the glyph cache changes nothing
  }
  const fs::path dir = fs::temp_directory_path() / "dsocr_render_determinism";
  fs::create_directories(dir);
  save_png(ra.pages[0], (dir / "a.png").string());
  save_png(rb.pages[0], (dir / "b.png").string());
  EXPECT_EQ(read_file_text((dir / "a.png").string()), read_file_text((dir / "b.png").string()));
  // There is ink, and it stays inside the margins.
  const Image& p = ra.pages[0];
  EXPECT_EQ(p.width, 1191);
  EXPECT_EQ(p.height, 1684);
  const int margin = int(std::lround(12 / 25.4 * 144));
  int dark = 0;
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x)
      if (p.pixel(x, y)[0] < 128) {
        ++dark;
        EXPECT_TRUE(x >= margin - 2 && x < p.width - margin + 2) << x << "," << y;
      }
  EXPECT_GT(dark, 5000);
  fs::remove_all(dir);
}

TEST(Render, TextThatDoesNotFitFlowsOntoMorePagesAndNothingIsLost) {
  if (!have_font()) GTEST_SKIP() << "no standard font";
  const std::string text = words(1500);
  RenderOptions o;
  o.font_size = 14;
  TextRenderer r;
  const RenderedText big = r.render(text, o);
  EXPECT_GE(big.page_count, 3);
  EXPECT_EQ(big.pages.size(), size_t(big.page_count));
  size_t glyphs = 0;
  for (const auto& page : big.glyphs)
    for (const PlacedGlyph& g : page) glyphs += g.codepoint != U' ';
  EXPECT_EQ(glyphs, non_space_chars(text));  // every character of the text was drawn somewhere
  EXPECT_EQ(big.lines, (big.page_count - 1) * big.lines_per_page +
                           int(std::lround((big.fill - (big.page_count - 1)) * big.lines_per_page)));
  // Half the size: fewer pages; two columns: the second column starts right of the middle.
  o.font_size = 7;
  o.columns = 2;
  const RenderedText small = r.render(text, o, false);
  EXPECT_LT(small.page_count, big.page_count);
  EXPECT_TRUE(small.pages.empty());
  const auto& first = small.glyphs[0];
  EXPECT_TRUE(std::any_of(first.begin(), first.end(), [](const PlacedGlyph& g) { return g.x > 1191 / 2 + 10; }));
  // A word wider than the column is broken, not dropped.
  o.columns = 1;
  o.font_size = 40;
  const std::string long_word(200, 'm');
  const RenderedText broken = r.render(long_word, o, false);
  EXPECT_GT(broken.lines, 1);
  size_t drawn = 0;
  for (const auto& page : broken.glyphs) drawn += page.size();
  EXPECT_EQ(drawn, long_word.size());
}

TEST(Render, MissingGlyphsAreReportedNotDropped) {
  if (!have_font()) GTEST_SKIP() << "no standard font";
  TextRenderer r;
  const RenderedText out = r.render("abc \xe4\xb8\xad\xe6\x96\x87 \xe4\xb8\xad", RenderOptions{});  // 中文 中
  EXPECT_EQ(out.missing, (std::vector<MissingGlyph>{{0x4E2D, 2}, {0x6587, 1}}));
  EXPECT_EQ(out.glyphs[0].size(), 3u + 1 + 2 + 1 + 1);  // drawn as boxes in place
  EXPECT_EQ(describe_missing_glyphs(out.missing), "no glyph for U+4E2D (2 times), U+6587");
  EXPECT_TRUE(r.render("plain text", RenderOptions{}).missing.empty());
}

TEST(Render, RightToLeftTextIsReorderedAndRightAligned) {
  if (!have_font()) GTEST_SKIP() << "no standard font";
  TextRenderer r;
  // Hebrew alef, bet, gimel (logical order): drawn right to left.
  const RenderedText he = r.render("\xd7\x90\xd7\x91\xd7\x92", RenderOptions{}, false);
  ASSERT_EQ(he.glyphs[0].size(), 3u);
  const auto& g = he.glyphs[0];
  auto x_of = [&](const std::vector<PlacedGlyph>& gs, char32_t c) {
    for (const PlacedGlyph& p : gs)
      if (p.codepoint == c) return p.x;
    return -1;
  };
  EXPECT_GT(x_of(g, 0x5D0), x_of(g, 0x5D1));
  EXPECT_GT(x_of(g, 0x5D1), x_of(g, 0x5D2));
  EXPECT_GT(x_of(g, 0x5D2), 1191 / 2);  // right-aligned paragraph
  // Left-to-right paragraph with a Hebrew word inside: "ab <alef bet> cd".
  const RenderedText mixed = r.render("ab \xd7\x90\xd7\x91 cd", RenderOptions{}, false);
  const auto& m = mixed.glyphs[0];
  EXPECT_LT(x_of(m, 'a'), x_of(m, 'b'));
  EXPECT_LT(x_of(m, 'b'), x_of(m, 0x5D1));
  EXPECT_LT(x_of(m, 0x5D1), x_of(m, 0x5D0));
  EXPECT_LT(x_of(m, 0x5D0), x_of(m, 'c'));
  EXPECT_LT(x_of(m, 'a'), 1191 / 4);
}

TEST(Render, BadOptionsAndFontsAreClearErrors) {
  if (!have_font()) GTEST_SKIP() << "no standard font";
  TextRenderer r;
  RenderOptions o;
  o.margin_mm = 120;
  EXPECT_THROW(r.render("x", o), Error);
  const fs::path bogus = fs::temp_directory_path() / "dsocr_not_a_font.ttf";
  std::ofstream(bogus) << "not a font";
  try {
    TextRenderer bad(bogus.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bogus.string()), std::string::npos) << e.what();
  }
  double w = 0, h = 0;
  parse_page_size("letter", &w, &h);
  EXPECT_DOUBLE_EQ(w, 215.9);
  parse_page_size("100x150", &w, &h);
  EXPECT_DOUBLE_EQ(h, 150);
  EXPECT_THROW(parse_page_size("big", &w, &h), Error);
  EXPECT_THROW(parse_page_size("100x", &w, &h), Error);
}

// Spec §5.2-§5.6 written out independently: q = ceil((S/16)/4); placeholders q(q+1)+1 (+ the
// stitched tile grid with a newline per row); nominal q*q (+ tiles * m*m); valid = int(q*q * ratio)
// for padded global views (Base, Large, the Gundam overviews), q*q for Tiny/Small, + tiles * m*m.
TEST(VisionTokens, EqualTheSpecFormulasForEveryModeAndAspectRatio) {
  struct Expect {
    Mode mode;
    int global, tile;
    bool padded;
  };
  const Expect modes[] = {{Mode::Tiny, 512, 0, false},     {Mode::Small, 640, 0, false},   {Mode::Base, 1024, 0, true},
                          {Mode::Large, 1280, 0, true},    {Mode::Gundam, 1024, 640, true},
                          {Mode::GundamMaster, 1280, 1024, true}};
  int checked = 0;
  for (const Expect& e : modes) {
    for (int w : {100, 480, 640, 641, 800, 1191, 1654, 1920, 3000}) {
      for (int h : {90, 640, 700, 1080, 1684, 2339, 4000}) {
        const VisionTokenCount c = vision_token_count(w, h, e.mode, 6);
        const int q = int(std::ceil((e.global / 16) / 4.0));
        int tiles = 0, m = 0, cols = 1, rows = 1;
        if (e.tile > 0 && (w > 640 || h > 640)) {
          const TileGrid g = choose_tile_grid(w, h, 2, 6, e.tile);
          cols = g.cols;
          rows = g.rows;
          tiles = cols * rows;
          m = int(std::ceil((e.tile / 16) / 4.0));
        }
        const double ratio = 1.0 - double(std::max(w, h) - std::min(w, h)) / double(std::max(w, h));
        EXPECT_EQ(c.placeholders, q * (q + 1) + 1 + (tiles ? (m * rows) * (m * cols + 1) : 0)) << w << "x" << h;
        EXPECT_EQ(c.raw, q * q + tiles * m * m);
        EXPECT_EQ(c.valid, (e.padded ? int(q * q * ratio) : q * q) + tiles * m * m) << mode_name(e.mode) << w << "x" << h;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 6 * 9 * 7);
  // The spec's worked numbers: Tiny 73/64/64, Small 111/100, A4 at 144 dpi in Gundam 903
  // placeholders, 6 x 100 + 256 raw, int(256 * 1191/1684) + 600 = 781 valid; Base on a square page 256.
  EXPECT_EQ(vision_token_count(1191, 1684, Mode::Tiny).placeholders, 73);
  EXPECT_EQ(vision_token_count(1191, 1684, Mode::Tiny).valid, 64);
  EXPECT_EQ(vision_token_count(1191, 1684, Mode::Small).placeholders, 111);
  const VisionTokenCount a4 = vision_token_count(1191, 1684, Mode::Gundam);
  EXPECT_EQ(a4.placeholders, 903);
  EXPECT_EQ(a4.raw, 856);
  EXPECT_EQ(a4.valid, 781);
  EXPECT_EQ(vision_token_count(1024, 1024, Mode::Base).valid, 256);
  EXPECT_EQ(vision_token_count(1191, 1684, Mode::Base).valid, 181);
  EXPECT_EQ(vision_token_count(1920, 1080, Mode::Gundam, 6).placeholders, 483);
  EXPECT_EQ(vision_token_count(1920, 1080, Mode::Gundam, 9).placeholders, 1093);
}

TEST(Render, FitFindsTheFontSizeForARatio) {
  if (!have_font()) GTEST_SKIP() << "no standard font";
  const Tokenizer tok = Tokenizer::from_file(DSOCR_TEST_TOKENIZER);
  const std::string text = words(900);
  const int tokens = count_text_tokens(tok, text);
  ASSERT_GT(tokens, 800);
  TextRenderer r;
  for (const auto& [mode, ratio] : std::vector<std::pair<Mode, double>>{{Mode::Tiny, 10}, {Mode::Small, 10}, {Mode::Base, 4}}) {
    const FitResult f = fit_font_size(r, text, tokens, RenderOptions{}, mode, 6, ratio);
    EXPECT_TRUE(f.reached);
    EXPECT_NEAR(f.ratio, ratio, ratio * 0.03) << mode_name(mode) << " at " << f.font_size << " pt";
    // The reported ratio is what a render at that size gives.
    RenderOptions o;
    o.font_size = f.font_size;
    const RenderedText out = r.render(text, o, false);
    EXPECT_DOUBLE_EQ(f.ratio, tokens / (out.fill * vision_token_count(1191, 1684, mode).valid));
  }
  // Twice the ratio needs a smaller font.
  EXPECT_LT(fit_font_size(r, text, tokens, RenderOptions{}, Mode::Tiny, 6, 20).font_size,
            fit_font_size(r, text, tokens, RenderOptions{}, Mode::Tiny, 6, 10).font_size);
}
