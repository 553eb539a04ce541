// hOCR, ALTO and searchable PDF output (io/layout_formats.h). The XML is read back by a real parser
// (pugixml) and checked element by element; the PDF by poppler-utils (pdftotext, pdftoppm) and
// qpdf. Tests that need a missing tool skip and say which package provides it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <ft2build.h>
#include FT_FREETYPE_H

#ifdef DSOCR_HAVE_PUGIXML
#include <pugixml.hpp>
#endif

#include "core/error.h"
#include "io/files.h"
#include "io/image.h"
#include "io/layout_formats.h"
#include "io/pdf_writer.h"
#include "text/utf8.h"

namespace fs = std::filesystem;
using namespace dsocr;

namespace {

// ---- fixtures -----------------------------------------------------------------

const std::string kSource = "scan & co.pdf";

// Three pages: text with multi-line blocks, non-ASCII, characters XML escapes, an image block and a
// caption; an empty page; a table, a block spread over two boxes and right-to-left text.
std::vector<LayoutPage> test_pages() {
  std::vector<LayoutPage> pages(3);
  pages[0].width = 800, pages[0].height = 600, pages[0].page_number = 1, pages[0].source = kSource;
  pages[0].blocks = {
      {"title", {{100, 40, 700, 100}}, "# Résumé <Draft> & \"Notes\""},
      {"text", {{100, 120, 700, 300}}, "First line with é\n  Second 中文 line\n\nThird العربية line\n"},
      {"image", {{100, 320, 400, 560}}, ""},
      {"image_caption", {{420, 320, 700, 360}}, "Figure 1: a < b"},
  };
  pages[1].width = 600, pages[1].height = 800, pages[1].page_number = 2, pages[1].source = kSource;
  pages[2].width = 640, pages[2].height = 480, pages[2].page_number = 3, pages[2].source = kSource;
  pages[2].blocks = {
      {"table", {{50, 50, 590, 200}}, "<table><tr><td>a&b</td></tr></table>"},
      // Heights 200 and 100: the first box takes two of the three lines.
      {"text", {{20, 250, 310, 450}, {330, 250, 620, 350}}, "alpha beta\ngamma delta\nepsilon \xff"},
      {"text", {{330, 400, 620, 440}}, "مرحبا بالعالم"},
  };
  return pages;
}

// What the writers must make of test_pages(): per page, per block area.
struct WantLine {
  std::array<int, 4> box;
  std::string text;
};
struct WantArea {
  std::string label;
  std::array<int, 4> box;
  std::vector<WantLine> lines;
};
const std::vector<std::vector<WantArea>> kWant = {
    {
        {"title", {100, 40, 700, 100}, {{{100, 40, 700, 100}, "# Résumé <Draft> & \"Notes\""}}},
        {"text",
         {100, 120, 700, 300},
         {{{100, 120, 700, 180}, "First line with é"},
          {{100, 180, 700, 240}, "Second 中文 line"},
          {{100, 240, 700, 300}, "Third العربية line"}}},
        {"image", {100, 320, 400, 560}, {}},
        {"image_caption", {420, 320, 700, 360}, {{{420, 320, 700, 360}, "Figure 1: a < b"}}},
    },
    {},
    {
        {"table", {50, 50, 590, 200}, {{{50, 50, 590, 200}, "<table><tr><td>a&b</td></tr></table>"}}},
        {"text", {20, 250, 310, 450}, {{{20, 250, 310, 350}, "alpha beta"}, {{20, 350, 310, 450}, "gamma delta"}}},
        {"text", {330, 250, 620, 350}, {{{330, 250, 620, 350}, "epsilon \xEF\xBF\xBD"}}},
        {"text", {330, 400, 620, 440}, {{{330, 400, 620, 440}, "مرحبا بالعالم"}}},
    },
};

// A page picture: light grey, each block box filled with a colour of its own.
Image page_image(const LayoutPage& page) {
  Image img = make_image(page.width, page.height, 235, 235, 225);
  int k = 0;
  for (const LayoutBlock& b : page.blocks)
    for (const PixelBox& box : b.boxes) {
      ++k;
      for (int y = box.y1; y < box.y2; ++y)
        for (int x = box.x1; x < box.x2; ++x) {
          uint8_t* p = img.pixel(x, y);
          p[0] = uint8_t(40 * k), p[1] = uint8_t(200 - 30 * k), p[2] = uint8_t(90 + 20 * k);
        }
    }
  return img;
}

LayoutWriterOptions test_options() {
  LayoutWriterOptions o;
  o.software_version = "1.2.3";
  o.jpeg_quality = 92;
  return o;
}

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("dsocr_layout_" + std::to_string(::getpid()) + "_" +
                                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

template <typename Writer>
std::string write_document(const std::string& path, const std::vector<LayoutPage>& pages) {
  Writer writer(path, test_options());
  for (const LayoutPage& page : pages) writer.add_page(page, page_image(page));
  writer.finish();
  EXPECT_EQ(writer.page_count(), int(pages.size()));
  return read_file_text(path);
}

bool have_tool(const char* name) { return std::system(fmt::format("command -v {} >/dev/null 2>&1", name).c_str()) == 0; }

// Runs a shell command; returns its exit status and its standard output.
std::pair<int, std::string> run(const std::string& command, const std::string& out_file) {
  const int status = std::system(fmt::format("{} > '{}' 2>&1", command, out_file).c_str());
  return {status, fs::exists(out_file) ? read_file_text(out_file) : std::string()};
}

// ---- geometry -------------------------------------------------------------------

TEST(LayoutGeometry, LinesShareTheBoxHeightEvenly) {
  const LayoutBlock block{"text", {{100, 120, 700, 301}}, "one\n\n  two  \r\n\t\nthree"};
  const std::vector<LayoutArea> areas = layout_areas(block, 800, 600);
  ASSERT_EQ(areas.size(), 1u);
  EXPECT_EQ(areas[0].box, (PixelBox{100, 120, 700, 301}));
  ASSERT_EQ(areas[0].lines.size(), 3u);  // blank lines dropped, lines trimmed
  EXPECT_EQ(areas[0].lines[0].text, "one");
  EXPECT_EQ(areas[0].lines[1].text, "two");
  EXPECT_EQ(areas[0].lines[2].text, "three");
  // 181 rows: [120, 180), [180, 240), [240, 301).
  EXPECT_EQ(areas[0].lines[0].box, (PixelBox{100, 120, 700, 180}));
  EXPECT_EQ(areas[0].lines[1].box, (PixelBox{100, 180, 700, 240}));
  EXPECT_EQ(areas[0].lines[2].box, (PixelBox{100, 240, 700, 301}));
}

TEST(LayoutGeometry, SeveralBoxesShareTheLinesByHeight) {
  const LayoutBlock block{"text", {{0, 0, 10, 300}, {20, 0, 30, 100}, {40, 0, 50, 0}}, "a\nb\nc\nd\ne"};
  const std::vector<LayoutArea> areas = layout_areas(block, 100, 400);
  ASSERT_EQ(areas.size(), 3u);
  // Heights 300, 100, 0 of 400: round(5 * 300/400) = 4 lines, then 1, then none.
  ASSERT_EQ(areas[0].lines.size(), 4u);
  ASSERT_EQ(areas[1].lines.size(), 1u);
  EXPECT_TRUE(areas[2].lines.empty());
  EXPECT_EQ(areas[0].lines[3].text, "d");
  EXPECT_EQ(areas[0].lines[3].box, (PixelBox{0, 225, 10, 300}));
  EXPECT_EQ(areas[1].lines[0].text, "e");
  EXPECT_EQ(areas[1].lines[0].box, (PixelBox{20, 0, 30, 100}));
}

TEST(LayoutGeometry, BoxesAreNormalisedAndABlockWithoutBoxesCoversThePage) {
  const std::vector<LayoutArea> flipped = layout_areas({"text", {{700, 300, -5, 120}}, "x"}, 640, 280);
  ASSERT_EQ(flipped.size(), 1u);
  EXPECT_EQ(flipped[0].box, (PixelBox{0, 120, 640, 280}));
  const std::vector<LayoutArea> none = layout_areas({"text", {}, "kept \xC3"}, 640, 280);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].box, (PixelBox{0, 0, 640, 280}));
  ASSERT_EQ(none[0].lines.size(), 1u);
  EXPECT_EQ(none[0].lines[0].text, "kept \xEF\xBF\xBD");  // a cut-off character becomes U+FFFD
}

