// The searchable PDF of io/layout_formats.h: page images under an invisible text layer, and the
// glyph-less TrueType font that carries it.
#include <algorithm>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "io/layout_formats.h"
#include "io/layout_formats_internal.h"
#include "io/pdf_writer.h"
#include "text/utf8.h"

namespace dsocr {

using namespace layout_detail;

namespace {

// Font metrics, in font units (and in PDF glyph space, 1/1000 of the font size).
constexpr int kUnitsPerEm = 1000;
constexpr int kAdvance = 500;   // every glyph: half an em wide (Tz stretches the run to its box)
constexpr int kAscent = 1000;   // with (almost) no descent, a run of size = box height covers its box
constexpr const char* kFontName = "DsocrTextLayer";

// Big-endian table building.
struct Be {
  std::string bytes;
  Be& u8(unsigned v) {
    bytes += char(v & 0xFF);
    return *this;
  }
  Be& u16(unsigned v) { return u8(v >> 8).u8(v); }
  Be& i16(int v) { return u16(unsigned(uint16_t(int16_t(v)))); }
  Be& u32(uint32_t v) { return u16(v >> 16).u16(v & 0xFFFF); }
  Be& tag(const char* t) {
    bytes.append(t, 4);
    return *this;
  }
};

// The TrueType checksum: the sum of the data as big-endian uint32 words, zero-padded to a word.
uint32_t table_checksum(std::string_view data) {
  uint32_t sum = 0;
  for (size_t i = 0; i < data.size(); i += 4) {
    uint32_t word = 0;
    for (size_t k = 0; k < 4; ++k) word = (word << 8) | (i + k < data.size() ? uint8_t(data[i + k]) : 0u);
    sum += word;
  }
  return sum;
}

std::string utf16be(std::u16string_view s) {
  std::string out;
  for (char16_t c : s) out += char(c >> 8), out += char(c & 0xFF);
  return out;
}

// A character as UTF-16BE hex digits (a surrogate pair beyond the BMP), for a ToUnicode CMap.
std::string utf16_hex(char32_t c) {
  if (c < 0x10000) return fmt::format("{:04X}", unsigned(c));
  const char32_t v = c - 0x10000;
  return fmt::format("{:04X}{:04X}", unsigned(0xD800 + (v >> 10)), unsigned(0xDC00 + (v & 0x3FF)));
}

// A PDF text string of any text: UTF-16BE with a byte order mark, as a hex string.
std::string pdf_text_string(std::string_view text) {
  std::string out = "<FEFF";
  const std::string valid = utf8::to_valid_lossy(text);
  for (std::string_view rest = valid; !rest.empty();) {
    const utf8::Unit unit = utf8::next_unit(rest);
    out += utf16_hex(unit.codepoint);
    rest.remove_prefix(unit.length);
  }
  return out + ">";
}

}  // namespace

std::vector<uint8_t> glyphless_truetype_font() {
  // Tables in tag order (the table directory must be sorted; 'O' sorts before lower case).
  std::vector<std::pair<const char*, std::string>> tables;

  // OS/2 (version 4, 96 bytes): Windows metrics, weight 400, width 5 (normal), embedding allowed
  // (fsType 0), fsSelection REGULAR; the typo and win ascents match hhea's.
  Be os2;
  os2.u16(4).i16(kAdvance).u16(400).u16(5).u16(0);
  os2.i16(500).i16(500).i16(0).i16(100).i16(500).i16(500).i16(0).i16(500).i16(50).i16(250);  // sub/superscript, strikeout
  os2.i16(0);                                            // sFamilyClass
  for (int k = 0; k < 10; ++k) os2.u8(0);                // PANOSE: any
  os2.u32(0).u32(0).u32(0).u32(0);                       // ulUnicodeRange1..4
  os2.tag("NONE");                                       // achVendID
  os2.u16(0x0040).u16(0xFFFF).u16(0xFFFF);               // fsSelection, first and last char index
  os2.i16(kAscent).i16(0).i16(0).u16(kAscent).u16(0);    // typo ascender/descender/gap, win ascent/descent
  os2.u32(0).u32(0);                                     // ulCodePageRange1..2
  os2.i16(0).i16(0).u16(0).u16(0x20).u16(0);             // x height, cap height, default/break char, max context
  tables.emplace_back("OS/2", os2.bytes);

  // cmap: one (3, 1) format 4 subtable holding only the final 0xFFFF segment, i.e. no character
  // maps to a glyph. PDF reaches the glyph through CIDToGIDMap and never reads the cmap.
  Be cmap;
  cmap.u16(0).u16(1).u16(3).u16(1).u32(12);
  cmap.u16(4).u16(24).u16(0);          // format, length, language
  cmap.u16(2).u16(2).u16(0).u16(0);    // segCountX2, searchRange, entrySelector, rangeShift
  cmap.u16(0xFFFF).u16(0).u16(0xFFFF); // endCode, reservedPad, startCode
  cmap.i16(1).u16(0);                  // idDelta, idRangeOffset
  tables.emplace_back("cmap", cmap.bytes);

  // glyf: glyph 0 (.notdef) and glyph 1 have no outline, hence no data at all.
  tables.emplace_back("glyf", std::string());

  // head (54 bytes): version 1.0, revision 1.0, checkSumAdjustment (set below), magic number, flags
  // (baseline at y = 0, left sidebearing at x = 0, integer scaling), units per em, a fixed date
  // (the font never changes), the glyph cell as bounding box, smallest readable size 3 ppem, short
  // loca offsets.
  constexpr uint32_t kDate = 3818534400u;  // 2025-01-01, in seconds since 1904 (64 bits, high word 0)
  Be head;
  head.u32(0x00010000).u32(0x00010000).u32(0).u32(0x5F0F3CF5).u16(0x000B).u16(kUnitsPerEm);
  head.u32(0).u32(kDate).u32(0).u32(kDate);         // created, modified
  head.i16(0).i16(0).i16(kAdvance).i16(kAscent);    // xMin yMin xMax yMax
  head.u16(0).u16(3).i16(2).i16(0).i16(0);          // macStyle, lowestRecPPEM, direction hint, loca format, glyf format
  tables.emplace_back("head", head.bytes);

  // hhea (36 bytes): ascender, descender 0, no line gap, widest advance, upright caret, two metrics.
  Be hhea;
  hhea.u32(0x00010000).i16(kAscent).i16(0).i16(0).u16(kAdvance).i16(0).i16(0).i16(0);
  hhea.i16(1).i16(0).i16(0).i16(0).i16(0).i16(0).i16(0).i16(0).u16(2);
  tables.emplace_back("hhea", hhea.bytes);

  // hmtx: both glyphs advance half an em, left sidebearing 0.
  Be hmtx;
  hmtx.u16(kAdvance).i16(0).u16(kAdvance).i16(0);
  tables.emplace_back("hmtx", hmtx.bytes);

  // loca (short offsets, in units of 2 bytes): glyphs 0 and 1 both empty.
  Be loca;
  loca.u16(0).u16(0).u16(0);
  tables.emplace_back("loca", loca.bytes);

  // maxp (version 1.0, 32 bytes): two glyphs, no points, contours, instructions; 2 zones.
  Be maxp;
  maxp.u32(0x00010000).u16(2).u16(0).u16(0).u16(0).u16(0).u16(2);
  for (int k = 0; k < 8; ++k) maxp.u16(0);
  tables.emplace_back("maxp", maxp.bytes);

  // name: family, subfamily, unique id, full name, version and PostScript name, Windows Unicode
  // records (platform 3, encoding 1, US English), UTF-16BE strings.
  const std::u16string names[] = {u"DsocrTextLayer", u"Regular", u"dsocr: DsocrTextLayer", u"DsocrTextLayer",
                                  u"Version 1.0", u"DsocrTextLayer"};
  Be name;
  name.u16(0).u16(6).u16(6 + 12 * 6);
  std::string strings;
  for (int k = 0; k < 6; ++k) {
    const std::string s = utf16be(names[k]);
    name.u16(3).u16(1).u16(0x0409).u16(k + 1).u16(unsigned(s.size())).u16(unsigned(strings.size()));
    strings += s;
  }
  name.bytes += strings;
  tables.emplace_back("name", name.bytes);

  // post (version 3.0: no glyph names): upright, underline, fixed pitch.
  Be post;
  post.u32(0x00030000).u32(0).i16(-100).i16(50).u32(1).u32(0).u32(0).u32(0).u32(0);
  tables.emplace_back("post", post.bytes);

  // The table directory, then each table at a 4-byte boundary.
  const auto count = unsigned(tables.size());
  unsigned power = 1, log2 = 0;
  while (power * 2 <= count) power *= 2, ++log2;
  Be font;
  font.u32(0x00010000).u16(count).u16(power * 16).u16(log2).u16(count * 16 - power * 16);
  uint32_t offset = 12 + 16 * count;
  std::string body;
  size_t head_offset = 0;
  for (const auto& [tag, data] : tables) {
    font.tag(tag).u32(table_checksum(data)).u32(offset).u32(uint32_t(data.size()));
    if (std::string_view(tag) == "head") head_offset = offset;
    std::string padded = data;
    padded.resize((data.size() + 3) / 4 * 4, '\0');
    body += padded;
    offset += uint32_t(padded.size());
  }
  std::string bytes = font.bytes + body;
  // head.checkSumAdjustment makes the whole font sum to 0xB1B0AFBA.
  const uint32_t adjustment = 0xB1B0AFBAu - table_checksum(bytes);
  for (int k = 0; k < 4; ++k) bytes[head_offset + 8 + size_t(k)] = char(adjustment >> (24 - 8 * k));
  return {bytes.begin(), bytes.end()};
}

// ---- SearchablePdfWriter ----------------------------------------------------

class SearchablePdfWriter::Impl {
 public:
  Impl(std::string path, const LayoutWriterOptions& options)
      : quality(options.jpeg_quality),
        points_per_pixel(72.0 / options.dpi),
        producer(options.software_name + " " + software_version(options)) {
    check_pdf_options(path, options.jpeg_quality, options.dpi);
    pdf = std::make_unique<PdfFileWriter>(std::move(path));
    // The font is written now; its ToUnicode CMap and CIDToGIDMap, which depend on the characters
    // of the whole document, by finish(). Descent -1, not 0: readers (poppler) take 0 for "unknown"
    // and substitute a default, which would extend the text's boxes below the line.
    font_id = pdf->reserve_object();
    to_unicode_id = pdf->reserve_object();
    cid_to_gid_id = pdf->reserve_object();
    const std::vector<uint8_t> font = glyphless_truetype_font();
    const int file_id = pdf->write_stream(fmt::format("/Length1 {}", font.size()),
                                          std::string_view(reinterpret_cast<const char*>(font.data()), font.size()));
    const int descriptor_id = pdf->write_object(fmt::format(
        "<< /Type /FontDescriptor /FontName /{} /Flags 5 /FontBBox [0 0 {} {}] /ItalicAngle 0 /Ascent {} "
        "/Descent -1 /CapHeight {} /StemV 80 /FontFile2 {} 0 R >>",
        kFontName, kAdvance, kAscent, kAscent, kAscent, file_id));
    const int cid_font_id = pdf->write_object(fmt::format(
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{} /CIDSystemInfo << /Registry (Adobe) /Ordering "
        "(Identity) /Supplement 0 >> /FontDescriptor {} 0 R /DW {} /CIDToGIDMap {} 0 R >>",
        kFontName, descriptor_id, kAdvance, cid_to_gid_id));
    pdf->write_object(fmt::format("<< /Type /Font /Subtype /Type0 /BaseFont /{} /Encoding /Identity-H "
                                  "/DescendantFonts [{} 0 R] /ToUnicode {} 0 R >>",
                                  kFontName, cid_font_id, to_unicode_id),
                      font_id);
  }

