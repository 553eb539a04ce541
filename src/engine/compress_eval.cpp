// dsocr compress-eval's run, its Table 2 summary and its chart (engine/compress.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <list>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/compress.h"
#include "engine/journal.h"
#include "io/files.h"
#include "text/ocr_metrics.h"

namespace fs = std::filesystem;

namespace dsocr {

namespace {

constexpr int kTableLow = 600, kTableHigh = 1300, kBucketWidth = 100;  // paper Table 2

int bucket_low(int tokens) { return tokens / kBucketWidth * kBucketWidth; }

std::string key_of(const std::string& id, const std::string& mode, const std::string& control) {
  return id + '\t' + mode + '\t' + control;
}

json identity_of(const CompressEvalOptions& o, const std::string& font_path) {
  const GenerationOptions& g = o.request.generation;
  const RenderOptions& r = o.render;
  return {{"tool", "compress-eval"},
          {"model", o.model_identity},
          {"prompt", o.request.prompt},
          {"max_tiles", o.request.max_tiles},
          {"max_new_tokens", g.max_new_tokens},
          {"ngram", g.ngram.enabled ? fmt::format("{}/{}", g.ngram.ngram_size, g.ngram.window) : "off"},
          {"sampling", fmt::format("t={} p={} seed={}", g.sampling.temperature, g.sampling.top_p, g.sampling.seed)},
          {"font", font_path},
          {"render", fmt::format("{} pt, {}x{} mm, {} dpi, margin {} mm, {} columns (gap {} mm), spacing {}",
                                 r.font_size, r.page_width_mm, r.page_height_mm, r.dpi, r.margin_mm, r.columns,
                                 r.column_gap_mm, r.line_spacing)},
          {"control", control_name(o.control)}};
}

// The records of OUT/samples.jsonl by key; a torn last line (a kill mid-write) is dropped and the
// file rewritten without it so that appends start on a fresh line.
std::map<std::string, SampleScore> load_samples(const std::string& path) {
  std::map<std::string, SampleScore> out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  const std::string content = read_file_text(path);
  std::string kept;
  size_t line_no = 0;
  for (size_t pos = 0; pos < content.size();) {
    size_t end = content.find('\n', pos);
    const bool complete = end != std::string::npos;
    if (!complete) end = content.size();
    const std::string line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!complete) break;  // torn
    try {
      const SampleScore s = sample_score_from_json(json::parse(line));
      out[key_of(s.id, s.mode, s.control)] = s;
      kept += line + '\n';
    } catch (const std::exception& e) {
      fail("{}: line {}: not a sample record ({}); remove the file to start again", path, line_no, e.what());
    }
  }
  if (kept.size() != content.size()) write_file_atomic(path, kept);
  return out;
}

// Appends one line and makes it durable before the sample counts as done.
class AppendLog {
 public:
  explicit AppendLog(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "a");
    if (!file_) fail("{}: cannot open for writing: {}", path, std::strerror(errno));
  }
  ~AppendLog() {
    if (file_) std::fclose(file_);
  }
  void append(const std::string& line) {
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fputc('\n', file_) == EOF ||
        std::fflush(file_) != 0 || ::fdatasync(fileno(file_)) != 0)
      throw OutputError(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }

 private:
  std::string path_;
  FILE* file_ = nullptr;
};

std::string percent(double v) { return fmt::format("{:.1f}%", v * 100); }
std::string times(double v) { return fmt::format("{:.1f}x", v); }

}  // namespace

