// io/pdf.h PdfDocument with each renderer built in: in-memory documents, page sizes, render_page's
// refusals (bad dpi, pages beyond the image limits) that come before any pixel is allocated, and pages
// against PyMuPDF's renders of tests/data/pdf (references.json, made by tools/make_pdf_references.py):
// MuPDF's bytes equal, poppler's size equal and its pixel difference measured.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"
#include "io/files.h"
#include "io/image.h"
#include "io/pdf.h"
#include "io/pdf_backend.h"
#include "io/pdf_writer.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

// A one-page PDF 1.4 with a correct cross-reference table. page_keys go into the page dictionary
// (e.g. "/MediaBox [0 0 100 50]"); content is the page's content stream.
std::string one_page_pdf(const std::string& page_keys, const std::string& content) {
  const std::vector<std::string> objects = {
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R " + page_keys + " /Contents 4 0 R >>",
      "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream",
  };
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t o : offsets) pdf += fmt::format("{:010d} 00000 n \n", o);
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
         std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

PdfDocument from_memory(const std::string& bytes, PdfRenderer renderer = PdfRenderer::Default) {
  return PdfDocument(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.pdf", renderer);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::array<uint8_t, 3> pixel(const Image& im, int x, int y) {
  const uint8_t* p = im.rgb.data() + (size_t(y) * size_t(im.width) + size_t(x)) * 3;
  return {p[0], p[1], p[2]};
}

// A blue 10 x 10 pt square in the bottom-left corner of a white page.
const std::string kBlueSquare = "0 0 1 rg 0 0 10 10 re f";

}  // namespace

// Every test below runs once per renderer built in.
class PdfRender : public ::testing::TestWithParam<PdfRenderer> {
 protected:
  PdfDocument open(const std::string& bytes) const { return from_memory(bytes, GetParam()); }
};

TEST_P(PdfRender, InMemoryDocumentRendersPixelsAndSizes) {
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 100 50]", kBlueSquare));
  ASSERT_EQ(doc.page_count(), 1);
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 100);
  EXPECT_DOUBLE_EQ(doc.page_size(0).height, 50);
  const Image im = doc.render_page(0, 72);
  ASSERT_EQ(im.width, 100);
  ASSERT_EQ(im.height, 50);
  EXPECT_EQ(pixel(im, 5, 45), (std::array<uint8_t, 3>{0, 0, 255}));  // PDF y grows upwards
  EXPECT_EQ(pixel(im, 50, 10), (std::array<uint8_t, 3>{255, 255, 255}));
  const Image half = doc.render_page(0, 36);
  EXPECT_EQ(half.width, 50);
  EXPECT_EQ(half.height, 25);
}

TEST_P(PdfRender, InMemoryAndFileDocumentsAgree) {
  const fs::path dir = fs::temp_directory_path() / "dsocr_test_pdf_agree";
  fs::create_directories(dir);
  Image page;
  page.width = 40;
  page.height = 30;
  page.rgb.resize(40 * 30 * 3);
  for (size_t i = 0; i < page.rgb.size(); ++i) page.rgb[i] = uint8_t(i * 7);
  const std::string path = (dir / "p.pdf").string();
  write_images_pdf({page}, path);
  const std::string bytes = read_file_text(path);
  const PdfDocument in_memory = open(bytes);
  const PdfDocument on_disk(path, GetParam());
  const Image a = in_memory.render_page(0, 72), b = on_disk.render_page(0, 72);
  EXPECT_EQ(a.width, 40);
  EXPECT_EQ(a.height, 30);
  EXPECT_EQ(a.rgb, b.rgb);
  fs::remove_all(dir);
}

TEST_P(PdfRender, RenderRejectsADpiThatIsNotAFinitePositiveNumber) {
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 100 50]", kBlueSquare));
  for (double dpi : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity(), 0.0, -72.0}) {
    const std::string e = error_of([&] { doc.render_page(0, dpi); });
    EXPECT_EQ(e, fmt::format("mem.pdf: dpi {} is not a finite number > 0", dpi)) << dpi;
  }
}

