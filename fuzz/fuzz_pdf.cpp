// libFuzzer target: arbitrary bytes as a PDF through dsocr's own wrapper (io/pdf.h, in memory):
// page_count, page_size and render_page of the first pages at a low dpi. Rejection must be a
// dsocr::Error; nothing may crash, hang or allocate without bound. render_page must refuse a bad
// dpi and a page beyond the image limits, and never return more pixels than the page size implies.
// Every renderer built in (MuPDF, poppler) gets every input. Built only with PDF support.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "io/image.h"
#include "io/pdf.h"

namespace {

constexpr int kMaxFuzzPages = 2;
constexpr double kMaxFuzzPixels = 256.0 * 1024;  // per rendered page
constexpr double kMaxFuzzDpi = 36;

bool throws_error(const dsocr::PdfDocument& doc, int page, double dpi) {
  try {
    doc.render_page(page, dpi);
  } catch (const dsocr::Error&) {
    return true;
  }
  return false;
}

void check_page(const dsocr::PdfDocument& doc, int page) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (double dpi : {nan, inf, 0.0, -1.0})
    if (!throws_error(doc, page, dpi)) std::abort();

  const dsocr::PdfPageSize size = doc.page_size(page);
  const double w = size.width, h = size.height;
  if (!(w > 0 && h > 0 && std::isfinite(w) && std::isfinite(h))) {
    doc.render_page(page, kMaxFuzzDpi);  // must throw (empty box) or be tiny; checked below if it returns
    return;
  }
  // A dpi that puts the longer side past kMaxImageSide must be refused before rendering.
  const double over = 72.0 * (dsocr::kMaxImageSide + 2) / std::max(w, h);
  if (std::isfinite(over) && !throws_error(doc, page, over)) std::abort();

  const double dpi = std::min(kMaxFuzzDpi, 72.0 * std::sqrt(kMaxFuzzPixels / (w * h)));
  const dsocr::Image image = doc.render_page(page, dpi);
  const double max_w = std::ceil(w * dpi / 72) + 1, max_h = std::ceil(h * dpi / 72) + 1;
  if (image.width <= 0 || image.height <= 0 || double(image.width) * image.height > max_w * max_h ||
      image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    std::abort();
}

}  // namespace

// fontconfig (which poppler asks for a substitute font the first time a PDF names one) keeps 288
// bytes for the life of the process: the same 288 bytes after 1 or 50 renderings of a text PDF, so
// not a per-document leak. LeakSanitizer would otherwise report it at the first such input.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (dsocr::PdfRenderer renderer : dsocr::pdf_renderers()) {
    try {
      const dsocr::PdfDocument doc(data, size, "fuzz.pdf", renderer);
      if (doc.page_count() < 1) std::abort();
      for (int page = 0; page < std::min(doc.page_count(), kMaxFuzzPages); ++page) {
        try {
          check_page(doc, page);
        } catch (const dsocr::Error&) {
        }
      }
    } catch (const dsocr::Error&) {
    }
  }
  return 0;
}