std::vector<ModeSummary> summarize(const std::vector<SampleScore>& scores, const std::vector<std::string>& modes) {
  std::set<int> lows;
  for (int low = kTableLow; low < kTableHigh; low += kBucketWidth) lows.insert(low);
  for (const SampleScore& s : scores) lows.insert(bucket_low(s.text_tokens));
  std::vector<ModeSummary> out;
  for (const std::string& mode : modes) {
    ModeSummary m;
    m.mode = mode;
    std::map<int, Bucket> buckets;
    for (int low : lows) buckets[low] = Bucket{low, low + kBucketWidth};
    for (const SampleScore& s : scores) {
      if (s.mode != mode) continue;
      Bucket& b = buckets[bucket_low(s.text_tokens)];
      ++b.samples;
      b.precision += s.precision;
      b.compression += s.compression;
      b.edit_distance += s.edit_distance;
      b.output_precision += s.output_precision;
      ++m.samples;
      m.precision += s.precision;
      m.compression += s.compression;
      m.edit_distance += s.edit_distance;
      m.output_precision += s.output_precision;
      ++m.stop_reasons[s.stop_reason];
    }
    for (auto& [low, b] : buckets) {
      if (b.samples > 0) {
        b.precision /= b.samples;
        b.compression /= b.samples;
        b.edit_distance /= b.samples;
        b.output_precision /= b.samples;
      }
      m.buckets.push_back(b);
    }
    if (m.samples > 0) {
      m.precision /= m.samples;
      m.compression /= m.samples;
      m.edit_distance /= m.samples;
      m.output_precision /= m.samples;
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string format_table(const std::vector<ModeSummary>& summary) {
  std::string head1 = fmt::format("{:<12}", "text tokens"), head2 = fmt::format("{:<12}", "");
  for (const ModeSummary& m : summary) {
    head1 += fmt::format(" | {:<22}", m.mode);
    head2 += fmt::format(" | {:>9} {:>12}", "precision", "compression");
  }
  std::string out = head1 + " | pages\n" + head2 + " |\n";
  if (summary.empty()) return out;
  for (size_t row = 0; row < summary.front().buckets.size(); ++row) {
    const Bucket& first = summary.front().buckets[row];
    std::string line = fmt::format("{:<12}", fmt::format("{}-{}", first.low, first.high));
    int pages = 0;
    for (const ModeSummary& m : summary) {
      const Bucket& b = m.buckets[row];
      pages = std::max(pages, b.samples);
      line += b.samples ? fmt::format(" | {:>9} {:>12}", percent(b.precision), times(b.compression))
                        : fmt::format(" | {:>9} {:>12}", "-", "-");
    }
    out += line + fmt::format(" | {}\n", pages);
  }
  std::string all = fmt::format("{:<12}", "all");
  int total = 0;
  for (const ModeSummary& m : summary) {
    total = std::max(total, m.samples);
    all += m.samples ? fmt::format(" | {:>9} {:>12}", percent(m.precision), times(m.compression))
                     : fmt::format(" | {:>9} {:>12}", "-", "-");
  }
  return out + all + fmt::format(" | {}\n", total);
}

std::string make_chart_svg(const std::vector<SampleScore>& scores, const std::vector<ModeSummary>& summary,
                           const std::string& title) {
  static const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  constexpr int W = 720, H = 460, left = 70, right = 150, top = 40, bottom = 60;
  const int pw = W - left - right, ph = H - top - bottom;
  double max_x = 1;
  for (const SampleScore& s : scores) max_x = std::max(max_x, s.compression);
  const double step = max_x <= 5 ? 1 : max_x <= 10 ? 2 : max_x <= 25 ? 5 : max_x <= 50 ? 10 : std::ceil(max_x / 50) * 10;
  max_x = std::ceil(max_x / step) * step;
  auto X = [&](double v) { return left + v / max_x * pw; };
  auto Y = [&](double v) { return top + (1 - v) * ph; };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n",
      W, H, W, H, left, title);
  for (int i = 0; i <= 10; ++i) {  // precision grid: 0..100% in steps of 10
    const double y = Y(i / 10.0);
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}%</text>\n",
                       left, y, left + pw, y, left - 6, y + 4, i * 10);
  }
  for (double v = 0; v <= max_x + 1e-9; v += step) {
    const double x = X(v);
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#ddd\"/>"
                       "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}x</text>\n",
                       x, top, x, top + ph, x, top + ph + 18, v);
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", left, top,
                     pw, ph);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">compression (text tokens / vision tokens)</text>\n",
                     left + pw / 2, H - 18);
  svg += fmt::format("<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">precision</text>\n",
                     top + ph / 2, top + ph / 2);
  // The paper's Table 2 (spec §10.2) as dashed reference lines for the modes it reports.
  struct Reference {
    const char* mode;
    double precision[7], compression[7];
  };
  static const Reference kPaper[] = {
      {"tiny", {.965, .938, .838, .859, .793, .764, .591}, {10.5, 11.8, 13.2, 15.1, 16.5, 17.7, 19.7}},
      {"small", {.985, .973, .968, .968, .915, .898, .871}, {6.7, 7.5, 8.5, 9.7, 10.6, 11.3, 12.6}}};
  for (size_t k = 0; k < summary.size(); ++k) {
    for (const Reference& ref : kPaper) {
      if (summary[k].mode != ref.mode) continue;
      std::string points;
      for (int i = 0; i < 7; ++i)
        if (ref.compression[i] <= max_x) points += fmt::format("{:.1f},{:.1f} ", X(ref.compression[i]), Y(ref.precision[i]));
      svg += fmt::format("<polyline class=\"paper\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-opacity=\"0.5\" "
                         "stroke-dasharray=\"5,4\"><title>paper Table 2, {}</title></polyline>\n",
                         points, kColours[k % 6], ref.mode);
    }
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#555\">dashed: paper Table 2</text>\n", left + pw + 14,
                     top + 10 + int(summary.size()) * 20 + 11);
  for (size_t k = 0; k < summary.size(); ++k) {
    const ModeSummary& m = summary[k];
    const char* colour = kColours[k % 6];
    svg += fmt::format("<g class=\"mode\" data-mode=\"{}\">\n", m.mode);
    for (const SampleScore& s : scores) {
      if (s.mode != m.mode) continue;
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\" fill-opacity=\"0.35\"/>\n",
                         X(s.compression), Y(s.precision), colour);
    }
    std::string points;
    for (const Bucket& b : m.buckets) {
      if (!b.samples) continue;
      points += fmt::format("{:.1f},{:.1f} ", X(b.compression), Y(b.precision));
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"><title>{} {}-{}: precision {}, compression {}, {} "
          "pages</title></circle>\n",
          X(b.compression), Y(b.precision), colour, m.mode, b.low, b.high, percent(b.precision), times(b.compression),
          b.samples);
    }
    if (!points.empty())
      svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", points, colour);
    const int ly = top + 10 + int(k) * 20;
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>"
                       "<text x=\"{}\" y=\"{}\">{} ({})</text>\n</g>\n",
                       left + pw + 14, ly, colour, left + pw + 32, ly + 11, m.mode,
                       m.samples ? percent(m.precision) : "-");
  }
  return svg + "</svg>\n";
}