TEST(LayoutGeometry, WordsShareTheLineByCharacterCount) {
  // "ab  cd" is 5 characters (the run of spaces counts as one) over 50 pixels.
  std::vector<LayoutWord> w = layout_words({{0, 0, 50, 100}, "ab  cd"});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].text, "ab");
  EXPECT_EQ(w[0].x1, 0);
  EXPECT_EQ(w[0].x2, 20);
  EXPECT_EQ(w[1].text, "cd");
  EXPECT_EQ(w[1].x1, 30);
  EXPECT_EQ(w[1].x2, 50);
  // A short line in a wide box is not stretched: 0.8 of the height (10) per character.
  w = layout_words({{100, 0, 1100, 10}, "é中 x"});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].x1, 100);
  EXPECT_EQ(w[0].x2, 116);
  EXPECT_EQ(w[1].x1, 124);
  EXPECT_EQ(w[1].x2, 132);
}

TEST(LayoutGeometry, RightToLeftWordsRunFromTheRight) {
  // Hebrew: the first word is on the right.
  std::vector<LayoutWord> w = layout_words({{0, 0, 50, 100}, "אב גד"});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].text, "אב");
  EXPECT_EQ(w[0].x1, 30);
  EXPECT_EQ(w[0].x2, 50);
  EXPECT_EQ(w[1].x1, 0);
  EXPECT_EQ(w[1].x2, 20);
  // A short right-to-left line keeps to the right edge.
  w = layout_words({{0, 0, 1000, 10}, "אב"});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].x1, 984);
  EXPECT_EQ(w[0].x2, 1000);
  // Arabic inside a left-to-right line stays between its neighbours; a number in Arabic text stays
  // left to right, as one word in place.
  w = layout_words({{0, 0, 180, 100}, "Third العربية line"});
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].x1, 0);
  EXPECT_EQ(w[1].x1, 60);
  EXPECT_EQ(w[1].x2, 130);
  EXPECT_EQ(w[2].x2, 180);
  w = layout_words({{0, 0, 90, 100}, "عدد 123"});  // 7 characters: 123 left, عدد right
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].x1, 51);
  EXPECT_EQ(w[0].x2, 90);
  EXPECT_EQ(w[1].x1, 0);
  EXPECT_EQ(w[1].x2, 38);
}

TEST(LayoutGeometry, PageFromGroundingBlocksUsesPixelBoxes) {
  const std::vector<Block> blocks = parse_grounding(
      "<|ref|>title<|/ref|><|det|>[[0, 0, 999, 499]]<|/det|>\nHello\n<|ref|>image<|/ref|><|det|>[[10, 20, 30, "
      "40], [500, 500, 999, 999]]<|/det|>");
  const LayoutPage page = layout_page_from_blocks(blocks, 1000, 500, "in.png", 4);
  EXPECT_EQ(page.width, 1000);
  EXPECT_EQ(page.height, 500);
  EXPECT_EQ(page.source, "in.png");
  EXPECT_EQ(page.page_number, 4);
  ASSERT_EQ(page.blocks.size(), 2u);
  EXPECT_EQ(page.blocks[0].label, "title");
  EXPECT_EQ(page.blocks[0].text, "Hello");
  ASSERT_EQ(page.blocks[0].boxes.size(), 1u);
  EXPECT_EQ(page.blocks[0].boxes[0], to_pixels(Box{0, 0, 999, 499}, 1000, 500));
  EXPECT_EQ(page.blocks[0].boxes[0], (PixelBox{0, 0, 1000, 249}));
  ASSERT_EQ(page.blocks[1].boxes.size(), 2u);
  EXPECT_EQ(page.blocks[1].boxes[1], (PixelBox{500, 250, 1000, 500}));
}

