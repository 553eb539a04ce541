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
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include <gif_lib.h>
#include <jerror.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <zlib.h>

#include "core/error.h"
#include "io/files.h"
#include "io/mapped_file.h"


namespace dsocr {
namespace {

// ---- shared helpers ----------------------------------------------------------------------------

void check_dimensions(const std::string& what, const char* format, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) fail("{}: {} image has zero size ({}x{})", what, format, width, height);
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    fail("{}: {} image too large ({}x{}; limits: {} pixels a side, {} megapixels)", what, format, width, height,
         kMaxImageSide, kMaxImagePixels / 1'000'000);
}

// Pillow's DecompressionBombError threshold (2 * Image.MAX_IMAGE_PIXELS). dsocr's own limits are
// larger, but where a few bytes can claim the whole canvas (a GIF screen around a small frame, RLE
// delta escapes) Pillow's is used: such images are refused before they are allocated, as in Pillow.
constexpr int64_t kPillowMaxPixels = 2 * int64_t(89'478'485);

void check_claimable_canvas(const std::string& what, const char* format, int64_t width, int64_t height) {
  if (width * height > kPillowMaxPixels)
    fail("{}: {} image too large ({}x{}; Pillow's limit for it: {} pixels)", what, format, width, height,
         kPillowMaxPixels);
}

bool starts_with(const uint8_t* data, size_t size, const void* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

uint32_t read_le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint32_t read_le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t read_be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]); }

// A 256-entry colour table as Pillow's P -> RGB conversion sees it: the file's entries, then
// Pillow's initial palette (grey i,i,i) for indices past a short palette.
struct ColourTable {
  uint8_t rgb[256][3];
  ColourTable() {
    for (int i = 0; i < 256; ++i) rgb[i][0] = rgb[i][1] = rgb[i][2] = uint8_t(i);
  }
};

