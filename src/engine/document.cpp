#include "engine/document.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include "core/error.h"
#include "core/sha256.h"
#include "core/version.h"
#include "engine/annotate.h"
#include "engine/journal.h"
#include "io/files.h"
#include "io/layout_formats.h"
#include "io/pdf.h"
#include "io/pdf_writer.h"
#include "text/grounding.h"

namespace fs = std::filesystem;

namespace dsocr {

namespace {

const std::set<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"};

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

std::string paths_join(const std::string& out, const std::string& rel) { return (fs::path(out) / rel).string(); }

bool looks_like_pdf(std::string_view bytes) { return bytes.substr(0, 5) == "%PDF-"; }

// Is `p` inside (or equal to) the folder `dir`? Both made absolute and normalised.
bool inside(const fs::path& p, const fs::path& dir) {
  if (dir.empty()) return false;
  std::error_code ec;
  const fs::path a = fs::weakly_canonical(fs::absolute(p, ec), ec), d = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  auto ai = a.begin(), di = d.begin();
  for (; di != d.end(); ++ai, ++di)
    if (ai == a.end() || *ai != *di) return false;
  return true;
}

}  // namespace

std::vector<InputDocument> collect_inputs(const std::vector<std::string>& paths, std::vector<std::string>* missing,
                                          const std::string& exclude) {
  std::vector<InputDocument> out;
  for (const std::string& path : paths) {
    if (path == "-") {
      InputDocument d;
      d.path = "-";
      d.name = "stdin";
      d.stdin_bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      if (d.stdin_bytes.empty()) fail("-: standard input is empty");
      d.is_pdf = looks_like_pdf(d.stdin_bytes);
      out.push_back(std::move(d));
      continue;
    }
    std::error_code ec;
    const fs::path p(path);
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_directory(ec) && inside(it->path(), exclude)) {
          it.disable_recursion_pending();  // the output folder: its files are outputs, not inputs
          continue;
        }
        if (!it->is_regular_file(ec)) continue;
        const std::string e = lower_extension(it->path());
        if (kImageExtensions.count(e) || e == ".pdf") files.push_back(it->path());
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& f : files)
        out.push_back({f.string(), fs::relative(f, p, ec).string(), lower_extension(f) == ".pdf", {}});
    } else if (fs::exists(p, ec)) {
      out.push_back({path, p.filename().string(), lower_extension(p) == ".pdf", {}});
    } else if (missing) {
      missing->push_back(path);
    }
  }
  // The same file given twice is read once; two files that would share outputs are an error.
  std::map<std::string, std::string> owner;
  std::set<std::string> seen;
  std::vector<InputDocument> unique;
  for (InputDocument& d : out) {
    std::error_code ec;
    const std::string canonical = d.path == "-" ? "-" : fs::weakly_canonical(fs::absolute(d.path, ec), ec).string();
    if (!seen.insert(canonical).second) continue;
    unique.push_back(std::move(d));
  }
  out = std::move(unique);
  for (const InputDocument& d : out) {
    auto [it, fresh] = owner.emplace(d.name, d.path);
    if (!fresh)
      fail("{} and {} would both write {}.*: give their folder instead, or run them separately", it->second, d.path,
           d.name);
  }
  return out;
}

std::vector<int> parse_page_ranges(const std::string& spec) {
  std::set<int> pages;
  size_t pos = 0;
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string::npos)
      fail("--pages '{}': '{}' is not a page number", spec, s);
    const int v = std::stoi(s);
    if (v < 1) fail("--pages '{}': pages are numbered from 1", spec);
    return v;
  };
  while (pos <= spec.size()) {
    const size_t comma = std::min(spec.find(',', pos), spec.size());
    std::string part = spec.substr(pos, comma - pos);
    part.erase(std::remove(part.begin(), part.end(), ' '), part.end());
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      pages.insert(number(part));
    } else {
      const int a = number(part.substr(0, dash)), b = number(part.substr(dash + 1));
      if (b < a) fail("--pages '{}': range {} is backwards", spec, part);
      if (b - a > 1000000) fail("--pages '{}': range {} is too large", spec, part);
      for (int i = a; i <= b; ++i) pages.insert(i);
    }
    pos = comma + 1;
  }
  return {pages.begin(), pages.end()};
}

