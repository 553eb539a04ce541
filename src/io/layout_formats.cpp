// Layout geometry, hOCR and ALTO (the searchable PDF is in searchable_pdf.cpp).
#include "io/layout_formats.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "core/version.h"
#include "io/files.h"
#include "io/layout_formats_internal.h"
#include "text/utf8.h"


namespace dsocr {

namespace layout_detail {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

LayoutKind kind_of(std::string_view label) {
  if (label == "image") return LayoutKind::Image;
  if (label == "table") return LayoutKind::Table;
  if (label == "title" || label == "sub_title") return LayoutKind::Title;
  if (label.size() >= 7 && label.substr(label.size() - 7) == "caption") return LayoutKind::Caption;
  return LayoutKind::Text;
}

void check_page(const std::string& path, const LayoutPage& page) {
  if (page.width <= 0 || page.height <= 0)
    fail("{}: page {}: the page has no size ({}x{})", path, page.page_number, page.width, page.height);
  if (page.page_number < 1) fail("{}: page number {} (pages count from 1)", path, page.page_number);
}

std::u32string line_glyphs(std::string_view text) {
  std::u32string out;
  bool space = false;
  for (std::string_view rest = text; !rest.empty();) {
    const utf8::Unit unit = utf8::next_unit(rest);
    if (unit.length == 1 && (is_space(rest[0]) || rest[0] == '\n')) {
      space = true;
    } else {
      char32_t c = unit.kind == utf8::Unit::kChar ? unit.codepoint : U'\uFFFD';
      if (c < 0x20 || c == 0x7F || c == 0xFFFE || c == 0xFFFF) c = U'\uFFFD';
      if (space && !out.empty()) out += U' ';
      out += c;
      space = false;
    }
    rest.remove_prefix(unit.length);
  }
  return out;
}

namespace {

enum class Direction { L, R, Number, Neutral };

Direction direction_of(char32_t c) {
  if ((c >= '0' && c <= '9') || (c >= 0x0660 && c <= 0x0669) || (c >= 0x06F0 && c <= 0x06F9) ||
      (c >= 0xFF10 && c <= 0xFF19))
    return Direction::Number;
  if ((c >= 0x0590 && c <= 0x08FF) || (c >= 0xFB1D && c <= 0xFDFF) || (c >= 0xFE70 && c <= 0xFEFF) ||
      (c >= 0x10800 && c <= 0x10FFF) || (c >= 0x1E800 && c <= 0x1EFFF))
    return Direction::R;
  if (c < 0x80) return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? Direction::L : Direction::Neutral;
  if ((c >= 0x00A0 && c <= 0x00BF) || c == 0x00D7 || c == 0x00F7 || (c >= 0x2000 && c <= 0x2BFF) ||
      (c >= 0x3000 && c <= 0x3003) || (c >= 0x3008 && c <= 0x3020) || (c >= 0xFE50 && c <= 0xFE6F) ||
      (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || c == 0xFFFD)
    return Direction::Neutral;
  return Direction::L;
}

}  // namespace

VisualOrder visual_order(std::u32string_view glyphs) {
  const size_t n = glyphs.size();
  std::vector<Direction> type(n);
  for (size_t i = 0; i < n; ++i) type[i] = direction_of(glyphs[i]);
  Direction base = Direction::L;
  for (Direction t : type)
    if (t == Direction::L || t == Direction::R) {
      base = t;
      break;
    }
  // Numbers after left-to-right text (or at the start of a left-to-right line) are plain L (UBA W7).
  Direction strong = base;
  for (size_t i = 0; i < n; ++i) {
    if (type[i] == Direction::L || type[i] == Direction::R) strong = type[i];
    if (type[i] == Direction::Number && strong == Direction::L) type[i] = Direction::L;
  }
  // A run of neutrals takes the direction of both neighbours when they agree (numbers count as R),
  // the line's otherwise (UBA N1, N2).
  auto as_strong = [](Direction t) { return t == Direction::Number ? Direction::R : t; };
  for (size_t i = 0; i < n;) {
    if (type[i] != Direction::Neutral) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < n && type[j] == Direction::Neutral) ++j;
    const Direction before = i > 0 ? as_strong(type[i - 1]) : base, after = j < n ? as_strong(type[j]) : base;
    for (size_t k = i; k < j; ++k) type[k] = before == after ? before : base;
    i = j;
  }
  // Embedding levels (UBA I1, I2), then reversal of every run at each level from the highest down to
  // the lowest odd one (L2).
  const int base_level = base == Direction::R ? 1 : 0;
  std::vector<int> level(n);
  int highest = base_level, lowest_odd = 99;
  for (size_t i = 0; i < n; ++i) {
    if (base_level == 0)
      level[i] = type[i] == Direction::L ? 0 : type[i] == Direction::R ? 1 : 2;
    else
      level[i] = type[i] == Direction::R ? 1 : 2;
    highest = std::max(highest, level[i]);
    if (level[i] % 2 == 1) lowest_odd = std::min(lowest_odd, level[i]);
  }
  VisualOrder visual{std::vector<size_t>(n), base == Direction::R};
  std::vector<size_t>& order = visual.order;
  for (size_t i = 0; i < n; ++i) order[i] = i;
  for (int l = highest; l >= lowest_odd && l >= 1; --l)
    for (size_t i = 0; i < n;) {
      if (level[order[i]] < l) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < n && level[order[j]] >= l) ++j;
      std::reverse(order.begin() + ptrdiff_t(i), order.begin() + ptrdiff_t(j));
      i = j;
    }
  return visual;
}

LinePlacement place_line(const LayoutLine& line) {
  LinePlacement p;
  p.glyphs = line_glyphs(line.text);
  p.visual = visual_order(p.glyphs);
  const int64_t n = std::max<int64_t>(int64_t(p.glyphs.size()), 1);
  const int64_t width = line.box.x2 - line.box.x1, height = std::max(line.box.y2 - line.box.y1, 1);
  p.start = line.box.x1;
  p.num = width, p.den = n;
  if (width * kMaxAdvanceDen > kMaxAdvanceNum * height * n) {
    p.num = kMaxAdvanceNum * height, p.den = kMaxAdvanceDen;
    if (p.visual.right_to_left) p.start = line.box.x2 - n * p.num / p.den;
  }
  return p;
}

std::string software_version(const LayoutWriterOptions& options) {
  return options.software_version.empty() ? std::string(kVersion) : options.software_version;
}

}  // namespace layout_detail