// The Orientation tag (0x0112) of IFD0 in an EXIF block, given with or without the "Exif\0\0"
// prefix (JPEG APP1 has it, PNG eXIf and usually WebP EXIF do not). nullopt when the tag is absent
// or the block unreadable; 1 when the tag is there but not a SHORT or LONG.
std::optional<int> exif_orientation_tag(const uint8_t* data, size_t size) {
  static constexpr uint8_t kExifHeader[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (size > (1u << 30)) return std::nullopt;
  std::vector<uint8_t> block;
  if (!starts_with(data, size, kExifHeader, 6)) block.assign(kExifHeader, kExifHeader + 6);
  block.insert(block.end(), data, data + size);

  ExifData* exif = exif_data_new();
  if (!exif) return std::nullopt;
  // Keep libexif from "fixing" the data (it would add default tags).
  exif_data_unset_option(exif, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(exif, block.data(), unsigned(block.size()));
  std::optional<int> orientation;
  if (ExifEntry* entry = exif_content_get_entry(exif->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION)) {
    orientation = 1;
    const ExifByteOrder order = exif_data_get_byte_order(exif);
    if (entry->data && entry->format == EXIF_FORMAT_SHORT && entry->size >= 2)
      orientation = exif_get_short(entry->data, order);
    if (entry->data && entry->format == EXIF_FORMAT_LONG && entry->size >= 4)
      orientation = int(exif_get_long(entry->data, order));
  }
  exif_data_unref(exif);
  return orientation;
}

int exif_orientation(const uint8_t* data, size_t size) { return exif_orientation_tag(data, size).value_or(1); }

// ---- PNG orientation metadata ------------------------------------------------------------------
//
// Pillow 9.4 (PngImagePlugin + Image.getexif) keeps every text chunk in im.info under its keyword,
// a later chunk replacing an earlier one, and finds the orientation in
//   info["exif"] (an eXIf chunk, or a tEXt chunk named "exif"), else
//   info["Raw profile type exif"] (ImageMagick's hex dump: text after the third newline), then,
//   only while IFD0 has no Orientation tag, the first tiff:Orientation="D" / >D in
//   info["XML:com.adobe.xmp"].
// Image.open reads chunks up to the first IDAT; the rest is read only when getexif has to load the
// image, i.e. when no eXIf came before IDAT. So an early eXIf hides every later chunk.
// Metadata that makes Pillow raise (bad hex, unknown zTXt compression, text over 1 MiB) is ignored.

constexpr size_t kMaxPngTextChunk = size_t(1) << 20;     // Pillow's MAX_TEXT_CHUNK
constexpr size_t kMaxPngTextMemory = size_t(64) << 20;  // MAX_TEXT_MEMORY

struct PngOrientationSources {
  std::optional<std::string> exif;
  std::optional<std::string> raw_profile;
  std::optional<std::string> xmp;
};

enum class InflateResult { ok, corrupt, too_large };

// zlib.decompressobj().decompress(data, limit) as Pillow calls it: a stream cut short yields what
// it decoded, bytes after the end of the stream are ignored, bad data is an error.
InflateResult inflate_text(const uint8_t* data, size_t size, size_t limit, std::string* out) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return InflateResult::corrupt;
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = uInt(std::min<size_t>(size, UINT32_MAX));
  out->clear();
  InflateResult result = InflateResult::ok;
  uint8_t buffer[16384];
  for (;;) {
    z.next_out = buffer;
    z.avail_out = sizeof buffer;
    const int rc = inflate(&z, Z_NO_FLUSH);
    out->append(reinterpret_cast<const char*>(buffer), sizeof buffer - z.avail_out);
    if (out->size() > limit) {
      result = InflateResult::too_large;
      break;
    }
    if (rc == Z_STREAM_END || rc == Z_BUF_ERROR) break;  // the end, or no more input
    if (rc != Z_OK) {
      result = InflateResult::corrupt;
      break;
    }
    if (z.avail_in == 0 && z.avail_out != 0) break;  // all input used: a stream cut short
  }
  inflateEnd(&z);
  return result;
}

// Python's strict UTF-8 decoder: no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t c = uint8_t(text[i]);
    int extra = 0;
    uint32_t lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (text.size() - i <= size_t(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const uint8_t b = uint8_t(text[i + size_t(k)]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += size_t(extra) + 1;
  }
  return true;
}

// bytes.fromhex("".join(text.split("\n")[3:])): ASCII whitespace may separate byte pairs.
std::optional<std::string> decode_raw_profile(std::string_view text) {
  size_t start = 0;
  for (int newline = 0; newline < 3; ++newline) {
    start = text.find('\n', start);
    if (start == std::string_view::npos) return std::string();
    ++start;
  }
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string digits;
  for (size_t i = start; i < text.size(); ++i)
    if (text[i] != '\n') digits.push_back(text[i]);
  std::string bytes;
  for (size_t i = 0; i < digits.size();) {
    if (is_space(digits[i])) {
      ++i;
      continue;
    }
    if (i + 1 >= digits.size() || hex(digits[i]) < 0 || hex(digits[i + 1]) < 0) return std::nullopt;
    bytes.push_back(char(hex(digits[i]) * 16 + hex(digits[i + 1])));
    i += 2;
  }
  return bytes;
}

// re.search(r'tiff:Orientation(="|>)([0-9])', xmp)
std::optional<int> xmp_orientation(std::string_view xmp) {
  static constexpr std::string_view kTag = "tiff:Orientation";
  for (size_t at = xmp.find(kTag); at != std::string_view::npos; at = xmp.find(kTag, at + 1)) {
    size_t digit = at + kTag.size();
    if (xmp.substr(digit, 2) == "=\"") digit += 2;
    else if (xmp.substr(digit, 1) == ">") digit += 1;
    else continue;
    if (digit < xmp.size() && xmp[digit] >= '0' && xmp[digit] <= '9') return xmp[digit] - '0';
  }
  return std::nullopt;
}

// The slot of one of Pillow's info keys that hold an orientation (nullptr for any other key).
std::optional<std::string>* png_source_for(PngOrientationSources& sources, std::string_view key) {
  if (key == "exif") return &sources.exif;
  if (key == "Raw profile type exif") return &sources.raw_profile;
  if (key == "XML:com.adobe.xmp") return &sources.xmp;
  return nullptr;
}

bool png_orientation_key(std::string_view key) {
  PngOrientationSources none;
  return png_source_for(none, key) != nullptr;
}

struct PngTextValue {
  std::string_view key;
  std::string value;
};

bool inflate_png_text(std::string_view packed, size_t* text_memory, std::string* out, bool* corrupt) {
  if (*text_memory >= kMaxPngTextMemory) return false;
  const InflateResult result = inflate_text(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(),
                                            std::min(kMaxPngTextChunk, kMaxPngTextMemory - *text_memory), out);
  if (result == InflateResult::too_large) return false;
  *corrupt = result == InflateResult::corrupt;
  if (*corrupt) out->clear();
  *text_memory += out->size();
  return true;
}

// What Pillow stores in info for one eXIf / tEXt / zTXt / iTXt chunk, when its keyword is one
// png_source_for knows (others are not decompressed). `text_memory` bounds inflation overall.
std::optional<PngTextValue> png_text_chunk(std::string_view type, std::string_view body, size_t* text_memory) {
  if (type == "eXIf") return PngTextValue{"exif", "Exif" + std::string(2, '\0') + std::string(body)};
  if (type != "tEXt" && type != "zTXt" && type != "iTXt") return std::nullopt;
  const size_t nul = body.find('\0');
  const std::string_view key = body.substr(0, nul);
  if (!png_orientation_key(key)) return std::nullopt;
  std::string_view rest = nul == std::string_view::npos ? std::string_view() : body.substr(nul + 1);
  if (type == "tEXt") return PngTextValue{key, std::string(rest)};
  bool corrupt = false;
  std::string text;
  if (type == "zTXt") {
    if (!rest.empty() && rest[0] != 0) return std::nullopt;  // unknown method: Pillow raises
    if (!inflate_png_text(rest.empty() ? rest : rest.substr(1), text_memory, &text, &corrupt)) return std::nullopt;
    // Pillow keeps an empty value for undecodable data; zTXt "exif" is stored as text, which
    // Exif.load cannot read unless empty: either way it holds no tags.
    if (key == "exif") text.clear();
    return PngTextValue{key, std::move(text)};
  }
  // iTXt: compression flag and method, language and translated keyword, then the UTF-8 text.
  if (nul == std::string_view::npos || rest.size() < 2) return std::nullopt;
  const uint8_t compressed = uint8_t(rest[0]), method = uint8_t(rest[1]);
  rest.remove_prefix(2);
  const size_t lang_end = rest.find('\0');
  if (lang_end == std::string_view::npos) return std::nullopt;
  const size_t translated_end = rest.find('\0', lang_end + 1);
  if (translated_end == std::string_view::npos) return std::nullopt;
  if (!valid_utf8(rest.substr(0, translated_end))) return std::nullopt;
  const std::string_view stored = rest.substr(translated_end + 1);
  if (compressed) {
    if (method != 0) return std::nullopt;
    if (!inflate_png_text(stored, text_memory, &text, &corrupt) || corrupt) return std::nullopt;
  } else {
    text = std::string(stored);
  }
  if (!valid_utf8(text)) return std::nullopt;
  if (key == "exif") text.clear();  // a str, see zTXt
  return PngTextValue{key, std::move(text)};
}

bool png_chunk_type_ok(const uint8_t* type) {  // Pillow: re.match(rb"\w\w\w\w")
  for (int i = 0; i < 4; ++i)
    if (!std::isalnum(type[i]) && type[i] != '_') return false;
  return true;
}

int png_orientation(const uint8_t* data, size_t size) {
  PngOrientationSources before_idat, all;
  bool seen_idat = false;
  size_t text_memory = 0;
  for (size_t pos = 8; pos <= size && size - pos >= 12;) {
    const uint32_t length = read_be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (!png_chunk_type_ok(type) || length > size - pos - 12) break;
    const std::string_view type_name(reinterpret_cast<const char*>(type), 4);
    if (type_name == "IEND") break;
    if (type_name == "IDAT") seen_idat = true;
    const std::string_view body(reinterpret_cast<const char*>(data + pos + 8), length);
    if (auto text = png_text_chunk(type_name, body, &text_memory)) {
      *png_source_for(all, text->key) = text->value;
      if (!seen_idat) *png_source_for(before_idat, text->key) = std::move(text->value);
    }
    pos += 12 + size_t(length);
  }
  const PngOrientationSources& info = before_idat.exif ? before_idat : all;
  std::optional<int> orientation;
  auto from_exif = [](const std::string& block) {
    return exif_orientation_tag(reinterpret_cast<const uint8_t*>(block.data()), block.size());
  };
  if (info.exif) {
    orientation = from_exif(*info.exif);
  } else if (info.raw_profile) {
    if (const std::optional<std::string> block = decode_raw_profile(*info.raw_profile)) orientation = from_exif(*block);
  }
  if (!orientation && info.xmp) orientation = xmp_orientation(*info.xmp);
  return orientation.value_or(1);
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

// Returns false when libpng failed (message in state). All state lives in *state.
bool run_png_decoder(png_structp png, png_infop info, PngDecodeState* state) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, state, png_read_memory);
  // The orientation comes from png_orientation (Pillow's rules), so libpng may skip the metadata.
  static constexpr png_byte kMetadataChunks[] = "eXIf\0tEXt\0zTXt\0iTXt";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kMetadataChunks, 4);
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

  state->image = make_image(int(width), int(height));
  state->rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) state->rows[y] = state->image.pixel(0, int(y));
  png_read_image(png, state->rows.data());
  state->pixels_done = true;
  png_read_end(png, info);
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
  return apply_exif_orientation(std::move(state.image), png_orientation(data, size));
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