  void add_page(const LayoutPage& page, const Image& image) {
    check_page(pdf->path(), page);
    const std::string what = fmt::format("{}: page {}", pdf->path(), page.page_number);
    if (image.empty()) fail("{}: no page image", what);
    // Encoded before anything is written, so that a bad page leaves the file consistent.
    const std::vector<uint8_t> jpeg = with_context(what, [&] { return encode_jpeg(image, quality); });
    const double page_width = image.width * points_per_pixel, page_height = image.height * points_per_pixel;
    // Layout pixels -> points (the image may have another size than the layout's page).
    const double sx = page_width / page.width, sy = page_height / page.height;

    std::string text;
    std::string cids;
    for (const LayoutBlock& block : page.blocks) {
      for (const LayoutArea& area : layout_areas(block, page.width, page.height)) {
        for (const LayoutLine& line : area.lines) {
          const LinePlacement placed = place_line(line);
          if (placed.glyphs.empty()) continue;
          // Glyphs in visual order, as PDF text is: readers rebuild the logical order of
          // right-to-left runs from the positions.
          cids.clear();
          for (size_t k : placed.visual.order) cids += fmt::format("{:04X}", cid_for(placed.glyphs[k]));
          const double x = double(placed.start) * sx;
          const double size = std::max(line.box.y2 - line.box.y1, 1) * sy;
          const double baseline = page_height - line.box.y2 * sy;
          // Tz: the glyph's advance (kAdvance / 1000 of the size) stretched to the placement's.
          // (A box without width still gets a non-zero scaling: a singular text matrix upsets readers.)
          const double scale = 100.0 * std::max(placed.advance(), 0.01) * sx / (kAdvance / 1000.0 * size);
          text += fmt::format("/F0 {} Tf {} Tz 1 0 0 1 {} {} Tm <{}> Tj\n", pdf_number(size), pdf_number(scale),
                              pdf_number(x), pdf_number(baseline), cids);
        }
      }
    }
    // Render mode 3: neither fill nor stroke, the text is only there to be found.
    if (!text.empty()) text = "BT\n3 Tr\n" + text + "ET\n";
    pdf->add_jpeg_page(jpeg, image.width, image.height, page_width, page_height, text,
                       text.empty() ? "" : fmt::format("/Font << /F0 {} 0 R >>", font_id));
  }