TEST(LayoutFormats, NamesExtensionsAndFactory) {
  EXPECT_EQ(layout_format_from_name("hocr"), LayoutFormat::Hocr);
  EXPECT_EQ(layout_format_from_name("alto"), LayoutFormat::Alto);
  EXPECT_EQ(layout_format_from_name("pdf"), LayoutFormat::Pdf);
  EXPECT_THROW(layout_format_from_name("HOCR"), Error);
  EXPECT_THROW(layout_format_from_name("txt"), Error);
  EXPECT_EQ(layout_format_extension(LayoutFormat::Hocr), ".hocr");
  EXPECT_EQ(layout_format_extension(LayoutFormat::Alto), ".alto.xml");
  EXPECT_EQ(layout_format_extension(LayoutFormat::Pdf), ".ocr.pdf");
  TempDir tmp;
  for (LayoutFormat f : {LayoutFormat::Hocr, LayoutFormat::Alto, LayoutFormat::Pdf}) {
    const std::string path = tmp / ("doc" + std::string(layout_format_extension(f)));
    std::unique_ptr<LayoutWriter> w = make_layout_writer(f, path, test_options());
    const LayoutPage page = test_pages()[0];
    w->add_page(page, page_image(page));
    w->finish();
    const std::string bytes = read_file_text(path);
    EXPECT_EQ(bytes.rfind(f == LayoutFormat::Pdf ? "%PDF-1.4" : "<?xml", 0), 0u) << layout_format_name(f);
  }
}

TEST(PdfFileWriter, NumbersAndReservedObjects) {
  EXPECT_EQ(pdf_number(595.2756), "595.276");
  EXPECT_EQ(pdf_number(612), "612");
  EXPECT_EQ(pdf_number(0.5), "0.5");
  EXPECT_EQ(pdf_number(-0.0001), "0");  // not "-0"
  TempDir tmp;
  {
    PdfFileWriter pdf(tmp / "r.pdf");
    const int reserved = pdf.reserve_object();
    EXPECT_EQ(reserved, 3);  // after the catalog and the page tree
    EXPECT_THROW(pdf.begin_object(7), Error);  // never reserved
    pdf.add_jpeg_page(encode_jpeg(make_image(8, 8), 90), 8, 8, 8, 8);
    try {
      pdf.finish();
      ADD_FAILURE() << "finished with an unwritten object";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("object 3 was reserved but never written"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(fs::is_empty(tmp.dir));
}

// ---- streaming, atomicity, errors ---------------------------------------------------

TEST(LayoutWriters, NothingIsLeftBehindUnlessFinished) {
  TempDir tmp;
  const LayoutPage page = test_pages()[0];
  for (LayoutFormat f : {LayoutFormat::Hocr, LayoutFormat::Alto, LayoutFormat::Pdf}) {
    const std::string name(layout_format_name(f));
    {
      std::unique_ptr<LayoutWriter> w = make_layout_writer(f, tmp / ("unfinished." + name));
      w->add_page(page, page_image(page));
    }
    {
      std::unique_ptr<LayoutWriter> w = make_layout_writer(f, tmp / ("empty." + name));
      EXPECT_THROW(w->finish(), Error) << name;  // a document needs a page
    }
    {
      std::unique_ptr<LayoutWriter> w = make_layout_writer(f, tmp / ("bad." + name));
      LayoutPage sizeless = page;
      sizeless.width = 0;
      try {
        w->add_page(sizeless, page_image(page));
        ADD_FAILURE() << name << ": a page without a size was accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad." + name + ": page 1"), std::string::npos) << e.what();
      }
      LayoutPage numberless = page;
      numberless.page_number = 0;
      EXPECT_THROW(w->add_page(numberless, page_image(page)), Error) << name;
      if (f == LayoutFormat::Pdf) {
        EXPECT_THROW(w->add_page(page, Image{}), Error);
      }
    }
  }
  EXPECT_TRUE(fs::is_empty(tmp.dir));  // no output and no temporary file

  HocrWriter done(tmp / "done.hocr");
  done.add_page(page);
  done.finish();
  EXPECT_THROW(done.add_page(page), Error);
  EXPECT_THROW(done.finish(), Error);
  LayoutWriterOptions bad_quality, bad_dpi;
  bad_quality.jpeg_quality = 0;
  bad_dpi.dpi = 0;
  EXPECT_THROW(make_layout_writer(LayoutFormat::Pdf, tmp / "q.pdf", bad_quality), Error);
  EXPECT_THROW(make_layout_writer(LayoutFormat::Pdf, tmp / "dpi.pdf", bad_dpi), Error);
}

TEST(LayoutWriters, DefaultSoftwareIsThisBuild) {
  TempDir tmp;
  HocrWriter w(tmp / "v.hocr");
  w.add_page(test_pages()[1]);
  w.finish();
  const std::string hocr = read_file_text(tmp / "v.hocr");
  std::smatch m;
  std::regex_search(hocr, m, std::regex("name=\"ocr-system\" content=\"dsocr ([^\"]*)\""));
  ASSERT_FALSE(m.empty()) << hocr;
  EXPECT_TRUE(std::regex_match(m[1].str(), std::regex("[0-9]+\\.[0-9]+\\.[0-9]+"))) << m[1];
}

// ---- hOCR -----------------------------------------------------------------------------

#ifdef DSOCR_HAVE_PUGIXML

std::vector<pugi::xml_node> elements(const pugi::xml_node& node) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node c : node.children())
    if (c.type() == pugi::node_element) out.push_back(c);
  return out;
}

