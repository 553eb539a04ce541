// The poppler renderer (poppler-cpp, GPL: only built with DSOCR_WITH_PDF). Pages are sized as PyMuPDF
// sizes them (io/pdf_backend.h): poppler's crop box (already clipped to the media box), rotated by
// the page's /Rotate; the pixel area requested is PyMuPDF's, so a partly covered last row or column
// is kept (poppler alone would round it away). Degenerate boxes and /Rotate values that are not a
// multiple of 90 follow poppler's rules, not MuPDF's.
#include <limits>
#include <vector>

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include "core/error.h"
#include "io/pdf_backend.h"

namespace dsocr {

namespace {

void quiet_poppler(const std::string&, void*) {}

class PopplerBackend final : public PdfBackend {
 public:
  explicit PopplerBackend(const PdfSource& source) : what_(source.what) {
    poppler::set_debug_error_function(quiet_poppler, nullptr);
    if (!source.data) {
      doc_.reset(poppler::document::load_from_file(source.what));
    } else {
      if (source.size > size_t(std::numeric_limits<int>::max()))
        fail("{}: {} bytes is too large for a PDF in memory", what_, source.size);
      bytes_.assign(reinterpret_cast<const char*>(source.data), reinterpret_cast<const char*>(source.data) + source.size);
      doc_.reset(poppler::document::load_from_raw_data(bytes_.data(), int(source.size)));
    }
    if (!doc_) fail("{}: not a readable PDF (damaged or not a PDF)", what_);
    if (doc_->is_locked()) fail("{}: the PDF is encrypted (password protected)", what_);
    if (doc_->pages() <= 0) fail("{}: the PDF has no pages", what_);
  }

  int page_count() const override { return doc_->pages(); }

  PdfPageBox page_box(int index) const override {
    const std::unique_ptr<poppler::page> page = open_page(index);
    const poppler::rectf box = page->page_rect(poppler::crop_box);
    const poppler::page::orientation_enum o = page->orientation();
    const bool sideways = o == poppler::page::landscape || o == poppler::page::seascape;
    return {0, 0, sideways ? box.height() : box.width(), sideways ? box.width() : box.height()};
  }

  Image render(int index, double dpi, const PdfPixelRect& area) const override {
    const std::unique_ptr<poppler::page> page = open_page(index);
    poppler::page_renderer renderer;
    renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
    renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
    renderer.set_paper_color(0xffffffff);  // opaque white, like PyMuPDF's alpha=False
    renderer.set_image_format(poppler::image::format_argb32);
    const poppler::image img = renderer.render_page(page.get(), dpi, dpi, int(area.x0), int(area.y0),
                                                    int(area.width()), int(area.height()));
    if (!img.is_valid() || img.width() != int(area.width()) || img.height() != int(area.height()) ||
        img.bytes_per_row() < 4 * img.width())
      fail("{}: page {} could not be rendered", what_, index + 1);
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

 private:
  std::unique_ptr<poppler::page> open_page(int index) const {
    std::unique_ptr<poppler::page> page(doc_->create_page(index));
    if (!page) fail("{}: page {} cannot be read", what_, index + 1);
    return page;
  }

  std::string what_;
  std::vector<char> bytes_;  // an in-memory document's data: poppler reads it in place
  std::unique_ptr<poppler::document> doc_;
};

}  // namespace

std::unique_ptr<PdfBackend> open_poppler(const PdfSource& source) { return std::make_unique<PopplerBackend>(source); }

}  // namespace dsocr
