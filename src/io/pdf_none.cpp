// Built without poppler (-DDSOCR_WITH_PDF=OFF): PDF input reports that clearly.
#include "core/error.h"
#include "io/pdf.h"

namespace dsocr {

bool pdf_supported() { return false; }

struct PdfDocument::Impl {};

namespace {
[[noreturn]] void no_pdf_support(const std::string& what) {
  fail("{}: this dsocr was built without PDF support (rebuild with -DDSOCR_WITH_PDF=ON)", what);
}
}  // namespace

PdfDocument::PdfDocument(const std::string& path) : path_(path) { no_pdf_support(path); }
PdfDocument::PdfDocument(const uint8_t*, size_t, const std::string& what) : path_(what) { no_pdf_support(what); }
PdfDocument::~PdfDocument() = default;
int PdfDocument::page_count() const { return 0; }
PdfPageSize PdfDocument::page_size(int) const { return {}; }
Image PdfDocument::render_page(int, double) const { return {}; }

}  // namespace dsocr
