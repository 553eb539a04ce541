// Images -> PDF, one JPEG-compressed (DCTDecode) page per image: the `_layouts.pdf` of annotated
// pages (the official PDF driver uses img2pdf). A minimal hand-written PDF 1.4; needs no poppler.
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
  int page_count() const { return int(page_objects_.size()); }

 private:
  int begin_object();
  void write(std::string_view bytes);

  std::string path_;
  int quality_;
  double points_per_pixel_;
  std::unique_ptr<AtomicFile> file_;
  uint64_t offset_ = 0;                 // bytes written so far
  std::vector<uint64_t> object_offsets_;  // byte offset of object k + 1
  std::vector<int> page_objects_;
};

// All pages into one PDF at `path`, written atomically.
void write_images_pdf(const std::vector<Image>& pages, const std::string& path, int jpeg_quality = 90,
                      double dpi = 72.0);

}  // namespace dsocr