TEST_P(PdfRender, HugePageIsRefusedBeforeAnythingIsAllocated) {
  // 14400 x 14400 pt (200 x 200 inches, the PDF maximum): 28800^2 = 829 MP at 144 dpi.
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 14400 14400]", kBlueSquare));
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 14400);
  EXPECT_EQ(error_of([&] { doc.render_page(0, 144); }),
            "mem.pdf: page 1 would be 28800x28800 pixels at 144 dpi (limit 40000 a side, 500 MP); use a lower --dpi");
  EXPECT_NE(error_of([&] { doc.render_page(0, 300); }).find("would be 60000x60000 pixels"), std::string::npos);
  // A long strip: within the pixel budget but over the side limit.
  const PdfDocument strip = open(one_page_pdf("/MediaBox [0 0 14400 10]", kBlueSquare));
  EXPECT_NE(error_of([&] { strip.render_page(0, 250); }).find("would be 50000x35 pixels"), std::string::npos);
  // At a low dpi the same page renders.
  const Image small = doc.render_page(0, 0.5);
  EXPECT_EQ(small.width, 100);
  EXPECT_EQ(small.height, 100);
}

TEST_P(PdfRender, TheCropBoxIsWhatIsRenderedAndMeasured) {
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 14400 14400] /CropBox [0 0 100 50]", kBlueSquare));
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 100);
  EXPECT_DOUBLE_EQ(doc.page_size(0).height, 50);
  const Image im = doc.render_page(0, 144);  // the media box alone would be 829 MP
  EXPECT_EQ(im.width, 200);
  EXPECT_EQ(im.height, 100);
  EXPECT_EQ(pixel(im, 10, 90), (std::array<uint8_t, 3>{0, 0, 255}));
}

TEST_P(PdfRender, ACropBoxLargerThanTheMediaBoxIsClippedToIt) {
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 100 50] /CropBox [-500 -500 1000 1000]", kBlueSquare));
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 100);
  EXPECT_DOUBLE_EQ(doc.page_size(0).height, 50);
  const Image im = doc.render_page(0, 72);
  EXPECT_EQ(im.width, 100);
  EXPECT_EQ(im.height, 50);
}

TEST_P(PdfRender, RotatedPageSwapsTheSides) {
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 100 50] /Rotate 90", kBlueSquare));
  const Image im = doc.render_page(0, 72);
  EXPECT_EQ(im.width, 50);
  EXPECT_EQ(im.height, 100);
}

TEST_P(PdfRender, EmptyPageBoxAndMissingPagesAreErrors) {
  const PdfDocument empty = open(one_page_pdf("/MediaBox [0 0 0 50]", kBlueSquare));
  if (GetParam() == PdfRenderer::MuPdf) {  // MuPDF (and so PyMuPDF) shows an empty media box as US Letter
    const Image im = empty.render_page(0, 144);
    EXPECT_EQ(im.width, 1224);
    EXPECT_EQ(im.height, 1584);
  } else {
    EXPECT_EQ(error_of([&] { empty.render_page(0, 72); }), "mem.pdf: page 1 has an empty page box");
  }
  EXPECT_EQ(error_of([&] { empty.render_page(1, 72); }), "mem.pdf: page 2 does not exist (1 pages)");
  EXPECT_EQ(error_of([&] { empty.page_size(-1); }), "mem.pdf: page 0 does not exist (1 pages)");
}

TEST_P(PdfRender, BrokenBytesAreErrors) {
  EXPECT_EQ(error_of([&] { open(""); }), "mem.pdf: not a readable PDF (damaged or not a PDF)");
  EXPECT_EQ(error_of([&] { open("hello, not a PDF"); }), "mem.pdf: not a readable PDF (damaged or not a PDF)");
  // No page objects left at all.
  const std::string pdf = one_page_pdf("/MediaBox [0 0 100 50]", kBlueSquare);
  EXPECT_EQ(error_of([&] { open(pdf.substr(0, 20)); }), "mem.pdf: not a readable PDF (damaged or not a PDF)");
}

TEST_P(PdfRender, APageIsSizedByOutwardRoundingOfItsScaledBox) {
  // 609.71 x 789.04 pt at 144 dpi: 1219.42 x 1578.08 pixels, which PyMuPDF (and so both renderers) make
  // 1220 x 1579; poppler on its own would round to 1219 x 1578.
  const PdfDocument doc = open(one_page_pdf("/MediaBox [0 0 609.71 789.04]", kBlueSquare));
  EXPECT_NEAR(doc.page_size(0).width, 609.71, 1e-4);
  const Image im = doc.render_page(0, 144);
  EXPECT_EQ(im.width, 1220);
  EXPECT_EQ(im.height, 1579);
  // The crop box, rotated: 50.4 x 34.9 pt -> 34.9 x 50.4 -> 70 x 101 pixels.
  const PdfDocument rotated = open(one_page_pdf("/MediaBox [0 0 100 50] /CropBox [10.3 5.2 60.7 40.1] /Rotate 270", kBlueSquare));
  EXPECT_NEAR(rotated.page_size(0).width, 34.9, 1e-4);
  EXPECT_NEAR(rotated.page_size(0).height, 50.4, 1e-4);
  const Image r = rotated.render_page(0, 144);
  EXPECT_EQ(r.width, 70);
  EXPECT_EQ(r.height, 101);
}