using namespace layout_detail;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

PixelBox normalise(PixelBox b, int width, int height) {
  width = std::max(width, 0), height = std::max(height, 0);
  if (b.x1 > b.x2) std::swap(b.x1, b.x2);
  if (b.y1 > b.y2) std::swap(b.y1, b.y2);
  b.x1 = std::clamp(b.x1, 0, width), b.x2 = std::clamp(b.x2, 0, width);
  b.y1 = std::clamp(b.y1, 0, height), b.y2 = std::clamp(b.y2, 0, height);
  return b;
}

// Text -> XML 1.0 character data. & < > are escaped, and CR as &#13; (a parser reads a raw CR as LF);
// in attributes also " and TAB/LF (attribute normalisation turns them into spaces). Invalid UTF-8 and
// code points XML 1.0 forbids (C0 controls other than TAB, LF, CR; U+FFFE, U+FFFF) become U+FFFD.
std::string xml_escape(std::string_view raw, bool attribute) {
  const std::string text = utf8::to_valid_lossy(raw);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '&': out += "&amp;"; continue;
      case '<': out += "&lt;"; continue;
      case '>': out += "&gt;"; continue;
      case '\r': out += "&#13;"; continue;
      case '"': out += attribute ? "&quot;" : "\""; continue;
      case '\t': out += attribute ? "&#9;" : "\t"; continue;
      case '\n': out += attribute ? "&#10;" : "\n"; continue;
      default: break;
    }
    if (uint8_t(c) < 0x20) {
      out += "\xEF\xBF\xBD";
    } else if (uint8_t(c) == 0xEF && i + 2 < text.size() && uint8_t(text[i + 1]) == 0xBF &&
               (uint8_t(text[i + 2]) == 0xBE || uint8_t(text[i + 2]) == 0xBF)) {
      out += "\xEF\xBF\xBD";  // U+FFFE, U+FFFF
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

// An hOCR delimited-string holds printable ASCII other than '"'; everything else is percent-encoded
// as in a URL (and '%' itself, and ';', which simple property parsers split at).
std::string hocr_string(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = uint8_t(c);
    if (u >= 0x20 && u <= 0x7E && c != '"' && c != '%' && c != ';')
      out += c;
    else
      out += fmt::format("%{:02X}", u);
  }
  return out;
}