// An open TIFF over a memory buffer; errors go to `source.first_error`, never to stderr.
struct TiffFile {
  TiffSource source;
  std::unique_ptr<TIFF, void (*)(TIFF*)> tiff{nullptr, TIFFClose};

  TiffFile(const uint8_t* data, size_t size, const std::string& what) : source{data, size, 0, {}} {
    std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(),
                                                                          TIFFOpenOptionsFree);
    if (!options) fail("{}: out of memory reading TIFF", what);
    TIFFOpenOptionsSetErrorHandlerExtR(options.get(), tiff_on_error, &source);
    TIFFOpenOptionsSetWarningHandlerExtR(options.get(), tiff_on_warning, &source);
    TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), tmsize_t(4) * kMaxImagePixels + (1 << 20));
    tiff.reset(TIFFClientOpenExt(what.c_str(), "r", &source, tiff_read, tiff_write, tiff_seek, tiff_close,
                                 tiff_size, tiff_map, tiff_unmap, options.get()));
    if (!tiff) fail("{}: corrupt or truncated TIFF ({})", what, source.first_error);
  }
};

// Directories (pages) of a TIFF; libtiff follows the IFD chain and stops at a loop.
int tiff_page_count(const uint8_t* data, size_t size, const std::string& what) {
  TiffFile file(data, size, what);
  const tdir_t pages = TIFFNumberOfDirectories(file.tiff.get());
  if (pages == 0) fail("{}: corrupt TIFF (no readable directory)", what);
  return int(std::min<tdir_t>(pages, tdir_t(INT32_MAX)));
}