std::set<OutputFormat> parse_formats(const std::string& list) {
  static const std::map<std::string, OutputFormat> names = {
      {"md", OutputFormat::Markdown}, {"json", OutputFormat::Json}, {"jsonl", OutputFormat::Jsonl},
      {"hocr", OutputFormat::Hocr},   {"alto", OutputFormat::Alto}, {"pdf", OutputFormat::Pdf}};
  std::set<OutputFormat> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string name = list.substr(pos, comma - pos);
    auto it = names.find(name);
    if (it == names.end()) fail("--format: unknown format '{}' (md, json, jsonl, hocr, alto, pdf)", name);
    out.insert(it->second);
    pos = comma + 1;
  }
  return out;
}

void prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string probe = paths_join(dir, ".dsocr/write-test");
  write_file_atomic(probe, "ok\n");
  fs::remove(probe, ec);
}

int remove_orphan_temp_files(const std::string& dir, const std::vector<std::string>& document_names) {
  static const std::regex temp_name(R"((.*)\.tmp[0-9a-f]{16}$)");
  // What a document writes: NAME.*, images/STEM/* next to it, .dsocr/NAME.journal.jsonl.
  std::vector<std::string> prefixes;
  for (const std::string& name : document_names) {
    const fs::path n(name);
    prefixes.push_back(name + ".");
    prefixes.push_back((n.parent_path() / "images" / n.filename()).string() + "/");
    prefixes.push_back(".dsocr/" + name + ".");
  }
  int removed = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::smatch m;
    const std::string rel = fs::relative(it->path(), dir, ec).string();
    if (!it->is_regular_file(ec) || !std::regex_match(rel, m, temp_name)) continue;
    const std::string target = m[1];
    if (std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return target.rfind(p, 0) == 0; }))
      removed += fs::remove(it->path(), ec) ? 1 : 0;
  }
  return removed;
}

// ---- the runner ------------------------------------------------------------------------------------------

struct BatchRunner::Document {
  const InputDocument* input = nullptr;
  OcrRequest request;               // the batch's, with the PDF guard for PDF pages
  std::vector<int> pages;           // every page wanted, 1-based, ascending
  std::vector<int> to_run;          // the pages this run computes
  json identity;
  std::unique_ptr<Journal> journal;
  std::map<int, json> records;      // page -> its record (reused and new)
  std::string error;                // the document could not be opened / its options do not fit
  bool usage_error = false;
  bool paged = false;               // a PDF or a multi-page image (TIFF): pages joined like a PDF's
  bool submitted_all = false;       // the producer is done with it
  bool finished = false;
  int outstanding = 0;              // pages of to_run not yet recorded
};

struct BatchRunner::Pending {
  Document* doc;
  int page;
  Image image;                      // kept for the crops
  std::shared_ptr<PageJob> job;     // null when the page could not be rendered
  std::string error;
  std::atomic<int> pieces{0};
};