std::string hocr_bbox(const PixelBox& b) { return fmt::format("bbox {} {} {} {}", b.x1, b.y1, b.x2, b.y2); }

std::string alto_box(const PixelBox& b) {
  return fmt::format("HPOS=\"{}\" VPOS=\"{}\" WIDTH=\"{}\" HEIGHT=\"{}\"", b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
}

// The body of an XML document whose head can only be written once every page is known (the page
// count, the labels): kept in an anonymous temporary file, so that memory stays bounded by one page,
// and copied behind the head by finish().
class XmlDocument {
 public:
  explicit XmlDocument(std::string path) : path_(std::move(path)) {
    file_ = std::make_unique<AtomicFile>(path_);
    spool_ = std::tmpfile();
    if (!spool_) fail("{}: cannot create a temporary file: {}", path_, std::strerror(errno));
  }
  ~XmlDocument() {
    if (spool_) std::fclose(spool_);
  }
  XmlDocument(const XmlDocument&) = delete;
  XmlDocument& operator=(const XmlDocument&) = delete;

  const std::string& path() const { return path_; }
  int pages() const { return pages_; }
  const std::string& first_source() const { return first_source_; }

  // Checks a page before it is written; returns its 1-based sequence number in this document.
  int begin_page(const LayoutPage& page) {
    if (!file_) fail("{}: already finished", path_);
    check_page(path_, page);
    if (pages_ == 0) first_source_ = page.source;
    return pages_ + 1;
  }
  void end_page(std::string_view body) {
    if (std::fwrite(body.data(), 1, body.size(), spool_) != body.size())
      fail("{}: cannot write a temporary file (disk full?): {}", path_, std::strerror(errno));
    ++pages_;
  }

  void finish(std::string_view head, std::string_view tail) {
    if (!file_) fail("{}: already finished", path_);
    if (pages_ == 0) fail("{}: no page to write", path_);
    file_->write(head);
    if (std::fflush(spool_) != 0 || std::fseek(spool_, 0, SEEK_SET) != 0)
      fail("{}: cannot read back a temporary file: {}", path_, std::strerror(errno));
    std::vector<char> chunk(1 << 16);
    size_t n;
    while ((n = std::fread(chunk.data(), 1, chunk.size(), spool_)) > 0) file_->write({chunk.data(), n});
    if (std::ferror(spool_)) fail("{}: cannot read back a temporary file", path_);
    file_->write(tail);
    file_->commit();
    file_.reset();
  }

 private:
  std::string path_;
  std::unique_ptr<AtomicFile> file_;
  FILE* spool_ = nullptr;
  std::string first_source_;
  int pages_ = 0;
};

}  // namespace

// ---- geometry ---------------------------------------------------------------

LayoutPage layout_page_from_blocks(const std::vector<Block>& blocks, int page_width, int page_height,
                                   std::string source, int page_number) {
  LayoutPage page;
  page.width = page_width, page.height = page_height, page.source = std::move(source), page.page_number = page_number;
  for (const Block& b : blocks) {
    LayoutBlock lb;
    lb.label = b.label, lb.text = b.text;
    for (const Box& box : b.boxes) lb.boxes.push_back(to_pixels(box, page_width, page_height));
    page.blocks.push_back(std::move(lb));
  }
  return page;
}

std::vector<LayoutArea> layout_areas(const LayoutBlock& block, int page_width, int page_height) {
  std::vector<LayoutArea> areas;
  for (const PixelBox& b : block.boxes) areas.push_back({normalise(b, page_width, page_height), {}});
  if (areas.empty()) areas.push_back({PixelBox{0, 0, std::max(page_width, 0), std::max(page_height, 0)}, {}});

  std::vector<std::string> lines;
  const std::string text = utf8::to_valid_lossy(block.text);
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = trim(std::string_view(text).substr(start, end - start));
    if (!line.empty()) lines.emplace_back(line);
    start = end + 1;
  }

  // Box k takes lines [round(n * C(k-1) / T), round(n * C(k) / T)), C the cumulative heights.
  int64_t total = 0;
  for (const LayoutArea& a : areas) total += a.box.y2 - a.box.y1;
  const bool by_height = total > 0;
  if (!by_height) total = int64_t(areas.size());
  const auto n = int64_t(lines.size());
  int64_t cumulative = 0;
  size_t next = 0;
  for (LayoutArea& area : areas) {
    cumulative += by_height ? area.box.y2 - area.box.y1 : 1;
    const auto end = size_t((n * cumulative + total / 2) / total);
    const int64_t m = int64_t(end - next), h = area.box.y2 - area.box.y1;
    for (int64_t j = 0; j < m; ++j) {
      const int y1 = area.box.y1 + int(h * j / m), y2 = area.box.y1 + int(h * (j + 1) / m);
      area.lines.push_back({PixelBox{area.box.x1, y1, area.box.x2, y2}, std::move(lines[next + size_t(j)])});
    }
    next = end;
  }
  return areas;
}

