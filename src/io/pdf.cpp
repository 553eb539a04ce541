// PdfDocument on top of the renderers built in (io/pdf_backend.h): renderer choice, page checks,
// PyMuPDF's page sizing and the image limits, the same for every renderer.
#include "io/pdf.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "io/pdf_backend.h"

namespace dsocr {

namespace {
// Same bounds as the image decoder: a page that would rasterise larger than this is refused.
constexpr double kMaxSide = kMaxImageSide, kMaxPixels = double(kMaxImagePixels);

bool built_in(PdfRenderer r) {
#ifdef DSOCR_HAVE_MUPDF
  if (r == PdfRenderer::MuPdf) return true;
#endif
#ifdef DSOCR_HAVE_POPPLER
  if (r == PdfRenderer::Poppler) return true;
#endif
  return false;
}

PdfRenderer resolve(PdfRenderer r) {
  if (r != PdfRenderer::Default) return r;
  const std::vector<PdfRenderer> all = pdf_renderers();
  return all.empty() ? PdfRenderer::Default : all.front();
}

std::unique_ptr<PdfBackend> open_backend(PdfRenderer r, const PdfSource& source) {
#ifdef DSOCR_HAVE_MUPDF
  if (r == PdfRenderer::MuPdf) return open_mupdf(source);
#endif
#ifdef DSOCR_HAVE_POPPLER
  if (r == PdfRenderer::Poppler) return open_poppler(source);
#endif
  if (r == PdfRenderer::Default)
    fail("{}: this dsocr was built without PDF support (rebuild with -DDSOCR_WITH_MUPDF=ON or -DDSOCR_WITH_PDF=ON)",
         source.what);
  check_pdf_renderer(r);  // throws, saying how to build it
  fail("{}: no PDF renderer", source.what);
}

// MuPDF's outward rounding (fz_round_rect) of a coordinate already scaled in float.
double round_down(float v) { return std::floor(double(v + 0.001f)); }
double round_up(float v) { return std::ceil(double(v - 0.001f)); }
}  // namespace

std::vector<PdfRenderer> pdf_renderers() {
  std::vector<PdfRenderer> all;
  for (PdfRenderer r : {PdfRenderer::MuPdf, PdfRenderer::Poppler})
    if (built_in(r)) all.push_back(r);
  return all;
}

bool pdf_supported() { return !pdf_renderers().empty(); }

PdfRenderer parse_pdf_renderer(const std::string& name) {
  if (name == "mupdf") return PdfRenderer::MuPdf;
  if (name == "poppler") return PdfRenderer::Poppler;
  if (name == "default") return PdfRenderer::Default;
  fail("--pdf-renderer {}: must be mupdf or poppler", name);
}

std::string pdf_renderer_name(PdfRenderer renderer) {
  switch (resolve(renderer)) {
    case PdfRenderer::MuPdf: return "mupdf";
    case PdfRenderer::Poppler: return "poppler";
    case PdfRenderer::Default: break;
  }
  return "none";
}

void check_pdf_renderer(PdfRenderer renderer) {
  if (renderer == PdfRenderer::Default || built_in(renderer)) return;
  if (renderer == PdfRenderer::MuPdf)
    fail("--pdf-renderer mupdf: this dsocr was built without MuPDF (rebuild with -DDSOCR_WITH_MUPDF=ON)");
  fail("--pdf-renderer poppler: this dsocr was built without poppler (rebuild with -DDSOCR_WITH_PDF=ON)");
}

PdfPixelRect pdf_pixel_rect(const PdfPageBox& box, double dpi) {
  const float s = float(dpi / 72.0);
  return {round_down(float(box.x0) * s), round_down(float(box.y0) * s), round_up(float(box.x1) * s),
          round_up(float(box.y1) * s)};
}

PdfDocument::PdfDocument(const std::string& path, PdfRenderer renderer) : path_(path), renderer_(resolve(renderer)) {
  if (renderer_ != PdfRenderer::Default && !std::filesystem::is_regular_file(path)) fail("{}: no such file", path);
  backend_ = open_backend(renderer_, PdfSource{path, nullptr, 0});
}

PdfDocument::PdfDocument(const uint8_t* data, size_t size, const std::string& what, PdfRenderer renderer)
    : path_(what), renderer_(resolve(renderer)) {
  static const uint8_t kEmpty = 0;
  backend_ = open_backend(renderer_, PdfSource{what, data ? data : &kEmpty, size});
}

PdfDocument::~PdfDocument() = default;

int PdfDocument::page_count() const { return backend_->page_count(); }

namespace {
void check_page(const PdfBackend& backend, int index, const std::string& what) {
  if (index < 0 || index >= backend.page_count())
    fail("{}: page {} does not exist ({} pages)", what, index + 1, backend.page_count());
}
}  // namespace

PdfPageSize PdfDocument::page_size(int index) const {
  check_page(*backend_, index, path_);
  const PdfPageBox box = backend_->page_box(index);
  return {box.x1 - box.x0, box.y1 - box.y0};
}

Image PdfDocument::render_page(int index, double dpi) const {
  if (!(std::isfinite(dpi) && dpi > 0)) fail("{}: dpi {} is not a finite number > 0", path_, dpi);
  check_page(*backend_, index, path_);
  const PdfPixelRect area = pdf_pixel_rect(backend_->page_box(index), dpi);
  const double w = area.width(), h = area.height();
  if (!(w >= 1 && h >= 1)) fail("{}: page {} has an empty page box", path_, index + 1);
  if (!(w <= kMaxSide && h <= kMaxSide && w * h <= kMaxPixels))
    fail("{}: page {} would be {:.0f}x{:.0f} pixels at {} dpi (limit {} a side, {} MP); use a lower --dpi", path_,
         index + 1, w, h, dpi, kMaxSide, kMaxPixels / 1e6);
  Image out = backend_->render(index, dpi, area);
  if (out.width != int(w) || out.height != int(h) || out.rgb.size() != size_t(out.width) * size_t(out.height) * 3)
    fail("{}: page {} could not be rendered", path_, index + 1);
  return out;
}

}  // namespace dsocr
