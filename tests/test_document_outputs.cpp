// The document tool's outputs for known model text (a stand-in recognizer, so that grounded output
// with image regions is exercised: the random tiny model never writes any).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/document.h"
#include "io/files.h"
#include "io/image.h"
#include "io/pdf.h"
#include "io/pdf_writer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace dsocr;

namespace {

const std::string kRaw =
    "<|ref|>title<|/ref|><|det|>[[100, 50, 900, 120]]<|/det|>\n# Quarterly report\n\n"
    "<|ref|>image<|/ref|><|det|>[[0, 500, 499, 999]]<|/det|>\n\n"
    "<|ref|>text<|/ref|><|det|>[[100, 200, 900, 300]]<|/det|>\nRevenue grew \\coloneqq fast.\n\n"
    "<|ref|>table<|/ref|><|det|>[[100, 320, 900";  // cut by the token limit

// Returns kRaw for every page, with EOS unless told otherwise.
class FakeRecognizer : public PageRecognizer {
 public:
  std::shared_ptr<PageJob> submit(Image page, OcrRequest, TextCallback on_text) override {
    ++calls;
    if (on_text) on_text(kRaw);
    OcrResult r;
    r.text = kRaw;
    r.tokens.assign(42, 7);
    r.stop = stop;
    r.page_width = page.width;
    r.page_height = page.height;
    r.image_tokens = 273;
    auto job = std::make_shared<PageJob>(uint64_t(calls));
    job->finish(r);
    return job;
  }
  StopReason stop = StopReason::Eos;
  int calls = 0;
};

struct Work {
  fs::path dir = fs::temp_directory_path() / ("dsocr_docout_" + std::to_string(::getpid()));
  Work() {
    fs::remove_all(dir);
    fs::create_directories(dir / "in");
  }
  ~Work() { fs::remove_all(dir); }
};

// Left half red, right half blue: crops show which part of the page they came from.
Image two_colour_page(int w, int h) {
  Image img = make_image(w, h, 255, 0, 0);
  for (int y = 0; y < h; ++y)
    for (int x = w / 2; x < w; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = 0;
      p[2] = 255;
    }
  return img;
}

}  // namespace

TEST(DocumentOutputs, ImageCropsLinksPixelBoxesAndAnnotatedPage) {
  Work work;
  save_png(two_colour_page(1000, 800), (work.dir / "in" / "page.png").string());
  FakeRecognizer fake;
  BatchObserver quiet;
  BatchOptions options;
  options.out_dir = (work.dir / "out").string();
  options.boxes = true;
  BatchRunner runner(fake, options, quiet, nullptr);
  const BatchSummary s = runner.run({{(work.dir / "in" / "page.png").string(), "page", false, {}}});
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.pages_done, 1);

  const fs::path out = work.dir / "out";
  const std::string md = read_file_text((out / "page.md").string());
  EXPECT_NE(md.find("# Quarterly report"), std::string::npos);
  EXPECT_NE(md.find("![](images/page/0.jpg)"), std::string::npos) << md;  // crops are per document
  EXPECT_NE(md.find("Revenue grew := fast."), std::string::npos) << md;   // formula clean-up
  EXPECT_EQ(md.find("<|ref|>"), std::string::npos) << md;                  // the cut span is gone from .md
  EXPECT_EQ(read_file_text((out / "page.raw.md").string()), kRaw);                              // and kept in .raw.md

  // The crop is the left-bottom quarter: int(0/999*1000)=0 .. int(499/999*1000)=499, rows 400..800.
  const Image crop = load_image((out / "images" / "page" / "0.jpg").string());
  EXPECT_EQ(crop.width, 499);
  EXPECT_EQ(crop.height, 400);
  EXPECT_GT(crop.pixel(100, 100)[0], 200);  // red half
  EXPECT_LT(crop.pixel(100, 100)[2], 60);

  const json j = json::parse(read_file_text((out / "page.json").string()));
  const json& page = j["pages"][0];
  EXPECT_EQ(page["stop_reason"], "eos");
  EXPECT_FALSE(page["truncated"].get<bool>());
  ASSERT_GE(page["blocks"].size(), 3u);
  EXPECT_EQ(page["blocks"][0]["label"], "title");
  EXPECT_EQ(page["blocks"][0]["boxes"][0], json({100, 40, 900, 96}));  // page pixels
  EXPECT_EQ(page["blocks"][0]["boxes_999"][0], json({100, 50, 900, 120}));
  EXPECT_EQ(page["blocks"][0]["text"], "# Quarterly report");
  EXPECT_EQ(page["images"][0]["file"], "images/page/0.jpg");
  EXPECT_TRUE(j["complete"].get<bool>());

  const Image boxes = load_image((out / "page.boxes.png").string());
  EXPECT_EQ(boxes.width, 1000);
  EXPECT_NE(std::memcmp(boxes.rgb.data(), two_colour_page(1000, 800).rgb.data(), boxes.rgb.size()), 0);
}

TEST(DocumentOutputs, PdfPagesAreJoinedCroppedPerPageAndTruncationIsCounted) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  Work work;
  const fs::path pdf = work.dir / "in" / "doc.pdf";
  write_images_pdf({two_colour_page(200, 100), two_colour_page(300, 150)}, pdf.string());
  FakeRecognizer fake;
  fake.stop = StopReason::MaxTokens;
  BatchObserver quiet;
  BatchOptions options;
  options.out_dir = (work.dir / "out").string();
  options.dpi = 72;
  BatchRunner runner(fake, options, quiet, nullptr);
  const BatchSummary s = runner.run({{pdf.string(), "doc", true, {}}});
  EXPECT_EQ(fake.calls, 2);
  EXPECT_EQ(s.pages_done, 2);
  EXPECT_EQ(s.pages_truncated, 2);  // kept and counted, never dropped
  const fs::path out = work.dir / "out";
  const std::string md = read_file_text((out / "doc.md").string());
  EXPECT_NE(md.find("![](images/doc/0_0.jpg)"), std::string::npos) << md;
  EXPECT_NE(md.find("![](images/doc/1_0.jpg)"), std::string::npos) << md;
  EXPECT_TRUE(fs::exists(out / "images" / "doc" / "1_0.jpg"));
  const json j = json::parse(read_file_text((out / "doc.json").string()));
  EXPECT_EQ(j["pages"][1]["width"], 300);
  EXPECT_TRUE(j["pages"][1]["truncated"].get<bool>());
  EXPECT_EQ(j["summary"]["truncated"], 2);
}