Image decode_tiff(const uint8_t* data, size_t size, int page, const std::string& what) {
  TiffFile file(data, size, what);
  std::unique_ptr<TIFF, void (*)(TIFF*)>& tiff = file.tiff;
  TiffSource& source = file.source;
  if (page > 0) {
    const tdir_t pages = TIFFNumberOfDirectories(tiff.get());
    if (tdir_t(page) >= pages) fail("{}: TIFF page {} out of range ({} pages)", what, page, pages);
    if (!TIFFSetDirectory(tiff.get(), tdir_t(page)))
      fail("{}: corrupt TIFF page {} ({})", what, page, source.first_error.empty() ? "unreadable" : source.first_error);
  }

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
//
// Pillow's BmpImagePlugin, rule by rule (its quirks included, since they decide what the official
// drivers see): header sizes 12 (OS/2 1.x), 40, 64, 108, 124; 1/4/8-bit palettes, 16-bit 5-5-5,
// 24, 32-bit BGRX, BI_BITFIELDS only with the masks Pillow lists, BI_RLE8 / BI_RLE4 with Pillow's
// own decoder. A palette that is exactly black, white makes it read the rows as 1 bit per pixel,
// one that is exactly grey 0, 1, 2, ... as 8 bits, whatever the file's bit count.

enum class BmpSamples { indexed, bgr15, bgr16, bgr, bgrx, xbgr, rgbx };

struct BmpLayout {
  int64_t width = 0, height = 0;
  bool top_down = false;
  int bits = 0;            // as stored
  int sample_bits = 0;     // as Pillow unpacks them (differs for the palettes above)
  uint32_t compression = 0;
  BmpSamples samples = BmpSamples::bgr;
  ColourTable colours;     // for indexed samples
  size_t pixels = 0;       // offset of the pixel data
};

BmpLayout read_bmp_header(const uint8_t* data, size_t size, const std::string& what) {
  constexpr uint32_t kRgb = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3;
  BmpLayout b;
  if (size < 18) fail("{}: truncated BMP header", what);
  const uint32_t header_size = read_le32(data + 14);
  if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 && header_size != 124)
    fail("{}: unsupported BMP header size {}", what, header_size);
  if (size - 14 < header_size) fail("{}: truncated BMP header", what);
  const uint8_t* h = data + 18;
  size_t cursor = 14 + size_t(header_size);  // where Pillow's file pointer is
  size_t palette_entry = 4;
  uint64_t colours_used = 0;
  uint32_t masks[4] = {0, 0, 0, 0};
  if (header_size == 12) {
    b.width = read_le16(h);
    b.height = read_le16(h + 2);
    b.bits = int(read_le16(h + 6));
    palette_entry = 3;
  } else {
    b.top_down = h[7] == 0xFF;  // a negative height, as Pillow tells it
    b.width = read_le32(h);
    b.height = b.top_down ? int64_t(0x100000000) - read_le32(h + 4) : int64_t(read_le32(h + 4));
    b.bits = int(read_le16(h + 10));
    b.compression = read_le32(h + 12);
    colours_used = read_le32(h + 28);
    if (b.compression == kBitfields) {
      if (header_size >= 56) {
        for (int i = 0; i < 4; ++i) masks[i] = read_le32(h + 36 + 4 * i);
      } else {  // BITMAPINFOHEADER: three masks follow the header
        if (size - cursor < 12) fail("{}: truncated BMP header", what);
        for (int i = 0; i < 3; ++i) masks[i] = read_le32(data + cursor + 4 * size_t(i));
        cursor += 12;
      }
    }
  }
  check_dimensions(what, "BMP", b.width, b.height);
  if (b.bits != 1 && b.bits != 4 && b.bits != 8 && b.bits != 16 && b.bits != 24 && b.bits != 32)
    fail("{}: unsupported BMP bit depth {}", what, b.bits);
  const bool indexed = b.bits <= 8;
  if (colours_used == 0) colours_used = uint64_t(1) << (indexed ? b.bits : 24);
  uint64_t offset = read_le32(data + 10);
  if (offset == 14 + uint64_t(header_size) && indexed) offset += 4 * colours_used;  // sic: 4 even for OS/2

  b.sample_bits = b.bits;
  b.samples = indexed ? BmpSamples::indexed : b.bits == 16 ? BmpSamples::bgr15 : b.bits == 24 ? BmpSamples::bgr
                                                                                              : BmpSamples::bgrx;
  if (b.compression == kBitfields) {
    auto is = [&](uint32_t r, uint32_t g, uint32_t bl) { return masks[0] == r && masks[1] == g && masks[2] == bl; };
    const uint32_t a = masks[3];
    if (b.bits == 32 && is(0xFF0000, 0xFF00, 0xFF) && (a == 0 || a == 0xFF000000)) b.samples = BmpSamples::bgrx;
    else if (b.bits == 32 && is(0xFF000000, 0xFF0000, 0xFF00) && (a == 0 || a == 0xFF)) b.samples = BmpSamples::xbgr;
    else if (b.bits == 32 && is(0xFF, 0xFF00, 0xFF0000) && a == 0xFF000000) b.samples = BmpSamples::rgbx;
    else if (b.bits == 32 && is(0, 0, 0) && a == 0) b.samples = BmpSamples::bgrx;
    else if (b.bits == 24 && is(0xFF0000, 0xFF00, 0xFF)) b.samples = BmpSamples::bgr;
    else if (b.bits == 16 && is(0xF800, 0x7E0, 0x1F)) b.samples = BmpSamples::bgr16;
    else if (b.bits == 16 && is(0x7C00, 0x3E0, 0x1F)) b.samples = BmpSamples::bgr15;
    else fail("{}: unsupported BMP bitfields layout", what);
  } else if (b.compression == kRle8 || b.compression == kRle4) {
    if (!indexed) fail("{}: unsupported BMP: RLE with {} bits per pixel", what, b.bits);
  } else if (b.compression != kRgb) {
    fail("{}: unsupported BMP compression {}", what, b.compression);
  }

  if (indexed) {
    if (colours_used > 65536) fail("{}: unsupported BMP palette size {}", what, colours_used);
    const size_t palette_bytes = size_t(std::min<uint64_t>(palette_entry * colours_used, size - cursor));
    const uint8_t* palette = data + cursor;
    cursor += palette_bytes;
    auto entry_is = [&](uint64_t index, uint8_t value) {
      const size_t at = size_t(index) * palette_entry;
      return at + 3 <= palette_bytes && palette[at] == value && palette[at + 1] == value && palette[at + 2] == value;
    };
    bool grey = true;
    if (colours_used == 2) {
      grey = entry_is(0, 0) && entry_is(1, 255);
    } else {
      for (uint64_t i = 0; i < colours_used && grey; ++i) grey = entry_is(i, uint8_t(i));
    }
    if (grey && colours_used == 2) {  // Pillow mode "1"
      b.sample_bits = 1;
      for (int c = 0; c < 3; ++c) b.colours.rgb[1][c] = 255;
    } else if (grey) {  // mode "L": the table stays the grey ramp
      b.sample_bits = 8;
    } else {
      const size_t entries = palette_bytes / palette_entry;
      if (entries > 256) fail("{}: unsupported BMP palette of {} colours", what, entries);
      for (size_t i = 0; i < entries; ++i)
        for (int c = 0; c < 3; ++c) b.colours.rgb[i][c] = palette[i * palette_entry + 2 - size_t(c)];
    }
    if (b.sample_bits == 1 && b.compression != kRgb) fail("{}: unsupported BMP: RLE with a black/white palette", what);
  }
  if (offset > size) fail("{}: truncated BMP (pixel data at {} of {} bytes)", what, offset, size);
  b.pixels = offset ? size_t(offset) : cursor;
  return b;
}

