// Writing PDF files: a low-level object writer (PdfFileWriter) shared by the image-only PDF of
// annotated pages (ImagePdfWriter, the `_layouts.pdf`; the official PDF driver uses img2pdf) and
// the searchable PDF of io/layout_formats.h. A minimal hand-written PDF 1.4; needs no poppler.
#pragma once
#include <cstdio>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.h"

namespace dsocr {

class AtomicFile;

// A PDF number: fixed point with at most 3 decimals, no exponent, trailing zeros dropped
// ("595.276", "612", "-0.5").
std::string pdf_number(double v);

// Objects, page tree and cross-reference table of one PDF file, streamed into a temporary file next
// to `path` and renamed over it by finish(); destroyed unfinished, it leaves nothing behind. Object 1
// is the catalog and object 2 the page tree, written by finish() once its kids are known.
class PdfFileWriter {
 public:
  explicit PdfFileWriter(std::string path);  // writes the header and the catalog; throws Error
  ~PdfFileWriter();
  PdfFileWriter(const PdfFileWriter&) = delete;
  PdfFileWriter& operator=(const PdfFileWriter&) = delete;

  const std::string& path() const { return path_; }

  // An object number to refer to before the object is written (begin_object(id) later, before finish).
  int reserve_object();
  // Starts object `id` (0: the next free number) and returns its number; the caller writes the body
  // and then "endobj\n" (or uses write_object / write_stream).
  int begin_object(int id = 0);
  void write(std::string_view bytes);  // throws Error on a short write or after finish()
  int write_object(std::string_view body, int id = 0);  // "N 0 obj\nBODY\nendobj\n"
  // A stream object: `dict` is extra dictionary entries (without << >> and /Length), `data` its bytes.
  int write_stream(std::string_view dict, std::string_view data, int id = 0);

  // A page of width x height points showing `jpeg` (a baseline RGB JPEG of image_width x
  // image_height pixels) over its whole area, then `overlay` (content stream operators drawn on top,
  // e.g. an invisible text layer) with `overlay_resources` (resource dictionary entries such as
  // "/Font << /F0 3 0 R >>"). Three objects: the page, the image and the content stream.
  void add_jpeg_page(const std::vector<uint8_t>& jpeg, int image_width, int image_height, double width,
                     double height, std::string_view overlay = {}, std::string_view overlay_resources = {});
  int page_count() const { return int(page_objects_.size()); }

  // Writes the page tree, the cross-reference table and the trailer (with /Info info_id when
  // non-zero), and renames the file into place. Throws Error when no page was added, when a reserved
  // object was never written, or when the file cannot be written.
  void finish(int info_id = 0);

 private:
  std::string path_;
  std::unique_ptr<AtomicFile> file_;
  uint64_t offset_ = 0;                   // bytes written so far
  std::vector<uint64_t> object_offsets_;  // byte offset of object k + 1 (kUnwritten: reserved)
  std::vector<int> page_objects_;
};

// Streams pages into a temporary file next to `path` (memory stays bounded by one page); finish()
// completes the file and renames it over `path`. Destroyed unfinished, it leaves nothing behind.
class ImagePdfWriter {
 public:
  // Page size in points = image size in pixels * 72 / dpi (dpi 72: one point per pixel).
  explicit ImagePdfWriter(std::string path, int jpeg_quality = 90, double dpi = 72.0);
  ~ImagePdfWriter();
  ImagePdfWriter(const ImagePdfWriter&) = delete;
  ImagePdfWriter& operator=(const ImagePdfWriter&) = delete;

  void add_page(const Image& page);
  void finish();  // throws Error when no page was added or the file cannot be written
  int page_count() const { return pdf_->page_count(); }

 private:
  int quality_;
  double points_per_pixel_;
  std::unique_ptr<PdfFileWriter> pdf_;
};

// All pages into one PDF at `path`, written atomically.
void write_images_pdf(const std::vector<Image>& pages, const std::string& path, int jpeg_quality = 90,
                      double dpi = 72.0);

// Checks the JPEG quality (1..100) and resolution (1..10000 dpi) given for the PDF at `path`;
// throws Error naming it. Shared by the PDF writers so that they refuse the same values.
void check_pdf_options(const std::string& path, int jpeg_quality, double dpi);

}  // namespace dsocr
