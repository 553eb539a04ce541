// Image decoding/encoding with PIL-compatible colour conversion (see io/image.h).
//
// libpng and libjpeg report fatal errors through callbacks that must not return. They longjmp back
// into a small "run" function whose state all lives in a caller-owned struct (so nothing is
// clobbered and no C++ destructor is skipped); the caller then throws. Library warnings are
// silenced; truncation is an error everywhere (PIL refuses truncated files by default).
//
// 16-bit samples: PIL reduces 16-bit RGB, RGBA and grey+alpha PNGs to their high byte; we do the
// same for every 16-bit PNG. (PIL 9.4 opens 16-bit greyscale as mode "I" and convert("RGB") then
// clips the 0..65535 values to 255, i.e. turns almost every pixel white; we take the high byte
// instead, a deliberate deviation that keeps such scans readable.)
#include "io/image.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include <jerror.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include "core/error.h"
#include "io/files.h"
#include "io/mapped_file.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace dsocr {
namespace {

// ---- shared helpers ----------------------------------------------------------------------------

void check_dimensions(const std::string& what, const char* format, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) fail("{}: {} image has zero size ({}x{})", what, format, width, height);
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    fail("{}: {} image too large ({}x{}; limits: {} pixels a side, {} megapixels)", what, format, width, height,
         kMaxImageSide, kMaxImagePixels / 1'000'000);
}

bool starts_with(const uint8_t* data, size_t size, const void* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

// Orientation tag (0x0112) of IFD0 in an EXIF block, given with or without the "Exif\0\0" prefix
// (JPEG APP1 has it, PNG eXIf and usually WebP EXIF do not). 1 when absent or unreadable.
int exif_orientation(const uint8_t* data, size_t size) {
  static constexpr uint8_t kExifHeader[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (size > (1u << 30)) return 1;
  std::vector<uint8_t> block;
  if (!starts_with(data, size, kExifHeader, 6)) block.assign(kExifHeader, kExifHeader + 6);
  block.insert(block.end(), data, data + size);

  ExifData* exif = exif_data_new();
  if (!exif) return 1;
  // Keep libexif from "fixing" the data (it would add default tags).
  exif_data_unset_option(exif, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(exif, block.data(), unsigned(block.size()));
  int orientation = 1;
  if (ExifEntry* entry = exif_content_get_entry(exif->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
      entry && entry->data && entry->components >= 1) {
    const ExifByteOrder order = exif_data_get_byte_order(exif);
    if (entry->format == EXIF_FORMAT_SHORT && entry->size >= 2) orientation = exif_get_short(entry->data, order);
    if (entry->format == EXIF_FORMAT_LONG && entry->size >= 4) orientation = int(exif_get_long(entry->data, order));
  }
  exif_data_unref(exif);
  return orientation;
}

// ---- PNG ---------------------------------------------------------------------------------------

struct PngDecodeState {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = "";
  std::string what;
  Image image;
  std::vector<png_bytep> rows;
  bool pixels_done = false;
  int orientation = 1;
};

void png_on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngDecodeState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_memory(png_structp png, png_bytep out, size_t n) {
  auto* state = static_cast<PngDecodeState*>(png_get_io_ptr(png));
  if (state->size - state->pos < n) png_error(png, "truncated file");
  std::memcpy(out, state->data + state->pos, n);
  state->pos += n;
}

void read_png_exif(png_structp png, png_infop info, PngDecodeState* state) {
  png_uint_32 length = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &length, &exif) && exif && length > 0)
    state->orientation = exif_orientation(exif, length);
}

// Returns false when libpng failed (message in state). All state lives in *state.
bool run_png_decoder(png_structp png, png_infop info, PngDecodeState* state) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, state, png_read_memory);
  png_read_info(png, info);
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  check_dimensions(state->what, "PNG", width, height);

  if (bit_depth == 16) png_set_strip_16(png);  // keeps the high byte, like PIL's ";16B" unpackers
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_strip_alpha(png);  // PIL's convert("RGB") drops alpha and tRNS
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != 3 || png_get_rowbytes(png, info) != size_t(width) * 3)
    png_error(png, "unexpected pixel layout after conversion");
  read_png_exif(png, info, state);

  state->image = make_image(int(width), int(height));
  state->rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) state->rows[y] = state->image.pixel(0, int(y));
  png_read_image(png, state->rows.data());
  state->pixels_done = true;
  png_read_end(png, info);  // an eXIf chunk may follow the image data
  read_png_exif(png, info, state);
  return true;
}

struct PngReadHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReadHandles() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

