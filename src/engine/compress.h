// Optical context compression (paper §4, "contexts optical compression"; spec §10.2): text rendered
// into pages, pages read back by the model, and the two compared. Shared by `dsocr render --fit`,
// `dsocr compress-eval` and `dsocr context-compress`.
#pragma once
#include <atomic>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "text/prompt.h"
#include "text/render.h"
#include "text/tokenizer.h"
#include "vision/encoder.h"
#include "vision/preprocess.h"

namespace dsocr {

// The Fox benchmark's prompt (paper Table 2; spec §6.1): "<image>\nFree OCR.", the free-OCR task's.
inline std::string fox_prompt() { return task_prompt(Task::Free); }

// Text tokens as the paper counts them: the model's tokenizer, no BOS.
int count_text_tokens(const Tokenizer& tokenizer, std::string_view text);

struct FitResult {
  double font_size = 0;       // points
  int pages = 0;
  double fill = 0;            // pages used (RenderedText::fill)
  VisionTokenCount per_page;  // every page has the same size, so the same count
  double ratio = 0;           // text tokens per valid vision token of the pages used: tokens / (fill * valid)
  bool reached = true;        // false when the font-size limits (1..500 pt) stopped short of the ratio
};

// The font size at which `text_tokens` tokens of `text` fill pages of `mode` at about `ratio` text
// tokens per valid vision token (spec §5.6), the last page counted by the share of its lines used.
// A larger font means more pages, so the ratio falls as the size grows: bisection on the size
// (to 1/100 pt). Other render options (page, dpi, margins, columns, spacing) are kept.
FitResult fit_font_size(TextRenderer& renderer, std::string_view text, int text_tokens, const RenderOptions& base,
                        Mode mode, int max_tiles, double ratio);

// One page holding the whole text: at options.font_size when it fits, else at the largest size (in
// hundredths of a point) that does, as a Fox page is one page. Throws Error when even 1 pt overflows.
struct SinglePage {
  Image page;
  double font_size = 0;
  std::vector<MissingGlyph> missing;
};
SinglePage render_single_page(TextRenderer& renderer, std::string_view text, const RenderOptions& options);

// ---- compress-eval ----------------------------------------------------------------------------

struct CorpusSample {
  std::string id, text;
};

// A folder of .txt files (recursively, sorted; id = the path inside the folder without ".txt") or
// a JSONL file of {"id": ..., "text": ...}. Throws Error naming the file (and line) that is wrong:
// unreadable, not JSON, no id or text, an id twice.
std::vector<CorpusSample> read_corpus(const std::string& path);

// The control condition: the words of every line in a random order (a fixed function of `key`), so
// that reading the page cannot be helped by predicting the language.
std::string shuffle_words_within_lines(std::string_view text, std::string_view key);

enum class Control { None, Shuffled };
Control parse_control(const std::string& name);  // "none", "shuffled"
const char* control_name(Control control);

// One sample read back in one mode: a line of OUT/samples.jsonl.
struct SampleScore {
  std::string id, mode, control = "none";
  int text_tokens = 0, vision_tokens = 0, valid_vision_tokens = 0, placeholders = 0;
  double compression = 0;        // text tokens / vision tokens (the paper's Table 2 ratio)
  double precision = 0;          // fox_precision (text/ocr_metrics.h)
  double output_precision = 0;
  double edit_distance = 0;
  std::string stop_reason;
  int generated_tokens = 0;
  double font_size = 0;
  std::string output;            // the recognised text
};
nlohmann::ordered_json to_json(const SampleScore& s);
SampleScore sample_score_from_json(const nlohmann::ordered_json& j);  // throws Error when a field is missing

struct CompressEvalOptions {
  std::string out_dir;
  std::vector<Mode> modes;
  Control control = Control::None;
  RenderOptions render;
  OcrRequest request = [] {       // mode is set per page
    OcrRequest r;
    r.prompt = fox_prompt();
    return r;
  }();
  int parallel = 4;              // pages in flight
  std::string model_identity;    // part of the run identity
  std::string corpus;            // named in the identity
};

// Progress of a run (called from the thread that runs it).
class CompressEvalObserver {
 public:
  virtual ~CompressEvalObserver() = default;
  virtual void on_start(int total, int reused) {}
  virtual void on_sample(const SampleScore& score, int done, int total) {}
  virtual void on_failure(const std::string& what, const std::string& reason) {}
  virtual void on_warning(const std::string& what, const std::string& message) {}
};

struct Bucket {
  int low = 0, high = 0;  // text tokens in [low, high)
  int samples = 0;
  double precision = 0, compression = 0, edit_distance = 0, output_precision = 0;  // means
};

struct ModeSummary {
  std::string mode;
  int samples = 0;
  double precision = 0, compression = 0, edit_distance = 0, output_precision = 0;  // means
  std::vector<Bucket> buckets;  // Table 2's rows that have samples, or all of 600..1300
  std::map<std::string, int> stop_reasons;
};

struct CompressEvalSummary {
  std::vector<ModeSummary> modes;
  int done = 0, reused = 0, failed = 0;
  bool cancelled = false;
};

// The Table 2 summary of the scores of one control condition, in the order of `modes`: 100-token
// buckets from 600 to 1300 always, and any other 100-token bucket that has samples.
std::vector<ModeSummary> summarize(const std::vector<SampleScore>& scores, const std::vector<std::string>& modes);
std::string format_table(const std::vector<ModeSummary>& summary);  // Table 2 layout, plain text
std::string make_chart_svg(const std::vector<SampleScore>& scores, const std::vector<ModeSummary>& summary,
                           const std::string& title);

// Renders every sample (one page each, render_single_page), reads it back in every mode through
// `recognizer` with up to `parallel` pages in flight, scores it, and appends it to
// OUT/samples.jsonl as soon as it is done (flushed to disk). OUT/run.json holds the run identity
// (model, prompt, generation, render options, control, corpus): a folder whose identity matches is
// continued (its finished samples are kept and not run again); a different one is an Error unless
// `restart`. When complete, OUT/summary.json and OUT/chart.svg are written. `cancel` stops the
// run between pages (the finished ones are kept).
CompressEvalSummary run_compress_eval(PageRecognizer& recognizer, const Tokenizer& tokenizer, TextRenderer& renderer,
                                      const std::vector<CorpusSample>& corpus, const CompressEvalOptions& options,
                                      CompressEvalObserver& observer, const std::atomic<bool>* cancel,
                                      bool restart = false);

// ---- optical context ---------------------------------------------------------------------------

// Rendered text as the vision features a DeepSeek-OCR decoder takes in place of its <image>
// placeholders: per page [placeholder_count, n_embed] floats (spec §5.5), so a downstream model can
// be given "optical context" directly.
struct OpticalContext {
  RenderedText rendered;                   // the pages (rasterised)
  std::vector<VisionTokenCount> tokens;    // per page
  std::vector<std::vector<float>> features;  // per page, row-major [tokens[p].placeholders, n_embed]
  int n_embed = 0;
};
OpticalContext encode_text_as_vision(VisionEncoder& encoder, TextRenderer& renderer, std::string_view text,
                                     const RenderOptions& options, Mode mode, int max_tiles = kDefaultMaxTiles);

// ---- context-compress (memory decay) -----------------------------------------------------------

struct Turn {
  std::string role, text;
};

// JSON lines of {"role": ..., "content": ...} ("text" is accepted for "content"; role optional).
// Throws Error naming the file and line.
std::vector<Turn> read_conversation(const std::string& path);

// The conversation with the most recent `keep` turns kept as text and the older ones given to
// tiers by age: the newest older turns to tiers[0], the next `turns_per_tier` to tiers[1], ...;
// the oldest remaining all to the last tier. turns_per_tier 0: the older turns split evenly.
struct TierPlan {
  Mode mode;
  std::vector<size_t> turns;  // conversation indices, oldest first
  std::string text;           // "role: text" per turn, blank line between turns
};
struct ContextPlan {
  std::vector<size_t> recent;  // kept as text
  std::vector<TierPlan> tiers; // tiers with turns only, newest first
};
ContextPlan plan_context(const std::vector<Turn>& turns, int keep, const std::vector<Mode>& tiers, int turns_per_tier);

}  // namespace dsocr