namespace {

json block_json(const Block& b, int width, int height) {
  json bj;
  bj["label"] = b.label;
  auto boxes = json::array(), raw_boxes = json::array();
  for (const Box& box : b.boxes) {
    const PixelBox px = to_pixels(box, width, height);
    boxes.push_back(json::array({px.x1, px.y1, px.x2, px.y2}));
    raw_boxes.push_back(json::array({box.x1, box.y1, box.x2, box.y2}));
  }
  bj["boxes"] = boxes;
  bj["boxes_999"] = raw_boxes;
  bj["text"] = b.text;
  if (b.malformed) bj["problem"] = b.problem;
  return bj;
}

std::unique_ptr<PdfDocument> open_pdf(const InputDocument& in, PdfRenderer renderer) {
  if (in.path != "-") return std::make_unique<PdfDocument>(in.path, renderer);
  return std::make_unique<PdfDocument>(reinterpret_cast<const uint8_t*>(in.stdin_bytes.data()), in.stdin_bytes.size(), "-",
                                       renderer);
}

PostprocessOptions postprocess_options(bool paged, int page) {
  return paged ? PostprocessOptions::pdf_page(page - 1) : PostprocessOptions::image();
}

// The identity of the source file: its absolute path, size and modification time (stdin: a hash).
json source_identity(const InputDocument& doc) {
  json s;
  if (doc.path == "-") {
    s["stdin_sha256"] = sha256_hex(doc.stdin_bytes);
    return s;
  }
  std::error_code ec;
  s["path"] = fs::absolute(doc.path, ec).string();
  struct stat st {};
  if (::stat(doc.path.c_str(), &st) == 0) {
    s["size"] = int64_t(st.st_size);
    s["mtime_ns"] = int64_t(st.st_mtim.tv_sec) * 1000000000 + int64_t(st.st_mtim.tv_nsec);
  }
  return s;
}

json generation_identity(const OcrRequest& r, const BatchOptions& o, bool pdf) {
  json id;
  id["model"] = o.model_identity;
  id["mode"] = mode_name(r.mode);
  if (r.mode == Mode::Gundam || r.mode == Mode::GundamMaster) id["max_tiles"] = r.max_tiles;
  id["prompt"] = r.prompt;
  if (pdf) id["dpi"] = o.dpi;
  if (pdf) id["pdf_renderer"] = pdf_renderer_name(o.pdf_renderer);
  const GenerationOptions& g = r.generation;
  id["max_tokens"] = g.max_new_tokens;
  id["context_limit"] = g.context_limit;
  id["ngram"] = g.ngram.enabled ? json{{"size", g.ngram.ngram_size}, {"window", g.ngram.window}, {"whitelist", g.ngram.whitelist}}
                                : json("off");
  id["sampling"] = g.sampling.temperature > 0
                       ? json{{"temperature", g.sampling.temperature}, {"top_p", g.sampling.top_p}, {"seed", g.sampling.seed}}
                       : json("greedy");
  return id;
}

}  // namespace

class BatchRunner::Impl {
 public:
  Impl(BatchRunner& r) : r_(r), o_(r.options_), observer_(r.observer_) {}

  BatchSummary run(const std::vector<InputDocument>& inputs);

 private:
  bool cancelled() const { return r_.cancel_ && r_.cancel_->load(); }
  bool stdout_mode() const { return o_.out_dir == "-"; }
  std::string journal_path(const Document& d) const { return paths_join(o_.out_dir, ".dsocr/" + d.input->name + ".journal.jsonl"); }
  std::string output(const Document& d, const std::string& suffix) const { return paths_join(o_.out_dir, d.input->name + suffix); }

  void plan(Document& d);
  void produce();
  Image load_page(const Document& d, int page, std::unique_ptr<PdfDocument>& pdf) const;
  json page_record(Pending& p, const OcrResult& r);
  void handle(Pending& p);
  void finish_document(Document& d);
  // only_missing: write just the outputs that do not exist yet (a resumed document asked for more formats).
  void write_outputs(Document& d, const std::vector<json>& pages, bool only_missing = false);

  BatchRunner& r_;
  const BatchOptions& o_;
  BatchObserver& observer_;
  std::vector<Document> docs_;
  BatchSummary summary_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::list<std::unique_ptr<Pending>> pending_;  // submitted, not yet handled, in submission order
  int in_flight_ = 0;
  bool producer_done_ = false;
  bool stop_producer_ = false;
};

BatchRunner::BatchRunner(PageRecognizer& recognizer, BatchOptions options, BatchObserver& observer,
                         const std::atomic<bool>* cancel)
    : recognizer_(recognizer), options_(std::move(options)), observer_(observer), cancel_(cancel) {}

BatchSummary BatchRunner::run(const std::vector<InputDocument>& documents) {
  Impl impl(*this);
  return impl.run(documents);
}

