#include "engine/document.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/annotate.h"
#include "io/files.h"
#include "io/pdf.h"
#include "io/pdf_writer.h"
#include "text/grounding.h"

namespace fs = std::filesystem;

namespace dsocr {

namespace {

const std::set<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"};

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

std::string stem_of(const fs::path& p) { return (p.parent_path() / p.stem()).string(); }

}  // namespace

std::vector<InputDocument> collect_inputs(const std::vector<std::string>& paths, std::vector<std::string>* missing) {
  std::vector<InputDocument> out;
  for (const std::string& path : paths) {
    std::error_code ec;
    const fs::path p(path);
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (!it->is_regular_file(ec)) continue;
        const std::string e = lower_extension(it->path());
        if (kImageExtensions.count(e) || e == ".pdf") files.push_back(it->path());
      }
      std::sort(files.begin(), files.end());
      for (const fs::path& f : files)
        out.push_back({f.string(), stem_of(fs::relative(f, p, ec)), lower_extension(f) == ".pdf"});
    } else if (fs::exists(p, ec)) {
      out.push_back({path, p.stem().string(), lower_extension(p) == ".pdf"});
    } else if (missing) {
      missing->push_back(path);
    }
  }
  // Two inputs with the same output name would overwrite each other: number the later ones.
  std::set<std::string> used;
  for (InputDocument& d : out) {
    std::string name = d.name;
    for (int k = 2; used.count(name); ++k) name = d.name + "_" + std::to_string(k);
    used.insert(name);
    d.name = name;
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

BatchRunner::BatchRunner(PageRecognizer& recognizer, BatchOptions options, BatchObserver& observer,
                         const std::atomic<bool>* cancel)
    : recognizer_(recognizer), options_(std::move(options)), observer_(observer), cancel_(cancel) {}

bool BatchRunner::document_complete(const InputDocument& doc) const {
  const fs::path json = fs::path(options_.out_dir) / (doc.name + ".json");
  std::error_code ec;
  if (!fs::exists(json, ec)) return false;
  try {
    const auto j = nlohmann::json::parse(read_file_text(json.string()));
    return j.value("complete", false) && fs::exists(fs::path(options_.out_dir) / (doc.name + ".md"), ec);
  } catch (const std::exception&) {
    return false;  // unreadable: redo it
  }
}

BatchSummary BatchRunner::run(const std::vector<InputDocument>& documents) {
  const auto t0 = std::chrono::steady_clock::now();
  BatchSummary summary;
  summary.documents = int(documents.size());

  // Page counts first, so progress can show a total; unreadable PDFs fail here.
  std::vector<int> page_counts(documents.size(), 1);
  std::vector<std::string> open_errors(documents.size());
  int total_pages = 0;
  for (size_t i = 0; i < documents.size(); ++i) {
    if (!documents[i].is_pdf) {
      total_pages += 1;
      continue;
    }
    try {
      PdfDocument pdf(documents[i].path);
      int n = pdf.page_count();
      if (!options_.pages.empty())
        n = int(std::count_if(options_.pages.begin(), options_.pages.end(), [&](int p) { return p <= pdf.page_count(); }));
      page_counts[i] = n;
      total_pages += n;
    } catch (const Error& e) {
      open_errors[i] = e.what();
      page_counts[i] = 0;
    }
  }
  observer_.on_start(int(documents.size()), total_pages);

  for (size_t i = 0; i < documents.size() && !cancelled(); ++i) {
    const InputDocument& doc = documents[i];
    if (!open_errors[i].empty()) {
      observer_.on_failure(doc.path, open_errors[i]);
      ++summary.documents_failed;
      continue;
    }
    if (options_.resume && document_complete(doc)) {
      observer_.on_skipped(doc, "already done (--resume)");
      ++summary.documents_skipped;
      continue;
    }
    try {
      run_document(doc, page_counts[i], summary);
    } catch (const Error& e) {
      observer_.on_failure(doc.path, e.what());
      ++summary.documents_failed;
    }
  }
  summary.cancelled = cancelled();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

void BatchRunner::run_document(const InputDocument& doc, int pages, BatchSummary& summary) {
  const fs::path out(options_.out_dir);
  const fs::path md_path = out / (doc.name + ".md");
  const fs::path base_dir = md_path.parent_path();
  const std::string stem = fs::path(doc.name).filename().string();
  const std::string crops_rel = "images/" + stem;  // links are relative to NAME.md

  std::unique_ptr<PdfDocument> pdf;
  std::vector<int> page_numbers;  // 1-based
  if (doc.is_pdf) {
    pdf = std::make_unique<PdfDocument>(doc.path);
    for (int p = 1; p <= pdf->page_count(); ++p)
      if (options_.pages.empty() || std::binary_search(options_.pages.begin(), options_.pages.end(), p))
        page_numbers.push_back(p);
    if (page_numbers.empty()) fail("{}: none of the requested --pages exist ({} pages)", doc.path, pdf->page_count());
  } else {
    page_numbers.push_back(1);
  }
  observer_.on_document(doc, pages);

  OcrRequest request = options_.request;
  if (doc.is_pdf && options_.pdf_ngram) request.generation.ngram = *options_.pdf_ngram;

  nlohmann::ordered_json j;
  j["source"] = doc.path;
  j["mode"] = mode_name(request.mode);
  if (request.mode == Mode::Gundam || request.mode == Mode::GundamMaster) j["max_tiles"] = request.max_tiles;
  j["prompt"] = request.prompt;
  if (doc.is_pdf) j["dpi"] = options_.dpi;
  j["pages"] = nlohmann::ordered_json::array();

  std::vector<std::string> markdown_pages, raw_pages;
  // Annotated pages stream into the PDF one at a time (bounded memory for long documents).
  std::unique_ptr<ImagePdfWriter> boxes_pdf;
  if (options_.boxes && doc.is_pdf)
    boxes_pdf = std::make_unique<ImagePdfWriter>((out / (doc.name + ".boxes.pdf")).string(), 95, options_.dpi);
  Image boxes_png;
  int failed = 0, truncated = 0;

  for (int page_number : page_numbers) {
    if (cancelled()) return;  // the interrupted document is not written
    const std::string what = doc.is_pdf ? fmt::format("{} page {}", doc.path, page_number) : doc.path;
    nlohmann::ordered_json pj;
    pj["page"] = page_number;
    Image page;
    try {
      page = doc.is_pdf ? pdf->render_page(page_number - 1, options_.dpi) : load_image(doc.path);
    } catch (const Error& e) {
      if (!doc.is_pdf) throw;  // a single image that cannot be read fails the document
      observer_.on_failure(what, e.what());
      pj["error"] = e.what();
      j["pages"].push_back(pj);
      ++failed;
      ++summary.pages_failed;
      markdown_pages.push_back("");
      raw_pages.push_back("");
      continue;
    }
    int pieces = 0;
    OcrResult r = recognizer_.run(page, request, [&](std::string_view) {
      observer_.on_page_progress(doc, page_number, ++pieces);
      return !cancelled();
    });
    if (r.stop == StopReason::Cancelled) return;

    const PostprocessOptions popt =
        doc.is_pdf ? PostprocessOptions::pdf_page(page_number - 1) : PostprocessOptions::image();
    PostprocessResult post = postprocess(r.text, page.width, page.height, popt);
    // Crops live in images/STEM/ so that documents sharing an output folder never collide.
    std::string markdown = post.markdown;
    for (ImageRegion& region : post.images) {
      const std::string old_link = region.link;
      region.link = crops_rel + "/" + fs::path(old_link).filename().string();
      for (size_t at = 0; (at = markdown.find("](" + old_link + ")", at)) != std::string::npos;)
        markdown.replace(at + 2, old_link.size(), region.link), at += region.link.size();
      // Crops are written as pages finish (bounded memory); the document's texts come last.
      save_jpeg(crop(page, region.box.x1, region.box.y1, region.box.x2, region.box.y2),
                (base_dir / region.link).string());
    }
    for (const std::string& w : post.warnings) observer_.on_warning(what, w);

    pj["width"] = page.width;
    pj["height"] = page.height;
    pj["stop_reason"] = stop_reason_name(r.stop);
    pj["truncated"] = r.truncated();
    pj["prompt_tokens"] = r.prompt_tokens;
    pj["image_tokens"] = r.image_tokens;
    pj["generated_tokens"] = r.tokens.size();
    pj["tile_grid"] = {r.grid.cols, r.grid.rows};
    pj["seconds"] = {{"preprocess", r.timings.preprocess}, {"encode", r.timings.encode},
                     {"prefill", r.timings.prefill}, {"decode", r.timings.decode}};
    auto blocks = nlohmann::ordered_json::array();
    for (const Block& b : post.blocks) {
      nlohmann::ordered_json bj;
      bj["label"] = b.label;
      auto boxes = nlohmann::ordered_json::array(), raw_boxes = nlohmann::ordered_json::array();
      for (const Box& box : b.boxes) {
        const PixelBox px = to_pixels(box, page.width, page.height);
        boxes.push_back(nlohmann::ordered_json::array({px.x1, px.y1, px.x2, px.y2}));
        raw_boxes.push_back(nlohmann::ordered_json::array({box.x1, box.y1, box.x2, box.y2}));
      }
      bj["boxes"] = boxes;
      bj["boxes_999"] = raw_boxes;
      bj["text"] = b.text;
      if (b.malformed) bj["problem"] = b.problem;
      blocks.push_back(bj);
    }
    pj["blocks"] = blocks;
    auto images = nlohmann::ordered_json::array();
    for (const ImageRegion& region : post.images)
      images.push_back({{"file", region.link},
                        {"box", nlohmann::ordered_json::array({region.box.x1, region.box.y1, region.box.x2, region.box.y2})}});
    pj["images"] = images;
    if (!post.warnings.empty()) pj["warnings"] = post.warnings;
    j["pages"].push_back(pj);

    if (r.truncated()) {
      ++truncated;
      ++summary.pages_truncated;
      observer_.on_warning(what, fmt::format("no end of text ({}, {} tokens): page kept and flagged truncated",
                                             stop_reason_name(r.stop), r.tokens.size()));
    }
    if (boxes_pdf) boxes_pdf->add_page(annotate_page(page, post.blocks));
    else if (options_.boxes) boxes_png = annotate_page(page, post.blocks);
    markdown_pages.push_back(std::move(markdown));
    raw_pages.push_back(r.text);
    ++summary.pages_done;
    summary.generated_tokens += int64_t(r.tokens.size());
    observer_.on_page_done(doc, page_number, r);
  }

  // Everything for this document is known: the texts, the JSON last (its "complete" flag is what
  // --resume trusts).
  if (boxes_pdf && boxes_pdf->page_count() > 0) boxes_pdf->finish();
  if (!boxes_png.empty()) save_png(boxes_png, (out / (doc.name + ".boxes.png")).string());
  write_file_atomic(md_path.string(), doc.is_pdf ? join_pages(markdown_pages) : markdown_pages.front());
  write_file_atomic((out / (doc.name + ".raw.md")).string(), doc.is_pdf ? join_pages(raw_pages) : raw_pages.front());
  j["summary"] = {{"pages", page_numbers.size()}, {"failed", failed}, {"truncated", truncated}};
  j["complete"] = failed == 0;  // --resume redoes documents with failed pages
  write_file_atomic((out / (doc.name + ".json")).string(), j.dump(2) + "\n");
  if (failed) ++summary.documents_failed; else ++summary.documents_done;
}

}  // namespace dsocr
