// Annotated pages (engine/annotate.h) and the images-to-PDF writer (io/pdf_writer.h).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "core/error.h"
#include "engine/annotate.h"
#include "io/pdf_writer.h"

#ifdef DSOCR_HAVE_POPPLER  // poppler itself reads the written PDF
#include <poppler-document.h>
#include <poppler-page.h>

#include "io/pdf.h"
#endif

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

struct Rgb {
  int r, g, b;
  bool operator==(const Rgb&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rgb& c) { return os << "(" << c.r << "," << c.g << "," << c.b << ")"; }

Rgb at(const Image& im, int x, int y) {
  const uint8_t* p = im.pixel(x, y);
  return {p[0], p[1], p[2]};
}

// The page colour under the translucent fill (alpha 20/255) of colour c.
Rgb tinted(Rgb page, Rgb c) {
  auto mix = [](int under, int over) { return int(std::lround((under * 235 + over * 20) / 255.0)); };
  return {mix(page.r, c.r), mix(page.g, c.g), mix(page.b, c.b)};
}

Block block(std::string label, std::vector<Box> boxes) {
  Block b;
  b.label = std::move(label);
  b.boxes = std::move(boxes);
  return b;
}

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kGrey{128, 128, 128};

// A font path that cannot load: labels use the built-in bitmap font.
AnnotateOptions bitmap_font(uint64_t seed = 0) { return {seed, "/nonexistent/font.ttf"}; }

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("dsocr_test_annotate_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

}  // namespace

// ---- annotate_page -------------------------------------------------------------------------------

TEST(Annotate, OutlineOnTheEdgesFillInsideNothingOutside) {
  const Image page = make_image(200, 100, 255, 255, 255);
  const Box box{100, 300, 500, 800};
  const PixelBox px = to_pixels(box, 200, 100);
  ASSERT_EQ(px, (PixelBox{20, 30, 100, 80}));
  const Image out = annotate_page(page, {block("text", {box})});
  ASSERT_EQ(out.width, 200);
  ASSERT_EQ(out.height, 100);

  const int mid_y = 55, mid_x = 60;
  const Rgb c = at(out, px.x1, mid_y);
  EXPECT_LT(c.r, 200);
  EXPECT_LT(c.g, 200);
  EXPECT_LT(c.b, 255);
  // Width-2 outline on all four edges (the second ring lies under the fill: tinting c with c is c).
  for (int d = 0; d < 2; ++d) {
    EXPECT_EQ(at(out, px.x1 + d, mid_y), c) << d;
    EXPECT_EQ(at(out, px.x2 - d, mid_y), c) << d;
    EXPECT_EQ(at(out, mid_x, px.y1 + d), c) << d;
    EXPECT_EQ(at(out, mid_x, px.y2 - d), c) << d;
  }
  // Inside: white under the translucent fill, lightly tinted.
  const Rgb inside = tinted(kWhite, c);
  EXPECT_EQ(at(out, px.x1 + 2, mid_y), inside);
  EXPECT_EQ(at(out, mid_x, mid_y), inside);
  EXPECT_EQ(at(out, px.x2 - 2, px.y2 - 2), inside);
  EXPECT_NE(inside, kWhite);
  EXPECT_GE(inside.r, 255 - 20);
  // Everything outside the box (and the label above it) is untouched.
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const bool in_box = x >= px.x1 && x <= px.x2 && y >= px.y1 && y <= px.y2;
      const bool in_label_row = y >= px.y1 - 15 && y < px.y1 && x >= px.x1;
      if (!in_box && !in_label_row) {
        ASSERT_EQ(at(out, x, y), kWhite) << x << "," << y;
      }
    }
  }
}

TEST(Annotate, TitleOutlineIsFourPixelsOthersTwo) {
  const Image page = make_image(300, 300, 255, 255, 255);
  const Box box{333, 333, 666, 666};
  const PixelBox px = to_pixels(box, 300, 300);
  for (const auto& [label, width] : {std::pair{"title", 4}, std::pair{"text", 2}, std::pair{"Title", 2}}) {
    const Image out = annotate_page(page, {block(label, {box})});
    const Rgb c = at(out, px.x1, 150);
    for (int d = 0; d < width; ++d) {
      EXPECT_EQ(at(out, px.x1 + d, 150), c) << label << " " << d;
      EXPECT_EQ(at(out, px.x2 - d, 150), c) << label << " " << d;
      EXPECT_EQ(at(out, 150, px.y2 - d), c) << label << " " << d;
    }
    EXPECT_EQ(at(out, px.x1 + width, 150), tinted(kWhite, c)) << label;
    EXPECT_EQ(at(out, 150, px.y2 - width), tinted(kWhite, c)) << label;
  }
}