// Which pages a document needs, and which of them a previous run already made (--resume).
void BatchRunner::Impl::plan(Document& d) {
  const InputDocument& in = *d.input;
  d.request = o_.request;
  if (in.is_pdf && o_.pdf_ngram) d.request.generation.ngram = *o_.pdf_ngram;
  int page_count = 1;
  if (in.is_pdf) page_count = open_pdf(in, o_.pdf_renderer)->page_count();
  else if (in.path == "-") page_count = image_page_count(reinterpret_cast<const uint8_t*>(in.stdin_bytes.data()), in.stdin_bytes.size(), "-");
  else page_count = image_file_page_count(in.path);
  d.paged = in.is_pdf || page_count > 1;
  if (in.first_page > 0) {  // a range of the document (a shard's share of a large PDF)
    for (int p = in.first_page; p <= std::min(in.last_page, page_count); ++p)
      if (o_.pages.empty() || std::binary_search(o_.pages.begin(), o_.pages.end(), p)) d.pages.push_back(p);
    if (d.pages.empty()) fail("{}: pages {}-{}: none to read", in.path, in.first_page, in.last_page);
  } else if (d.paged && !o_.pages.empty()) {
    for (int p : o_.pages)
      if (p > page_count) {
        d.usage_error = true;
        fail("--pages {}: {} has {} page(s)", p, in.path, page_count);
      }
    d.pages = o_.pages;
  } else {
    for (int p = 1; p <= page_count; ++p) d.pages.push_back(p);
  }
  d.identity = json{{"source", source_identity(in)}, {"generation", generation_identity(d.request, o_, in.is_pdf)}};
  if (in.first_page > 0) d.identity["pages"] = {in.first_page, in.last_page};
  if (stdout_mode()) {
    d.to_run = d.pages;
    return;
  }

  std::map<int, json> reusable;
  if (o_.resume) {
    // The finished document, then the journal of an interrupted run.
    const std::string done_path = output(d, ".json");
    std::error_code ec;
    if (fs::exists(done_path, ec)) {
      try {
        const json j = json::parse(read_file_text(done_path));
        if (j.contains("identity") && j["identity"] == d.identity) {
          for (const json& p : j["pages"]) reusable[p["page"].get<int>()] = p;
        } else {
          observer_.on_info(in.path, "redoing: the previous results were made differently (" +
                                         identity_difference(j.value("identity", json::object()), d.identity) + ")");
        }
      } catch (const std::exception&) {
        observer_.on_info(in.path, "redoing: " + done_path + " is unreadable");
      }
    }
    json jid;
    std::map<int, json> jpages;
    if (Journal::read(journal_path(d), &jid, &jpages)) {
      if (jid == d.identity) {
        for (auto& [n, p] : jpages) reusable[n] = p;
      } else {
        observer_.on_info(in.path, "not resuming the interrupted run: it was made differently (" +
                                       identity_difference(jid, d.identity) + ")");
      }
    }
  }
  for (int p : d.pages) {
    auto it = reusable.find(p);
    const bool failed_before = it != reusable.end() && it->second.value("status", "done") != "done";
    if (it == reusable.end() || (failed_before && o_.retry_failed)) {
      d.to_run.push_back(p);
    } else {
      d.records[p] = it->second;
      ++summary_.pages_reused;
    }
  }
}

Image BatchRunner::Impl::load_page(const Document& d, int page, std::unique_ptr<PdfDocument>& pdf) const {
  const InputDocument& in = *d.input;
  if (in.is_pdf) {
    if (!pdf) pdf = open_pdf(in, o_.pdf_renderer);
    return pdf->render_page(page - 1, o_.dpi);
  }
  if (in.path == "-")
    return decode_image_page(reinterpret_cast<const uint8_t*>(in.stdin_bytes.data()), in.stdin_bytes.size(), page - 1, "-");
  return load_image_page(in.path, page - 1);
}

// The producer: renders or loads pages in document order and submits them, keeping at most
// `parallel` pages (plus two being rendered ahead) in flight.
void BatchRunner::Impl::produce() {
  const int slots = std::max(1, o_.parallel) + 2;
  for (Document& d : docs_) {
    std::unique_ptr<PdfDocument> pdf;
    for (int page : d.to_run) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_producer_ || in_flight_ < slots; });
        if (stop_producer_) break;
        ++in_flight_;
      }
      auto p = std::make_unique<Pending>();
      p->doc = &d;
      p->page = page;
      try {
        p->image = load_page(d, page, pdf);
        Pending* raw = p.get();
        const std::atomic<bool>* cancel = r_.cancel_;
        p->job = r_.recognizer_.submit(p->image, d.request, [raw, cancel](std::string_view) {
          ++raw->pieces;
          return !(cancel && cancel->load());
        });
      } catch (const std::exception& e) {
        p->error = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        pending_.push_back(std::move(p));
      }
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    d.submitted_all = true;
    if (stop_producer_) break;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  producer_done_ = true;
  cv_.notify_all();
}