namespace {

struct Reference {
  std::string file, what, sha256;
  int page = 0, width = 0, height = 0;
};

std::vector<Reference> references() {
  const nlohmann::json j = nlohmann::json::parse(read_file_text(std::string(DSOCR_TEST_DATA) + "/pdf/references.json"));
  EXPECT_EQ(j.at("dpi").get<double>(), 144);
  std::vector<Reference> refs;
  for (const auto& p : j.at("pages"))
    refs.push_back({p.at("file"), p.at("what"), p.at("rgb_sha256"), p.at("page"), p.at("width"), p.at("height")});
  return refs;
}

std::string rgb_sha256(const Image& im) {
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(im.rgb.data()), im.rgb.size()));
}

Image render(const Reference& ref, PdfRenderer renderer) {
  return PdfDocument(std::string(DSOCR_TEST_DATA) + "/pdf/" + ref.file, renderer).render_page(ref.page - 1, 144);
}

}  // namespace

TEST_P(PdfRender, PagesAreSizedAsPyMuPdfSizesThem) {
  const std::vector<Reference> refs = references();
  ASSERT_GE(refs.size(), 6u);
  for (const Reference& ref : refs) {
    const Image im = render(ref, GetParam());
    EXPECT_EQ(im.width, ref.width) << ref.file << " page " << ref.page;
    EXPECT_EQ(im.height, ref.height) << ref.file << " page " << ref.page;
  }
}

// The official pipeline's page images, byte for byte.
TEST(PdfMuPdf, PagesEqualPyMuPdfsPixels) {
#ifndef DSOCR_HAVE_MUPDF
  GTEST_SKIP() << "built without MuPDF";
#endif
  for (const Reference& ref : references()) {
    const Image im = render(ref, PdfRenderer::MuPdf);
    EXPECT_EQ(rgb_sha256(im), ref.sha256) << ref.file << " page " << ref.page << " (" << ref.what << ")";
  }
}

namespace {

// Mean absolute difference of two same-sized RGB images after averaging each over 4 x 4 pixel blocks:
// anti-aliasing and resampling differences mostly cancel at that scale, a page drawn shifted, rotated,
// cropped otherwise or not at all does not.
double block_difference(const Image& a, const Image& b) {
  constexpr int kBlock = 4;
  double sum = 0;
  size_t n = 0;
  for (int by = 0; by + kBlock <= a.height; by += kBlock)
    for (int bx = 0; bx + kBlock <= a.width; bx += kBlock)
      for (int c = 0; c < 3; ++c) {
        int sa = 0, sb = 0;
        for (int y = by; y < by + kBlock; ++y)
          for (int x = bx; x < bx + kBlock; ++x) {
            sa += a.rgb[(size_t(y) * size_t(a.width) + size_t(x)) * 3 + size_t(c)];
            sb += b.rgb[(size_t(y) * size_t(b.width) + size_t(x)) * 3 + size_t(c)];
          }
        sum += std::abs(sa - sb) / double(kBlock * kBlock);
        ++n;
      }
  return sum / double(n);
}

}  // namespace

// Poppler draws the same page areas with its own rasteriser: its difference from MuPDF (= PyMuPDF, by
// the test above) is measured and printed (the README quotes these figures), and bounded at a scale
// where only a wrong page (shifted, blank, mis-rotated, another crop) would break the bound: under a
// third of the page's own difference from a white page (measured: 0 to 0.18 of it; poppler's
// downscaled scan sits about a pixel to the lower right of MuPDF's).
TEST(PdfPoppler, PagesDifferFromPyMuPdfsOnlyInRasterDetail) {
  if (pdf_renderers().size() < 2) GTEST_SKIP() << "needs both MuPDF and poppler";
  for (const Reference& ref : references()) {
    const Image mu = render(ref, PdfRenderer::MuPdf), pop = render(ref, PdfRenderer::Poppler);
    ASSERT_EQ(mu.rgb.size(), pop.rgb.size()) << ref.file;
    size_t differ = 0, over_64 = 0;
    double sum = 0;
    for (size_t i = 0; i < mu.rgb.size(); i += 3) {
      int worst = 0;
      for (size_t c = 0; c < 3; ++c) {
        const int d = std::abs(int(mu.rgb[i + c]) - int(pop.rgb[i + c]));
        sum += d;
        worst = std::max(worst, d);
      }
      differ += worst > 0;
      over_64 += worst > 64;
    }
    const double pixels = double(mu.rgb.size() / 3), block = block_difference(mu, pop);
    const double blank = block_difference(mu, make_image(mu.width, mu.height, 255, 255, 255));
    std::printf("poppler vs PyMuPDF, %s page %d (%s): %.1f%% of pixels differ, %.1f%% by more than 64, mean abs "
                "%.2f; 4x4 blocks %.2f (a white page: %.2f)\n",
                ref.file.c_str(), ref.page, ref.what.c_str(), 100.0 * double(differ) / pixels,
                100.0 * double(over_64) / pixels, sum / double(mu.rgb.size()), block, blank);
    EXPECT_LT(block, blank / 3) << ref.file << " page " << ref.page;
  }
}

