// Many documents through a PageRecognizer (the engine): collect the inputs (images, PDFs, folders,
// stdin), keep up to `parallel` pages in flight across documents, and write per document NAME.md
// (clean markdown), NAME.raw.md (the model's text), NAME.json (pages with their text, stop reasons,
// blocks with pixel boxes; the run's identity), crops under images/NAME/, and on request annotated
// pages, hOCR, ALTO and a searchable PDF. Or one JSON object per page on stdout (--format jsonl --out -).
//
// Nothing finished is lost: every page is recorded in the document's journal as soon as it is done
// (engine/journal.h); documents are assembled in page order from their records. --resume reuses the
// pages of a journal or a NAME.json whose identity matches this run (the source file and every option
// that changes a page's text) and runs only the pages still missing; a page that failed is not
// retried unless asked (retry_failed). A page that fails is reported and recorded as failed; the
// other pages and documents go on. A full disk stops the batch with one error.
#pragma once
#include <atomic>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "io/pdf.h"
#include "text/grounding.h"

namespace dsocr {

struct InputDocument {
  std::string path;  // the file ("-" for stdin)
  // Output path stem relative to --out: the input's path relative to the folder given (or its file
  // name), extension included ("scans/a.png" -> "scans/a.png.md"), so names never depend on which
  // other files exist.
  std::string name;
  bool is_pdf = false;
  std::string stdin_bytes;  // the data read from stdin ("-" only)
  int first_page = 0, last_page = 0;  // a range of a PDF's pages (1-based, inclusive; 0: all), e.g. a shard's
};

// Files to process, in order: each path as given ("-": stdin, read now); directories recursively,
// sorted, keeping images and PDFs by extension, skipping anything under `exclude` (the output
// folder). Paths that do not exist come back in `missing`. Throws Error when two inputs would write
// the same outputs (e.g. a/r.pdf and b/r.pdf given as files).
std::vector<InputDocument> collect_inputs(const std::vector<std::string>& paths, std::vector<std::string>* missing,
                                          const std::string& exclude = "");

// "1-3,7" -> {1,2,3,7} (1-based, sorted, unique); throws Error on a malformed spec.
std::vector<int> parse_page_ranges(const std::string& spec);

enum class OutputFormat { Markdown, Json, Jsonl, Hocr, Alto, Pdf };
// "md,json" -> {Markdown, Json}; throws Error naming an unknown format.
std::set<OutputFormat> parse_formats(const std::string& list);

struct BatchOptions {
  std::string out_dir;                  // "-": JSON lines on stdout (with the jsonl format)
  OcrRequest request;                   // mode, prompt, generation (incl. the n-gram guard)
  std::optional<NgramGuardConfig> pdf_ngram = NgramGuardConfig{20, 50, {128821, 128822}, true};  // PDF pages; nullopt: as request
  double dpi = 144;                     // PDF rasterisation (the official PDF path: 144)
  PdfRenderer pdf_renderer = PdfRenderer::Default;  // part of the run identity: it changes the pixels
  std::vector<int> pages;               // PDF pages to run (1-based); empty: all
  bool boxes = false;                   // annotated pages: NAME.boxes.png, or NAME.boxes.pdf for a PDF
  bool resume = false;                  // reuse finished pages of matching journals / NAME.json
  bool retry_failed = false;            // with resume: run pages that failed before again
  std::set<OutputFormat> formats = {OutputFormat::Markdown, OutputFormat::Json};
  int parallel = 8;                     // pages in flight
  std::string model_identity;           // recorded in NAME.json and part of the run identity
  std::string model_name;
};

// What the runner reports while it works (the CLI draws a progress bar or log lines from it). All
// calls come from the thread that called BatchRunner::run.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  virtual void on_start(int documents, int pages) {}
  virtual void on_document(const InputDocument& doc, int pages) {}
  // While pages generate: tokens so far of the page that has run longest (updated a few times a second).
  virtual void on_page_progress(const InputDocument& doc, int page, int pieces) {}
  virtual void on_page_done(const InputDocument& doc, int page, const OcrResult& result) {}
  virtual void on_skipped(const InputDocument& doc, const std::string& why) {}
  virtual void on_failure(const std::string& what, const std::string& reason) {}  // one line, names the file/page
  virtual void on_warning(const std::string& what, const std::string& message) {}
  virtual void on_info(const std::string& what, const std::string& message) {}
};

struct BatchSummary {
  int documents = 0, documents_done = 0, documents_failed = 0, documents_skipped = 0;
  int pages_done = 0, pages_failed = 0, pages_truncated = 0, pages_reused = 0;
  int usage_errors = 0;  // failures caused by the options (e.g. --pages past the end)
  int64_t generated_tokens = 0;
  double seconds = 0;
  bool cancelled = false;
  std::string fatal;     // the error that stopped the batch (disk full), "" if none
  std::vector<std::pair<std::string, std::string>> failed_documents;  // name, why: documents with no outputs
  bool ok() const { return documents_failed == 0 && pages_failed == 0 && !cancelled && fatal.empty(); }
};

class BatchRunner {
 public:
  // cancel: when it becomes true the runner stops submitting, cancels the pages in flight and
  // returns; every page finished before is in its journal.
  BatchRunner(PageRecognizer& recognizer, BatchOptions options, BatchObserver& observer,
              const std::atomic<bool>* cancel);
  BatchSummary run(const std::vector<InputDocument>& documents);

 private:
  struct Document;
  struct Pending;
  class Impl;

  PageRecognizer& recognizer_;
  BatchOptions options_;
  BatchObserver& observer_;
  const std::atomic<bool>* cancel_;
};

// The record of a finished page, as NAME.json's "pages", the JSON lines and the server's /v1/ocr
// carry it: page, size, stop reason, truncated, token counts, timings, markdown (clean), raw (the
// model's text), blocks (label, boxes in page pixels and in the 0..999 frame, text) and images
// (crops: link and box). `paged`: a page of a PDF or multi-page image (PDF post-processing, links
// numbered per page). link_for gives each crop's link in the markdown (the crops themselves are the
// caller's to save: `images` has their boxes).
struct PageRecord {
  nlohmann::ordered_json json;  // keys in the order written
  std::vector<ImageRegion> images;    // with the links of link_for
  std::vector<std::string> warnings;  // malformed blocks, skipped image boxes
};
PageRecord page_record(const OcrResult& result, int width, int height, bool paged, int page,
                       const std::function<std::string(const ImageRegion&)>& link_for);

// Creates the output folder and checks that files can be written in it (throws Error naming it
// otherwise), so that a batch fails at once, not after hours of OCR.
void prepare_output_dir(const std::string& dir);

// Removes the temporary files (FILE.tmpXXXXXXXXXXXXXXXX) that a killed run left in `dir` for the
// documents named (their outputs, crops and journals: other workers sharing the folder may be writing
// theirs right now); returns how many.
int remove_orphan_temp_files(const std::string& dir, const std::vector<std::string>& document_names);

}  // namespace dsocr
