// Many documents through the engine (issue: "dsocr as a document tool"): collect the inputs (images,
// PDFs, directories), run every page, and write per document NAME.md (clean markdown), NAME.raw.md
// (the model's text), NAME.json (pages, stop reasons, blocks with pixel boxes), crops under
// images/NAME/ and, on request, annotated pages. Pages stream one at a time (bounded memory for
// huge PDFs); a failing file or page is reported and the batch goes on.
#pragma once
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"

namespace dsocr {

struct InputDocument {
  std::string path;  // the file
  std::string name;  // output path stem relative to --out (sub-folders of an input directory kept)
  bool is_pdf = false;
};

// Files to process, in order: each path as given; directories recursively, sorted, keeping only
// images and PDFs by extension. Paths that do not exist come back in `missing`.
std::vector<InputDocument> collect_inputs(const std::vector<std::string>& paths, std::vector<std::string>* missing);

// "1-3,7" -> {1,2,3,7} (1-based, sorted, unique); throws Error on a malformed spec.
std::vector<int> parse_page_ranges(const std::string& spec);

struct BatchOptions {
  std::string out_dir;
  OcrRequest request;                   // mode, prompt, generation (incl. the n-gram guard)
  std::optional<NgramGuardConfig> pdf_ngram = NgramGuardConfig{20, 50, {128821, 128822}, true};  // PDF pages; nullopt: as request
  double dpi = 144;                     // PDF rasterisation (the official PDF path: 144)
  std::vector<int> pages;               // PDF pages to run (1-based); empty: all
  bool boxes = false;                   // annotated pages: NAME.boxes.png, or NAME.boxes.pdf for a PDF
  bool resume = false;                  // skip documents whose NAME.json says complete
};

// What the runner reports while it works (the CLI draws a progress bar or log lines from it).
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  virtual void on_start(int documents, int pages) {}
  virtual void on_document(const InputDocument& doc, int pages) {}
  // While a page generates: text pieces so far (about one per token), called for every piece.
  virtual void on_page_progress(const InputDocument& doc, int page, int pieces) {}
  virtual void on_page_done(const InputDocument& doc, int page, const OcrResult& result) {}
  virtual void on_skipped(const InputDocument& doc, const std::string& why) {}
  virtual void on_failure(const std::string& what, const std::string& reason) {}  // one line, names the file/page
  virtual void on_warning(const std::string& what, const std::string& message) {}
};

struct BatchSummary {
  int documents = 0, documents_done = 0, documents_failed = 0, documents_skipped = 0;
  int pages_done = 0, pages_failed = 0, pages_truncated = 0;
  int64_t generated_tokens = 0;
  double seconds = 0;
  bool cancelled = false;
  bool ok() const { return documents_failed == 0 && pages_failed == 0 && !cancelled; }
};

class BatchRunner {
 public:
  // cancel: when it becomes true the runner stops after the current generation step; finished
  // documents stay written, the interrupted one is not written at all.
  BatchRunner(PageRecognizer& recognizer, BatchOptions options, BatchObserver& observer,
              const std::atomic<bool>* cancel);
  BatchSummary run(const std::vector<InputDocument>& documents);

 private:
  struct PageRecord;
  bool document_complete(const InputDocument& doc) const;
  void run_document(const InputDocument& doc, int pages, BatchSummary& summary);
  bool cancelled() const { return cancel_ && cancel_->load(); }

  PageRecognizer& recognizer_;
  BatchOptions options_;
  BatchObserver& observer_;
  const std::atomic<bool>* cancel_;
};

}  // namespace dsocr
