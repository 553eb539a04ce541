// The MuPDF renderer (AGPL: only built with DSOCR_WITH_MUPDF). A page is drawn the way PyMuPDF's
// page.get_pixmap(matrix=Matrix(s, s), alpha=False) draws it (the official PDF driver's call, s = 2 at
// 144 dpi): the page with its annotations recorded into a display list, an RGB pixmap over the page's
// rounded pixel area cleared to white, and a draw device scaling by s. With the same MuPDF (Debian's
// 1.21.1 in both libmupdf-dev and python3-fitz) the pixels are the same bytes.
//
// MuPDF reports errors by longjmp (fz_try / fz_catch): inside those blocks only plain C values live,
// and everything that can throw a C++ exception happens outside them.
#include <mupdf/fitz.h>

#include <cstdio>
#include <vector>

#include "core/error.h"
#include "io/pdf_backend.h"

namespace dsocr {

namespace {

void quiet_mupdf(void*, const char*) {}

class MuPdfBackend final : public PdfBackend {
 public:
  explicit MuPdfBackend(const PdfSource& source) : what_(source.what) {
    if (!ctx_) fail("{}: out of memory opening the PDF", what_);
    fz_set_error_callback(ctx_, quiet_mupdf, nullptr);
    fz_set_warning_callback(ctx_, quiet_mupdf, nullptr);
    if (source.data) bytes_.assign(source.data, source.data + source.size);  // MuPDF reads it in place
    if (!open(source.data ? nullptr : source.what.c_str())) fail("{}: not a readable PDF (damaged or not a PDF)", what_);
    if (fz_needs_password(ctx_, doc_)) fail("{}: the PDF is encrypted (password protected)", what_);
    pages_ = count_pages();
    if (pages_ <= 0) fail("{}: the PDF has no pages", what_);
  }

  int page_count() const override { return pages_; }

  PdfPageBox page_box(int index) const override {
    fz_rect box = fz_empty_rect;
    if (!bound_page(index, &box)) fail("{}: page {} cannot be read", what_, index + 1);
    return {box.x0, box.y0, box.x1, box.y1};
  }

  Image render(int index, double dpi, const PdfPixelRect& area) const override {
    Image out;
    out.width = int(area.width());
    out.height = int(area.height());
    out.rgb.resize(size_t(out.width) * size_t(out.height) * 3);  // MuPDF draws straight into it
    const fz_irect bbox = {int(area.x0), int(area.y0), int(area.x1), int(area.y1)};
    char message[256] = "";
    if (!draw(index, float(dpi / 72.0), bbox, out.rgb.data(), message, sizeof message))
      fail("{}: page {} could not be rendered ({})", what_, index + 1, message);
    return out;
  }

 private:
  bool open(const char* path) {
    fz_stream* stream = nullptr;
    fz_document* doc = nullptr;
    bool ok = true;
    fz_var(stream);
    fz_var(doc);
    fz_var(ok);
    fz_try(ctx_) {
      fz_register_document_handlers(ctx_);
      stream = path ? fz_open_file(ctx_, path) : fz_open_memory(ctx_, bytes_.data(), bytes_.size());
      doc = fz_open_document_with_stream(ctx_, "application/pdf", stream);
    }
    fz_always(ctx_) { fz_drop_stream(ctx_, stream); }
    fz_catch(ctx_) { ok = false; }
    handles_.doc = doc;
    return ok && doc_;
  }

  int count_pages() const {
    int n = 0;
    fz_var(n);
    fz_try(ctx_) { n = fz_count_pages(ctx_, doc_); }
    fz_catch(ctx_) { n = 0; }
    return n;
  }

  bool bound_page(int index, fz_rect* box) const {
    fz_page* page = nullptr;
    bool ok = true;
    fz_var(page);
    fz_var(ok);
    fz_try(ctx_) {
      page = fz_load_page(ctx_, doc_, index);
      *box = fz_bound_page(ctx_, page);
    }
    fz_always(ctx_) { fz_drop_page(ctx_, page); }
    fz_catch(ctx_) { ok = false; }
    return ok;
  }

  bool draw(int index, float scale, fz_irect bbox, unsigned char* samples, char* message, size_t message_size) const {
    fz_page* page = nullptr;
    fz_display_list* list = nullptr;
    fz_pixmap* pixmap = nullptr;
    fz_device* device = nullptr;
    bool ok = true;
    fz_var(page);
    fz_var(list);
    fz_var(pixmap);
    fz_var(device);
    fz_var(ok);
    fz_try(ctx_) {
      page = fz_load_page(ctx_, doc_, index);
      list = fz_new_display_list_from_page(ctx_, page);
      pixmap = fz_new_pixmap_with_bbox_and_data(ctx_, fz_device_rgb(ctx_), bbox, nullptr, 0, samples);
      fz_clear_pixmap_with_value(ctx_, pixmap, 0xff);
      device = fz_new_draw_device(ctx_, fz_scale(scale, scale), pixmap);
      fz_run_display_list(ctx_, list, device, fz_identity, fz_infinite_rect, nullptr);
      fz_close_device(ctx_, device);
    }
    fz_always(ctx_) {
      fz_drop_device(ctx_, device);
      fz_drop_pixmap(ctx_, pixmap);
      fz_drop_display_list(ctx_, list);
      fz_drop_page(ctx_, page);
    }
    fz_catch(ctx_) {
      ok = false;
      std::snprintf(message, message_size, "%s", fz_caught_message(ctx_));
    }
    return ok;
  }

  // Owns the context and the document, so that both go when a constructor check throws.
  struct Handles {
    fz_context* ctx = fz_new_context(nullptr, nullptr, FZ_STORE_DEFAULT);  // one per document: not shared by threads
    fz_document* doc = nullptr;
    ~Handles() {
      if (!ctx) return;
      fz_drop_document(ctx, doc);
      fz_drop_context(ctx);
    }
  };

  std::string what_;
  std::vector<uint8_t> bytes_;  // an in-memory document's data (declared before the document that reads it)
  Handles handles_;
  fz_context* const& ctx_ = handles_.ctx;
  fz_document* const& doc_ = handles_.doc;
  int pages_ = 0;
};

}  // namespace

std::unique_ptr<PdfBackend> open_mupdf(const PdfSource& source) { return std::make_unique<MuPdfBackend>(source); }

}  // namespace dsocr