// Converts one row of `width` samples to RGB.
void bmp_row_to_rgb(const BmpLayout& b, const uint8_t* in, uint8_t* out) {
  const int64_t width = b.width;
  switch (b.samples) {
    case BmpSamples::indexed:
      for (int64_t x = 0; x < width; ++x) {
        unsigned index = 0;
        if (b.sample_bits == 8) index = in[x];
        else if (b.sample_bits == 4) index = (in[x / 2] >> (x % 2 ? 0 : 4)) & 15;
        else index = (in[x / 8] >> (7 - x % 8)) & 1;
        std::memcpy(out + 3 * x, b.colours.rgb[index], 3);
      }
      break;
    case BmpSamples::bgr15:
    case BmpSamples::bgr16:
      for (int64_t x = 0; x < width; ++x) {  // Pillow's BGR;15 / BGR;16 unpackers
        const unsigned v = read_le16(in + 2 * x);
        const bool six = b.samples == BmpSamples::bgr16;
        out[3 * x] = uint8_t(((v >> (six ? 11 : 10)) & 31) * 255 / 31);
        out[3 * x + 1] = uint8_t(six ? ((v >> 5) & 63) * 255 / 63 : ((v >> 5) & 31) * 255 / 31);
        out[3 * x + 2] = uint8_t((v & 31) * 255 / 31);
      }
      break;
    case BmpSamples::bgr:
      for (int64_t x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c) out[3 * x + c] = in[3 * x + 2 - c];
      break;
    case BmpSamples::bgrx:
    case BmpSamples::xbgr:
    case BmpSamples::rgbx: {
      const int first = b.samples == BmpSamples::xbgr ? 1 : 0;
      const bool reversed = b.samples != BmpSamples::rgbx;
      for (int64_t x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c) out[3 * x + c] = in[4 * x + first + (reversed ? 2 - c : c)];
      break;
    }
  }
}

