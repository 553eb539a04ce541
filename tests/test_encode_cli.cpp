// `dsocr encode --dump` through the real binary: views, grid and features equal the goldens.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <filesystem>

#include "io/image.h"
#include "io/pdf.h"
#include "io/safetensors.h"
#include "vision/preprocess.h"

namespace fs = std::filesystem;
using namespace dsocr;

namespace {

const std::string kData = DSOCR_TEST_DATA;

int run(const std::string& args) {
  const std::string cmd = std::string(DSOCR_BIN) + " encode --model " + DSOCR_TEST_MODEL + " " + args + " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void expect_view(const SafetensorsFile& dump, const std::string& name, const std::string& golden_png) {
  const Image golden = load_image(kData + "/preproc/views/" + golden_png);
  const TensorView v = dump.get(name);
  ASSERT_EQ(v.dtype, DType::U8);
  ASSERT_EQ(v.shape, (std::vector<int64_t>{golden.height, golden.width, 3}));
  EXPECT_EQ(std::memcmp(v.data, golden.rgb.data(), golden.rgb.size()), 0) << name;
}

}  // namespace

TEST(EncodeCli, GundamDumpMatchesGoldenViewsGridAndFeatures) {
  const fs::path out = fs::temp_directory_path() / "dsocr_encode_gundam.safetensors";
  ASSERT_EQ(run("--mode gundam --max-tiles 6 " + kData + "/images/doc.png --dump " + out.string()), 0);
  SafetensorsFile dump(out.string());
  const TensorView grid = dump.get("grid");
  ASSERT_EQ(grid.dtype, DType::I32);
  EXPECT_EQ(reinterpret_cast<const int32_t*>(grid.data)[0], 2);  // cols
  EXPECT_EQ(reinterpret_cast<const int32_t*>(grid.data)[1], 3);  // rows
  expect_view(dump, "view.global", "doc__global_1024.png");
  for (int k = 0; k < 6; ++k)
    expect_view(dump, "view.tile." + std::to_string(k), "doc__tiles_2x3_" + std::to_string(k) + ".png");
  EXPECT_FALSE(dump.has("view.tile.6"));

  SafetensorsFile golden(kData + "/encoder/features.safetensors");
  const auto want = golden.get("doc.gundam6").to_f32();
  const TensorView got_view = dump.get("features");
  ASSERT_EQ(got_view.shape, (std::vector<int64_t>{903, 64}));
  const auto got = got_view.to_f32();
  float worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(want[i] - got[i]));
  EXPECT_LT(worst, 1e-4f);
  fs::remove(out);
}

TEST(EncodeCli, TinyDumpHasTheResizedViewAndNoTiles) {
  const fs::path out = fs::temp_directory_path() / "dsocr_encode_tiny.safetensors";
  ASSERT_EQ(run("--mode tiny " + kData + "/images/wide.png --dump " + out.string()), 0);
  SafetensorsFile dump(out.string());
  expect_view(dump, "view.global", "wide__global_512_resized.png");
  EXPECT_FALSE(dump.has("view.tile.0"));
  EXPECT_EQ(dump.get("features").shape, (std::vector<int64_t>{73, 64}));
  EXPECT_EQ(reinterpret_cast<const int32_t*>(dump.get("grid").data)[0], 1);
  fs::remove(out);
}

TEST(EncodeCli, BadInputsFail) {
  EXPECT_NE(run("--mode base /no/such/image.png"), 0);
  EXPECT_NE(run("--mode giant " + kData + "/images/doc.png"), 0);
}

// A PDF page is encoded as `dsocr ocr` reads it: rendered at --dpi by the chosen renderer, then the same
// views as an image's (here: the second page of a two-page PDF, each renderer built in).
TEST(EncodeCli, APdfPageDumpsTheViewsOfThatPageRendered) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const std::string pdf = kData + "/pdf/rotated.pdf";
  for (PdfRenderer renderer : pdf_renderers()) {
    const std::string name = pdf_renderer_name(renderer);
    const fs::path out = fs::temp_directory_path() / ("dsocr_encode_pdf_" + name + ".safetensors");
    ASSERT_EQ(run("--mode base --page 2 --pdf-renderer " + name + " " + pdf + " --dump " + out.string()), 0) << name;
    SafetensorsFile dump(out.string());
    const Image page = PdfDocument(pdf, renderer).render_page(1, 144);
    const PageViews views = make_views(page, Mode::Base);
    const TensorView v = dump.get("view.global");
    ASSERT_EQ(v.shape, (std::vector<int64_t>{views.global.height, views.global.width, 3})) << name;
    EXPECT_EQ(std::memcmp(v.data, views.global.rgb.data(), views.global.rgb.size()), 0) << name;
    EXPECT_EQ(dump.header().metadata.at("page"), "2");
    EXPECT_EQ(dump.header().metadata.at("pdf_renderer"), name);
    // Page 1 differs (rotated the other way): the page asked for is the page encoded.
    const PageViews first = make_views(PdfDocument(pdf, renderer).render_page(0, 144), Mode::Base);
    EXPECT_NE(std::memcmp(v.data, first.global.rgb.data(), first.global.rgb.size()), 0) << name;
    fs::remove(out);
  }
  EXPECT_EQ(run("--mode tiny --page 3 " + pdf), 1);            // no such page: one line, exit 1
  EXPECT_EQ(run("--mode tiny --page 0 " + pdf), 2);            // usage
  EXPECT_EQ(run("--mode tiny --pdf-renderer pdfium " + pdf), 2);
  EXPECT_EQ(run("--mode tiny --page 2 " + kData + "/images/doc.png"), 1);  // an image with one page
}