std::vector<LayoutWord> layout_words(const LayoutLine& line) {
  const LinePlacement p = place_line(line);
  const std::u32string& glyphs = p.glyphs;
  std::vector<size_t> slot(glyphs.size());
  for (size_t k = 0; k < glyphs.size(); ++k) slot[p.visual.order[k]] = k;
  std::vector<LayoutWord> out;
  for (size_t i = 0; i < glyphs.size();) {
    if (glyphs[i] == U' ') {
      ++i;
      continue;
    }
    LayoutWord word{0, 0, {}};
    size_t first = slot[i], last = slot[i];
    for (; i < glyphs.size() && glyphs[i] != U' '; ++i) {
      utf8::append(word.text, glyphs[i]);
      first = std::min(first, slot[i]), last = std::max(last, slot[i]);
    }
    word.x1 = p.x(first), word.x2 = p.x(last + 1);
    out.push_back(std::move(word));
  }
  return out;
}

// ---- hOCR -------------------------------------------------------------------

namespace {

// Every class the writer can produce (hOCR: a class not listed must not appear).
constexpr const char* kHocrCapabilities = "ocr_page ocr_carea ocr_par ocr_line ocr_header ocr_caption ocr_photo ocr_table";

const char* hocr_block_class(LayoutKind kind) {
  switch (kind) {
    case LayoutKind::Image: return "ocr_photo";
    case LayoutKind::Table: return "ocr_table";
    default: return "ocr_carea";
  }
}

const char* hocr_line_class(LayoutKind kind) {
  switch (kind) {
    case LayoutKind::Title: return "ocr_header";
    case LayoutKind::Caption: return "ocr_caption";
    default: return "ocr_line";
  }
}

}  // namespace

class HocrWriter::Impl {
 public:
  Impl(std::string path, const LayoutWriterOptions& options)
      : doc(std::move(path)), system(options.software_name + " " + software_version(options)) {}

  void add_page(const LayoutPage& page) {
    const int p = doc.begin_page(page);
    std::string out = fmt::format("  <div class=\"ocr_page\" id=\"page_{}\" title=\"{}bbox 0 0 {} {}; ppageno {}\">\n",
                                  p,
                                  page.source.empty() ? "" : "image &quot;" + xml_escape(hocr_string(page.source), true) +
                                                                 "&quot;; ",
                                  page.width, page.height, page.page_number - 1);
    int area_no = 0, line_no = 0;
    for (const LayoutBlock& block : page.blocks) {
      const LayoutKind kind = kind_of(block.label);
      const std::string label =
          block.label.empty() ? "" : "; x_label &quot;" + xml_escape(hocr_string(block.label), true) + "&quot;";
      for (const LayoutArea& area : layout_areas(block, page.width, page.height)) {
        ++area_no;
        out += fmt::format("   <div class=\"{}\" id=\"block_{}_{}\" title=\"{}{}\">\n", hocr_block_class(kind), p,
                           area_no, hocr_bbox(area.box), label);
        if (!area.lines.empty()) {
          out += fmt::format("    <p class=\"ocr_par\" id=\"par_{}_{}\" title=\"{}\">\n", p, area_no, hocr_bbox(area.box));
          for (const LayoutLine& line : area.lines)
            out += fmt::format("     <span class=\"{}\" id=\"line_{}_{}\" title=\"{}\">{}</span>\n",
                               hocr_line_class(kind), p, ++line_no, hocr_bbox(line.box), xml_escape(line.text, false));
          out += "    </p>\n";
        }
        out += "   </div>\n";
      }
    }
    out += "  </div>\n";
    doc.end_page(out);
  }

