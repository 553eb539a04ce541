#include "io/pdf_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "io/files.h"

namespace dsocr {
namespace {

// A PDF number: fixed point, no exponent, trailing zeros dropped ("595.276", "612").
std::string pdf_number(double v) {
  std::string s = fmt::format("{:.3f}", v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

// Object 1 is the catalog and object 2 the page tree (written last, when its kids are known);
// each page then takes three objects: the page, its image and its content stream.
ImagePdfWriter::ImagePdfWriter(std::string path, int jpeg_quality, double dpi)
    : path_(std::move(path)), quality_(jpeg_quality), points_per_pixel_(72.0 / dpi) {
  if (jpeg_quality < 1 || jpeg_quality > 100) fail("{}: JPEG quality must be 1..100, got {}", path_, jpeg_quality);
  if (!(dpi >= 1 && dpi <= 10000)) fail("{}: page resolution must be 1..10000 dpi, got {}", path_, dpi);
  file_ = std::make_unique<AtomicFile>(path_);
  // The binary comment line tells transfer tools that the file is not text.
  write("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
  object_offsets_.assign(2, 0);
  object_offsets_[0] = offset_;
  write("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
}

ImagePdfWriter::~ImagePdfWriter() = default;  // an unfinished PDF leaves no file behind

void ImagePdfWriter::write(std::string_view bytes) {
  if (!file_) fail("{}: the PDF is already finished", path_);
  file_->write(bytes);
  offset_ += bytes.size();
}

int ImagePdfWriter::begin_object() {
  object_offsets_.push_back(offset_);
  const int id = int(object_offsets_.size());
  write(fmt::format("{} 0 obj\n", id));
  return id;
}

void ImagePdfWriter::add_page(const Image& page) {
  // Encoded before anything is written, so that a bad page leaves the file consistent.
  const std::vector<uint8_t> jpeg =
      with_context(fmt::format("{}: page {}", path_, page_count() + 1), [&] { return encode_jpeg(page, quality_); });
  const std::string width = pdf_number(page.width * points_per_pixel_);
  const std::string height = pdf_number(page.height * points_per_pixel_);
  const int page_id = int(object_offsets_.size()) + 1, image_id = page_id + 1, content_id = page_id + 2;

  begin_object();
  write(fmt::format("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /XObject << /Im0 {} 0 R >> >> "
                    "/Contents {} 0 R >>\nendobj\n",
                    width, height, image_id, content_id));
  begin_object();
  write(fmt::format("<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceRGB "
                    "/BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
                    page.width, page.height, jpeg.size()));
  write(std::string_view(reinterpret_cast<const char*>(jpeg.data()), jpeg.size()));
  write("\nendstream\nendobj\n");
  // The image space is the unit square: scale it to the whole page.
  const std::string content = fmt::format("q {} 0 0 {} 0 0 cm /Im0 Do Q\n", width, height);
  begin_object();
  write(fmt::format("<< /Length {} >>\nstream\n{}endstream\nendobj\n", content.size(), content));
  page_objects_.push_back(page_id);
}

void ImagePdfWriter::finish() {
  if (page_objects_.empty()) fail("{}: a PDF needs at least one page", path_);
  object_offsets_[1] = offset_;
  std::string kids;
  for (int id : page_objects_) kids += fmt::format("{}{} 0 R", kids.empty() ? "" : " ", id);
  write(fmt::format("2 0 obj\n<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n", kids, page_objects_.size()));

  // Cross-reference table: fixed 20-byte entries, object 0 heads the (empty) free list.
  const uint64_t xref_offset = offset_;
  std::string xref = fmt::format("xref\n0 {}\n0000000000 65535 f \n", object_offsets_.size() + 1);
  for (uint64_t at : object_offsets_) xref += fmt::format("{:010d} 00000 n \n", at);
  xref += fmt::format("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{}\n%%EOF\n", object_offsets_.size() + 1,
                      xref_offset);
  write(xref);

  file_->commit();
  file_.reset();
}

void write_images_pdf(const std::vector<Image>& pages, const std::string& path, int jpeg_quality, double dpi) {
  ImagePdfWriter writer(path, jpeg_quality, dpi);
  for (const Image& page : pages) writer.add_page(page);
  writer.finish();
}

}  // namespace dsocr