// Pillow 9.4's BmpRleDecoder, step by step: runs are clipped to the row, an absolute run is not;
// a delta escape reads four bytes and moves by the last two; RLE4 absolute runs read count/2
// bytes; padding after an absolute run aligns the file offset. Returns the row-major indices
// (first stored row first), or nullopt when they do not cover the image ("not enough image data").
std::optional<std::vector<uint8_t>> decode_bmp_rle(const uint8_t* data, size_t size, const BmpLayout& b) {
  const bool rle4 = b.compression == 2;
  const uint64_t width = uint64_t(b.width), total = width * uint64_t(b.height);
  std::vector<uint8_t> indices;
  uint64_t produced = 0;  // len(data) in Pillow, which may run past the image
  auto put = [&](uint8_t value) {
    if (produced < total) indices.push_back(value);
    ++produced;
  };
  auto skip = [&](uint64_t count) {  // zeros
    produced += count;
    indices.resize(size_t(std::min(produced, total)), 0);
  };
  uint64_t x = 0;
  size_t pos = b.pixels;
  while (produced < total) {
    if (pos >= size || size - pos < 2) break;
    const uint8_t count = data[pos], value = data[pos + 1];
    pos += 2;
    if (count) {
      const uint64_t run = x + count > width ? (x < width ? width - x : 0) : count;
      for (uint64_t i = 0; i < run; ++i) put(rle4 ? uint8_t(i % 2 ? value & 15 : value >> 4) : value);
      x += run;
    } else if (value == 0) {  // end of line
      if (produced % width) skip(width - produced % width);
      x = 0;
    } else if (value == 1) {  // end of bitmap
      break;
    } else if (value == 2) {  // delta
      if (size - pos < 2) break;
      pos += 2;
      if (size - pos < 2) return std::nullopt;  // Pillow fails unpacking the second pair
      skip(data[pos] + uint64_t(data[pos + 1]) * width);
      pos += 2;
      x = produced % width;
    } else {  // absolute run of `value` pixels
      const size_t wanted = rle4 ? value / 2 : value;
      const size_t got = std::min(wanted, size - pos);
      for (size_t i = 0; i < got; ++i) {
        if (rle4) {
          put(data[pos + i] >> 4);
          put(data[pos + i] & 15);
        } else {
          put(data[pos + i]);
        }
      }
      pos += got;
      if (got < wanted) break;
      x += value;
      if (pos % 2) ++pos;
    }
  }
  if (produced < total) return std::nullopt;
  return indices;
}

Image decode_bmp(const uint8_t* data, size_t size, const std::string& what) {
  const BmpLayout b = read_bmp_header(data, size, what);
  auto row_of = [&](int64_t stored_row) { return int(b.top_down ? stored_row : b.height - 1 - stored_row); };
  if (b.compression == 1 || b.compression == 2) {
    check_claimable_canvas(what, "RLE BMP", b.width, b.height);
    // Decoded first: the indices grow with the data, so a short stream fails before allocating.
    const std::optional<std::vector<uint8_t>> indices = decode_bmp_rle(data, size, b);
    if (!indices) fail("{}: corrupt or truncated RLE BMP (not enough image data)", what);
    Image image = make_image(int(b.width), int(b.height));
    for (int64_t r = 0; r < b.height; ++r) {
      const uint8_t* in = indices->data() + size_t(r * b.width);
      uint8_t* out = image.pixel(0, row_of(r));
      for (int64_t x = 0; x < b.width; ++x) std::memcpy(out + 3 * x, b.colours.rgb[in[x]], 3);
    }
    return image;
  }
  // Row r starts at r * stride (4-byte rows for the stored bit count) and is read for the bits
  // Pillow unpacks, which may run into the next row; the last row needs no padding. Pillow maps
  // 8-bit "L"/"P" rows straight onto the file when all strides fit, so a row read past its stride
  // may then run past the end of the file, where the mapping reads zeros.
  const uint64_t stride = ((uint64_t(b.width) * uint64_t(b.bits) + 31) >> 3) & ~uint64_t(3);
  const uint64_t row_bytes = (uint64_t(b.width) * uint64_t(b.sample_bits) + 7) / 8;
  const uint64_t available = size - b.pixels;
  const bool mapped = b.samples == BmpSamples::indexed && b.sample_bits == 8 && available >= stride * uint64_t(b.height);
  if (!mapped && available < stride * uint64_t(b.height - 1) + row_bytes) fail("{}: truncated BMP", what);
  Image image = make_image(int(b.width), int(b.height));
  std::vector<uint8_t> padded;
  for (int64_t r = 0; r < b.height; ++r) {
    const uint64_t at = uint64_t(r) * stride;
    const uint8_t* row = data + b.pixels + size_t(at);
    if (available - at < row_bytes) {
      padded.assign(size_t(row_bytes), 0);
      std::memcpy(padded.data(), row, size_t(available - at));
      row = padded.data();
    }
    bmp_row_to_rgb(b, row, image.pixel(0, row_of(r)));
  }
  return image;
}

