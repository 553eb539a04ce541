// Decoded images: 8-bit RGB, row-major HWC. Decoding, encoding and simple geometry (io/image.cpp).
//
// Decoding reproduces what the official drivers get from Pillow 9.4: Image.open ->
// ImageOps.exif_transpose -> convert("RGB"). In particular alpha is dropped (never composited),
// palettes are expanded (indices past a short palette give grey i,i,i as in Pillow), grey is
// replicated to R=G=B, and the orientation is applied: JPEG APP1 / WebP EXIF / TIFF Orientation
// tag; for PNG, Pillow's order: eXIf chunk, else a "Raw profile type exif" text chunk, else
// tiff:Orientation in the "XML:com.adobe.xmp" text chunk. A GIF is its first frame. README.md
// ("Images: what differs from Pillow") lists the few deliberate differences.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dsocr {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3

  const uint8_t* pixel(int x, int y) const { return rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3; }
  uint8_t* pixel(int x, int y) { return rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3; }
  bool empty() const { return width <= 0 || height <= 0; }
};

// Decoder limits, checked from the header before any pixel memory is allocated.
inline constexpr int kMaxImageSide = 40000;
inline constexpr int64_t kMaxImagePixels = 500'000'000;

// A width x height image filled with one colour.
Image make_image(int width, int height, uint8_t r = 0, uint8_t g = 0, uint8_t b = 0);

// Decodes PNG, JPEG, WebP, TIFF, BMP or GIF (recognised by magic bytes); for a multi-page TIFF,
// its first page. `what` names the source in errors (usually the file name). Throws a one-line
// Error on unsupported, oversized, truncated or corrupt data.
Image decode_image(const uint8_t* data, size_t size, const std::string& what);
Image load_image(const std::string& path);

// Pages, like a PDF's: a TIFF has one per directory (IFD); every other format has exactly one (a
// GIF's later frames are not pages: Pillow's drivers take frame 0). image_page_count throws what
// decode_image would for unrecognised data, and for a TIFF whose directory chain is unreadable.
int image_page_count(const uint8_t* data, size_t size, const std::string& what);
int image_file_page_count(const std::string& path);
// Page `index` (from 0) with its own orientation applied; page 0 is decode_image. Throws an Error
// naming `what` when index is outside [0, image_page_count).
Image decode_image_page(const uint8_t* data, size_t size, int index, const std::string& what);
Image load_image_page(const std::string& path, int index);

// Writers (atomic: a temporary file next to `path`, renamed over it when complete).
void save_png(const Image& image, const std::string& path);
void save_jpeg(const Image& image, const std::string& path, int quality = 95);
// A JPEG file in memory (baseline, 4:2:0: libjpeg's defaults); quality 1..100.
std::vector<uint8_t> encode_jpeg(const Image& image, int quality);

// The rectangle [x0, x1) x [y0, y1), clamped to the image (possibly empty).
Image crop(const Image& image, int x0, int y0, int x1, int y1);

// PIL ImageOps.exif_transpose for an EXIF orientation value: 2 mirror, 3 rotate 180, 4 flip,
// 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise; other values
// return the image unchanged.
Image apply_exif_orientation(Image image, int orientation);

}  // namespace dsocr