// Every ID (hOCR: id) in the document, which must not repeat.
void expect_unique_ids(const pugi::xml_node& root, const char* attribute) {
  std::set<std::string> seen;
  size_t count = 0;
  for (pugi::xpath_node n : root.select_nodes(fmt::format("//*[@{}]", attribute).c_str())) {
    ++count;
    EXPECT_TRUE(seen.insert(n.node().attribute(attribute).value()).second)
        << "repeated " << attribute << " " << n.node().attribute(attribute).value();
  }
  EXPECT_GT(count, 10u);
}

std::string hocr_title(const std::array<int, 4>& b, const std::string& extra = "") {
  return fmt::format("bbox {} {} {} {}{}", b[0], b[1], b[2], b[3], extra);
}

pugi::xml_document parse(const std::string& text) {
  pugi::xml_document doc;
  const pugi::xml_parse_result r = doc.load_string(text.c_str(), pugi::parse_default | pugi::parse_ws_pcdata_single);
  EXPECT_TRUE(r) << r.description() << " at " << r.offset;
  return doc;
}

TEST(Hocr, StructureTextAndBoxesRoundTrip) {
  TempDir tmp;
  const std::string text = write_document<HocrWriter>(tmp / "doc.hocr", test_pages());
  EXPECT_EQ(text.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html", 0), 0u);
  const pugi::xml_document doc = parse(text);
  const pugi::xml_node html = doc.child("html");
  ASSERT_TRUE(html);
  EXPECT_STREQ(html.attribute("xmlns").value(), "http://www.w3.org/1999/xhtml");
  const std::vector<pugi::xml_node> top = elements(html);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_STREQ(top[0].name(), "head");
  EXPECT_STREQ(top[1].name(), "body");

  // Meta: ocr-system and ocr-capabilities exactly once each; every ocr_ class used is a capability.
  std::map<std::string, std::vector<std::string>> meta;
  for (pugi::xml_node m : top[0].children("meta"))
    if (m.attribute("name")) meta[m.attribute("name").value()].push_back(m.attribute("content").value());
  EXPECT_EQ(top[0].child("title").text().get(), kSource);
  ASSERT_EQ(meta["ocr-system"].size(), 1u);
  EXPECT_EQ(meta["ocr-system"][0], "dsocr 1.2.3");
  ASSERT_EQ(meta["ocr-capabilities"].size(), 1u);
  EXPECT_EQ(meta["ocr-number-of-pages"], std::vector<std::string>{"3"});
  std::set<std::string> capabilities;
  std::istringstream caps(meta["ocr-capabilities"][0]);
  for (std::string c; caps >> c;) capabilities.insert(c);
  for (pugi::xpath_node n : doc.select_nodes("//*[@class]"))
    EXPECT_TRUE(capabilities.count(n.node().attribute("class").value())) << n.node().attribute("class").value();

  const std::vector<pugi::xml_node> pages = elements(top[1]);
  ASSERT_EQ(pages.size(), 3u);
  const std::array<std::array<int, 2>, 3> sizes = {{{800, 600}, {600, 800}, {640, 480}}};
  for (size_t p = 0; p < 3; ++p) {
    SCOPED_TRACE("page " + std::to_string(p + 1));
    EXPECT_STREQ(pages[p].name(), "div");
    EXPECT_STREQ(pages[p].attribute("class").value(), "ocr_page");
    EXPECT_EQ(pages[p].attribute("id").value(), "page_" + std::to_string(p + 1));
    EXPECT_EQ(pages[p].attribute("title").value(),
              fmt::format("image \"scan & co.pdf\"; bbox 0 0 {} {}; ppageno {}", sizes[p][0], sizes[p][1], p));
    const std::vector<pugi::xml_node> areas = elements(pages[p]);
    ASSERT_EQ(areas.size(), kWant[p].size());
    for (size_t a = 0; a < areas.size(); ++a) {
      const WantArea& want = kWant[p][a];
      SCOPED_TRACE(want.label);
      const bool image = want.label == "image", table = want.label == "table";
      EXPECT_STREQ(areas[a].name(), "div");
      EXPECT_STREQ(areas[a].attribute("class").value(), image ? "ocr_photo" : table ? "ocr_table" : "ocr_carea");
      EXPECT_EQ(areas[a].attribute("title").value(), hocr_title(want.box, "; x_label \"" + want.label + "\""));
      const std::vector<pugi::xml_node> pars = elements(areas[a]);
      if (want.lines.empty()) {
        EXPECT_TRUE(pars.empty());
        continue;
      }
      ASSERT_EQ(pars.size(), 1u);
      EXPECT_STREQ(pars[0].name(), "p");
      EXPECT_STREQ(pars[0].attribute("class").value(), "ocr_par");
      EXPECT_EQ(pars[0].attribute("title").value(), hocr_title(want.box));
      const std::vector<pugi::xml_node> lines = elements(pars[0]);
      ASSERT_EQ(lines.size(), want.lines.size());
      const char* line_class = want.label == "title" ? "ocr_header" : want.label == "image_caption" ? "ocr_caption" : "ocr_line";
      for (size_t l = 0; l < lines.size(); ++l) {
        EXPECT_STREQ(lines[l].name(), "span");
        EXPECT_STREQ(lines[l].attribute("class").value(), line_class);
        EXPECT_EQ(lines[l].attribute("title").value(), hocr_title(want.lines[l].box));
        EXPECT_TRUE(elements(lines[l]).empty());
        EXPECT_EQ(lines[l].text().get(), want.lines[l].text);
      }
    }
  }
  expect_unique_ids(doc, "id");
}

TEST(Hocr, EscapesAndRepairsEverything) {
  TempDir tmp;
  LayoutPage page;
  page.width = 100, page.height = 100, page.source = "dir/\"odd\"; 100% é.png";
  page.blocks = {{"we\"ird", {{0, 0, 100, 100}}, "tab\there cr\rhere \x01 ctl \xEF\xBF\xBE nonchar ]]> \xC0 end"}};
  HocrWriter w(tmp / "e.hocr", test_options());
  w.add_page(page);
  w.finish();
  const pugi::xml_document doc = parse(read_file_text(tmp / "e.hocr"));
  const pugi::xml_node div = doc.select_node("//div[@class='ocr_page']").node();
  // hOCR property strings are printable ASCII: the rest is percent-encoded.
  EXPECT_STREQ(div.attribute("title").value(),
               "image \"dir/%22odd%22%3B 100%25 %C3%A9.png\"; bbox 0 0 100 100; ppageno 0");
  EXPECT_STREQ(doc.select_node("//div[@class='ocr_carea']").node().attribute("title").value(),
               "bbox 0 0 100 100; x_label \"we%22ird\"");
  EXPECT_EQ(std::string(doc.select_node("//span").node().text().get()),
            "tab\there cr\rhere \xEF\xBF\xBD ctl \xEF\xBF\xBD nonchar ]]> \xEF\xBF\xBD end");
}

// ---- ALTO -----------------------------------------------------------------------------

std::array<int, 4> alto_box(const pugi::xml_node& n) {
  return {n.attribute("HPOS").as_int(-1), n.attribute("VPOS").as_int(-1),
          n.attribute("HPOS").as_int(-1) + n.attribute("WIDTH").as_int(-1000),
          n.attribute("VPOS").as_int(-1) + n.attribute("HEIGHT").as_int(-1000)};
}

std::vector<std::string> names(const std::vector<pugi::xml_node>& nodes) {
  std::vector<std::string> out;
  for (const pugi::xml_node& n : nodes) out.emplace_back(n.name());
  return out;
}

using Names = std::vector<std::string>;

// A TextBlock against the lines it should hold: boxes, and words that rebuild each line, each String
// followed by an SP that fills the gap to the next.
void check_text_block(const pugi::xml_node& block, const WantArea& want) {
  EXPECT_STREQ(block.name(), "TextBlock");
  EXPECT_EQ(alto_box(block), want.box);
  const std::vector<pugi::xml_node> lines = elements(block);
  ASSERT_EQ(lines.size(), want.lines.size());
  for (size_t l = 0; l < lines.size(); ++l) {
    EXPECT_STREQ(lines[l].name(), "TextLine");
    EXPECT_EQ(alto_box(lines[l]), want.lines[l].box);
    std::string rebuilt;
    const std::vector<pugi::xml_node> items = elements(lines[l]);
    ASSERT_FALSE(items.empty());
    for (size_t k = 0; k < items.size(); ++k) {
      const bool is_string = k % 2 == 0;
      ASSERT_STREQ(items[k].name(), is_string ? "String" : "SP");
      if (is_string) {
        if (!rebuilt.empty()) rebuilt += ' ';
        rebuilt += items[k].attribute("CONTENT").value();
        EXPECT_EQ(items[k].attribute("VPOS").as_int(), want.lines[l].box[1]);
        EXPECT_EQ(items[k].attribute("HEIGHT").as_int(), want.lines[l].box[3] - want.lines[l].box[1]);
        EXPECT_GE(items[k].attribute("HPOS").as_int(), want.lines[l].box[0]);
        EXPECT_LE(items[k].attribute("HPOS").as_int() + items[k].attribute("WIDTH").as_int(), want.lines[l].box[2]);
      } else {
        // Left to right lines: the gap between the words around it.
        EXPECT_EQ(items[k].attribute("HPOS").as_int(),
                  items[k - 1].attribute("HPOS").as_int() + items[k - 1].attribute("WIDTH").as_int());
        EXPECT_EQ(items[k].attribute("HPOS").as_int() + items[k].attribute("WIDTH").as_int(),
                  items[k + 1].attribute("HPOS").as_int());
      }
    }
    EXPECT_EQ(items.size() % 2, 1u);
    EXPECT_EQ(rebuilt, want.lines[l].text);
  }
}

TEST(Alto, StructureTextAndBoxesRoundTrip) {
  TempDir tmp;
  std::vector<LayoutPage> pages = test_pages();
  pages[2].blocks.pop_back();  // the right-to-left line: its SPs are not between its Strings' ends
  const std::string text = write_document<AltoWriter>(tmp / "doc.alto.xml", pages);
  const pugi::xml_document doc = parse(text);
  const pugi::xml_node alto = doc.child("alto");
  ASSERT_TRUE(alto);
  EXPECT_STREQ(alto.attribute("xmlns").value(), "http://www.loc.gov/standards/alto/ns-v4#");
  EXPECT_STREQ(alto.attribute("xsi:schemaLocation").value(),
               "http://www.loc.gov/standards/alto/ns-v4# http://www.loc.gov/standards/alto/v4/alto-4-4.xsd");
  const std::vector<pugi::xml_node> top = elements(alto);
  ASSERT_EQ(names(top), (Names{"Description", "Tags", "Layout"}));  // the schema's order

  const pugi::xml_node description = top[0];
  EXPECT_EQ(names(elements(description)), (Names{"MeasurementUnit", "sourceImageInformation", "OCRProcessing"}));
  EXPECT_STREQ(description.child("MeasurementUnit").text().get(), "pixel");
  EXPECT_EQ(description.child("sourceImageInformation").child("fileName").text().get(), kSource);
  const pugi::xml_node software = description.child("OCRProcessing").child("ocrProcessingStep").child("processingSoftware");
  EXPECT_TRUE(description.child("OCRProcessing").attribute("ID"));
  EXPECT_STREQ(software.child("softwareName").text().get(), "dsocr");
  EXPECT_STREQ(software.child("softwareVersion").text().get(), "1.2.3");

  // One OtherTag per label, in order of first use.
  std::map<std::string, std::string> label_of_tag;
  Names labels;
  for (pugi::xml_node tag : elements(top[1])) {
    EXPECT_STREQ(tag.name(), "OtherTag");
    labels.emplace_back(tag.attribute("LABEL").value());
    label_of_tag[tag.attribute("ID").value()] = tag.attribute("LABEL").value();
  }
  EXPECT_EQ(labels, (Names{"title", "text", "image", "image_caption", "table"}));

  const std::vector<pugi::xml_node> page_nodes = elements(top[2]);
  ASSERT_EQ(page_nodes.size(), 3u);
  for (size_t p = 0; p < 3; ++p) {
    SCOPED_TRACE("page " + std::to_string(p + 1));
    const pugi::xml_node page = page_nodes[p];
    EXPECT_STREQ(page.name(), "Page");
    EXPECT_EQ(page.attribute("PHYSICAL_IMG_NR").as_int(), int(p) + 1);
    EXPECT_EQ(page.attribute("WIDTH").as_int(), pages[p].width);
    EXPECT_EQ(page.attribute("HEIGHT").as_int(), pages[p].height);
    const std::vector<pugi::xml_node> spaces = elements(page);
    ASSERT_EQ(names(spaces), Names{"PrintSpace"});
    EXPECT_EQ(alto_box(spaces[0]), (std::array<int, 4>{0, 0, pages[p].width, pages[p].height}));
    const std::vector<pugi::xml_node> blocks = elements(spaces[0]);
    const std::vector<WantArea>& want = kWant[p];
    ASSERT_EQ(blocks.size(), p == 2 ? want.size() - 1 : want.size());
    for (size_t b = 0; b < blocks.size(); ++b) {
      SCOPED_TRACE(want[b].label);
      EXPECT_EQ(label_of_tag[blocks[b].attribute("TAGREFS").value()], want[b].label);
      if (want[b].label == "image") {
        EXPECT_STREQ(blocks[b].name(), "Illustration");
        EXPECT_STREQ(blocks[b].attribute("TYPE").value(), "image");
        EXPECT_EQ(alto_box(blocks[b]), want[b].box);
        EXPECT_TRUE(elements(blocks[b]).empty());
      } else if (want[b].label == "table") {
        EXPECT_STREQ(blocks[b].name(), "ComposedBlock");  // ALTO 4 has no table block
        EXPECT_STREQ(blocks[b].attribute("TYPE").value(), "table");
        EXPECT_EQ(alto_box(blocks[b]), want[b].box);
        const std::vector<pugi::xml_node> inner = elements(blocks[b]);
        ASSERT_EQ(inner.size(), 1u);
        check_text_block(inner[0], want[b]);
      } else {
        check_text_block(blocks[b], want[b]);
      }
    }
  }

  // Word positions of the title: 26 characters over 600 pixels from x = 100.
  const pugi::xml_node title_line = doc.select_node("//*[local-name()='TextLine']").node();
  std::vector<std::array<int, 2>> extents;
  for (pugi::xml_node s : title_line.children("String"))
    extents.push_back({s.attribute("HPOS").as_int(), s.attribute("WIDTH").as_int()});
  EXPECT_EQ(extents, (std::vector<std::array<int, 2>>{{100, 23}, {146, 138}, {307, 162}, {492, 23}, {538, 162}}));
  expect_unique_ids(doc, "ID");
}

TEST(Alto, ImagesWithTextAndRightToLeftLines) {
  TempDir tmp;
  LayoutPage page;
  page.width = 300, page.height = 200;
  page.blocks = {{"image", {{0, 0, 100, 100}}, "chart label"}, {"text", {{0, 150, 90, 190}}, "عدد 123"}, {"", {{5, 5, 6, 6}}, "x"}};
  AltoWriter w(tmp / "i.xml", test_options());
  w.add_page(page);
  w.finish();
  const pugi::xml_document doc = parse(read_file_text(tmp / "i.xml"));
  const pugi::xml_node alto = doc.child("alto");
  EXPECT_FALSE(alto.child("Description").child("sourceImageInformation"));  // no source given
  EXPECT_EQ(names(elements(alto.child("Tags"))), (Names{"OtherTag", "OtherTag"}));  // none for ""
  const std::vector<pugi::xml_node> blocks = elements(alto.child("Layout").child("Page").child("PrintSpace"));
  ASSERT_EQ(names(blocks), (Names{"ComposedBlock", "TextBlock", "TextBlock"}));
  EXPECT_STREQ(blocks[0].attribute("TYPE").value(), "image");
  EXPECT_EQ(names(elements(blocks[0])), (Names{"Illustration", "TextBlock"}));
  EXPECT_FALSE(blocks[2].attribute("TAGREFS"));
  // Right to left: the first word (عدد) is on the right, the SP between the number and it.
  const std::vector<pugi::xml_node> items = elements(blocks[1].child("TextLine"));
  ASSERT_EQ(names(items), (Names{"String", "SP", "String"}));
  EXPECT_STREQ(items[0].attribute("CONTENT").value(), "عدد");
  EXPECT_EQ(items[0].attribute("HPOS").as_int(), 51);
  EXPECT_STREQ(items[2].attribute("CONTENT").value(), "123");
  EXPECT_EQ(items[2].attribute("HPOS").as_int(), 0);
  EXPECT_EQ(items[2].attribute("WIDTH").as_int(), 38);
  EXPECT_EQ(items[1].attribute("HPOS").as_int(), 38);
  EXPECT_EQ(items[1].attribute("WIDTH").as_int(), 13);
}

#else
TEST(Hocr, StructureTextAndBoxesRoundTrip) { GTEST_SKIP() << "built without pugixml (Debian libpugixml-dev)"; }
TEST(Alto, StructureTextAndBoxesRoundTrip) { GTEST_SKIP() << "built without pugixml (Debian libpugixml-dev)"; }
#endif

// ---- searchable PDF -------------------------------------------------------------------

// The pixels pdftoppm renders for one page at 72 dpi (PPM read back).
Image render_page(const std::string& pdf, int page, const std::string& dir) {
  const std::string stem = dir + "/render" + std::to_string(page);
  const auto [status, log] = run(fmt::format("pdftoppm -r 72 -f {} -l {} -singlefile '{}' '{}'", page, page, pdf, stem),
                                 stem + ".log");
  if (status != 0) fail("pdftoppm failed: {}", log);
  const std::string ppm = read_file_text(stem + ".ppm");
  std::istringstream in(ppm);
  std::string magic;
  int w = 0, h = 0, maxval = 0;
  in >> magic >> w >> h >> maxval;
  in.get();
  if (magic != "P6" || maxval != 255) fail("unexpected PPM header");
  Image img = make_image(w, h);
  const size_t at = size_t(in.tellg());
  if (ppm.size() < at + img.rgb.size()) fail("short PPM");
  std::copy(ppm.begin() + ptrdiff_t(at), ppm.begin() + ptrdiff_t(at + img.rgb.size()), img.rgb.begin());
  return img;
}

std::string page_text(const std::string& pdf, int page, const std::string& dir) {
  const auto [status, text] =
      run(fmt::format("pdftotext -enc UTF-8 -f {} -l {} '{}' -", page, page, pdf), dir + "/text.txt");
  EXPECT_EQ(status, 0) << text;
  // pdftotext marks right-to-left runs with embedding controls (U+202A..U+202E): drop them.
  return std::regex_replace(text, std::regex("\xE2\x80[\xAA-\xAE]"), "");
}

TEST(SearchablePdf, TextIsFoundOnItsPageAndQpdfAcceptsTheFile) {
  if (!have_tool("pdftotext")) GTEST_SKIP() << "pdftotext not found (Debian poppler-utils)";
  TempDir tmp;
  const std::string pdf = tmp / "doc.pdf";
  write_document<SearchablePdfWriter>(pdf, test_pages());

  const std::string p1 = page_text(pdf, 1, tmp.dir.string()), p2 = page_text(pdf, 2, tmp.dir.string()),
                    p3 = page_text(pdf, 3, tmp.dir.string());
  for (const char* want : {"# Résumé <Draft> & \"Notes\"", "First line with é", "Second 中文 line", "العربية",
                           "Figure 1: a < b"})
    EXPECT_NE(p1.find(want), std::string::npos) << want << " not in page 1:\n" << p1;
  EXPECT_EQ(p2.find_first_not_of(" \n\f"), std::string::npos) << p2;  // the empty page
  for (const char* want :
       {"<table><tr><td>a&b</td></tr></table>", "alpha beta", "gamma delta", "epsilon \xEF\xBF\xBD", "مرحبا بالعالم"})
    EXPECT_NE(p3.find(want), std::string::npos) << want << " not in page 3:\n" << p3;
  EXPECT_EQ(p1.find("alpha"), std::string::npos);
  EXPECT_EQ(p3.find("Résumé"), std::string::npos);
  // Every text object is invisible (render mode 3), whatever the font draws; the empty page has none.
  const std::string bytes = read_file_text(pdf);
  size_t texts = 0, invisible = 0;
  for (size_t at = 0; (at = bytes.find("\nBT\n", at)) != std::string::npos; ++at, ++texts)
    invisible += bytes.compare(at, std::string_view("\nBT\n3 Tr\n").size(), "\nBT\n3 Tr\n") == 0;
  EXPECT_EQ(texts, 2u);
  EXPECT_EQ(invisible, 2u);

  if (!have_tool("qpdf")) GTEST_SKIP() << "qpdf not found (Debian qpdf)";
  const auto [status, log] = run(fmt::format("qpdf --check '{}'", pdf), tmp / "qpdf.log");
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find("No syntax or stream encoding errors found"), std::string::npos) << log;
}

