// Image decoding (PIL convert("RGB") + exif_transpose semantics), writers, crop, and rejection of
// broken input. Test files are written here with the same libraries the decoder uses.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>
#include <webp/encode.h>
#include <zlib.h>

#include "core/error.h"
#include "core/sha256.h"
#include "io/files.h"
#include "io/image.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

fs::path temp_dir() {
  fs::path dir = fs::path(testing::TempDir()) / ("dsocr_test_image_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// Removes temp_dir() after the last test.
class TempDirCleanup : public testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(temp_dir(), ignored);
  }
};
testing::Environment* const kTempDirCleanup = testing::AddGlobalTestEnvironment(new TempDirCleanup);

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Image decode(const Bytes& bytes, const std::string& name = "test.img") {
  return decode_image(bytes.data(), bytes.size(), name);
}

std::string decode_error(const Bytes& bytes, const std::string& name) {
  try {
    decode(bytes, name);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A deterministic pattern where every pixel differs from its neighbours.
Image pattern(int width, int height) {
  Image image = make_image(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = image.pixel(x, y);
      p[0] = uint8_t(x * 37 + y * 11);
      p[1] = uint8_t(x * 5 + y * 53 + 7);
      p[2] = uint8_t((x + 1) * (y + 3));
    }
  return image;
}

// Smooth content that survives JPEG compression almost unchanged.
Image smooth(int width, int height) {
  Image image = make_image(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = image.pixel(x, y);
      p[0] = uint8_t(x * 255 / (width - 1));
      p[1] = uint8_t(y * 255 / (height - 1));
      p[2] = 100;
    }
  return image;
}

void expect_same(const Image& a, const Image& b) {
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  ASSERT_EQ(a.rgb.size(), size_t(a.width) * size_t(a.height) * 3);
  EXPECT_TRUE(a.rgb == b.rgb);
}

double mean_abs_diff(const Image& a, const Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
  return sum / double(a.rgb.size());
}

// A TIFF-structured EXIF block (no "Exif\0\0" prefix) whose IFD0 holds only the orientation.
Bytes exif_block(int orientation, bool big_endian = false) {
  auto u16 = [&](Bytes& b, int v) {
    if (big_endian) b.insert(b.end(), {uint8_t(v >> 8), uint8_t(v)});
    else b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8)});
  };
  auto u32 = [&](Bytes& b, uint32_t v) {
    if (big_endian) b.insert(b.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
    else b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)});
  };
  Bytes b = big_endian ? Bytes{'M', 'M', 0, 42} : Bytes{'I', 'I', 42, 0};
  u32(b, 8);       // IFD0 offset
  u16(b, 1);       // one entry
  u16(b, 0x0112);  // Orientation
  u16(b, 3);       // SHORT
  u32(b, 1);       // count
  u16(b, orientation);
  u16(b, 0);
  u32(b, 0);  // no next IFD
  return b;
}

// ---- PNG writer for raw sample layouts -------------------------------------------------------------

struct PngSpec {
  int width = 0, height = 0, bit_depth = 8, color_type = PNG_COLOR_TYPE_RGB;
  Bytes samples;  // packed rows exactly as stored in the PNG (16-bit big endian)
  std::vector<png_color> palette;
  Bytes palette_alpha;            // tRNS for palette images
  bool rgb_transparent_colour = false;  // tRNS for an RGB image
  bool interlaced = false;
  Bytes exif;
};

PngSpec png_spec(int width, int height, int bit_depth, int color_type, Bytes samples) {
  PngSpec spec;
  spec.width = width;
  spec.height = height;
  spec.bit_depth = bit_depth;
  spec.color_type = color_type;
  spec.samples = std::move(samples);
  return spec;
}

