// io/pdf.h PdfDocument: in-memory documents, page sizes, and render_page's refusals (bad dpi, pages
// beyond the image limits) that come before any pixel is allocated.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/files.h"
#include "io/image.h"
#include "io/pdf.h"
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

PdfDocument from_memory(const std::string& bytes) {
  return PdfDocument(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.pdf");
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

TEST(Pdf, InMemoryDocumentRendersPixelsAndSizes) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const PdfDocument doc = from_memory(one_page_pdf("/MediaBox [0 0 100 50]", kBlueSquare));
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

TEST(Pdf, InMemoryAndFileDocumentsAgree) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
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
  const PdfDocument in_memory = from_memory(bytes);
  const PdfDocument on_disk(path);
  const Image a = in_memory.render_page(0, 72), b = on_disk.render_page(0, 72);
  EXPECT_EQ(a.width, 40);
  EXPECT_EQ(a.height, 30);
  EXPECT_EQ(a.rgb, b.rgb);
  fs::remove_all(dir);
}

TEST(Pdf, RenderRejectsADpiThatIsNotAFinitePositiveNumber) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const PdfDocument doc = from_memory(one_page_pdf("/MediaBox [0 0 100 50]", kBlueSquare));
  for (double dpi : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity(), 0.0, -72.0}) {
    const std::string e = error_of([&] { doc.render_page(0, dpi); });
    EXPECT_EQ(e, fmt::format("mem.pdf: dpi {} is not a finite number > 0", dpi)) << dpi;
  }
}

TEST(Pdf, HugePageIsRefusedBeforeAnythingIsAllocated) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  // 14400 x 14400 pt (200 x 200 inches, the PDF maximum): 28800^2 = 829 MP at 144 dpi.
  const PdfDocument doc = from_memory(one_page_pdf("/MediaBox [0 0 14400 14400]", kBlueSquare));
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 14400);
  EXPECT_EQ(error_of([&] { doc.render_page(0, 144); }),
            "mem.pdf: page 1 would be 28800x28800 pixels at 144 dpi (limit 40000 a side, 500 MP); use a lower --dpi");
  EXPECT_NE(error_of([&] { doc.render_page(0, 300); }).find("would be 60000x60000 pixels"), std::string::npos);
  // A long strip: within the pixel budget but over the side limit.
  const PdfDocument strip = from_memory(one_page_pdf("/MediaBox [0 0 14400 10]", kBlueSquare));
  EXPECT_NE(error_of([&] { strip.render_page(0, 250); }).find("would be 50000x35 pixels"), std::string::npos);
  // At a low dpi the same page renders.
  const Image small = doc.render_page(0, 0.5);
  EXPECT_EQ(small.width, 100);
  EXPECT_EQ(small.height, 100);
}

TEST(Pdf, TheCropBoxIsWhatIsRenderedAndMeasured) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const PdfDocument doc = from_memory(one_page_pdf("/MediaBox [0 0 14400 14400] /CropBox [0 0 100 50]", kBlueSquare));
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 100);
  EXPECT_DOUBLE_EQ(doc.page_size(0).height, 50);
  const Image im = doc.render_page(0, 144);  // the media box alone would be 829 MP
  EXPECT_EQ(im.width, 200);
  EXPECT_EQ(im.height, 100);
  EXPECT_EQ(pixel(im, 10, 90), (std::array<uint8_t, 3>{0, 0, 255}));
}

TEST(Pdf, ACropBoxLargerThanTheMediaBoxIsClippedToIt) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const PdfDocument doc = from_memory(one_page_pdf("/MediaBox [0 0 100 50] /CropBox [-500 -500 1000 1000]", kBlueSquare));
  EXPECT_DOUBLE_EQ(doc.page_size(0).width, 100);
  EXPECT_DOUBLE_EQ(doc.page_size(0).height, 50);
  const Image im = doc.render_page(0, 72);
  EXPECT_EQ(im.width, 100);
  EXPECT_EQ(im.height, 50);
}

TEST(Pdf, RotatedPageSwapsTheSides) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const PdfDocument doc = from_memory(one_page_pdf("/MediaBox [0 0 100 50] /Rotate 90", kBlueSquare));
  const Image im = doc.render_page(0, 72);
  EXPECT_EQ(im.width, 50);
  EXPECT_EQ(im.height, 100);
}

TEST(Pdf, EmptyPageBoxAndMissingPagesAreErrors) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const PdfDocument empty = from_memory(one_page_pdf("/MediaBox [0 0 0 50]", kBlueSquare));
  EXPECT_EQ(error_of([&] { empty.render_page(0, 72); }), "mem.pdf: page 1 has an empty page box");
  EXPECT_EQ(error_of([&] { empty.render_page(1, 72); }), "mem.pdf: page 2 does not exist (1 pages)");
  EXPECT_EQ(error_of([&] { empty.page_size(-1); }), "mem.pdf: page 0 does not exist (1 pages)");
}

TEST(Pdf, BrokenBytesAreErrors) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  EXPECT_EQ(error_of([] { from_memory(""); }), "mem.pdf: not a readable PDF (damaged or not a PDF)");
  EXPECT_EQ(error_of([] { from_memory("hello, not a PDF"); }), "mem.pdf: not a readable PDF (damaged or not a PDF)");
  // No page objects left at all.
  const std::string pdf = one_page_pdf("/MediaBox [0 0 100 50]", kBlueSquare);
  EXPECT_EQ(error_of([&] { from_memory(pdf.substr(0, 20)); }), "mem.pdf: not a readable PDF (damaged or not a PDF)");
}

TEST(Pdf, WithoutPdfSupportBothConstructorsRefuse) {
  if (pdf_supported()) GTEST_SKIP() << "built with PDF support";
  const std::string e = error_of([] { from_memory("%PDF-1.4"); });
  EXPECT_EQ(e, "mem.pdf: this dsocr was built without PDF support (rebuild with -DDSOCR_WITH_PDF=ON)");
}
