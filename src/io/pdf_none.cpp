// Built without poppler (-DDSOCR_WITH_PDF=OFF): PDF input reports that clearly.
#include "core/error.h"
#include "io/pdf.h"

namespace dsocr {

bool pdf_supported() { return false; }

struct PdfDocument::Impl {};

PdfDocument::PdfDocument(const std::string& path) : path_(path) {
  fail("{}: this dsocr was built without PDF support (rebuild with -DDSOCR_WITH_PDF=ON)", path);
}
PdfDocument::PdfDocument(std::string, const std::string& what) : path_(what) {
  fail("{}: this dsocr was built without PDF support (rebuild with -DDSOCR_WITH_PDF=ON)", what);
}
PdfDocument::~PdfDocument() = default;
int PdfDocument::page_count() const { return 0; }
Image PdfDocument::render_page(int, double) const { return {}; }

}  // namespace dsocr