PageRecord page_record(const OcrResult& r, int width, int height, bool paged, int page,
                       const std::function<std::string(const ImageRegion&)>& link_for) {
  PageRecord out;
  json& pj = out.json;
  pj["page"] = page;
  pj["status"] = "done";
  PostprocessResult post = postprocess(r.text, width, height, postprocess_options(paged, page));
  std::string markdown = post.markdown;
  for (ImageRegion& region : post.images) {
    const std::string old_link = region.link;
    region.link = link_for(region);
    for (size_t at = 0; (at = markdown.find("](" + old_link + ")", at)) != std::string::npos;)
      markdown.replace(at + 2, old_link.size(), region.link), at += region.link.size();
  }
  pj["width"] = width;
  pj["height"] = height;
  pj["stop_reason"] = stop_reason_name(r.stop);
  pj["truncated"] = r.truncated();
  pj["prompt_tokens"] = r.prompt_tokens;
  pj["image_tokens"] = r.image_tokens;
  pj["generated_tokens"] = r.tokens.size();
  pj["tile_grid"] = {r.grid.cols, r.grid.rows};
  pj["seconds"] = {{"preprocess", r.timings.preprocess}, {"encode", r.timings.encode}, {"queued", r.timings.queued},
                   {"prefill", r.timings.prefill}, {"decode", r.timings.decode}};
  if (r.preemptions) pj["preemptions"] = r.preemptions;
  pj["markdown"] = markdown;
  pj["raw"] = r.text;
  auto blocks = json::array();
  for (const Block& b : post.blocks) blocks.push_back(block_json(b, width, height));
  pj["blocks"] = blocks;
  auto images = json::array();
  for (const ImageRegion& region : post.images)
    images.push_back({{"file", region.link}, {"box", json::array({region.box.x1, region.box.y1, region.box.x2, region.box.y2})}});
  pj["images"] = images;
  if (!post.warnings.empty()) pj["warnings"] = post.warnings;
  out.images = std::move(post.images);
  out.warnings = std::move(post.warnings);
  return out;
}

json BatchRunner::Impl::page_record(Pending& p, const OcrResult& r) {
  const InputDocument& in = *p.doc->input;
  const std::string what = p.doc->paged ? fmt::format("{} page {}", in.path, p.page) : in.path;
  // Crops live in images/NAME/ so that documents sharing an output folder never collide; links are
  // relative to NAME.md.
  const std::string crops_rel = "images/" + fs::path(in.name).filename().string();
  const fs::path base_dir = fs::path(o_.out_dir) / fs::path(in.name).parent_path();
  PageRecord record = dsocr::page_record(r, p.image.width, p.image.height, p.doc->paged, p.page, [&](const ImageRegion& region) {
    return crops_rel + "/" + fs::path(region.link).filename().string();
  });
  if (!stdout_mode())
    for (const ImageRegion& region : record.images)
      save_jpeg(crop(p.image, region.box.x1, region.box.y1, region.box.x2, region.box.y2), (base_dir / region.link).string());
  for (const std::string& w : record.warnings) observer_.on_warning(what, w);
  return std::move(record.json);
}