Image decode_png(const uint8_t* data, size_t size, const std::string& what) {
  PngDecodeState state;
  state.data = data;
  state.size = size;
  state.what = what;
  PngReadHandles handles;
  handles.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
  if (handles.png) handles.info = png_create_info_struct(handles.png);
  if (!handles.png || !handles.info) fail("{}: out of memory reading PNG", what);
  // Damage after complete pixel data (e.g. a missing IEND) is tolerated, as PIL does.
  if (!run_png_decoder(handles.png, handles.info, &state) && !state.pixels_done)
    fail("{}: corrupt or truncated PNG ({})", what, state.message);
  return apply_exif_orientation(std::move(state.image), state.orientation);
}

// ---- JPEG --------------------------------------------------------------------------------------

constexpr int kMaxJpegScans = 1000;  // bounds the work a hostile progressive file can cause

struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  // Warnings are silent, except "premature end of file": PIL rejects truncated JPEGs.
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

void jpeg_on_progress(j_common_ptr cinfo) {
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (cinfo->is_decompressor && dinfo->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d scans", kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}

void install_jpeg_error_manager(JpegErrorManager* err) {
  jpeg_std_error(&err->base);
  err->base.error_exit = jpeg_on_error;
  err->base.emit_message = jpeg_on_message;
  err->base.output_message = [](j_common_ptr) {};
  err->message[0] = '\0';
}

struct JpegDecodeState {
  jpeg_decompress_struct cinfo{};
  JpegErrorManager err{};
  jpeg_progress_mgr progress{};
  bool created = false;
  std::string what;
  Image image;
  std::vector<uint8_t> row;
  int orientation = 1;

  ~JpegDecodeState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// PIL reads CMYK JPEGs as Adobe-inverted ("CMYK;I", always) and converts with cmyk2rgb:
// R = (255 - K) - (C * (255 - K)) / 255, the division rounded as MULDIV255 does.
inline uint8_t pil_cmyk_channel(uint8_t stored_colorant, uint8_t stored_black) {
  const int c = 255 - stored_colorant;
  const int not_k = stored_black;  // 255 - (255 - stored)
  const int t = c * not_k + 128;
  const int v = not_k - (((t >> 8) + t) >> 8);
  return uint8_t(std::clamp(v, 0, 255));
}

bool run_jpeg_decoder(const uint8_t* data, size_t size, JpegDecodeState* s) {
  j_decompress_ptr cinfo = &s->cinfo;
  if (setjmp(s->err.jump)) return false;
  jpeg_create_decompress(cinfo);
  s->created = true;
  s->progress.progress_monitor = jpeg_on_progress;
  cinfo->progress = &s->progress;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(cinfo, TRUE);
  check_dimensions(s->what, "JPEG", cinfo->image_width, cinfo->image_height);

  // PIL uses the first APP1 segment that starts with "Exif\0".
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && starts_with(m->data, m->data_length, "Exif\0", 5)) {
      s->orientation = exif_orientation(m->data, m->data_length);
      break;
    }
  }

  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo->out_color_space = JCS_CMYK; break;
    default: cinfo->out_color_space = JCS_RGB; break;
  }
  jpeg_start_decompress(cinfo);
  const int width = int(cinfo->output_width);
  const int channels = cinfo->output_components;
  s->image = make_image(width, int(cinfo->output_height));
  s->row.resize(size_t(width) * size_t(channels));
  while (cinfo->output_scanline < cinfo->output_height) {
    const int y = int(cinfo->output_scanline);
    JSAMPROW row = s->row.data();
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) ERREXIT(cinfo, JERR_INPUT_EOF);
    uint8_t* out = s->image.pixel(0, y);
    const uint8_t* in = s->row.data();
    if (channels == 1) {
      for (int x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
    } else if (channels == 4) {
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c) out[3 * x + c] = pil_cmyk_channel(in[4 * x + c], in[4 * x + 3]);
    } else {
      std::memcpy(out, in, size_t(width) * 3);
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& what) {
  auto state = std::make_unique<JpegDecodeState>();
  state->what = what;
  state->cinfo.err = &state->err.base;
  install_jpeg_error_manager(&state->err);
  if (!run_jpeg_decoder(data, size, state.get()))
    fail("{}: corrupt or truncated JPEG ({})", what, state->err.message);
  return apply_exif_orientation(std::move(state->image), state->orientation);
}

// ---- WebP --------------------------------------------------------------------------------------

int webp_orientation(const uint8_t* data, size_t size) {
  WebPData webp{data, size};
  WebPDemuxer* demux = WebPDemux(&webp);
  if (!demux) return 1;
  int orientation = 1;
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demux, "EXIF", 1, &chunk)) {
    orientation = exif_orientation(chunk.chunk.bytes, chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  WebPDemuxDelete(demux);
  return orientation;
}

Image decode_webp(const uint8_t* data, size_t size, const std::string& what) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK) fail("{}: corrupt or truncated WebP header", what);
  check_dimensions(what, "WebP", features.width, features.height);
  Image image = make_image(features.width, features.height);
  if (!features.has_animation) {
    if (!WebPDecodeRGBInto(data, size, image.rgb.data(), image.rgb.size(), features.width * 3))
      fail("{}: corrupt or truncated WebP data", what);
  } else {  // PIL opens the first frame of an animation
    WebPData webp{data, size};
    WebPAnimDecoderOptions options;
    WebPAnimDecoderOptionsInit(&options);
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(WebPAnimDecoderNew(&webp, &options),
                                                                         WebPAnimDecoderDelete);
    WebPAnimInfo info;
    uint8_t* rgba = nullptr;
    int timestamp = 0;
    if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info) || int(info.canvas_width) != image.width ||
        int(info.canvas_height) != image.height || !WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp))
      fail("{}: corrupt or truncated animated WebP", what);
    for (size_t i = 0, n = size_t(image.width) * size_t(image.height); i < n; ++i)
      std::memcpy(&image.rgb[3 * i], rgba + 4 * i, 3);
  }
  return apply_exif_orientation(std::move(image), webp_orientation(data, size));
}