Bytes encode_png(const PngSpec& spec) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, size_t n) {
        auto* o = static_cast<Bytes*>(png_get_io_ptr(p));
        o->insert(o->end(), data, data + n);
      },
      nullptr);
  png_set_IHDR(png, info, png_uint_32(spec.width), png_uint_32(spec.height), spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) png_set_PLTE(png, info, spec.palette.data(), int(spec.palette.size()));
  if (!spec.palette_alpha.empty())
    png_set_tRNS(png, info, spec.palette_alpha.data(), int(spec.palette_alpha.size()), nullptr);
  if (spec.rgb_transparent_colour) {
    png_color_16 colour{};
    colour.red = 10;
    colour.green = 20;
    colour.blue = 30;
    png_set_tRNS(png, info, nullptr, 0, &colour);
  }
  if (!spec.exif.empty())
    png_set_eXIf_1(png, info, png_uint_32(spec.exif.size()), const_cast<png_bytep>(spec.exif.data()));
  png_write_info(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<png_bytep> rows(size_t(spec.height));
  for (int y = 0; y < spec.height; ++y) rows[size_t(y)] = const_cast<png_bytep>(spec.samples.data()) + size_t(y) * row_bytes;
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

// ---- JPEG writer -------------------------------------------------------------------------------------

struct JpegSpec {
  int width = 0, height = 0, components = 3;
  J_COLOR_SPACE colour_space = JCS_RGB;
  Bytes samples;  // interleaved
  int quality = 95;
  bool progressive = false;
  Bytes exif;  // TIFF block, written as APP1 "Exif\0\0" + block
};

Bytes encode_jpeg(const JpegSpec& spec) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = JDIMENSION(spec.width);
  cinfo.image_height = JDIMENSION(spec.height);
  cinfo.input_components = spec.components;
  cinfo.in_color_space = spec.colour_space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  if (!spec.exif.empty()) {
    Bytes app1 = {'E', 'x', 'i', 'f', 0, 0};
    app1.insert(app1.end(), spec.exif.begin(), spec.exif.end());
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1.data(), unsigned(app1.size()));
  }
  const size_t stride = size_t(spec.width) * size_t(spec.components);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(spec.samples.data() + cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

JpegSpec rgb_jpeg_spec(const Image& image, int quality = 95) {
  JpegSpec spec;
  spec.width = image.width;
  spec.height = image.height;
  spec.samples = image.rgb;
  spec.quality = quality;
  return spec;
}

// ---- TIFF writer ---------------------------------------------------------------------------------------

struct TiffSpec {
  int width = 0, height = 0, samples_per_pixel = 3, bits = 8;
  int photometric = PHOTOMETRIC_RGB;
  int orientation = ORIENTATION_TOPLEFT;
  int extra_sample = -1;  // EXTRASAMPLE_* for a 4th (or 2nd) sample
  int compression = COMPRESSION_NONE;
  Bytes samples;
  std::vector<uint16_t> colormap;  // 3 * 2^bits entries for palette images
};

TiffSpec tiff_spec(int width, int height, int samples_per_pixel, int bits, int photometric) {
  TiffSpec spec;
  spec.width = width;
  spec.height = height;
  spec.samples_per_pixel = samples_per_pixel;
  spec.bits = bits;
  spec.photometric = photometric;
  return spec;
}

Bytes encode_tiff(const TiffSpec& spec) {
  const fs::path path = temp_dir() / "written.tif";
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, uint32_t(spec.width));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, uint32_t(spec.height));
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, uint16_t(spec.samples_per_pixel));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, uint16_t(spec.bits));
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, uint16_t(spec.photometric));
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
  TIFFSetField(tif, TIFFTAG_ORIENTATION, uint16_t(spec.orientation));
  TIFFSetField(tif, TIFFTAG_COMPRESSION, uint16_t(spec.compression));
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, uint32_t(2));
  if (spec.extra_sample >= 0) {
    uint16_t extra = uint16_t(spec.extra_sample);
    TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, uint16_t(1), &extra);
  }
  if (!spec.colormap.empty()) {
    const size_t n = spec.colormap.size() / 3;
    TIFFSetField(tif, TIFFTAG_COLORMAP, spec.colormap.data(), spec.colormap.data() + n, spec.colormap.data() + 2 * n);
  }
  const size_t stride = size_t(spec.width) * size_t(spec.samples_per_pixel) * size_t(spec.bits / 8);
  for (int y = 0; y < spec.height; ++y)
    TIFFWriteScanline(tif, const_cast<uint8_t*>(spec.samples.data()) + size_t(y) * stride, uint32_t(y), 0);
  TIFFClose(tif);
  return read_file(path);
}

Bytes encode_bmp24(const Image& image) {
  const uint32_t row_bytes = (uint32_t(image.width) * 3 + 3) / 4 * 4;
  const uint32_t data_size = row_bytes * uint32_t(image.height);
  Bytes b = {'B', 'M'};
  auto u32 = [&](uint32_t v) { b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}); };
  auto u16 = [&](uint16_t v) { b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8)}); };
  u32(54 + data_size);
  u32(0);
  u32(54);
  u32(40);
  u32(uint32_t(image.width));
  u32(uint32_t(image.height));  // bottom-up
  u16(1);
  u16(24);
  u32(0);
  u32(data_size);
  u32(2835);
  u32(2835);
  u32(0);
  u32(0);
  for (int y = image.height - 1; y >= 0; --y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = image.pixel(x, y);
      b.insert(b.end(), {p[2], p[1], p[0]});
    }
    b.resize(b.size() + (row_bytes - uint32_t(image.width) * 3), 0);
  }
  return b;
}

Bytes encode_webp_lossless(const Bytes& rgba, int width, int height) {
  uint8_t* out = nullptr;
  const size_t size = WebPEncodeLosslessRGBA(rgba.data(), width, height, width * 4, &out);
  Bytes bytes(out, out + size);
  WebPFree(out);
  return bytes;
}

// Rewraps a simple-format WebP (RIFF/WEBP/VP8L) as an extended one with an EXIF chunk.
Bytes webp_with_exif(const Bytes& simple, int width, int height, const Bytes& exif) {
  auto le = [](Bytes& b, uint32_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
  };
  Bytes body = {'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
  le(body, 10, 4);
  body.push_back(0x08 | 0x10);  // EXIF + alpha flags
  le(body, 0, 3);
  le(body, uint32_t(width - 1), 3);
  le(body, uint32_t(height - 1), 3);
  body.insert(body.end(), simple.begin() + 12, simple.end());  // the VP8L chunk
  body.insert(body.end(), {'E', 'X', 'I', 'F'});
  le(body, uint32_t(exif.size()), 4);
  body.insert(body.end(), exif.begin(), exif.end());
  if (exif.size() % 2) body.push_back(0);
  Bytes file = {'R', 'I', 'F', 'F'};
  le(file, uint32_t(body.size()), 4);
  file.insert(file.end(), body.begin(), body.end());
  return file;
}

}  // namespace

// ---- PNG -------------------------------------------------------------------------------------------------

TEST(ImageDecode, GoldenTestImage) {
  const Image image = load_image(std::string(DSOCR_TEST_DATA) + "/images/doc.png");
  EXPECT_EQ(image.width, 1191);
  EXPECT_EQ(image.height, 1684);
  ASSERT_EQ(image.rgb.size(), size_t(1191) * 1684 * 3);
}

