// PDF input: page count, page size and rasterisation of one page at a given dpi, by one of two
// renderers built in on request: MuPDF (AGPL, -DDSOCR_WITH_MUPDF; the default when built in: its pixels
// equal PyMuPDF's, which the official pipeline renders with) or poppler (GPL, -DDSOCR_WITH_PDF). Both
// size pages as PyMuPDF does (io/pdf_backend.h): the page box, rotated by /Rotate, scaled by dpi / 72
// and rounded outwards to whole pixels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/image.h"

namespace dsocr {

enum class PdfRenderer {
  Default,  // the first of pdf_renderers(): MuPDF when built in, else poppler
  MuPdf,
  Poppler,
};

// The renderers this build has, the default first; empty when built without PDF support.
std::vector<PdfRenderer> pdf_renderers();
bool pdf_supported();  // false when built without any renderer

// "mupdf" | "poppler" (or "default"); throws Error naming the value otherwise. Does not check that it is built in.
PdfRenderer parse_pdf_renderer(const std::string& name);
// Default resolved to the renderer it stands for ("none" when no renderer is built in).
std::string pdf_renderer_name(PdfRenderer renderer);
// Throws Error when `renderer` is not built in, saying how to build it.
void check_pdf_renderer(PdfRenderer renderer);

// A page's size in points (1/72 inch): its crop box (clipped to the media box), rotated by the page's
// /Rotate: the area render_page rasterises.
struct PdfPageSize {
  double width = 0, height = 0;
};

class PdfBackend;

class PdfDocument {
 public:
  // Both throw Error (broken, encrypted, no pages, renderer not built in) naming the file.
  explicit PdfDocument(const std::string& path, PdfRenderer renderer = PdfRenderer::Default);
  // A PDF held in memory (copied); `what` names it in errors.
  PdfDocument(const uint8_t* data, size_t size, const std::string& what, PdfRenderer renderer = PdfRenderer::Default);
  ~PdfDocument();
  PdfRenderer renderer() const { return renderer_; }  // never Default
  int page_count() const;
  PdfPageSize page_size(int index) const;  // index from 0; throws Error for a page that does not exist
  // index from 0; RGB on white, the page's pixel area at `dpi` as PyMuPDF computes it (about
  // size * dpi / 72 a side, rounded outwards). Throws Error for a dpi that is not a finite number > 0,
  // for an empty page box, and for a page that would exceed the decoder's image limits (kMaxImageSide
  // a side, kMaxImagePixels in all), before allocating anything.
  Image render_page(int index, double dpi) const;

 private:
  std::unique_ptr<PdfBackend> backend_;
  std::string path_;
  PdfRenderer renderer_ = PdfRenderer::Default;
};

}  // namespace dsocr