// ---- TIFF --------------------------------------------------------------------------------------

struct TiffSource {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::string first_error;
};

tmsize_t tiff_read(thandle_t handle, void* out, tmsize_t n) {
  auto* src = static_cast<TiffSource*>(handle);
  if (n < 0 || src->pos >= src->size) return 0;
  const size_t count = std::min(size_t(n), src->size - src->pos);
  std::memcpy(out, src->data + src->pos, count);
  src->pos += count;
  return tmsize_t(count);
}

tmsize_t tiff_write(thandle_t, void*, tmsize_t) { return -1; }

toff_t tiff_seek(thandle_t handle, toff_t offset, int whence) {
  auto* src = static_cast<TiffSource*>(handle);
  const uint64_t base = whence == SEEK_CUR ? src->pos : whence == SEEK_END ? src->size : 0;
  if (offset > UINT64_MAX - base) return toff_t(-1);
  src->pos = size_t(std::min<uint64_t>(base + offset, SIZE_MAX));
  return toff_t(src->pos);
}

int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t handle) { return static_cast<TiffSource*>(handle)->size; }

int tiff_map(thandle_t handle, void** base, toff_t* size) {
  auto* src = static_cast<TiffSource*>(handle);
  *base = const_cast<uint8_t*>(src->data);
  *size = src->size;
  return 1;
}

void tiff_unmap(thandle_t, void*, toff_t) {}

int tiff_on_error(TIFF*, void* user_data, const char* module, const char* format, va_list args) {
  auto* src = static_cast<TiffSource*>(user_data);
  if (src->first_error.empty()) {
    char buffer[256];
    std::vsnprintf(buffer, sizeof buffer, format, args);
    src->first_error = buffer;
  }
  return 1;  // handled: keep libtiff's global handler (stderr) quiet
}

int tiff_on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