TEST(Annotate, LabelOnAWhiteBoxAboveTheBox) {
  const Image page = make_image(400, 200, 128, 128, 128);
  const Box box{250, 500, 750, 900};
  const PixelBox px = to_pixels(box, 400, 200);
  for (const AnnotateOptions& opt : {AnnotateOptions{}, bitmap_font()}) {
    const Image out = annotate_page(page, {block("figure", {box})}, opt);
    const Rgb c = at(out, px.x1, (px.y1 + px.y2) / 2);
    // Ink coverage of a pixel, from the channel where the label colour is furthest from white
    // (R < 200 guarantees a span of at least 56).
    const int span = std::max({255 - c.r, 255 - c.g, 255 - c.b});
    auto coverage = [&](Rgb p) {
      if (255 - c.r == span) return double(255 - p.r) / span;
      if (255 - c.g == span) return double(255 - p.g) / span;
      return double(255 - p.b) / span;
    };
    int white = 0, ink = 0, strong_ink = 0, right = px.x1;
    for (int y = px.y1 - 15; y < px.y1; ++y) {
      for (int x = px.x1; x < out.width; ++x) {
        const Rgb p = at(out, x, y);
        if (p == kGrey) continue;
        right = std::max(right, x);
        if (p == kWhite) {
          ++white;
          continue;
        }
        // The label colour anti-aliased onto white: every channel between the two.
        ++ink;
        EXPECT_TRUE(p.r >= c.r && p.g >= c.g && p.b >= c.b) << p << " " << c;
        strong_ink += coverage(p) >= 0.5;
      }
    }
    // "figure" at ~12 px: tens of pixels wide, dozens of ink pixels, the rest white.
    EXPECT_GT(ink, 30) << opt.font;
    EXPECT_GT(strong_ink, 30) << opt.font;
    EXPECT_GT(white, ink) << opt.font;
    EXPECT_GT(right - px.x1, 30) << opt.font;
    EXPECT_LT(right - px.x1, 100) << opt.font;
    // Nothing above the label row, nor left of the box.
    for (int x = 0; x < out.width; ++x) ASSERT_EQ(at(out, x, px.y1 - 16), kGrey) << x;
    for (int y = 0; y < out.height; ++y) ASSERT_EQ(at(out, px.x1 - 1, y), kGrey) << y;
  }
}

TEST(Annotate, BitmapFontGlyphsArePlacedExactly) {
  // '-' is row 3 of the 5x7 glyph, drawn at twice the size one pixel in from the label's corner.
  const Image page = make_image(200, 100, 128, 128, 128);
  const Box box{500, 500, 900, 900};
  const PixelBox px = to_pixels(box, 200, 100);
  const Image out = annotate_page(page, {block("-", {box})}, bitmap_font());
  const Rgb c = at(out, px.x1, px.y1 + 10);
  const int top = px.y1 - 15;
  for (int x = 0; x < 12; ++x) {
    for (int y = 0; y < 15; ++y) {
      const bool ink = x >= 1 && x <= 10 && (y == 7 || y == 8);
      ASSERT_EQ(at(out, px.x1 + x, top + y), ink ? c : kWhite) << x << "," << y;
    }
  }
  EXPECT_EQ(at(out, px.x1 + 12, top + 7), kGrey);

  // $DSOCR_FONT names the font when the options do not; one that cannot load means the bitmap font.
  ::setenv("DSOCR_FONT", "/nonexistent/env-font.ttf", 1);
  const Image from_env = annotate_page(page, {block("-", {box})});
  ::unsetenv("DSOCR_FONT");
  EXPECT_EQ(from_env.rgb, out.rgb);
}

TEST(Annotate, BoxesAtThePageEdgesStayOnThePage) {
  for (auto [w, h] : {std::pair{64, 48}, std::pair{1, 1}, std::pair{3, 200}, std::pair{500, 2}}) {
    const Image page = make_image(w, h, 255, 255, 255);
    const std::vector<Block> blocks = {block("title", {{0, 0, 999, 999}}),
                                       block("a rather long label that does not fit", {{999, 999, 999, 999}}),
                                       block("text", {{998, 0, 999, 5}, {900, 900, 100, 100}})};
    const Image out = annotate_page(page, blocks, bitmap_font());
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    ASSERT_EQ(out.rgb.size(), size_t(w) * size_t(h) * 3);
  }
  // The whole-page box keeps all four outlines visible: 999 maps to the last pixel, not past it.
  const Image page = make_image(64, 48, 255, 255, 255);
  const Image out = annotate_page(page, {block("", {{0, 0, 999, 999}})});
  const Rgb c = at(out, 0, 24);
  EXPECT_NE(c, kWhite);
  for (int d = 0; d < 2; ++d) {
    EXPECT_EQ(at(out, 63 - d, 24), c) << d;
    EXPECT_EQ(at(out, 30, d), c) << d;
    EXPECT_EQ(at(out, 30, 47 - d), c) << d;
  }
  EXPECT_EQ(at(out, 30, 24), tinted(kWhite, c));
}

