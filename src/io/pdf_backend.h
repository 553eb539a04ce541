// What a PDF renderer (pdf_mupdf.cpp, pdf_poppler.cpp) provides to PdfDocument (io/pdf.h), and the
// page sizing both share. PdfDocument checks page indices, dpi and image limits before it asks a
// backend anything, so backends only open, measure and draw.
#pragma once
#include <memory>
#include <string>

#include "io/image.h"

namespace dsocr {

// A page's visible area in points, in MuPDF's page space: origin at the top left, y downwards, the
// page's /Rotate applied (MuPDF's fz_bound_page, PyMuPDF's page.rect).
struct PdfPageBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// Whole device pixels; x1, y1 exclusive.
struct PdfPixelRect {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // integers (doubles so that a huge page cannot overflow)
  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
};

// The pixels PyMuPDF's page.get_pixmap(matrix=Matrix(s, s)) covers, s = dpi / 72: the box scaled in
// single precision (MuPDF computes in float) and rounded outwards, each edge allowed 0.001 pixel of
// rounding noise first (so 100.0004 pt at 144 dpi is 200 pixels, 609.71 pt is 1220).
PdfPixelRect pdf_pixel_rect(const PdfPageBox& box, double dpi);

// A document to open: a file, or bytes in memory.
struct PdfSource {
  std::string what;           // names it in errors (the path for a file)
  const uint8_t* data = nullptr;  // null: read the file `what`
  size_t size = 0;
};

class PdfBackend {
 public:
  virtual ~PdfBackend() = default;
  virtual int page_count() const = 0;
  virtual PdfPageBox page_box(int index) const = 0;  // index checked by the caller
  // The page drawn at `dpi` onto white: exactly `area`'s pixels (area from pdf_pixel_rect of page_box,
  // within the image limits). Throws Error naming `what` when the page cannot be drawn.
  virtual Image render(int index, double dpi, const PdfPixelRect& area) const = 0;
};

// Each throws Error (not a PDF, damaged beyond repair, encrypted, no pages) naming source.what. Defined
// only in builds with that renderer.
std::unique_ptr<PdfBackend> open_mupdf(const PdfSource& source);
std::unique_ptr<PdfBackend> open_poppler(const PdfSource& source);

}  // namespace dsocr