TEST(ImageDecode, PngRgbRoundTripThroughSavePng) {
  const Image original = pattern(37, 23);
  const fs::path path = temp_dir() / "roundtrip.png";
  save_png(original, path);
  expect_same(load_image(path), original);
  // Only the destination remains (the temporary file was renamed).
  int files = 0;
  for (const auto& entry : fs::directory_iterator(temp_dir()))
    if (entry.path().filename().string().rfind("roundtrip.png", 0) == 0) ++files;
  EXPECT_EQ(files, 1);
}

TEST(ImageDecode, PngGrey8And1Bit) {
  PngSpec grey = png_spec(3, 2, 8, PNG_COLOR_TYPE_GRAY, {0, 77, 255, 1, 128, 254});
  const Image g = decode(encode_png(grey));
  ASSERT_EQ(g.width, 3);
  ASSERT_EQ(g.height, 2);
  EXPECT_EQ(g.rgb, (Bytes{0, 0, 0, 77, 77, 77, 255, 255, 255, 1, 1, 1, 128, 128, 128, 254, 254, 254}));

  PngSpec bits = png_spec(3, 1, 1, PNG_COLOR_TYPE_GRAY, {0b10100000});  // 1, 0, 1
  EXPECT_EQ(decode(encode_png(bits)).rgb, (Bytes{255, 255, 255, 0, 0, 0, 255, 255, 255}));

  PngSpec two_bit = png_spec(4, 1, 2, PNG_COLOR_TYPE_GRAY, {0b00011011});  // 0 1 2 3 -> x85
  EXPECT_EQ(decode(encode_png(two_bit)).rgb, (Bytes{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255}));
}

TEST(ImageDecode, Png16BitKeepsHighByte) {
  PngSpec grey = png_spec(2, 1, 16, PNG_COLOR_TYPE_GRAY, {0x12, 0x34, 0xff, 0x01});
  EXPECT_EQ(decode(encode_png(grey)).rgb, (Bytes{0x12, 0x12, 0x12, 0xff, 0xff, 0xff}));

  PngSpec rgb = png_spec(1, 1, 16, PNG_COLOR_TYPE_RGB, {0xab, 0xff, 0x01, 0x80, 0x7f, 0x7f});
  EXPECT_EQ(decode(encode_png(rgb)).rgb, (Bytes{0xab, 0x01, 0x7f}));

  PngSpec rgba = png_spec(1, 1, 16, PNG_COLOR_TYPE_RGBA, {0x10, 0xff, 0x20, 0xff, 0x30, 0xff, 0x00, 0x00});
  EXPECT_EQ(decode(encode_png(rgba)).rgb, (Bytes{0x10, 0x20, 0x30}));

  PngSpec grey_alpha = png_spec(1, 1, 16, PNG_COLOR_TYPE_GRAY_ALPHA, {0x99, 0x01, 0x00, 0x00});
  EXPECT_EQ(decode(encode_png(grey_alpha)).rgb, (Bytes{0x99, 0x99, 0x99}));
}

TEST(ImageDecode, PngAlphaIsDroppedNotComposited) {
  // Fully transparent pixels keep their stored colour (PIL convert("RGB") drops alpha).
  PngSpec rgba = png_spec(2, 1, 8, PNG_COLOR_TYPE_RGBA, {200, 100, 50, 0, 1, 2, 3, 128});
  EXPECT_EQ(decode(encode_png(rgba)).rgb, (Bytes{200, 100, 50, 1, 2, 3}));

  PngSpec grey_alpha = png_spec(2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, {200, 0, 7, 255});
  EXPECT_EQ(decode(encode_png(grey_alpha)).rgb, (Bytes{200, 200, 200, 7, 7, 7}));

  PngSpec keyed = png_spec(2, 1, 8, PNG_COLOR_TYPE_RGB, {10, 20, 30, 40, 50, 60});
  keyed.rgb_transparent_colour = true;  // (10,20,30) is the transparent colour
  EXPECT_EQ(decode(encode_png(keyed)).rgb, (Bytes{10, 20, 30, 40, 50, 60}));
}

TEST(ImageDecode, PngPaletteWithTransparency) {
  PngSpec palette = png_spec(4, 1, 8, PNG_COLOR_TYPE_PALETTE, {0, 1, 2, 1});
  palette.palette = {{255, 0, 0}, {0, 128, 255}, {9, 8, 7}};
  palette.palette_alpha = {255, 0, 100};
  EXPECT_EQ(decode(encode_png(palette)).rgb, (Bytes{255, 0, 0, 0, 128, 255, 9, 8, 7, 0, 128, 255}));

  PngSpec packed = png_spec(3, 1, 2, PNG_COLOR_TYPE_PALETTE, {0b10000100});  // indices 2 0 1
  packed.palette = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  EXPECT_EQ(decode(encode_png(packed)).rgb, (Bytes{7, 8, 9, 1, 2, 3, 4, 5, 6}));
}

TEST(ImageDecode, PngInterlaced) {
  const Image original = pattern(9, 7);
  PngSpec spec = png_spec(9, 7, 8, PNG_COLOR_TYPE_RGB, original.rgb);
  spec.interlaced = true;
  expect_same(decode(encode_png(spec)), original);
}

TEST(ImageDecode, PngExifOrientation) {
  const Image original = pattern(3, 2);
  PngSpec spec = png_spec(3, 2, 8, PNG_COLOR_TYPE_RGB, original.rgb);
  spec.exif = exif_block(6, /*big_endian=*/true);
  expect_same(decode(encode_png(spec)), apply_exif_orientation(original, 6));
}

// ---- EXIF orientation ---------------------------------------------------------------------------