void BatchRunner::Impl::handle(Pending& p) {
  Document& d = *p.doc;
  const InputDocument& in = *d.input;
  const std::string what = d.paged ? fmt::format("{} page {}", in.path, p.page) : in.path;
  json record;
  OcrResult r;
  if (p.job) r = p.job->wait();
  if (p.job && r.status == RequestStatus::Cancelled) return;  // interrupted: not recorded, redone next time
  if (!p.job || r.status != RequestStatus::Ok) {
    const std::string error = p.job ? r.error : p.error;
    observer_.on_failure(what, error);
    ++summary_.pages_failed;
    if (!d.paged && !p.job) {  // a single image that cannot be read: the document fails, no outputs
      d.error = error;
      --d.outstanding;
      return;
    }
    record = {{"page", p.page}, {"status", "failed"}, {"error", error}};
    if (p.job) record["failure"] = request_status_name(r.status);
  } else {
    record = page_record(p, r);
    ++summary_.pages_done;
    summary_.generated_tokens += int64_t(r.tokens.size());
    if (r.truncated()) {
      ++summary_.pages_truncated;
      observer_.on_warning(what, fmt::format("no end of text ({}, {} tokens): page kept and flagged truncated",
                                             stop_reason_name(r.stop), r.tokens.size()));
    }
    observer_.on_page_done(in, p.page, r);
  }
  if (stdout_mode()) {
    json line = {{"source", in.path}, {"page", p.page}};
    for (auto it = record.begin(); it != record.end(); ++it)
      if (it.key() != "page") line[it.key()] = it.value();
    const std::string text = dump_json(line) + "\n";
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
      throw OutputError(fmt::format("stdout: write failed: {}", std::strerror(errno)));
  } else {
    d.journal->record(record);
  }
  d.records[p.page] = std::move(record);
  --d.outstanding;
}

void BatchRunner::Impl::write_outputs(Document& d, const std::vector<json>& pages, bool only_missing) {
  const InputDocument& in = *d.input;
  std::set<OutputFormat> f = o_.formats;
  bool boxes = o_.boxes;
  if (only_missing) {
    std::error_code ec;
    auto have = [&](const std::string& suffix) { return fs::exists(output(d, suffix), ec); };
    const std::map<OutputFormat, std::string> suffix = {{OutputFormat::Markdown, ".md"}, {OutputFormat::Json, ".json"},
                                                        {OutputFormat::Hocr, ".hocr"}, {OutputFormat::Alto, ".alto.xml"},
                                                        {OutputFormat::Pdf, ".pdf"}};
    for (auto it = f.begin(); it != f.end();) it = suffix.count(*it) && have(suffix.at(*it)) ? f.erase(it) : std::next(it);
    if (boxes && have(d.paged ? ".boxes.pdf" : ".boxes.png")) boxes = false;
  }
  std::vector<std::string> markdown, raw;
  int failed = 0, truncated = 0;
  for (const json& p : pages) {
    markdown.push_back(p.value("markdown", ""));
    raw.push_back(p.value("raw", ""));
    failed += p.value("status", "done") != "done";
    truncated += p.value("truncated", false);
  }
  if (f.count(OutputFormat::Markdown)) {
    write_file_atomic(output(d, ".md"), d.paged ? join_pages(markdown) : markdown.front());
    write_file_atomic(output(d, ".raw.md"), d.paged ? join_pages(raw) : raw.front());
  }

  // Formats that need the page images render them again, one at a time, in page order.
  std::vector<std::unique_ptr<LayoutWriter>> layout_writers;
  LayoutWriterOptions lw;
  lw.dpi = in.is_pdf ? o_.dpi : 72.0;
  if (f.count(OutputFormat::Hocr)) layout_writers.push_back(make_layout_writer(LayoutFormat::Hocr, output(d, ".hocr"), lw));
  if (f.count(OutputFormat::Alto)) layout_writers.push_back(make_layout_writer(LayoutFormat::Alto, output(d, ".alto.xml"), lw));
  const bool need_pdf = f.count(OutputFormat::Pdf) > 0;
  if (need_pdf) layout_writers.push_back(make_layout_writer(LayoutFormat::Pdf, output(d, ".pdf"), lw));
  std::unique_ptr<ImagePdfWriter> boxes_pdf;
  if (boxes && d.paged) boxes_pdf = std::make_unique<ImagePdfWriter>(output(d, ".boxes.pdf"), 95, lw.dpi);
  if (!layout_writers.empty() || boxes) {
    std::unique_ptr<PdfDocument> pdf;
    for (const json& p : pages) {
      if (p.value("status", "done") != "done") continue;
      const int page = p["page"].get<int>();
      const bool need_image = need_pdf || boxes;
      const Image image = need_image ? load_page(d, page, pdf) : Image{};
      const int width = p["width"].get<int>(), height = p["height"].get<int>();
      const PostprocessResult post = postprocess(p.value("raw", ""), width, height, postprocess_options(d.paged, page));
      const LayoutPage layout = layout_page_from_blocks(post.blocks, width, height, in.path, page);
      for (auto& w : layout_writers) w->add_page(layout, image);
      if (boxes_pdf) boxes_pdf->add_page(annotate_page(image, post.blocks));
      else if (boxes) save_png(annotate_page(image, post.blocks), output(d, ".boxes.png"));
    }
    for (auto& w : layout_writers)
      if (w->page_count() > 0) w->finish();
    if (boxes_pdf && boxes_pdf->page_count() > 0) boxes_pdf->finish();
  }

  if (f.count(OutputFormat::Json)) {
    json j;
    j["source"] = in.path;
    j["dsocr"] = kVersion;
    j["model"] = {{"name", o_.model_name}, {"identity", o_.model_identity}};
    j["mode"] = mode_name(d.request.mode);
    if (d.request.mode == Mode::Gundam || d.request.mode == Mode::GundamMaster) j["max_tiles"] = d.request.max_tiles;
    j["prompt"] = d.request.prompt;
    if (in.is_pdf) j["dpi"] = o_.dpi;
    if (in.is_pdf) j["pdf_renderer"] = pdf_renderer_name(o_.pdf_renderer);
    j["identity"] = d.identity;
    j["pages"] = pages;
    j["summary"] = {{"pages", pages.size()}, {"failed", failed}, {"truncated", truncated}};
    j["complete"] = failed == 0;  // --resume --retry-failed redoes documents with failed pages
    write_file_atomic(output(d, ".json"), dump_json(j, 2) + "\n");
  }
}

