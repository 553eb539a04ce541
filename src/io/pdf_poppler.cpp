// PDF pages rasterised in-process with poppler-cpp (GPL: only built with DSOCR_WITH_PDF).
#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include "core/error.h"
#include "io/pdf.h"

namespace dsocr {

namespace {
// Same bounds as the image decoder: a page that would rasterise larger than this is refused.
constexpr double kMaxSide = kMaxImageSide, kMaxPixels = double(kMaxImagePixels);

void quiet_poppler(const std::string&, void*) {}
}  // namespace

bool pdf_supported() { return true; }

struct PdfDocument::Impl {
  std::vector<char> bytes;  // an in-memory document's data: poppler reads it in place
  std::unique_ptr<poppler::document> doc;
};

namespace {
void check_document(const poppler::document* doc, const std::string& what) {
  if (!doc) fail("{}: not a readable PDF (damaged or not a PDF)", what);
  if (doc->is_locked()) fail("{}: the PDF is encrypted (password protected)", what);
  if (doc->pages() <= 0) fail("{}: the PDF has no pages", what);
}
}  // namespace

PdfDocument::PdfDocument(const std::string& path) : impl_(std::make_unique<Impl>()), path_(path) {
  poppler::set_debug_error_function(quiet_poppler, nullptr);
  if (!std::filesystem::is_regular_file(path)) fail("{}: no such file", path);
  impl_->doc.reset(poppler::document::load_from_file(path));
  check_document(impl_->doc.get(), path);
}

PdfDocument::PdfDocument(const uint8_t* data, size_t size, const std::string& what)
    : impl_(std::make_unique<Impl>()), path_(what) {
  poppler::set_debug_error_function(quiet_poppler, nullptr);
  if (size > size_t(std::numeric_limits<int>::max())) fail("{}: {} bytes is too large for a PDF in memory", what, size);
  impl_->bytes.assign(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  impl_->doc.reset(poppler::document::load_from_raw_data(impl_->bytes.data(), int(size)));
  check_document(impl_->doc.get(), what);
}

PdfDocument::~PdfDocument() = default;

int PdfDocument::page_count() const { return impl_->doc->pages(); }

namespace {
std::unique_ptr<poppler::page> open_page(const poppler::document& doc, int index, const std::string& what) {
  if (index < 0 || index >= doc.pages()) fail("{}: page {} does not exist ({} pages)", what, index + 1, doc.pages());
  std::unique_ptr<poppler::page> page(doc.create_page(index));
  if (!page) fail("{}: page {} cannot be read", what, index + 1);
  return page;
}
}  // namespace

PdfPageSize PdfDocument::page_size(int index) const {
  const poppler::rectf box = open_page(*impl_->doc, index, path_)->page_rect(poppler::crop_box);
  return {box.width(), box.height()};
}

Image PdfDocument::render_page(int index, double dpi) const {
  if (!(std::isfinite(dpi) && dpi > 0)) fail("{}: dpi {} is not a finite number > 0", path_, dpi);
  const std::unique_ptr<poppler::page> page = open_page(*impl_->doc, index, path_);
  // The crop box is what poppler rasterises (clipped to the media box, rounded to whole pixels).
  const poppler::rectf box = page->page_rect(poppler::crop_box);
  const double w = std::ceil(box.width() * dpi / 72.0), h = std::ceil(box.height() * dpi / 72.0);
  if (!(w >= 1 && h >= 1)) fail("{}: page {} has an empty page box", path_, index + 1);
  if (!(w <= kMaxSide && h <= kMaxSide && w * h <= kMaxPixels))
    fail("{}: page {} would be {:.0f}x{:.0f} pixels at {} dpi (limit {} a side, {} MP); use a lower --dpi", path_,
         index + 1, w, h, dpi, kMaxSide, kMaxPixels / 1e6);
  poppler::page_renderer renderer;
  renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
  renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
  renderer.set_paper_color(0xffffffff);  // opaque white, like PyMuPDF's alpha=False
  renderer.set_image_format(poppler::image::format_argb32);
  poppler::image img = renderer.render_page(page.get(), dpi, dpi);
  if (!img.is_valid() || img.width() <= 0 || img.height() <= 0 || img.bytes_per_row() < 4 * img.width())
    fail("{}: page {} could not be rendered", path_, index + 1);
  Image out;
  out.width = img.width();
  out.height = img.height();
  out.rgb.resize(size_t(out.width) * size_t(out.height) * 3);
  const int stride = img.bytes_per_row();
  const auto* data = reinterpret_cast<const uint8_t*>(img.const_data());
  for (int y = 0; y < out.height; ++y) {
    const uint8_t* src = data + size_t(y) * size_t(stride);
    uint8_t* dst = out.rgb.data() + size_t(y) * size_t(out.width) * 3;
    for (int x = 0; x < out.width; ++x) {  // ARGB32 in native (little-endian) order: B, G, R, A
      dst[3 * x + 0] = src[4 * x + 2];
      dst[3 * x + 1] = src[4 * x + 1];
      dst[3 * x + 2] = src[4 * x + 0];
    }
  }
  return out;
}

}  // namespace dsocr
