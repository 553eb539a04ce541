// Page layout -> the formats OCR pipelines read: hOCR 1.2, ALTO 4 and a searchable PDF (page
// images with an invisible, selectable text layer, as ocrmypdf and Tesseract make).
//
// Geometry. DeepSeek-OCR's layout is block-level: per page, blocks with a label, one or more boxes
// and the block's text, possibly several lines. There are no line or word boxes, so the writers
// derive them, the same way in every format:
//   * boxes are block-level, not word-level: each line of a block gets an equal share of its box's
//     height (line k of n spans [y1 + k*h/n, y1 + (k+1)*h/n), integer division) and the box's whole
//     width; the line boxes of hOCR and ALTO and the text placement of the PDF are estimates, not
//     measurements of where the text is printed;
//   * a block with several boxes spreads its lines over them in order, each box taking a share of
//     the lines proportional to its height (a box may get none); a block without boxes is placed over
//     the whole page, so that its text is kept;
//   * within a line, ALTO words and PDF glyphs share the line's width in proportion to their
//     character counts (code points; a run of whitespace counts as one space), but take at most 0.8
//     of the line's height per character: a short line (the last of a paragraph) is not stretched
//     over its box but starts at the box's left edge, or its right edge for right-to-left text (PDF
//     readers split a too widely spaced line into words on lines of their own);
//   * characters are placed in visual order: right-to-left runs (Arabic, Hebrew...) run from the
//     right, following a simplified Unicode bidirectional algorithm (no explicit embeddings or
//     mirroring), so that an ALTO right-to-left word's HPOS is where it is and a PDF reader
//     rebuilds the logical order from the glyph positions, as it does for any PDF.
// The lines of a block are its text split at "\n", each trimmed of ASCII whitespace; blank lines are
// dropped. Text is written verbatim otherwise (markdown or HTML table markup as the model wrote it;
// the caller strips it first if it wants plain text). Invalid UTF-8 becomes U+FFFD, never raw bytes.
// Boxes are normalised (x1 <= x2, y1 <= y2) and clamped to the page.
//
// Labels. hOCR classes by label (the labels DeepSeek-OCR writes, compared exactly; anything else is
// text):
//   image              -> ocr_photo (div; lines inside only if the block has text)
//   table              -> ocr_table (div) holding an ocr_par with the lines
//   title, sub_title   -> ocr_carea > ocr_par > lines of class ocr_header (Tesseract's usage)
//   *caption           -> ocr_carea > ocr_par > lines of class ocr_caption
//   anything else      -> ocr_carea > ocr_par > lines of class ocr_line
// and every block element carries the label verbatim as the engine property `x_label "LABEL"`.
// ALTO has no table element and no label attribute: image -> Illustration TYPE="image" (inside a
// ComposedBlock TYPE="image" with a TextBlock when the block has text), table -> ComposedBlock
// TYPE="table" holding a TextBlock, anything else -> TextBlock; each refers (TAGREFS) to an
// <OtherTag LABEL="LABEL"/> in the document's Tags.
//
// Streaming. Each writer takes pages one at a time and keeps memory bounded by one page (the
// hOCR/ALTO head, which needs the page count and the labels, is written by finish() in front of the
// pages, spooled meanwhile in an anonymous temporary file). Output is atomic: a temporary file next to
// the destination, renamed over it by finish(); a writer destroyed unfinished leaves nothing behind.
// Every writer needs at least one page (hOCR requires an ocr_page, ALTO a Page).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.h"
#include "text/grounding.h"