  void finish() {
    if (pdf->page_count() == 0) fail("{}: a PDF needs at least one page", pdf->path());
    // ToUnicode: each CID (two bytes, Identity-H) to its character, at most 100 per bfchar section.
    std::string cmap =
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n";
    for (size_t first = 0; first < cid_chars.size(); first += 100) {
      const size_t last = std::min(cid_chars.size(), first + 100);
      cmap += fmt::format("{} beginbfchar\n", last - first);
      for (size_t k = first; k < last; ++k) cmap += fmt::format("<{:04X}> <{}>\n", k + 1, utf16_hex(cid_chars[k]));
      cmap += "endbfchar\n";
    }
    cmap += "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n";
    pdf->write_stream("", cmap, to_unicode_id);
    // CIDToGIDMap: two bytes per CID, the glyph it shows: CID 0 .notdef, every other CID glyph 1.
    std::string map(2 * (cid_chars.size() + 1), '\0');
    for (size_t k = 1; k <= cid_chars.size(); ++k) map[2 * k + 1] = 1;
    pdf->write_stream("", map, cid_to_gid_id);
    const int info_id = pdf->write_object(fmt::format("<< /Producer {} >>", pdf_text_string(producer)));
    pdf->finish(info_id);
  }

  // CIDs number the document's distinct characters from 1 in order of first use; the last one
  // (65535) is kept for U+FFFD, which every further new character becomes.
  uint16_t cid_for(char32_t c) {
    if (auto it = cids_by_char.find(c); it != cids_by_char.end()) return it->second;
    if (cid_chars.size() + 1 >= 0xFFFF && c != U'\uFFFD') return cid_for(U'\uFFFD');
    cid_chars.push_back(c);
    cids_by_char.emplace(c, uint16_t(cid_chars.size()));
    return uint16_t(cid_chars.size());
  }

  int quality;
  double points_per_pixel;
  std::string producer;
  std::unique_ptr<PdfFileWriter> pdf;
  int font_id = 0, to_unicode_id = 0, cid_to_gid_id = 0;
  std::unordered_map<char32_t, uint16_t> cids_by_char;
  std::vector<char32_t> cid_chars;  // CID k shows cid_chars[k - 1]
};

SearchablePdfWriter::SearchablePdfWriter(std::string path, const LayoutWriterOptions& options)
    : impl_(std::make_unique<Impl>(std::move(path), options)) {}
SearchablePdfWriter::~SearchablePdfWriter() = default;
void SearchablePdfWriter::add_page(const LayoutPage& page, const Image& image) { impl_->add_page(page, image); }
void SearchablePdfWriter::finish() { impl_->finish(); }
int SearchablePdfWriter::page_count() const { return impl_->pdf->page_count(); }

}  // namespace dsocr