Image decode_tiff(const uint8_t* data, size_t size, const std::string& what) {
  TiffSource source{data, size, 0, {}};
  std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(), TIFFOpenOptionsFree);
  if (!options) fail("{}: out of memory reading TIFF", what);
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), tiff_on_error, &source);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), tiff_on_warning, &source);
  TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), tmsize_t(4) * kMaxImagePixels + (1 << 20));
  std::unique_ptr<TIFF, void (*)(TIFF*)> tiff(
      TIFFClientOpenExt(what.c_str(), "r", &source, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size,
                        tiff_map, tiff_unmap, options.get()),
      TIFFClose);
  if (!tiff) fail("{}: corrupt or truncated TIFF ({})", what, source.first_error);

  uint32_t width = 0, height = 0;
  TIFFGetField(tiff.get(), TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tiff.get(), TIFFTAG_IMAGELENGTH, &height);
  check_dimensions(what, "TIFF", width, height);
  uint16_t orientation = ORIENTATION_TOPLEFT;
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_ORIENTATION, &orientation);
  if (orientation < ORIENTATION_TOPLEFT || orientation > ORIENTATION_LEFTBOT) orientation = ORIENTATION_TOPLEFT;

  // libtiff premultiplies unassociated alpha into the colour; PIL drops alpha untouched. Declaring
  // the extra samples associated makes libtiff pass the colour samples through.
  uint16_t extra_count = 0;
  uint16_t* extra_types = nullptr;
  if (TIFFGetField(tiff.get(), TIFFTAG_EXTRASAMPLES, &extra_count, &extra_types) && extra_count > 0) {
    std::vector<uint16_t> associated(extra_count, EXTRASAMPLE_ASSOCALPHA);
    TIFFSetField(tiff.get(), TIFFTAG_EXTRASAMPLES, extra_count, associated.data());
  }
  char reason[1024] = "";
  if (!TIFFRGBAImageOK(tiff.get(), reason)) fail("{}: unsupported TIFF ({})", what, reason);

  // Requesting the file's own orientation makes libtiff return the stored raster unflipped; the
  // orientation is then applied like PIL's exif_transpose.
  std::vector<uint32_t> raster(size_t(width) * height);
  if (!TIFFReadRGBAImageOriented(tiff.get(), width, height, raster.data(), orientation, 1))
    fail("{}: corrupt or truncated TIFF ({})", what, source.first_error.empty() ? "read failed" : source.first_error);
  Image image = make_image(int(width), int(height));
  for (size_t i = 0; i < raster.size(); ++i) {
    image.rgb[3 * i + 0] = uint8_t(TIFFGetR(raster[i]));
    image.rgb[3 * i + 1] = uint8_t(TIFFGetG(raster[i]));
    image.rgb[3 * i + 2] = uint8_t(TIFFGetB(raster[i]));
  }
  return apply_exif_orientation(std::move(image), orientation);
}

// ---- BMP ---------------------------------------------------------------------------------------

uint32_t read_le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

Image decode_bmp(const uint8_t* data, size_t size, const std::string& what) {
  if (size > size_t(INT32_MAX)) fail("{}: BMP file too large", what);
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, int(size), &width, &height, &channels))
    fail("{}: corrupt or unsupported BMP ({})", what, stbi_failure_reason());
  check_dimensions(what, "BMP", width, height);
  // stb_image only decodes uncompressed pixel arrays and reads zeros past the end of the data, so
  // a pixel array that does not fit in the file is truncated (and could be a tiny file claiming
  // hundreds of megapixels).
  if (size < 30) fail("{}: truncated BMP header", what);
  const bool core_header = read_le32(data + 14) < 40;  // OS/2 BITMAPCOREHEADER: 16-bit fields
  const uint32_t bits = core_header ? uint32_t(data[24]) | uint32_t(data[25]) << 8
                                    : uint32_t(data[28]) | uint32_t(data[29]) << 8;
  if (!core_header) {
    if (size < 34) fail("{}: truncated BMP header", what);
    const uint32_t compression = read_le32(data + 30);
    if (compression != 0 && compression != 3 && compression != 6)
      fail("{}: unsupported BMP compression {}", what, compression);
  }
  const uint64_t row_bytes = (uint64_t(width) * bits + 31) / 32 * 4;
  if (uint64_t(read_le32(data + 10)) + row_bytes * uint64_t(height) > size) fail("{}: truncated BMP", what);
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_memory(data, int(size), &width, &height, &channels, 3),
                                                  stbi_image_free);
  if (!pixels) fail("{}: corrupt or unsupported BMP ({})", what, stbi_failure_reason());
  Image image{width, height, {}};
  image.rgb.assign(pixels.get(), pixels.get() + size_t(width) * size_t(height) * 3);
  return image;
}

// ---- writers -----------------------------------------------------------------------------------


void check_writable(const Image& image, const std::string& path) {
  if (image.empty() || image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    fail("{}: cannot save an empty or malformed image ({}x{})", path, image.width, image.height);
}

struct PngWriteState {
  char message[256] = "";
  std::vector<png_const_bytep> rows;
};

void png_on_write_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngWriteState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message);
  png_longjmp(png, 1);
}

bool run_png_encoder(png_structp png, png_infop info, FILE* file, const Image* image, PngWriteState* state) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_IHDR(png, info, png_uint_32(image->width), png_uint_32(image->height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  state->rows.resize(size_t(image->height));
  for (int y = 0; y < image->height; ++y) state->rows[size_t(y)] = image->pixel(0, y);
  png_write_image(png, const_cast<png_bytepp>(state->rows.data()));
  png_write_end(png, nullptr);
  return true;
}

struct JpegWriteState {
  jpeg_compress_struct cinfo{};
  JpegErrorManager err{};
  unsigned char* buffer = nullptr;  // malloc'ed by jpeg_mem_dest
  unsigned long size = 0;
  bool created = false;
  ~JpegWriteState() {
    if (created) jpeg_destroy_compress(&cinfo);
    std::free(buffer);
  }
};

// Encodes into memory; all state lives in *s, so libjpeg's longjmp on error skips no destructor.
bool run_jpeg_encoder(const Image* image, int quality, JpegWriteState* s) {
  j_compress_ptr cinfo = &s->cinfo;
  if (setjmp(s->err.jump)) return false;
  jpeg_create_compress(cinfo);
  s->created = true;
  jpeg_mem_dest(cinfo, &s->buffer, &s->size);
  cinfo->image_width = JDIMENSION(image->width);
  cinfo->image_height = JDIMENSION(image->height);
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image->pixel(0, int(cinfo->next_scanline)));
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

}  // namespace