TEST(Annotate, InvertedBoxIsDrawnWithItsCornersSwapped) {
  const Image page = make_image(100, 100, 255, 255, 255);
  const Image straight = annotate_page(page, {block("", {{200, 200, 800, 800}})});
  const Image inverted = annotate_page(page, {block("", {{800, 800, 200, 200}})});
  EXPECT_EQ(straight.rgb, inverted.rgb);
  EXPECT_NE(straight.rgb, page.rgb);
}

TEST(Annotate, BlocksWithoutBoxesAreIgnored) {
  const Image page = make_image(80, 60, 10, 20, 30);
  const Image out = annotate_page(page, {block("text", {}), block("title", {})});
  EXPECT_EQ(out.rgb, page.rgb);
  EXPECT_TRUE(annotate_page(make_image(0, 0), {block("text", {{0, 0, 999, 999}})}).empty());
}

TEST(Annotate, OverlappingFillsReplaceEachOtherAndAreCompositedOnce) {
  // The official overlay is one RGBA layer: where fills overlap the later one wins; it is
  // blended onto the page once, at the end, over outlines and labels alike.
  const Image page = make_image(100, 100, 255, 255, 255);
  const Image out = annotate_page(page, {block("", {{0, 0, 600, 600}}), block("", {{400, 400, 999, 999}})});
  const Rgb first = at(out, 0, 20), second = at(out, 99, 80);
  ASSERT_NE(first, second);
  EXPECT_EQ(at(out, 20, 20), tinted(kWhite, first));
  EXPECT_EQ(at(out, 80, 80), tinted(kWhite, second));
  EXPECT_EQ(at(out, 50, 50), tinted(kWhite, second));  // overlap: tinted once, by the second block
  // The first box's bottom outline (y = 60) crosses the second fill: outline colour under the tint.
  EXPECT_EQ(at(out, 50, 60), tinted(first, second));
}

TEST(Annotate, ColoursAreDeterministicPerSeedAndBlock) {
  const Image page = make_image(400, 50, 255, 255, 255);
  std::vector<Block> blocks;
  for (int i = 0; i < 20; ++i) blocks.push_back(block("", {{i * 50, 100, i * 50 + 40, 900}}));
  auto colours = [&](uint64_t seed) {
    const Image out = annotate_page(page, blocks, {seed, ""});
    std::vector<Rgb> c;
    for (int i = 0; i < 20; ++i) c.push_back(at(out, to_pixels(blocks[size_t(i)].boxes[0], 400, 50).x1, 25));
    return c;
  };
  const std::vector<Rgb> a = colours(7), b = colours(7), other = colours(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  std::set<std::tuple<int, int, int>> distinct;
  for (const Rgb& c : a) {
    EXPECT_LT(c.r, 200);
    EXPECT_LT(c.g, 200);
    EXPECT_LT(c.b, 255);
    distinct.insert({c.r, c.g, c.b});
  }
  EXPECT_GT(distinct.size(), 15u);
  // All boxes of one block share its colour.
  const Image two = annotate_page(page, {block("", {{0, 100, 100, 900}, {500, 100, 600, 900}})}, {7, ""});
  EXPECT_EQ(at(two, 0, 25), at(two, to_pixels({500, 100, 600, 900}, 400, 50).x1, 25));
  EXPECT_EQ(at(two, 0, 25), a[0]);
}

// ---- PDF writer ----------------------------------------------------------------------------------

namespace {

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Two test pages: left half red, right half blue; and a green-over-white one of another size.
std::vector<Image> test_pages() {
  Image a = make_image(120, 80, 220, 30, 30);
  for (int y = 0; y < 80; ++y)
    for (int x = 60; x < 120; ++x) a.pixel(x, y)[0] = 30, a.pixel(x, y)[2] = 220;
  Image b = make_image(64, 96, 255, 255, 255);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) b.pixel(x, y)[0] = 20, b.pixel(x, y)[2] = 20;
  return {a, b};
}

}  // namespace