TEST(ImageOrientation, AllEightMatchPil) {
  // 3x2 image with pixel values 1..6 (R channel), row-major:  1 2 3 / 4 5 6
  Image image = make_image(3, 2);
  for (int i = 0; i < 6; ++i) image.rgb[size_t(3 * i)] = uint8_t(i + 1);
  auto red = [](const Image& im) {
    std::vector<int> v;
    for (size_t i = 0; i < im.rgb.size(); i += 3) v.push_back(im.rgb[i]);
    return std::make_pair(std::make_pair(im.width, im.height), v);
  };
  using R = std::pair<std::pair<int, int>, std::vector<int>>;
  EXPECT_EQ(red(apply_exif_orientation(image, 1)), (R{{3, 2}, {1, 2, 3, 4, 5, 6}}));
  EXPECT_EQ(red(apply_exif_orientation(image, 2)), (R{{3, 2}, {3, 2, 1, 6, 5, 4}}));  // mirror
  EXPECT_EQ(red(apply_exif_orientation(image, 3)), (R{{3, 2}, {6, 5, 4, 3, 2, 1}}));  // 180
  EXPECT_EQ(red(apply_exif_orientation(image, 4)), (R{{3, 2}, {4, 5, 6, 1, 2, 3}}));  // flip
  EXPECT_EQ(red(apply_exif_orientation(image, 5)), (R{{2, 3}, {1, 4, 2, 5, 3, 6}}));  // transpose
  EXPECT_EQ(red(apply_exif_orientation(image, 6)), (R{{2, 3}, {4, 1, 5, 2, 6, 3}}));  // 90 clockwise
  EXPECT_EQ(red(apply_exif_orientation(image, 7)), (R{{2, 3}, {6, 3, 5, 2, 4, 1}}));  // transverse
  EXPECT_EQ(red(apply_exif_orientation(image, 8)), (R{{2, 3}, {3, 6, 2, 5, 1, 4}}));  // 90 counter-clockwise
  EXPECT_EQ(red(apply_exif_orientation(image, 9)), red(image));
}

TEST(ImageOrientation, JpegExifAppliedForEveryValue) {
  const Image content = smooth(40, 24);
  JpegSpec spec = rgb_jpeg_spec(content);
  const Image upright = decode(encode_jpeg(spec));
  for (int orientation = 1; orientation <= 8; ++orientation) {
    SCOPED_TRACE(orientation);
    spec.exif = exif_block(orientation, orientation % 2 == 0);
    expect_same(decode(encode_jpeg(spec)), apply_exif_orientation(upright, orientation));
  }
}

// ---- JPEG ----------------------------------------------------------------------------------------

TEST(ImageDecode, JpegBaselineProgressiveAndSaveJpeg) {
  const Image original = smooth(64, 48);
  JpegSpec spec = rgb_jpeg_spec(original, 98);
  const Image baseline = decode(encode_jpeg(spec));
  spec.progressive = true;
  const Image progressive = decode(encode_jpeg(spec));
  ASSERT_EQ(baseline.width, 64);
  ASSERT_EQ(baseline.height, 48);
  EXPECT_LT(mean_abs_diff(baseline, original), 1.5);
  EXPECT_LT(mean_abs_diff(progressive, original), 1.5);

  const fs::path path = temp_dir() / "saved.jpg";
  save_jpeg(original, path, 95);
  const Image saved = load_image(path);
  ASSERT_EQ(saved.width, 64);
  EXPECT_LT(mean_abs_diff(saved, original), 2.0);
  EXPECT_THROW(save_jpeg(original, temp_dir() / "bad.jpg", 0), Error);
}

TEST(ImageDecode, JpegGreyscale) {
  JpegSpec spec;
  spec.width = 16;
  spec.height = 16;
  spec.components = 1;
  spec.colour_space = JCS_GRAYSCALE;
  spec.samples.assign(256, 90);
  spec.quality = 100;
  const Image image = decode(encode_jpeg(spec));
  for (size_t i = 0; i < image.rgb.size(); i += 3) {
    ASSERT_EQ(image.rgb[i], image.rgb[i + 1]);
    ASSERT_EQ(image.rgb[i], image.rgb[i + 2]);
    ASSERT_NEAR(image.rgb[i], 90, 1);
  }
}

TEST(ImageDecode, JpegCmykLikePil) {
  // libjpeg writes an Adobe marker for CMYK; PIL treats CMYK JPEGs as inverted ("CMYK;I") and then
  // converts with R = (255-K) - C*(255-K)/255 on the inverted values.
  const uint8_t stored[4] = {200, 40, 255, 180};
  JpegSpec spec;
  spec.width = 16;
  spec.height = 16;
  spec.components = 4;
  spec.colour_space = JCS_CMYK;
  spec.quality = 100;
  for (int i = 0; i < 256; ++i) spec.samples.insert(spec.samples.end(), stored, stored + 4);
  const Image image = decode(encode_jpeg(spec));
  auto expected = [&](int c) {
    const int colourant = 255 - stored[c], not_k = stored[3];
    const int t = colourant * not_k + 128;
    return not_k - (((t >> 8) + t) >> 8);
  };
  for (size_t i = 0; i < image.rgb.size(); i += 3)
    for (int c = 0; c < 3; ++c) ASSERT_NEAR(image.rgb[i + size_t(c)], expected(c), 2) << "channel " << c;
  EXPECT_NEAR(image.rgb[0], 141, 2);  // 180 - 55*180/255
}

// ---- WebP, TIFF, BMP ------------------------------------------------------------------------------------

TEST(ImageDecode, WebpLosslessWithAlphaAndExif) {
  const Image original = pattern(11, 5);
  Bytes rgba;
  for (size_t i = 0; i < original.rgb.size(); i += 3) {
    rgba.insert(rgba.end(), original.rgb.begin() + long(i), original.rgb.begin() + long(i) + 3);
    rgba.push_back(uint8_t(1 + i % 200));  // translucent everywhere, never 0
  }
  const Bytes simple = encode_webp_lossless(rgba, 11, 5);
  expect_same(decode(simple), original);
  expect_same(decode(webp_with_exif(simple, 11, 5, exif_block(8))), apply_exif_orientation(original, 8));
}