  void finish() {
    const std::string head = fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n"
        "    \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n"
        "<html xmlns=\"http://www.w3.org/1999/xhtml\">\n"
        " <head>\n"
        "  <title>{}</title>\n"
        "  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\n"
        "  <meta name=\"ocr-system\" content=\"{}\" />\n"
        "  <meta name=\"ocr-capabilities\" content=\"{}\" />\n"
        "  <meta name=\"ocr-number-of-pages\" content=\"{}\" />\n"
        " </head>\n"
        " <body>\n",
        xml_escape(doc.first_source(), false), xml_escape(system, true), kHocrCapabilities, doc.pages());
    doc.finish(head, " </body>\n</html>\n");
  }

  XmlDocument doc;
  std::string system;
};

HocrWriter::HocrWriter(std::string path, const LayoutWriterOptions& options)
    : impl_(std::make_unique<Impl>(std::move(path), options)) {}
HocrWriter::~HocrWriter() = default;
void HocrWriter::add_page(const LayoutPage& page) { impl_->add_page(page); }
void HocrWriter::finish() { impl_->finish(); }
int HocrWriter::page_count() const { return impl_->doc.pages(); }

// ---- ALTO -------------------------------------------------------------------

class AltoWriter::Impl {
 public:
  Impl(std::string path, const LayoutWriterOptions& options)
      : doc(std::move(path)), software_name(options.software_name), software_version(layout_detail::software_version(options)) {}

  void add_page(const LayoutPage& page) {
    const int p = doc.begin_page(page);
    std::string out = fmt::format(
        "    <Page ID=\"P{}\" PHYSICAL_IMG_NR=\"{}\" WIDTH=\"{}\" HEIGHT=\"{}\">\n"
        "      <PrintSpace HPOS=\"0\" VPOS=\"0\" WIDTH=\"{}\" HEIGHT=\"{}\">\n",
        p, page.page_number, page.width, page.height, page.width, page.height);
    int block_no = 0;
    for (const LayoutBlock& block : page.blocks) {
      const LayoutKind kind = kind_of(block.label);
      const std::string tagrefs = block.label.empty() ? "" : fmt::format(" TAGREFS=\"LABEL_{}\"", tag_of(block.label));
      for (const LayoutArea& area : layout_areas(block, page.width, page.height)) {
        const std::string id = fmt::format("P{}_B{}", p, ++block_no);
        const std::string box = alto_box(area.box);
        if (kind == LayoutKind::Image && area.lines.empty()) {
          out += fmt::format("        <Illustration ID=\"{}\" TYPE=\"image\" {}{}/>\n", id, box, tagrefs);
        } else if (kind == LayoutKind::Image || kind == LayoutKind::Table) {
          const char* type = kind == LayoutKind::Image ? "image" : "table";
          out += fmt::format("        <ComposedBlock ID=\"{}\" TYPE=\"{}\" {}{}>\n", id, type, box, tagrefs);
          if (kind == LayoutKind::Image)
            out += fmt::format("          <Illustration ID=\"P{}_B{}\" TYPE=\"image\" {}{}/>\n", p, ++block_no, box,
                               tagrefs);
          text_block(out, fmt::format("P{}_B{}", p, ++block_no), area, tagrefs, "          ");
          out += "        </ComposedBlock>\n";
        } else {
          text_block(out, id, area, tagrefs, "        ");
        }
      }
    }
    out += "      </PrintSpace>\n    </Page>\n";
    doc.end_page(out);
  }

  int tag_of(const std::string& label) {
    auto [it, added] = tags.emplace(label, int(labels.size()) + 1);
    if (added) labels.push_back(label);
    return it->second;
  }

  static void text_block(std::string& out, const std::string& id, const LayoutArea& area, const std::string& tagrefs,
                         const std::string& indent) {
    out += fmt::format("{}<TextBlock ID=\"{}\" {}{}>\n", indent, id, alto_box(area.box), tagrefs);
    int line_no = 0;
    for (const LayoutLine& line : area.lines) {
      const std::string line_id = fmt::format("{}_L{}", id, ++line_no);
      out += fmt::format("{}  <TextLine ID=\"{}\" {}>\n", indent, line_id, alto_box(line.box));
      const std::vector<LayoutWord> words = layout_words(line);
      const int vpos = line.box.y1, height = line.box.y2 - line.box.y1;
      for (size_t w = 0; w < words.size(); ++w) {
        if (w > 0) {
          // The gap between the two words, which are right to left in a right-to-left run.
          const LayoutWord &a = words[w - 1], &b = words[w];
          const int x1 = a.x2 <= b.x1 ? a.x2 : b.x2, x2 = a.x2 <= b.x1 ? b.x1 : a.x1;
          out += fmt::format("{}    <SP WIDTH=\"{}\" HPOS=\"{}\" VPOS=\"{}\"/>\n", indent, std::max(x2 - x1, 0), x1,
                             vpos);
        }
        out += fmt::format("{}    <String ID=\"{}_S{}\" CONTENT=\"{}\" HPOS=\"{}\" VPOS=\"{}\" WIDTH=\"{}\" HEIGHT=\"{}\"/>\n",
                           indent, line_id, w + 1, xml_escape(words[w].text, true), words[w].x1, vpos,
                           words[w].x2 - words[w].x1, height);
      }
      out += fmt::format("{}  </TextLine>\n", indent);
    }
    out += fmt::format("{}</TextBlock>\n", indent);
  }

