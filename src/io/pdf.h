// PDF input: page count and rasterisation of one page at a given dpi (poppler, optional).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "io/image.h"

namespace dsocr {

bool pdf_supported();  // false when built without poppler

// A page's size in points (1/72 inch): its crop box, the area render_page rasterises.
struct PdfPageSize {
  double width = 0, height = 0;
};

class PdfDocument {
 public:
  // Both throw Error (broken, encrypted, no pages, no PDF support) naming the file.
  explicit PdfDocument(const std::string& path);
  // A PDF held in memory (copied); `what` names it in errors.
  PdfDocument(const uint8_t* data, size_t size, const std::string& what);
  ~PdfDocument();
  int page_count() const;
  PdfPageSize page_size(int index) const;  // index from 0; throws Error for a page that does not exist
  // index from 0; RGB, ceil(size * dpi / 72) pixels a side (rotated by the page's /Rotate). Throws
  // Error for a dpi that is not a finite number > 0 and for a page that would exceed the decoder's
  // image limits (kMaxImageSide a side, kMaxImagePixels in all), before allocating anything.
  Image render_page(int index, double dpi) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace dsocr