// ---- public API ----------------------------------------------------------------------------------

Image make_image(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  if (width < 0 || height < 0) fail("image: negative size {}x{}", width, height);
  Image image{width, height, {}};
  image.rgb.resize(size_t(width) * size_t(height) * 3);
  if (r == g && g == b) {
    std::fill(image.rgb.begin(), image.rgb.end(), r);
  } else {
    for (size_t i = 0; i < image.rgb.size(); i += 3) {
      image.rgb[i] = r;
      image.rgb[i + 1] = g;
      image.rgb[i + 2] = b;
    }
  }
  return image;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& what) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static constexpr uint8_t kJpeg[3] = {0xff, 0xd8, 0xff};
  if (size == 0 || !data) fail("{}: empty file", what);
  if (starts_with(data, size, kPng, 8)) return decode_png(data, size, what);
  if (starts_with(data, size, kJpeg, 3)) return decode_jpeg(data, size, what);
  if (starts_with(data, size, "RIFF", 4) && size >= 12 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return decode_webp(data, size, what);
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
      starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4))
    return decode_tiff(data, size, what);
  if (starts_with(data, size, "BM", 2)) return decode_bmp(data, size, what);
  fail("{}: unrecognised image format (supported: PNG, JPEG, WebP, TIFF, BMP)", what);
}

Image load_image(const std::string& path) {
  MappedFile file(path);
  return decode_image(file.data(), file.size(), path);
}

void save_png(const Image& image, const std::string& path) {
  check_writable(image, path);
  AtomicFile file(path);
  PngWriteState state;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, png_on_write_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  const bool ok = png && info && run_png_encoder(png, info, file.get(), &image, &state);
  png_destroy_write_struct(&png, &info);
  if (!ok) fail("{}: cannot write PNG ({})", path, state.message[0] ? state.message : "out of memory");
  file.commit();
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  if (image.empty() || image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    fail("JPEG encoder: empty or malformed image ({}x{})", image.width, image.height);
  if (quality < 1 || quality > 100) fail("JPEG encoder: quality must be 1..100, got {}", quality);
  auto state = std::make_unique<JpegWriteState>();
  state->cinfo.err = &state->err.base;
  install_jpeg_error_manager(&state->err);
  if (!run_jpeg_encoder(&image, quality, state.get())) fail("JPEG encoder: {}", state->err.message);
  return std::vector<uint8_t>(state->buffer, state->buffer + state->size);
}

void save_jpeg(const Image& image, const std::string& path, int quality) {
  check_writable(image, path);
  const std::vector<uint8_t> bytes = with_context(path, [&] { return encode_jpeg(image, quality); });
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Image crop(const Image& image, int x0, int y0, int x1, int y1) {
  x0 = std::clamp(x0, 0, image.width);
  x1 = std::clamp(x1, x0, image.width);
  y0 = std::clamp(y0, 0, image.height);
  y1 = std::clamp(y1, y0, image.height);
  Image out = make_image(x1 - x0, y1 - y0);
  for (int y = y0; y < y1; ++y)
    std::memcpy(out.pixel(0, y - y0), image.pixel(x0, y), size_t(x1 - x0) * 3);
  return out;
}

Image apply_exif_orientation(Image image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const int w = image.width, h = image.height;
  const bool swaps_axes = orientation >= 5;
  Image out = make_image(swaps_axes ? h : w, swaps_axes ? w : h);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                  // FLIP_LEFT_RIGHT
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;  // ROTATE_180
        case 4: sy = h - 1 - y; break;                  // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                  // TRANSPOSE
        case 6: sx = y; sy = h - 1 - x; break;          // ROTATE_270 (90 degrees clockwise)
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;  // TRANSVERSE
        case 8: sx = w - 1 - y; sy = x; break;          // ROTATE_90 (counter-clockwise)
      }
      std::memcpy(out.pixel(x, y), image.pixel(sx, sy), 3);
    }
  }
  return out;
}

}  // namespace dsocr