void BatchRunner::Impl::finish_document(Document& d) {
  d.finished = true;
  if (!d.error.empty()) {
    ++summary_.documents_failed;
    summary_.failed_documents.emplace_back(d.input->name, d.error);
    if (d.journal) d.journal->remove();
    return;
  }
  std::vector<json> pages;
  int failed = 0;
  for (int p : d.pages) {
    auto it = d.records.find(p);
    if (it == d.records.end()) return;  // interrupted: the journal keeps what is done
    failed += it->second.value("status", "done") != "done";
    pages.push_back(it->second);
  }
  if (!stdout_mode()) {
    write_outputs(d, pages);
    d.journal->remove();
  }
  if (failed) ++summary_.documents_failed;
  else ++summary_.documents_done;
}

BatchSummary BatchRunner::Impl::run(const std::vector<InputDocument>& inputs) {
  const auto t0 = std::chrono::steady_clock::now();
  summary_.documents = int(inputs.size());
  if (!stdout_mode()) {
    prepare_output_dir(o_.out_dir);
    std::vector<std::string> names;
    for (const InputDocument& in : inputs) names.push_back(in.name);
    if (const int n = remove_orphan_temp_files(o_.out_dir, names))
      observer_.on_info(o_.out_dir, fmt::format("removed {} temporary file(s) left by an interrupted run", n));
  }

  docs_.resize(inputs.size());
  int total_pages = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Document& d = docs_[i];
    d.input = &inputs[i];
    try {
      plan(d);
    } catch (const Error& e) {
      d.error = e.what();
      continue;
    }
    total_pages += int(d.to_run.size());
  }
  observer_.on_start(int(inputs.size()), total_pages);

  // Documents with nothing to run, or that cannot run, are settled first.
  for (Document& d : docs_) {
    if (!d.error.empty()) {
      observer_.on_failure(d.input->path, d.error);
      ++summary_.documents_failed;
      summary_.failed_documents.emplace_back(d.input->name, d.error);
      summary_.usage_errors += d.usage_error;
      d.finished = true;
      d.submitted_all = true;
      continue;
    }
    d.outstanding = int(d.to_run.size());
    if (!stdout_mode()) {
      try {
        d.journal = std::make_unique<Journal>(journal_path(d), d.identity);
        for (const auto& [n, rec] : d.records) d.journal->record(rec);  // reused pages keep their place
      } catch (const OutputError& e) {
        summary_.fatal = e.what();
        break;
      } catch (const Error& e) {
        d.error = e.what();
        observer_.on_failure(d.input->path, d.error);
        ++summary_.documents_failed;
        summary_.failed_documents.emplace_back(d.input->name, d.error);
        d.finished = d.submitted_all = true;
        continue;
      }
    }
    if (d.to_run.empty()) {
      d.submitted_all = true;
      const int failed = int(std::count_if(d.records.begin(), d.records.end(),
                                           [](const auto& kv) { return kv.second.value("status", "done") != "done"; }));
      observer_.on_skipped(*d.input, failed ? fmt::format("already done, {} page(s) failed before (--retry-failed to "
                                                          "run them again)", failed)
                                            : std::string("already done (--resume)"));
      try {
        d.finished = true;
        if (!stdout_mode()) {
          std::vector<json> pages;
          for (int p : d.pages) pages.push_back(d.records.at(p));
          write_outputs(d, pages, /*only_missing=*/true);  // formats asked for now that the first run did not write
          d.journal->remove();
        }
      } catch (const OutputError& e) {
        summary_.fatal = e.what();
        break;
      } catch (const Error& e) {
        observer_.on_failure(d.input->path, e.what());
      }
      if (failed) ++summary_.documents_failed;
      else ++summary_.documents_skipped;
    }
  }

  if (summary_.fatal.empty()) {
    std::thread producer([this] { produce(); });
    const Document* announced = nullptr;
    auto last_progress = std::chrono::steady_clock::now();
    for (;;) {
      std::vector<std::unique_ptr<Pending>> ready;
      bool done = false;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(20));
        for (auto it = pending_.begin(); it != pending_.end();) {
          if (!(*it)->job || (*it)->job->done()) {
            ready.push_back(std::move(*it));
            it = pending_.erase(it);
          } else {
            ++it;
          }
        }
        done = producer_done_ && pending_.empty() && ready.empty();
      }
      if (cancelled() || !summary_.fatal.empty()) {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_producer_ = true;
        for (auto& p : pending_)
          if (p->job) p->job->cancel();
      }
      for (auto& p : ready) {
        try {
          if (announced != p->doc) {
            announced = p->doc;
            observer_.on_document(*p->doc->input, int(p->doc->pages.size()));
          }
          handle(*p);
        } catch (const OutputError& e) {
          summary_.fatal = e.what();
        } catch (const std::exception& e) {
          // Recording or post-processing a page failed: the page fails, the batch goes on.
          observer_.on_failure(p->doc->input->path, e.what());
          ++summary_.pages_failed;
          --p->doc->outstanding;
        }
        {
          std::lock_guard<std::mutex> lock(mutex_);
          --in_flight_;
        }
        cv_.notify_all();
      }
      // Documents complete in any order; each is assembled from its records in page order.
      for (Document& d : docs_) {
        bool all_submitted;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          all_submitted = d.submitted_all;
        }
        if (d.finished || !all_submitted || d.outstanding > 0 || !summary_.fatal.empty() || cancelled()) continue;
        try {
          finish_document(d);
        } catch (const OutputError& e) {
          summary_.fatal = e.what();
        } catch (const Error& e) {
          observer_.on_failure(d.input->path, e.what());
          ++summary_.documents_failed;
          summary_.failed_documents.emplace_back(d.input->name, e.what());
        }
      }
      // Keep the progress display alive with the tokens of the oldest page still running.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_progress > std::chrono::milliseconds(250)) {
        last_progress = now;
        std::lock_guard<std::mutex> lock(mutex_);
        if (!pending_.empty() && pending_.front()->job)
          observer_.on_page_progress(*pending_.front()->doc->input, pending_.front()->page, pending_.front()->pieces.load());
      }
      if (done) break;
    }
    producer.join();
  }
  if (!summary_.fatal.empty()) observer_.on_failure("batch stopped", summary_.fatal);
  summary_.cancelled = cancelled();
  summary_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary_;
}

}  // namespace dsocr
