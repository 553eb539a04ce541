#include "io/pdf_writer.h"

#include <memory>

#include "core/error.h"
#include "io/files.h"

namespace dsocr {
namespace {

constexpr uint64_t kUnwritten = ~uint64_t(0);  // a reserved object's offset until it is written

}  // namespace

std::string pdf_number(double v) {
  std::string s = fmt::format("{:.3f}", v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

void check_pdf_options(const std::string& path, int jpeg_quality, double dpi) {
  if (jpeg_quality < 1 || jpeg_quality > 100) fail("{}: JPEG quality must be 1..100, got {}", path, jpeg_quality);
  if (!(dpi >= 1 && dpi <= 10000)) fail("{}: page resolution must be 1..10000 dpi, got {}", path, dpi);
}

// ---- PdfFileWriter ----------------------------------------------------------

PdfFileWriter::PdfFileWriter(std::string path) : path_(std::move(path)) {
  file_ = std::make_unique<AtomicFile>(path_);
  // The binary comment line tells transfer tools that the file is not text.
  write("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
  object_offsets_.assign(2, kUnwritten);  // the catalog and the page tree
  write_object("<< /Type /Catalog /Pages 2 0 R >>", 1);
}

PdfFileWriter::~PdfFileWriter() = default;  // an unfinished PDF leaves no file behind

void PdfFileWriter::write(std::string_view bytes) {
  if (!file_) fail("{}: the PDF is already finished", path_);
  file_->write(bytes);
  offset_ += bytes.size();
}

int PdfFileWriter::reserve_object() {
  object_offsets_.push_back(kUnwritten);
  return int(object_offsets_.size());
}

int PdfFileWriter::begin_object(int id) {
  if (id == 0) id = reserve_object();
  if (id < 1 || id > int(object_offsets_.size()) || object_offsets_[size_t(id) - 1] != kUnwritten)
    fail("{}: PDF object {} was not reserved or is already written", path_, id);
  object_offsets_[size_t(id) - 1] = offset_;
  write(fmt::format("{} 0 obj\n", id));
  return id;
}

int PdfFileWriter::write_object(std::string_view body, int id) {
  id = begin_object(id);
  write(body);
  write("\nendobj\n");
  return id;
}

int PdfFileWriter::write_stream(std::string_view dict, std::string_view data, int id) {
  id = begin_object(id);
  write(fmt::format("<< {}{}/Length {} >>\nstream\n", dict, dict.empty() ? "" : " ", data.size()));
  write(data);
  write("\nendstream\nendobj\n");
  return id;
}

void PdfFileWriter::add_jpeg_page(const std::vector<uint8_t>& jpeg, int image_width, int image_height,
                                  double width, double height, std::string_view overlay,
                                  std::string_view overlay_resources) {
  const std::string w = pdf_number(width), h = pdf_number(height);
  const int page_id = reserve_object(), image_id = reserve_object(), content_id = reserve_object();
  write_object(fmt::format("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /XObject << /Im0 {} 0 R "
                           ">>{}{} >> /Contents {} 0 R >>",
                           w, h, image_id, overlay_resources.empty() ? "" : " ", overlay_resources, content_id),
               page_id);
  write_stream(fmt::format("/Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceRGB "
                           "/BitsPerComponent 8 /Filter /DCTDecode",
                           image_width, image_height),
               std::string_view(reinterpret_cast<const char*>(jpeg.data()), jpeg.size()), image_id);
  // The image space is the unit square: scale it to the whole page.
  std::string content = fmt::format("q {} 0 0 {} 0 0 cm /Im0 Do Q\n", w, h);
  content += overlay;
  write_stream("", content, content_id);
  page_objects_.push_back(page_id);
}

void PdfFileWriter::finish(int info_id) {
  if (page_objects_.empty()) fail("{}: a PDF needs at least one page", path_);
  std::string kids;
  for (int id : page_objects_) kids += fmt::format("{}{} 0 R", kids.empty() ? "" : " ", id);
  write_object(fmt::format("<< /Type /Pages /Kids [{}] /Count {} >>", kids, page_objects_.size()), 2);
  for (size_t k = 0; k < object_offsets_.size(); ++k)
    if (object_offsets_[k] == kUnwritten) fail("{}: PDF object {} was reserved but never written", path_, k + 1);

  // Cross-reference table: fixed 20-byte entries, object 0 heads the (empty) free list.
  const uint64_t xref_offset = offset_;
  std::string xref = fmt::format("xref\n0 {}\n0000000000 65535 f \n", object_offsets_.size() + 1);
  for (uint64_t at : object_offsets_) xref += fmt::format("{:010d} 00000 n \n", at);
  xref += fmt::format("trailer\n<< /Size {} /Root 1 0 R{} >>\nstartxref\n{}\n%%EOF\n", object_offsets_.size() + 1,
                      info_id ? fmt::format(" /Info {} 0 R", info_id) : "", xref_offset);
  write(xref);

  file_->commit();
  file_.reset();
}

// ---- ImagePdfWriter ---------------------------------------------------------

ImagePdfWriter::ImagePdfWriter(std::string path, int jpeg_quality, double dpi)
    : quality_(jpeg_quality), points_per_pixel_(72.0 / dpi) {
  check_pdf_options(path, jpeg_quality, dpi);
  pdf_ = std::make_unique<PdfFileWriter>(std::move(path));
}

ImagePdfWriter::~ImagePdfWriter() = default;

void ImagePdfWriter::add_page(const Image& page) {
  // Encoded before anything is written, so that a bad page leaves the file consistent.
  const std::vector<uint8_t> jpeg = with_context(fmt::format("{}: page {}", pdf_->path(), page_count() + 1),
                                                 [&] { return encode_jpeg(page, quality_); });
  pdf_->add_jpeg_page(jpeg, page.width, page.height, page.width * points_per_pixel_, page.height * points_per_pixel_);
}

void ImagePdfWriter::finish() { pdf_->finish(); }

void write_images_pdf(const std::vector<Image>& pages, const std::string& path, int jpeg_quality, double dpi) {
  ImagePdfWriter writer(path, jpeg_quality, dpi);
  for (const Image& page : pages) writer.add_page(page);
  writer.finish();
}

}  // namespace dsocr