TEST(PdfRenderers, NamesAndTheDefault) {
  EXPECT_EQ(parse_pdf_renderer("mupdf"), PdfRenderer::MuPdf);
  EXPECT_EQ(parse_pdf_renderer("poppler"), PdfRenderer::Poppler);
  EXPECT_EQ(error_of([] { parse_pdf_renderer("pdfium"); }), "--pdf-renderer pdfium: must be mupdf or poppler");
  const std::vector<PdfRenderer> all = pdf_renderers();
#ifdef DSOCR_HAVE_MUPDF
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), PdfRenderer::MuPdf);  // MuPDF first whenever it is built in
  EXPECT_EQ(pdf_renderer_name(PdfRenderer::Default), "mupdf");
#else
  EXPECT_EQ(error_of([] { check_pdf_renderer(PdfRenderer::MuPdf); }),
            "--pdf-renderer mupdf: this dsocr was built without MuPDF (rebuild with -DDSOCR_WITH_MUPDF=ON)");
#endif
#ifndef DSOCR_HAVE_POPPLER
  EXPECT_EQ(error_of([] { check_pdf_renderer(PdfRenderer::Poppler); }),
            "--pdf-renderer poppler: this dsocr was built without poppler (rebuild with -DDSOCR_WITH_PDF=ON)");
#endif
  EXPECT_EQ(pdf_supported(), !all.empty());
  if (all.empty()) {
    EXPECT_EQ(pdf_renderer_name(PdfRenderer::Default), "none");
  }
}

TEST(PdfSizing, OutwardRoundingWithMuPdfsTolerance) {
  const auto size = [](double w, double h, double dpi) {
    const PdfPixelRect r = pdf_pixel_rect({0, 0, w, h}, dpi);
    EXPECT_EQ(r.x0, 0);
    EXPECT_EQ(r.y0, 0);
    return std::array<double, 2>{r.width(), r.height()};
  };
  EXPECT_EQ(size(100, 50, 144), (std::array<double, 2>{200, 100}));
  EXPECT_EQ(size(609.71, 789.04, 144), (std::array<double, 2>{1220, 1579}));
  EXPECT_EQ(size(100.0004, 50.0006, 144), (std::array<double, 2>{200, 101}));  // 0.0008 px is noise, 0.0012 is not
  EXPECT_EQ(size(612, 792, 72), (std::array<double, 2>{612, 792}));
  EXPECT_EQ(size(14400, 14400, 300), (std::array<double, 2>{60000, 60000}));
  const PdfPixelRect shifted = pdf_pixel_rect({10.25, 0.2, 20.5, 10}, 144);
  EXPECT_EQ(shifted.x0, 20);
  EXPECT_EQ(shifted.x1, 41);
  EXPECT_EQ(shifted.y0, 0);
}

INSTANTIATE_TEST_SUITE_P(Renderers, PdfRender, ::testing::ValuesIn(pdf_renderers()),
                         [](const ::testing::TestParamInfo<PdfRenderer>& info) { return pdf_renderer_name(info.param); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PdfRender);

TEST(PdfNone, WithoutPdfSupportBothConstructorsRefuse) {
  if (pdf_supported()) GTEST_SKIP() << "built with PDF support";
  const std::string e = error_of([] { from_memory("%PDF-1.4"); });
  EXPECT_EQ(e,
            "mem.pdf: this dsocr was built without PDF support (rebuild with -DDSOCR_WITH_MUPDF=ON or "
            "-DDSOCR_WITH_PDF=ON)");
  EXPECT_NE(error_of([] { PdfDocument("some.pdf"); }).find("some.pdf: this dsocr was built without PDF support"),
            std::string::npos);
}