TEST(ImageDecode, TiffVariants) {
  const Image original = pattern(7, 5);
  TiffSpec rgb = tiff_spec(7, 5, 3, 8, PHOTOMETRIC_RGB);
  rgb.samples = original.rgb;
  expect_same(decode(encode_tiff(rgb)), original);

  rgb.compression = COMPRESSION_LZW;
  expect_same(decode(encode_tiff(rgb)), original);

  rgb.compression = COMPRESSION_NONE;
  rgb.orientation = ORIENTATION_RIGHTTOP;  // 6: stored rotated, displayed 90 degrees clockwise
  expect_same(decode(encode_tiff(rgb)), apply_exif_orientation(original, 6));
  rgb.orientation = ORIENTATION_BOTLEFT;  // 4
  expect_same(decode(encode_tiff(rgb)), apply_exif_orientation(original, 4));

  // Unassociated alpha: colour passes through untouched (no premultiplication).
  TiffSpec rgba = tiff_spec(7, 5, 4, 8, PHOTOMETRIC_RGB);
  rgba.extra_sample = EXTRASAMPLE_UNASSALPHA;
  for (size_t i = 0; i < original.rgb.size(); i += 3) {
    rgba.samples.insert(rgba.samples.end(), original.rgb.begin() + long(i), original.rgb.begin() + long(i) + 3);
    rgba.samples.push_back(uint8_t(i % 3 == 0 ? 0 : 90));
  }
  expect_same(decode(encode_tiff(rgba)), original);

  TiffSpec grey = tiff_spec(3, 1, 1, 8, PHOTOMETRIC_MINISBLACK);
  grey.samples = {0, 100, 255};
  EXPECT_EQ(decode(encode_tiff(grey)).rgb, (Bytes{0, 0, 0, 100, 100, 100, 255, 255, 255}));

  TiffSpec palette = tiff_spec(2, 1, 1, 8, PHOTOMETRIC_PALETTE);
  palette.samples = {1, 0};
  palette.colormap.assign(3 * 256, 0);
  palette.colormap[0] = 255 * 257;            // entry 0: red
  palette.colormap[256 + 1] = 200 * 257;      // entry 1: green 200
  palette.colormap[512 + 1] = 10 * 257;       // entry 1: blue 10
  EXPECT_EQ(decode(encode_tiff(palette)).rgb, (Bytes{0, 200, 10, 255, 0, 0}));
}

TEST(ImageDecode, Bmp24) {
  const Image original = pattern(5, 3);  // 15-byte rows: padded to 16
  expect_same(decode(encode_bmp24(original)), original);
}

TEST(ImageCrop, ClampsToTheImage) {
  const Image image = pattern(10, 8);
  const Image inner = crop(image, 2, 3, 6, 5);
  ASSERT_EQ(inner.width, 4);
  ASSERT_EQ(inner.height, 2);
  EXPECT_EQ(0, std::memcmp(inner.pixel(0, 0), image.pixel(2, 3), 3));
  EXPECT_EQ(0, std::memcmp(inner.pixel(3, 1), image.pixel(5, 4), 3));
  const Image clamped = crop(image, -5, -5, 100, 3);
  EXPECT_EQ(clamped.width, 10);
  EXPECT_EQ(clamped.height, 3);
  EXPECT_TRUE(crop(image, 8, 2, 3, 6).empty());
}

// ---- rejection of bad input --------------------------------------------------------------------------------

TEST(ImageErrors, EmptyAndUnknown) {
  EXPECT_EQ(decode_error({}, "empty.png"), "empty.png: empty file");
  EXPECT_EQ(decode_error({'h', 'e', 'l', 'l', 'o'}, "note.txt"),
            "note.txt: unrecognised image format (supported: PNG, JPEG, WebP, TIFF, BMP, GIF)");
  EXPECT_THROW(load_image((temp_dir() / "missing.png").string()), Error);
}

TEST(ImageErrors, TruncatedFilesOfEveryFormat) {
  const Image image = pattern(40, 30);
  const fs::path png_path = temp_dir() / "t.png";
  save_png(image, png_path);
  TiffSpec tiff = tiff_spec(40, 30, 3, 8, PHOTOMETRIC_RGB);
  tiff.samples = image.rgb;
  Bytes rgba(size_t(40) * 30 * 4, 200);
  const std::vector<std::pair<std::string, Bytes>> files = {
      {"cut.png", read_file(png_path)},
      {"cut.jpg", encode_jpeg(rgb_jpeg_spec(image))},
      {"cut.webp", encode_webp_lossless(rgba, 40, 30)},
      {"cut.tif", encode_tiff(tiff)},
      {"cut.bmp", encode_bmp24(image)},
  };
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    ASSERT_NO_THROW(decode(bytes, name));
    const Bytes cut(bytes.begin(), bytes.begin() + long(bytes.size() * 6 / 10));
    const std::string message = decode_error(cut, name);
    EXPECT_EQ(message.rfind(name + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_NE(decode_error(Bytes(files[0].second.begin(), files[0].second.begin() + 60), "a.png").find("truncated"),
            std::string::npos);
}

TEST(ImageErrors, CorruptData) {
  Bytes png = encode_png(png_spec(4, 4, 8, PNG_COLOR_TYPE_GRAY, Bytes(16, 9)));
  png[png.size() / 2 + 5] ^= 0xff;  // inside IDAT: CRC mismatch
  EXPECT_NE(decode_error(png, "bad.png").find("bad.png: corrupt or truncated PNG"), std::string::npos);

  Bytes jpeg = encode_jpeg(rgb_jpeg_spec(pattern(16, 16)));
  for (size_t i = 2; i + 4 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 4] = 7;  // sample precision 7
      break;
    }
  }
  EXPECT_EQ(decode_error(jpeg, "bad.jpg"), "bad.jpg: corrupt or truncated JPEG (Unsupported JPEG data precision 7)");
}