CompressEvalSummary run_compress_eval(PageRecognizer& recognizer, const Tokenizer& tokenizer, TextRenderer& renderer,
                                      const std::vector<CorpusSample>& corpus, const CompressEvalOptions& options,
                                      CompressEvalObserver& observer, const std::atomic<bool>* cancel, bool restart) {
  if (options.modes.empty()) fail("compress-eval: no modes");
  const std::string control = control_name(options.control);
  fs::create_directories(options.out_dir);
  const std::string run_path = (fs::path(options.out_dir) / "run.json").string();
  const std::string samples_path = (fs::path(options.out_dir) / "samples.jsonl").string();
  const json identity = identity_of(options, renderer.font_path());
  std::error_code ec;
  if (fs::exists(run_path, ec) && !restart) {
    json before;
    try {
      before = json::parse(read_file_text(run_path));
    } catch (const json::parse_error&) {
      fail("{}: not valid JSON; remove it (or use --restart) to start again", run_path);
    }
    if (const std::string diff = identity_difference(before, identity); !diff.empty())
      fail("{} holds results made differently ({}): use another folder, or --restart to discard them", options.out_dir,
           diff);
  }
  if (restart) fs::remove(samples_path, ec);
  write_file_atomic(run_path, dump_json(identity, 2) + "\n");
  std::map<std::string, SampleScore> records = load_samples(samples_path);

  struct Item {
    size_t sample;
    Mode mode;
  };
  std::vector<Item> todo;
  int reused = 0;
  for (size_t i = 0; i < corpus.size(); ++i)
    for (Mode m : options.modes) {
      if (records.count(key_of(corpus[i].id, mode_name(m), control))) ++reused;
      else todo.push_back({i, m});
    }
  const int total = int(corpus.size() * options.modes.size());
  observer.on_start(total, reused);

  CompressEvalSummary summary;
  summary.reused = reused;
  AppendLog log(samples_path);
  struct Page {
    std::string text;  // what the page shows (the control's shuffled words, if any)
    int text_tokens = 0;
    SinglePage rendered;
    int modes_left = 0;
  };
  std::map<size_t, Page> pages;  // rendered, with modes still to submit
  std::set<size_t> unrenderable;
  struct Pending {
    Item item;
    std::shared_ptr<PageJob> job;
  };
  std::list<Pending> pending;
  size_t next = 0;
  int done = reused;
  auto cancelled = [&] { return cancel && cancel->load(); };

  auto finish = [&](const Pending& p) {
    const OcrResult r = p.job->wait();
    const CorpusSample& sample = corpus[p.item.sample];
    const std::string what = fmt::format("{} ({})", sample.id, mode_name(p.item.mode));
    if (r.status == RequestStatus::Cancelled || r.stop == StopReason::Cancelled) return;
    if (r.status != RequestStatus::Ok) {
      ++summary.failed;
      observer.on_failure(what, r.error);
      return;
    }
    const Page& page = pages.at(p.item.sample);
    const VisionTokenCount vt =
        vision_token_count(page.rendered.page.width, page.rendered.page.height, p.item.mode, options.request.max_tiles);
    SampleScore s;
    s.id = sample.id;
    s.mode = mode_name(p.item.mode);
    s.control = control;
    s.text_tokens = page.text_tokens;
    s.vision_tokens = vt.raw;
    s.valid_vision_tokens = vt.valid;
    s.placeholders = vt.placeholders;
    s.compression = double(page.text_tokens) / double(vt.raw);
    s.precision = fox_precision(page.text, r.text);
    s.output_precision = output_precision(page.text, r.text);
    s.edit_distance = normalized_edit_distance(r.text, page.text);
    s.stop_reason = stop_reason_name(r.stop);
    s.generated_tokens = int(r.tokens.size());
    s.font_size = page.rendered.font_size;
    s.output = r.text;
    log.append(dump_json(to_json(s)));
    records[key_of(s.id, s.mode, s.control)] = s;
    ++summary.done;
    observer.on_sample(s, ++done, total);
  };

  while (next < todo.size() || !pending.empty()) {
    if (cancelled()) {
      for (Pending& p : pending) p.job->cancel();
      for (Pending& p : pending) finish(p);
      pending.clear();
      summary.cancelled = true;
      break;
    }
    while (pending.size() < size_t(std::max(1, options.parallel)) && next < todo.size()) {
      const Item item = todo[next++];
      if (unrenderable.count(item.sample)) continue;
      auto it = pages.find(item.sample);
      if (it == pages.end()) {
        const CorpusSample& sample = corpus[item.sample];
        Page page;
        page.text = options.control == Control::Shuffled ? shuffle_words_within_lines(sample.text, sample.id) : sample.text;
        page.text_tokens = count_text_tokens(tokenizer, page.text);
        try {
          page.rendered = render_single_page(renderer, page.text, options.render);
        } catch (const Error& e) {
          unrenderable.insert(item.sample);
          ++summary.failed;
          observer.on_failure(sample.id, e.what());
          continue;
        }
        if (!page.rendered.missing.empty())
          observer.on_warning(sample.id, renderer.font_path() + ": " + describe_missing_glyphs(page.rendered.missing));
        for (size_t k = next - 1; k < todo.size() && todo[k].sample == item.sample; ++k) ++page.modes_left;
        it = pages.emplace(item.sample, std::move(page)).first;
      }
      OcrRequest request = options.request;
      request.mode = item.mode;
      pending.push_back({item, recognizer.submit(it->second.rendered.page, request)});
      --it->second.modes_left;
    }
    bool any = false;
    for (auto it = pending.begin(); it != pending.end();) {
      if (!it->job->done()) {
        ++it;
        continue;
      }
      finish(*it);
      const size_t sample = it->item.sample;
      it = pending.erase(it);
      any = true;
      const bool still_needed = std::any_of(pending.begin(), pending.end(), [&](const Pending& p) { return p.item.sample == sample; });
      if (!still_needed && pages.count(sample) && pages.at(sample).modes_left == 0) pages.erase(sample);
    }
    if (!any && !pending.empty()) pending.front().job->wait_for(std::chrono::milliseconds(50));
  }

  // The summary of every finished sample of this corpus, modes and control (earlier runs' included).
  std::vector<SampleScore> scores;
  std::vector<std::string> modes;
  for (Mode m : options.modes) modes.push_back(mode_name(m));
  for (const CorpusSample& sample : corpus)
    for (const std::string& m : modes)
      if (auto it = records.find(key_of(sample.id, m, control)); it != records.end()) scores.push_back(it->second);
  summary.modes = summarize(scores, modes);
  if (summary.cancelled) return summary;

  json modes_json = json::array();
  for (const ModeSummary& m : summary.modes) {
    json buckets = json::array();
    for (const Bucket& b : m.buckets)
      buckets.push_back({{"text_tokens", fmt::format("{}-{}", b.low, b.high)},
                         {"low", b.low},
                         {"high", b.high},
                         {"samples", b.samples},
                         {"precision", b.samples ? json(b.precision) : json()},
                         {"compression", b.samples ? json(b.compression) : json()},
                         {"edit_distance", b.samples ? json(b.edit_distance) : json()},
                         {"output_precision", b.samples ? json(b.output_precision) : json()}});
    modes_json.push_back({{"mode", m.mode},
                          {"samples", m.samples},
                          {"precision", m.precision},
                          {"compression", m.compression},
                          {"edit_distance", m.edit_distance},
                          {"output_precision", m.output_precision},
                          {"stop_reasons", m.stop_reasons},
                          {"buckets", buckets}});
  }
  const json out = {
      {"identity", identity},
      {"samples", int(corpus.size())},
      {"failed", summary.failed},
      {"precision_definition",
       "Fox/GOT-OCR2.0 eval (GOT/eval/pyevaltools/eval_ocr.py): distinct ground-truth words (whitespace split) found in "
       "the output / distinct ground-truth words"},
      {"compression_definition", "text tokens (model tokenizer) / vision tokens (the paper's nominal count: 64, 100, ...)"},
      {"modes", modes_json}};
  write_file_atomic((fs::path(options.out_dir) / "summary.json").string(), dump_json(out, 2) + "\n");
  write_file_atomic((fs::path(options.out_dir) / "chart.svg").string(),
                    make_chart_svg(scores, summary.modes,
                                   fmt::format("Precision against compression ({} pages{})", corpus.size(),
                                               options.control == Control::Shuffled ? ", words shuffled" : "")));
  return summary;
}

}  // namespace dsocr
