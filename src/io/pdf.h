// PDF input: page count and rasterisation of one page at a given dpi (poppler, optional).
#pragma once
#include <memory>
#include <string>

#include "io/image.h"

namespace dsocr {

bool pdf_supported();  // false when built without poppler

class PdfDocument {
 public:
  explicit PdfDocument(const std::string& path);  // throws Error (broken, encrypted, no PDF support)
  // A PDF held in memory (e.g. read from stdin); `what` names it in errors.
  PdfDocument(std::string bytes, const std::string& what);
  ~PdfDocument();
  int page_count() const;
  Image render_page(int index, double dpi) const;  // index from 0; RGB

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace dsocr