TEST(ImageErrors, OversizedOrZeroHeadersRejectedBeforeDecoding) {
  // PNG: patch IHDR width/height and fix its CRC.
  auto png_with_size = [](uint32_t width, uint32_t height) {
    Bytes png = encode_png(png_spec(1, 1, 8, PNG_COLOR_TYPE_GRAY, {0}));
    auto put32 = [&](size_t at, uint32_t v) {
      for (int i = 0; i < 4; ++i) png[at + size_t(i)] = uint8_t(v >> (24 - 8 * i));
    };
    put32(16, width);
    put32(20, height);
    put32(29, uint32_t(crc32(0, png.data() + 12, 17)));
    return png;
  };
  EXPECT_NE(decode_error(png_with_size(50000, 10), "wide.png").find("wide.png: PNG image too large (50000x10"),
            std::string::npos);
  EXPECT_NE(decode_error(png_with_size(30000, 30000), "big.png").find("too large"), std::string::npos);
  EXPECT_EQ(decode_error(png_with_size(0, 10), "zero.png").rfind("zero.png: ", 0), 0u);

  // JPEG: patch the SOF0 dimensions.
  Bytes jpeg = encode_jpeg(rgb_jpeg_spec(pattern(8, 8)));
  for (size_t i = 2; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 5] = 0xea;  // height 60000
      jpeg[i + 6] = 0x60;
      break;
    }
  }
  EXPECT_NE(decode_error(jpeg, "tall.jpg").find("tall.jpg: JPEG image too large (8x60000"), std::string::npos);

  // WebP: a VP8X canvas of 45000 x 2.
  Bytes rgba(4, 255);
  Bytes webp = webp_with_exif(encode_webp_lossless(rgba, 1, 1), 45000, 2, exif_block(1));
  EXPECT_NE(decode_error(webp, "wide.webp").find("wide.webp: "), std::string::npos);

  // TIFF: a header whose IFD claims 41000 x 10.
  TiffSpec tiff = tiff_spec(41000, 10, 1, 8, PHOTOMETRIC_MINISBLACK);
  tiff.samples.assign(size_t(41000) * 10, 1);
  EXPECT_NE(decode_error(encode_tiff(tiff), "wide.tif").find("wide.tif: TIFF image too large (41000x10"),
            std::string::npos);

  // BMP: 50000 x 1 header.
  Bytes bmp = encode_bmp24(pattern(2, 1));
  bmp[18] = 0x50;
  bmp[19] = 0xc3;  // 50000
  EXPECT_NE(decode_error(bmp, "wide.bmp").find("wide.bmp: "), std::string::npos);

  // BMP: a tiny file claiming 8000 x 30000 pixels (within the limits) is not decoded.
  Bytes bomb = encode_bmp24(pattern(2, 1));
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bomb[at + size_t(i)] = uint8_t(v >> (8 * i));
  };
  put32(18, 8000);
  put32(22, 30000);
  EXPECT_EQ(decode_error(bomb, "bomb.bmp"), "bomb.bmp: truncated BMP");
  put32(30, 0xd7d7d700);
  EXPECT_EQ(decode_error(bomb, "bomb.bmp"), "bomb.bmp: unsupported BMP compression 3621246720");
}

TEST(ImageErrors, RandomMutationsNeverCrash) {
  const Image image = pattern(24, 16);
  TiffSpec tiff = tiff_spec(24, 16, 3, 8, PHOTOMETRIC_RGB);
  tiff.samples = image.rgb;
  Bytes rgba(size_t(24) * 16 * 4, 77);
  const std::vector<Bytes> seeds = {
      encode_png(png_spec(24, 16, 8, PNG_COLOR_TYPE_RGB, image.rgb)),
      encode_jpeg(rgb_jpeg_spec(image)),
      encode_webp_lossless(rgba, 24, 16),
      encode_tiff(tiff),
      encode_bmp24(image),
  };
  std::mt19937 rng(1234);
  int decoded = 0, rejected = 0;
  for (const Bytes& seed : seeds) {
    for (int trial = 0; trial < 150; ++trial) {
      Bytes bytes = seed;
      const int flips = 1 + int(rng() % 8);
      for (int f = 0; f < flips; ++f) bytes[4 + rng() % (bytes.size() - 4)] = uint8_t(rng());
      if (trial % 5 == 0) bytes.resize(4 + rng() % (bytes.size() - 4));
      try {
        const Image out = decode(bytes, "mutated");
        EXPECT_EQ(out.rgb.size(), size_t(out.width) * size_t(out.height) * 3);
        ++decoded;
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(decoded, 0);
}

// ---- Pillow 9.4 reference cases (tests/data/images/pillow: made by make_reference.py) ---------------

namespace {

struct PillowCase {
  std::string file;
  int page = 0;
  bool refused = false;  // Pillow cannot open it
  int width = 0, height = 0;
  std::string rgb_sha256;
};

const fs::path kPillowDir = fs::path(DSOCR_TEST_DATA) / "images" / "pillow";

std::vector<PillowCase> pillow_cases() {
  std::vector<PillowCase> cases;
  std::istringstream lines(read_file_text((kPillowDir / "expected.txt").string()));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    PillowCase c;
    std::string third;
    fields >> c.file >> c.page >> third;
    if (third == "error") {
      c.refused = true;
    } else {
      c.width = std::stoi(third);
      fields >> c.height >> c.rgb_sha256;
    }
    cases.push_back(c);
  }
  return cases;
}

std::string rgb_sha256(const Image& image) {
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(image.rgb.data()), image.rgb.size()));
}

// The deliberate differences (README: "Images: what differs from Pillow"). Files Pillow 9.4
// refuses that dsocr decodes, with a case whose pixels dsocr gives instead ("" : any image):
const std::map<std::string, std::string> kDecodedWherePillowRefuses = {
    {"png_raw_profile_bad_hex.png", "png_raw_profile_short_header_none.png"},  // profile ignored
    {"png_ztxt_named_exif_ignored.png", "png_xmp_attribute_6.png"},            // chunk ignored: XMP used
    {"gif_lzw_code_past_table.gif", ""},                                       // giflib's reading
};
// Files Pillow decodes that dsocr refuses:
const std::set<std::string> kRefusedWherePillowDecodes = {"gif_stray_bytes.gif"};

}  // namespace