// ---- GIF ---------------------------------------------------------------------------------------
//
// giflib parses the blocks and decodes LZW into palette indices; the colours are mapped here as
// Pillow 9.4 does for frame 0: a canvas of the logical screen (grown to hold the frame), filled
// with the transparency index if the graphic control extension gives one, else index 0; every
// frame pixel is its index's colour, transparent or not. A palette that is exactly grey 0, 1, 2,
// ... is no palette (mode "L"); indices past the palette are grey.

struct GifSource {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  size_t image_data_end = SIZE_MAX;  // see end_image_data_at_first_broken_block
};

// giflib reads the image data's sub-blocks up to their terminator even after the last pixel;
// Pillow stops at the last pixel. So the chain is ended (a 0 length is read) where it breaks: a
// block running past the end of the file, or the end of the file itself. A pixel that needs the
// missing data still fails, as in Pillow ("image file is truncated").
void end_image_data_at_first_broken_block(GifSource* src) {
  size_t pos = src->pos;
  while (pos < src->size && src->data[pos] != 0 && src->size - pos - 1 >= src->data[pos]) pos += 1 + src->data[pos];
  if (pos >= src->size || src->data[pos] != 0) src->image_data_end = pos;
}

int gif_read(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<GifSource*>(gif->UserData);
  if (src->pos == src->image_data_end && n == 1) {
    out[0] = 0;
    return 1;
  }
  const size_t count = std::min(size_t(std::max(n, 0)), src->size - src->pos);
  std::memcpy(out, src->data + src->pos, count);
  src->pos += count;
  return int(count);
}

// Pillow's _is_palette_needed: false when entry i is (i, i, i) for every entry.
bool gif_palette_needed(const ColorMapObject* map) {
  for (int i = 0; i < map->ColorCount; ++i) {
    const GifColorType& c = map->Colors[i];
    if (c.Red != i || c.Green != i || c.Blue != i) return true;
  }
  return false;
}