TEST(SearchablePdf, WordsSitInTheirBoxesAtAnyResolution) {
  if (!have_tool("pdftotext")) GTEST_SKIP() << "pdftotext not found (Debian poppler-utils)";
  TempDir tmp;
  // A 400x300 layout over an 800x600 image at 144 dpi: 400x300 points, one point per layout pixel.
  LayoutPage page;
  page.width = 400, page.height = 300;
  page.blocks = {{"text", {{40, 30, 240, 60}, {40, 100, 360, 140}}, "ab cd\nlonger line here"}};
  LayoutWriterOptions options = test_options();
  options.dpi = 144;
  SearchablePdfWriter w(tmp / "b.pdf", options);
  w.add_page(page, make_image(800, 600, 255, 255, 255));
  w.finish();
  const auto [status, html] = run(fmt::format("pdftotext -bbox '{}' -", tmp / "b.pdf"), tmp / "bbox.html");
  ASSERT_EQ(status, 0) << html;
  EXPECT_NE(html.find("<page width=\"400.000000\" height=\"300.000000\">"), std::string::npos) << html;
  std::vector<std::array<double, 4>> boxes;
  Names words;
  const std::regex word("<word xMin=\"([0-9.]+)\" yMin=\"([0-9.]+)\" xMax=\"([0-9.]+)\" yMax=\"([0-9.]+)\">([^<]*)</word>");
  for (std::sregex_iterator it(html.begin(), html.end(), word), end; it != end; ++it) {
    boxes.push_back({std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3]), std::stod((*it)[4])});
    words.push_back((*it)[5]);
  }
  ASSERT_EQ(words, (Names{"ab", "cd", "longer", "line", "here"}));
  // The first box's single line [40, 240) x [30, 60) would give 40 to each of its 5 characters:
  // at most 0.8 of the height, 24. The second line is 16 characters of 20 over [40, 360).
  const std::vector<std::array<double, 4>> want = {
      {40, 30, 88, 60}, {112, 30, 160, 60}, {40, 100, 40 + 6 * 20, 140}, {40 + 7 * 20, 100, 40 + 11 * 20, 140},
      {40 + 12 * 20, 100, 360, 140}};
  for (size_t k = 0; k < want.size(); ++k)
    for (size_t c = 0; c < 4; ++c) EXPECT_NEAR(boxes[k][c], want[k][c], 0.1) << words[k] << " coordinate " << c;
}