TEST(ImagePillow, EveryReferenceCaseMatchesBitForBit) {
  const std::vector<PillowCase> cases = pillow_cases();
  ASSERT_GE(cases.size(), 100u);
  int matched = 0, refused = 0;
  for (const PillowCase& c : cases) {
    SCOPED_TRACE(c.file + " page " + std::to_string(c.page));
    const std::string path = (kPillowDir / c.file).string();
    if (c.refused && kDecodedWherePillowRefuses.count(c.file)) {
      const Image image = load_image(path);
      if (const std::string& like = kDecodedWherePillowRefuses.at(c.file); !like.empty())
        expect_same(image, load_image((kPillowDir / like).string()));
      continue;
    }
    if (kRefusedWherePillowDecodes.count(c.file)) {
      EXPECT_THROW(load_image(path), Error);
      continue;
    }
    if (c.refused) {
      try {
        load_image_page(path, c.page);
        ADD_FAILURE() << "decoded a file Pillow refuses";
      } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        ++refused;
      }
      continue;
    }
    Image image;
    try {
      image = load_image_page(path, c.page);
    } catch (const Error& e) {
      ADD_FAILURE() << "refused a file Pillow decodes: " << e.what();
      continue;
    }
    EXPECT_EQ(image.width, c.width);
    EXPECT_EQ(image.height, c.height);
    EXPECT_EQ(rgb_sha256(image), c.rgb_sha256);
    matched += image.width == c.width && image.height == c.height && rgb_sha256(image) == c.rgb_sha256;
  }
  EXPECT_GE(refused, 15);
  std::printf("Pillow reference: %d decoded identically, %d refused like Pillow\n", matched, refused);
}

TEST(ImagePillow, MutatedAndTruncatedNewFormatsGiveOneLineErrors) {
  // Every BMP, GIF and metadata-carrying PNG case, cut at many points and with bytes flipped.
  std::mt19937 rng(99);
  int checked = 0, decoded = 0;
  for (const auto& entry : fs::directory_iterator(kPillowDir)) {
    const std::string name = entry.path().filename().string();
    const std::string ext = entry.path().extension().string();
    if (ext != ".bmp" && ext != ".gif" && ext != ".png") continue;
    const Bytes original = read_file(entry.path());
    for (int trial = 0; trial < 40; ++trial) {
      Bytes bytes = original;
      if (trial < 20) {
        bytes.resize(size_t(trial) * original.size() / 20);
      } else {
        for (int f = 0; f < 1 + trial % 4; ++f) bytes[rng() % bytes.size()] = uint8_t(rng());
      }
      try {
        const Image image = decode(bytes, name);
        EXPECT_EQ(image.rgb.size(), size_t(image.width) * size_t(image.height) * 3) << name;
        ++decoded;
      } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(message.rfind(name + ": ", 0), 0u) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 2000);
  EXPECT_GT(decoded, 0);
}

TEST(ImagePillow, TruncatedRleBmpAndGifAreRefusedByName) {
  const Bytes rle = read_file(kPillowDir / "bmp_rle8_bottom_up.bmp");
  EXPECT_EQ(decode_error(Bytes(rle.begin(), rle.end() - 30), "cut.bmp"),
            "cut.bmp: corrupt or truncated RLE BMP (not enough image data)");
  const Bytes gif = read_file(kPillowDir / "gif_global_palette.gif");
  EXPECT_EQ(decode_error(Bytes(gif.begin(), gif.end() - 20), "cut.gif").rfind("cut.gif: corrupt or truncated GIF", 0),
            0u);
  EXPECT_EQ(decode_error(Bytes(gif.begin(), gif.begin() + 10), "head.gif").rfind("head.gif: ", 0), 0u);
}

TEST(ImagePillow, TinyFilesClaimingHugeImagesFailBeforeAllocating) {
  // Found by fuzzing: a 13x7 GIF frame placed at (15000, 12000) claims a 180-megapixel canvas.
  // Pillow refuses it (DecompressionBombError) and so does dsocr, before allocating it.
  const Bytes original = read_file(kPillowDir / "gif_global_palette.gif");
  const size_t frame = size_t(std::search(original.begin(), original.end(), std::begin(",\0\0\0\0"),
                                          std::end(",\0\0\0\0") - 1) - original.begin());
  ASSERT_LT(frame + 9, original.size());
  auto put16 = [](Bytes& b, size_t at, int v) { b[at] = uint8_t(v), b[at + 1] = uint8_t(v >> 8); };
  Bytes far = original;
  put16(far, frame + 1, 15000);
  put16(far, frame + 3, 12000);
  EXPECT_EQ(decode_error(far, "far.gif"),
            "far.gif: GIF image too large (15013x12007; Pillow's limit for it: 178956970 pixels)");
  // A 12000 x 12000 frame cannot be in the few bytes of LZW that follow.
  Bytes big = original;
  for (size_t at : {size_t(6), frame + 5}) put16(big, at, 12000), put16(big, at + 2, 12000);
  EXPECT_EQ(decode_error(big, "big.gif").rfind("big.gif: truncated GIF (12000x12000 frame in ", 0), 0u)
      << decode_error(big, "big.gif");
  // RLE: deltas make any canvas cheap to claim, so Pillow's limit applies; below it, the stream
  // must really cover the image.
  Bytes bmp = read_file(kPillowDir / "bmp_rle8_bottom_up.bmp");
  bmp[18] = 0x20, bmp[19] = 0x4e, bmp[22] = 0x20, bmp[23] = 0x4e;  // 20000 x 20000
  EXPECT_EQ(decode_error(bmp, "huge.bmp"),
            "huge.bmp: RLE BMP image too large (20000x20000; Pillow's limit for it: 178956970 pixels)");
  bmp[18] = 0xe0, bmp[19] = 0x2e, bmp[22] = 0xe0, bmp[23] = 0x2e;  // 12000 x 12000
  EXPECT_EQ(decode_error(bmp, "big.bmp"), "big.bmp: corrupt or truncated RLE BMP (not enough image data)");
}

// ---- pages ----------------------------------------------------------------------------------------

namespace {

// A multi-page RGB TIFF; each page has its own size and orientation.
Bytes encode_tiff_pages(const std::vector<std::pair<Image, int>>& pages) {
  const fs::path path = temp_dir() / "pages.tif";
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  for (const auto& [image, orientation] : pages) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, uint32_t(image.width));
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, uint32_t(image.height));
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, uint16_t(3));
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, uint16_t(8));
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, uint16_t(PHOTOMETRIC_RGB));
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
    TIFFSetField(tif, TIFFTAG_ORIENTATION, uint16_t(orientation));
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, uint32_t(image.height));
    for (int y = 0; y < image.height; ++y)
      TIFFWriteScanline(tif, const_cast<uint8_t*>(image.pixel(0, y)), uint32_t(y), 0);
    TIFFWriteDirectory(tif);
  }
  TIFFClose(tif);
  return read_file(path);
}

}  // namespace