namespace dsocr {

struct LayoutBlock {
  std::string label;             // the model's label: "title", "text", "table", "image", ...
  std::vector<PixelBox> boxes;   // page pixels: (x1, y1) top left, (x2, y2) bottom right, exclusive
  std::string text;              // as the model wrote it; "\n" separates lines
};

struct LayoutPage {
  int width = 0, height = 0;        // pixels; both must be positive
  std::vector<LayoutBlock> blocks;  // in reading order
  std::string source;               // the file the page came from (hOCR `image`, ALTO fileName); may be ""
  int page_number = 1;              // 1-based physical page in the source (hOCR ppageno = page_number - 1)
};

// The blocks of postprocess() (text/grounding.h) for a page_width x page_height page: boxes through
// to_pixels, text as parsed. Malformed blocks are kept (their text is still recognised text).
LayoutPage layout_page_from_blocks(const std::vector<Block>& blocks, int page_width, int page_height,
                                   std::string source, int page_number);

// The derived geometry every format writes (see the top of this file), exposed for tests and tools.
struct LayoutLine {
  PixelBox box;
  std::string text;  // valid UTF-8, trimmed, not empty
};
struct LayoutArea {
  PixelBox box;                   // one box of the block, normalised and clamped
  std::vector<LayoutLine> lines;  // the lines placed in it, top to bottom
};
std::vector<LayoutArea> layout_areas(const LayoutBlock& block, int page_width, int page_height);

// A line's whitespace-separated words (logical order) with their horizontal extents [x1, x2) in page
// pixels, as ALTO writes them (see the top of this file).
struct LayoutWord {
  int x1, x2;
  std::string text;
};
std::vector<LayoutWord> layout_words(const LayoutLine& line);

struct LayoutWriterOptions {
  std::string software_name = "dsocr";  // hOCR ocr-system, ALTO processingSoftware, PDF Producer
  std::string software_version;         // "": this build's version
  double dpi = 72.0;                    // PDF: page size in points = image pixels * 72 / dpi
  int jpeg_quality = 90;                // PDF: page images
};

// The common shape of the three writers, for a runner that writes several formats at once.
class LayoutWriter {
 public:
  virtual ~LayoutWriter() = default;
  // Adds a page. `image` is the picture the layout was read from: the PDF shows it (and maps the
  // layout's pixels onto it when the sizes differ); hOCR and ALTO ignore it. Throws Error naming the
  // output and the page for a page without a size, an empty image, or a write failure.
  virtual void add_page(const LayoutPage& page, const Image& image) = 0;
  virtual void finish() = 0;  // throws Error when no page was added or the file cannot be written
  virtual int page_count() const = 0;
};

// One XHTML document per source document: an ocr_page per page, then per block area a div (class by
// label, see above) holding an ocr_par with one span per line. Meta: ocr-system ("dsocr VERSION"),
// ocr-capabilities (both required by hOCR 1.2) and ocr-number-of-pages.
class HocrWriter : public LayoutWriter {
 public:
  explicit HocrWriter(std::string path, const LayoutWriterOptions& options = {});  // throws Error
  ~HocrWriter() override;
  void add_page(const LayoutPage& page);
  void add_page(const LayoutPage& page, const Image&) override { add_page(page); }
  void finish() override;
  int page_count() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// ALTO 4 (namespace http://www.loc.gov/standards/alto/ns-v4#, schema 4.4): Description
// (MeasurementUnit pixel, sourceImageInformation, OCRProcessing), Tags (one OtherTag per label),
// Layout with a Page per page (PHYSICAL_IMG_NR = page_number), a PrintSpace covering it, and the
// blocks as TextBlock > TextLine > String/SP (one String per word), Illustration or ComposedBlock.
class AltoWriter : public LayoutWriter {
 public:
  explicit AltoWriter(std::string path, const LayoutWriterOptions& options = {});  // throws Error
  ~AltoWriter() override;
  void add_page(const LayoutPage& page);
  void add_page(const LayoutPage& page, const Image&) override { add_page(page); }
  void finish() override;
  int page_count() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A PDF whose pages are the page images (JPEG, DCTDecode) under an invisible text layer (text render
// mode 3): viewers find, select and copy the text, printing shows only the image. The text uses one
// embedded font for the whole document: a Type0 font (Identity-H) over a CIDFontType2 whose tiny
// TrueType program has a single empty glyph, every CID mapping to it (CIDToGIDMap), and a ToUnicode
// CMap giving each CID its character, so any Unicode text (CJK, Arabic, accents, beyond the BMP) is
// searchable. Each line's text is one run at the line's box: font size = box height, baseline at its
// bottom, horizontal scaling (Tz) so that the run spans the box width. Memory is bounded by one page
// plus one table entry per distinct character of the document (at most 65535; further new characters
// are written as U+FFFD). Page size in points = image pixels * 72 / options.dpi.
class SearchablePdfWriter : public LayoutWriter {
 public:
  explicit SearchablePdfWriter(std::string path, const LayoutWriterOptions& options = {});  // throws Error
  ~SearchablePdfWriter() override;
  void add_page(const LayoutPage& page, const Image& image) override;
  void finish() override;
  int page_count() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The embedded font program: a TrueType font of two empty glyphs (.notdef and the one every CID maps
// to), 1000 units per em, advance 500. Exposed for tests.
std::vector<uint8_t> glyphless_truetype_font();

enum class LayoutFormat { Hocr, Alto, Pdf };

// "hocr", "alto" or "pdf" (case-sensitive); throws Error listing these for anything else.
LayoutFormat layout_format_from_name(std::string_view name);
std::string_view layout_format_name(LayoutFormat format);
// The suffix to append to a document's stem: ".hocr", ".alto.xml", ".ocr.pdf" (never plain ".pdf",
// which would overwrite a PDF input written next to its outputs).
std::string_view layout_format_extension(LayoutFormat format);
std::unique_ptr<LayoutWriter> make_layout_writer(LayoutFormat format, std::string path,
                                                 const LayoutWriterOptions& options = {});

}  // namespace dsocr