TEST(SearchablePdf, TextLayerIsInvisible) {
  if (!have_tool("pdftoppm")) GTEST_SKIP() << "pdftoppm not found (Debian poppler-utils)";
  TempDir tmp;
  const std::vector<LayoutPage> pages = test_pages();
  write_document<SearchablePdfWriter>(tmp / "text.pdf", pages);
  // The same JPEGs without text (same encoder, same quality): the renderings must be identical.
  ImagePdfWriter plain(tmp / "plain.pdf", test_options().jpeg_quality);
  for (const LayoutPage& page : pages) plain.add_page(page_image(page));
  plain.finish();
  for (int p = 1; p <= 3; ++p) {
    SCOPED_TRACE("page " + std::to_string(p));
    const Image with_text = render_page(tmp / "text.pdf", p, tmp.dir.string());
    const Image without = render_page(tmp / "plain.pdf", p, tmp.dir.string());
    const Image original = page_image(pages[size_t(p) - 1]);
    ASSERT_EQ(with_text.width, original.width);
    ASSERT_EQ(with_text.height, original.height);
    EXPECT_TRUE(with_text.rgb == without.rgb);
    // And both are the page image, within JPEG error (4:2:0 chroma: the error is at colour edges).
    double total = 0;
    size_t far = 0;
    for (size_t i = 0; i < original.rgb.size(); ++i) {
      const int d = std::abs(int(with_text.rgb[i]) - int(original.rgb[i]));
      total += d, far += d > 24;
    }
    EXPECT_LT(total / double(original.rgb.size()), 1.5);
    EXPECT_LT(double(far) / double(original.rgb.size()), 0.02);
  }
}