TEST(ImagePages, MultiPageTiffEveryPageWithItsOrientation) {
  const Image first = pattern(6, 4), second = pattern(5, 3), third = smooth(9, 2);
  const Bytes tiff = encode_tiff_pages({{first, 1}, {second, 6}, {third, 3}});
  EXPECT_EQ(image_page_count(tiff.data(), tiff.size(), "doc.tif"), 3);
  expect_same(decode(tiff, "doc.tif"), first);
  expect_same(decode_image_page(tiff.data(), tiff.size(), 0, "doc.tif"), first);
  expect_same(decode_image_page(tiff.data(), tiff.size(), 1, "doc.tif"), apply_exif_orientation(second, 6));
  expect_same(decode_image_page(tiff.data(), tiff.size(), 2, "doc.tif"), apply_exif_orientation(third, 3));
  EXPECT_THROW(decode_image_page(tiff.data(), tiff.size(), 3, "doc.tif"), Error);
  try {
    decode_image_page(tiff.data(), tiff.size(), 3, "doc.tif");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "doc.tif: TIFF page 3 out of range (3 pages)");
  }
  EXPECT_THROW(decode_image_page(tiff.data(), tiff.size(), -1, "doc.tif"), Error);

  const fs::path path = temp_dir() / "doc.tif";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(tiff.data()), long(tiff.size()));
  EXPECT_EQ(image_file_page_count(path.string()), 3);
  expect_same(load_image_page(path.string(), 2), apply_exif_orientation(third, 3));
}

TEST(ImagePages, OtherFormatsHaveOnePageAndGifFramesAreNotPages) {
  const std::string gif = (kPillowDir / "gif_two_frames_one_page.gif").string();
  EXPECT_EQ(image_file_page_count(gif), 1);
  expect_same(load_image_page(gif, 0), load_image(gif));
  try {
    load_image_page(gif, 1);
    ADD_FAILURE() << "GIF frame 1 read as a page";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), gif + ": page 1 out of range (pages count from 0; this image has 1)");
  }
  const Bytes png = encode_png(png_spec(1, 1, 8, PNG_COLOR_TYPE_GRAY, {7}));
  EXPECT_EQ(image_page_count(png.data(), png.size(), "a.png"), 1);
  EXPECT_EQ(decode_error({'h', 'i'}, "x.txt"), "x.txt: unrecognised image format (supported: PNG, JPEG, WebP, TIFF, BMP, GIF)");
  EXPECT_THROW(image_page_count(nullptr, 0, "empty"), Error);
  // A TIFF cut inside its second directory still opens; its page count stops where the chain breaks.
  const Bytes tiff = encode_tiff_pages({{pattern(4, 4), 1}, {pattern(4, 4), 1}});
  const Bytes cut(tiff.begin(), tiff.begin() + long(tiff.size() - 20));
  try {
    const int pages = image_page_count(cut.data(), cut.size(), "cut.tif");
    EXPECT_GE(pages, 1);
    for (int i = 0; i < pages; ++i) {
      try {
        decode_image_page(cut.data(), cut.size(), i, "cut.tif");
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("cut.tif: ", 0), 0u);
      }
    }
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cut.tif: ", 0), 0u);
  }
}