  void finish() {
    std::string head =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<alto xmlns=\"http://www.loc.gov/standards/alto/ns-v4#\" "
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:schemaLocation=\"http://www.loc.gov/standards/alto/ns-v4# "
        "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd\">\n"
        "  <Description>\n"
        "    <MeasurementUnit>pixel</MeasurementUnit>\n";
    if (!doc.first_source().empty())
      head += fmt::format("    <sourceImageInformation>\n      <fileName>{}</fileName>\n    </sourceImageInformation>\n",
                          xml_escape(doc.first_source(), false));
    head += fmt::format(
        "    <OCRProcessing ID=\"OCR_0\">\n"
        "      <ocrProcessingStep>\n"
        "        <processingSoftware>\n"
        "          <softwareName>{}</softwareName>\n"
        "          <softwareVersion>{}</softwareVersion>\n"
        "        </processingSoftware>\n"
        "      </ocrProcessingStep>\n"
        "    </OCRProcessing>\n"
        "  </Description>\n",
        xml_escape(software_name, false), xml_escape(software_version, false));
    if (!labels.empty()) {
      head += "  <Tags>\n";
      for (size_t k = 0; k < labels.size(); ++k) {
        const std::string label = xml_escape(labels[k], true);
        head += fmt::format("    <OtherTag ID=\"LABEL_{}\" LABEL=\"{}\" DESCRIPTION=\"block type {}\"/>\n", k + 1,
                            label, label);
      }
      head += "  </Tags>\n";
    }
    head += "  <Layout>\n";
    doc.finish(head, "  </Layout>\n</alto>\n");
  }

  XmlDocument doc;
  std::string software_name, software_version;
  std::vector<std::string> labels;  // tag LABEL_k is labels[k - 1], in order of first use
  std::unordered_map<std::string, int> tags;
};

AltoWriter::AltoWriter(std::string path, const LayoutWriterOptions& options)
    : impl_(std::make_unique<Impl>(std::move(path), options)) {}
AltoWriter::~AltoWriter() = default;
void AltoWriter::add_page(const LayoutPage& page) { impl_->add_page(page); }
void AltoWriter::finish() { impl_->finish(); }
int AltoWriter::page_count() const { return impl_->doc.pages(); }

// ---- formats ----------------------------------------------------------------

LayoutFormat layout_format_from_name(std::string_view name) {
  if (name == "hocr") return LayoutFormat::Hocr;
  if (name == "alto") return LayoutFormat::Alto;
  if (name == "pdf") return LayoutFormat::Pdf;
  fail("unknown layout format '{}' (known: hocr, alto, pdf)", name);
}

std::string_view layout_format_name(LayoutFormat format) {
  switch (format) {
    case LayoutFormat::Hocr: return "hocr";
    case LayoutFormat::Alto: return "alto";
    case LayoutFormat::Pdf: return "pdf";
  }
  return "?";
}

std::string_view layout_format_extension(LayoutFormat format) {
  switch (format) {
    case LayoutFormat::Hocr: return ".hocr";
    case LayoutFormat::Alto: return ".alto.xml";
    case LayoutFormat::Pdf: return ".ocr.pdf";
  }
  return "";
}

std::unique_ptr<LayoutWriter> make_layout_writer(LayoutFormat format, std::string path,
                                                 const LayoutWriterOptions& options) {
  switch (format) {
    case LayoutFormat::Hocr: return std::make_unique<HocrWriter>(std::move(path), options);
    case LayoutFormat::Alto: return std::make_unique<AltoWriter>(std::move(path), options);
    case LayoutFormat::Pdf: return std::make_unique<SearchablePdfWriter>(std::move(path), options);
  }
  fail("{}: unknown layout format", path);
}

}  // namespace dsocr