TEST(SearchablePdf, CharacterTableOverflowBecomesReplacementCharacters) {
  if (!have_tool("pdftotext")) GTEST_SKIP() << "pdftotext not found (Debian poppler-utils)";
  TempDir tmp;
  // 66000 distinct characters (CJK ideographs, then extension B): more than 65535 CIDs, over 11
  // pages of 30 lines of 200.
  std::vector<char32_t> chars;
  for (char32_t c = 0x4E00; c <= 0x9FFF; ++c) chars.push_back(c);
  for (char32_t c = 0x20000; chars.size() < 66000; ++c) chars.push_back(c);
  SearchablePdfWriter w(tmp / "many.pdf", test_options());
  for (size_t first = 0; first < chars.size(); first += 6000) {
    LayoutPage page;
    page.width = 2000, page.height = 1000;
    std::string text;
    for (size_t k = first; k < first + 6000; ++k) {
      utf8::append(text, chars[k]);
      if (k % 200 == 199) text += '\n';
    }
    page.blocks = {{"text", {{0, 0, 2000, 1000}}, text}};
    w.add_page(page, make_image(2000, 1000, 255, 255, 255));
  }
  w.finish();
  const auto [status, got] = run(fmt::format("pdftotext -enc UTF-8 '{}' -", tmp / "many.pdf"), tmp / "many.txt");
  ASSERT_EQ(status, 0) << got;
  std::set<char32_t> found;
  for (std::string_view rest = got; !rest.empty();) {
    const utf8::Unit unit = utf8::next_unit(rest);
    found.insert(unit.codepoint);
    rest.remove_prefix(unit.length);
  }
  // CIDs 1..65534 are the first characters, CID 65535 is U+FFFD for all the others.
  size_t kept = 0;
  for (size_t k = 0; k < chars.size(); ++k) kept += found.count(chars[k]);
  EXPECT_EQ(kept, 65534u);
  EXPECT_TRUE(found.count(chars[65533]));
  EXPECT_FALSE(found.count(chars[65534]));
  EXPECT_TRUE(found.count(U'\uFFFD'));
}