Image decode_gif(const uint8_t* data, size_t size, const std::string& what) {
  GifSource source{data, size, 0};
  int error = 0;
  std::unique_ptr<GifFileType, void (*)(GifFileType*)> gif(DGifOpen(&source, gif_read, &error),
                                                            [](GifFileType* g) { DGifCloseFile(g, nullptr); });
  auto gif_failure = [&](const char* context) {
    const int code = gif ? gif->Error : error;
    const char* reason = GifErrorString(code);
    fail("{}: corrupt or truncated GIF ({}: {})", what, context, reason ? reason : "unknown error");
  };
  if (!gif) gif_failure("header");
  int transparency = -1;
  for (;;) {
    GifRecordType record = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif.get(), &record) == GIF_ERROR) gif_failure("block");
    if (record == TERMINATE_RECORD_TYPE) fail("{}: GIF has no image", what);
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif.get(), &code, &block) == GIF_ERROR) gif_failure("extension");
      // Graphic control: flags, delay (2 bytes), transparent index. A later one without the
      // transparency flag keeps the earlier index; Pillow fails on one too short to hold them.
      if (code == GRAPHICS_EXT_FUNC_CODE) {
        if (!block || block[0] < 3 || ((block[1] & 1) && block[0] < 4))
          fail("{}: corrupt GIF (graphic control block of {} bytes)", what, block ? block[0] : 0);
        if (block[1] & 1) transparency = block[4];
      }
      while (block)
        if (DGifGetExtensionNext(gif.get(), &block) == GIF_ERROR) gif_failure("extension");
      continue;
    }
    if (record != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) gif_failure("image descriptor");  // and the code size
    end_image_data_at_first_broken_block(&source);
    const GifImageDesc& frame = gif->Image;
    if (frame.Width <= 0 || frame.Height <= 0)  // Pillow: "tile cannot extend outside image"
      fail("{}: corrupt GIF (empty {}x{} frame)", what, frame.Width, frame.Height);
    const int64_t canvas_width = std::max<int64_t>(gif->SWidth, int64_t(frame.Left) + frame.Width);
    const int64_t canvas_height = std::max<int64_t>(gif->SHeight, int64_t(frame.Top) + frame.Height);
    check_dimensions(what, "GIF", canvas_width, canvas_height);
    check_claimable_canvas(what, "GIF", canvas_width, canvas_height);
    // Each LZW code (2 bits at least) adds at most one pixel to the longest string so far: a
    // frame larger than what the rest of the file can encode is truncated, whatever it claims.
    const uint64_t codes = uint64_t(size - source.pos) * 4;
    const uint64_t most_pixels = codes < 8192 ? codes * (codes + 1) / 2 : codes * 4096;
    if (uint64_t(frame.Width) * uint64_t(frame.Height) > most_pixels)
      fail("{}: truncated GIF ({}x{} frame in {} bytes)", what, frame.Width, frame.Height, size - source.pos);

    ColourTable colours;
    const ColorMapObject* palette = frame.ColorMap ? frame.ColorMap : gif->SColorMap;
    if (palette && gif_palette_needed(palette)) {
      for (int i = 0; i < std::min(palette->ColorCount, 256); ++i) {
        colours.rgb[i][0] = palette->Colors[i].Red;
        colours.rgb[i][1] = palette->Colors[i].Green;
        colours.rgb[i][2] = palette->Colors[i].Blue;
      }
    }
    const uint8_t* fill = colours.rgb[transparency >= 0 ? transparency : 0];
    Image image = make_image(int(canvas_width), int(canvas_height), fill[0], fill[1], fill[2]);
    std::vector<GifPixelType> line(size_t(frame.Width));
    // Interlaced rows arrive as rows 0, 8, 16.. then 4, 12.. then 2, 6.. then 1, 3..
    static constexpr int kPassStart[4] = {0, 4, 2, 1}, kPassStep[4] = {8, 8, 4, 2};
    int pass = 0, next_row = 0;
    for (int i = 0; i < frame.Height; ++i) {
      int row = i;
      if (frame.Interlace) {
        while (next_row >= frame.Height) next_row = kPassStart[++pass];
        row = next_row;
        next_row += kPassStep[pass];
      }
      if (DGifGetLine(gif.get(), line.data(), frame.Width) == GIF_ERROR) gif_failure("image data");
      uint8_t* out = image.pixel(frame.Left, frame.Top + row);
      for (int x = 0; x < frame.Width; ++x) std::memcpy(out + 3 * x, colours.rgb[line[size_t(x)]], 3);
    }
    return image;
  }
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

namespace {

enum class ImageFormat { png, jpeg, webp, tiff, bmp, gif };

ImageFormat detect_format(const uint8_t* data, size_t size, const std::string& what) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static constexpr uint8_t kJpeg[3] = {0xff, 0xd8, 0xff};
  if (size == 0 || !data) fail("{}: empty file", what);
  if (starts_with(data, size, kPng, 8)) return ImageFormat::png;
  if (starts_with(data, size, kJpeg, 3)) return ImageFormat::jpeg;
  if (starts_with(data, size, "RIFF", 4) && size >= 12 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return ImageFormat::webp;
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
      starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4))
    return ImageFormat::tiff;
  if (starts_with(data, size, "BM", 2)) return ImageFormat::bmp;
  if (starts_with(data, size, "GIF87a", 6) || starts_with(data, size, "GIF89a", 6)) return ImageFormat::gif;
  fail("{}: unrecognised image format (supported: PNG, JPEG, WebP, TIFF, BMP, GIF)", what);
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& what) {
  return decode_image_page(data, size, 0, what);
}

Image load_image(const std::string& path) { return load_image_page(path, 0); }

int image_page_count(const uint8_t* data, size_t size, const std::string& what) {
  return detect_format(data, size, what) == ImageFormat::tiff ? tiff_page_count(data, size, what) : 1;
}

int image_file_page_count(const std::string& path) {
  MappedFile file(path);
  return image_page_count(file.data(), file.size(), path);
}

Image decode_image_page(const uint8_t* data, size_t size, int index, const std::string& what) {
  const ImageFormat format = detect_format(data, size, what);
  if (index < 0 || (index > 0 && format != ImageFormat::tiff))
    fail("{}: page {} out of range (pages count from 0; this image has 1)", what, index);
  switch (format) {
    case ImageFormat::png: return decode_png(data, size, what);
    case ImageFormat::jpeg: return decode_jpeg(data, size, what);
    case ImageFormat::webp: return decode_webp(data, size, what);
    case ImageFormat::tiff: return decode_tiff(data, size, index, what);
    case ImageFormat::bmp: return decode_bmp(data, size, what);
    case ImageFormat::gif: return decode_gif(data, size, what);
  }
  fail("{}: unrecognised image format", what);
}

Image load_image_page(const std::string& path, int index) {
  MappedFile file(path);
  return decode_image_page(file.data(), file.size(), index, path);
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
  if (out.empty()) return out;  // no rows to copy (and no buffer to copy them into)
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