TEST(PdfWriter, CrossReferenceTablePointsAtEveryObject) {
  const fs::path path = temp_dir() / "xref.pdf";
  write_images_pdf(test_pages(), path.string());
  const std::string pdf = read_bytes(path);
  ASSERT_EQ(pdf.rfind("%PDF-1.4\n", 0), 0u);
  ASSERT_EQ(pdf.substr(pdf.size() - 6), "%%EOF\n");
  const size_t startxref = pdf.rfind("startxref\n");
  ASSERT_NE(startxref, std::string::npos);
  const size_t xref = std::stoul(pdf.substr(startxref + 10));
  ASSERT_EQ(pdf.compare(xref, 5, "xref\n"), 0);
  std::istringstream table(pdf.substr(xref + 5));
  int first = -1, count = 0;
  table >> first >> count;
  ASSERT_EQ(first, 0);
  ASSERT_EQ(count, 1 + 2 + 3 * 2);  // free entry, catalog, page tree, 3 objects per page
  for (int k = 0; k < count; ++k) {
    std::string offset, generation, kind;
    table >> offset >> generation >> kind;
    ASSERT_EQ(offset.size(), 10u);
    if (k == 0) {
      EXPECT_EQ(kind, "f");
      continue;
    }
    EXPECT_EQ(kind, "n");
    const std::string header = std::to_string(k) + " 0 obj\n";
    EXPECT_EQ(pdf.compare(std::stoul(offset), header.size(), header), 0) << "object " << k;
  }
  EXPECT_NE(pdf.find("/Root 1 0 R"), std::string::npos);
  EXPECT_NE(pdf.find("/Filter /DCTDecode"), std::string::npos);
  EXPECT_NE(pdf.find("/MediaBox [0 0 120 80]"), std::string::npos);
  EXPECT_NE(pdf.find("/MediaBox [0 0 64 96]"), std::string::npos);
  fs::remove_all(path.parent_path());
}

TEST(PdfWriter, RejectsNothingToWriteAndLeavesNoFileBehind) {
  const fs::path dir = temp_dir() / "reject";
  EXPECT_THROW(write_images_pdf({}, (dir / "empty.pdf").string()), Error);
  EXPECT_THROW(write_images_pdf({make_image(0, 0)}, (dir / "zero.pdf").string()), Error);
  EXPECT_THROW(write_images_pdf(test_pages(), (dir / "q.pdf").string(), 0), Error);
  {
    ImagePdfWriter unfinished((dir / "unfinished.pdf").string());
    unfinished.add_page(test_pages()[0]);
  }
  EXPECT_TRUE(fs::is_empty(dir));  // no output and no temporary file
  try {
    write_images_pdf({make_image(0, 0)}, (dir / "zero.pdf").string());
    ADD_FAILURE() << "an empty page was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero.pdf: page 1"), std::string::npos) << e.what();
  }
  fs::remove_all(dir.parent_path());
}

#ifdef DSOCR_HAVE_POPPLER
TEST(PdfWriter, PopplerReadsPagesSizesAndPixels) {
  const fs::path path = temp_dir() / "sub" / "pages.pdf";  // the parent folder is created
  const std::vector<Image> pages = test_pages();
  write_images_pdf(pages, path.string());

  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(path.string()));
  ASSERT_TRUE(doc);
  ASSERT_EQ(doc->pages(), 2);
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    ASSERT_TRUE(page);
    const poppler::rectf box = page->page_rect(poppler::media_box);
    EXPECT_DOUBLE_EQ(box.width(), pages[size_t(i)].width);
    EXPECT_DOUBLE_EQ(box.height(), pages[size_t(i)].height);
  }

  // At 72 dpi one PDF point is one pixel: the rendering is the image back (JPEG is lossy).
  const PdfDocument reader(path.string());
  ASSERT_EQ(reader.page_count(), 2);
  for (int i = 0; i < 2; ++i) {
    const Image& want = pages[size_t(i)];
    const Image got = reader.render_page(i, 72);
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.height, want.height);
    for (auto [x, y] : {std::pair{5, 5}, std::pair{want.width - 5, want.height - 5}, std::pair{30, 60},
                        std::pair{want.width / 2 + 10, 10}}) {
      const Rgb g = at(got, x, y), w = at(want, x, y);
      EXPECT_NEAR(g.r, w.r, 12) << i << " " << x << "," << y;
      EXPECT_NEAR(g.g, w.g, 12) << i << " " << x << "," << y;
      EXPECT_NEAR(g.b, w.b, 12) << i << " " << x << "," << y;
    }
  }
  fs::remove_all(path.parent_path().parent_path());
}

TEST(PdfWriter, PageSizeFollowsTheResolution) {
  const fs::path path = temp_dir() / "dpi.pdf";
  write_images_pdf({make_image(300, 150, 0, 0, 255)}, path.string(), 95, 144);
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(path.string()));
  ASSERT_TRUE(doc);
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  EXPECT_DOUBLE_EQ(page->page_rect(poppler::media_box).width(), 150);
  EXPECT_DOUBLE_EQ(page->page_rect(poppler::media_box).height(), 75);
  fs::remove_all(path.parent_path());
}
#endif