TEST(SearchablePdf, FontLoadsInFreetype) {
  const std::vector<uint8_t> font = glyphless_truetype_font();
  // The checksum adjustment makes the whole font sum to 0xB1B0AFBA.
  uint32_t sum = 0;
  for (size_t i = 0; i < font.size(); i += 4) {
    uint32_t word = 0;
    for (size_t k = 0; k < 4; ++k) word = (word << 8) | (i + k < font.size() ? font[i + k] : 0u);
    sum += word;
  }
  EXPECT_EQ(sum, 0xB1B0AFBAu);
  FT_Library library = nullptr;
  ASSERT_EQ(FT_Init_FreeType(&library), 0);
  FT_Face face = nullptr;
  ASSERT_EQ(FT_New_Memory_Face(library, font.data(), FT_Long(font.size()), 0, &face), 0);
  EXPECT_EQ(face->num_glyphs, 2);
  EXPECT_EQ(face->units_per_EM, 1000);
  EXPECT_TRUE(FT_IS_SFNT(face));
  EXPECT_STREQ(face->family_name, "DsocrTextLayer");
  ASSERT_EQ(FT_Set_Char_Size(face, 0, 64 * 64, 72, 72), 0);
  ASSERT_EQ(FT_Load_Glyph(face, 1, FT_LOAD_NO_HINTING), 0);
  EXPECT_EQ(face->glyph->metrics.horiAdvance, 32 * 64);  // half an em of 64 pixels
  EXPECT_EQ(face->glyph->outline.n_points, 0);            // nothing to draw
  FT_Done_Face(face);
  FT_Done_FreeType(library);
}

}  // namespace
