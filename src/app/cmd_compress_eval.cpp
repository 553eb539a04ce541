// dsocr compress-eval: how much text survives optical compression. Every sample of a corpus is
// rendered onto one page, read back in each mode with the Fox prompt on the batching engine and
// scored (engine/compress.h, text/ocr_metrics.h); the paper's Table 2 comes out per mode.
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/progress.h"
#include "app/render_options.h"
#include "app/signals.h"
#include "engine/compress.h"
#include "engine/engine.h"
#include "io/model_locator.h"
#include "text/prompt.h"

namespace dsocr::app {

namespace {

struct CompressEvalArgs {
  std::string corpus, out, model, modes = "tiny,small", control = "none", prompt = fox_prompt();
  RenderArgs render;
  int max_tiles = 6, max_tokens = 0, parallel = 4, threads = 0;
  double kv_memory_gb = 0;
  bool restart = false, quiet = false, no_ngram = false;
};

// A bar on a terminal, else one line per sample; ETA from this run's own pace.
class EvalProgress : public CompressEvalObserver {
 public:
  EvalProgress(bool bar, bool quiet) : bar_(bar), quiet_(quiet) {}
  ~EvalProgress() override {
    if (drawn_) std::fputs("\n", stderr);
  }
  void on_start(int total, int reused) override {
    total_ = total;
    first_ = reused;
    start_ = std::chrono::steady_clock::now();
    if (!quiet_)
      fmt::print(stderr, "dsocr: {} page reads ({} already done in this folder, {} to run)\n", total, reused,
                 total - reused);
  }
  void on_sample(const SampleScore& s, int done, int total) override {
    if (quiet_) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int ran = done - first_;
    const std::string eta = ran > 0 && total > done ? duration(elapsed / ran * (total - done)) : "-";
    if (bar_) {
      const int width = 30, filled = total ? done * width / total : width;
      fmt::print(stderr, "\r\033[K[{}{}] {}/{} | ETA {} | {} {}: precision {:.1f}%, {:.1f}x", std::string(size_t(filled), '='),
                 std::string(size_t(width - filled), ' '), done, total, eta, s.id, s.mode, s.precision * 100,
                 s.compression);
      drawn_ = true;
    } else {
      fmt::print(stderr, "dsocr: {}/{} {} ({}): precision {:.1f}%, compression {:.1f}x, {}, ETA {}\n", done, total, s.id,
                 s.mode, s.precision * 100, s.compression, s.stop_reason, eta);
    }
  }
  void on_failure(const std::string& what, const std::string& reason) override { message("failed: " + what + ": " + reason); }
  void on_warning(const std::string& what, const std::string& m) override { message("warning: " + what + ": " + m); }

 private:
  void message(const std::string& m) {
    if (drawn_) std::fputs("\r\033[K", stderr);
    fmt::print(stderr, "dsocr: {}\n", m);
  }
  bool bar_, quiet_, drawn_ = false;
  int total_ = 0, first_ = 0;
  std::chrono::steady_clock::time_point start_;
};

int run_compress_eval_command(const CompressEvalArgs& a, SignalWatcher& signals) {
  CompressEvalOptions o;
  o.modes = parse_mode_list(a.modes, "--modes", true);
  try {
    o.control = parse_control(a.control);
  } catch (const Error& e) {
    throw UsageError(std::string("--control: ") + e.what());
  }
  o.render = render_options(a.render);
  o.out_dir = a.out;
  o.corpus = a.corpus;
  o.parallel = a.parallel;
  o.request.prompt = normalize_prompt(a.prompt);
  o.request.max_tiles = a.max_tiles;
  page_tile_grid(1024, 1024, Mode::Gundam, a.max_tiles);
  o.request.generation.max_new_tokens = a.max_tokens;
  o.request.generation.ngram.enabled = !a.no_ngram;
  const std::vector<CorpusSample> corpus = read_corpus(a.corpus);
  TextRenderer renderer(o.render.font);
  signals.set_graceful();
  EngineOptions eo;
  eo.model_dir = resolve_model_dir(a.model);
  eo.threads = a.threads;
  eo.max_sequences = a.parallel;
  eo.kv_memory = int64_t(a.kv_memory_gb * double(int64_t(1) << 30));
  Engine engine(eo);
  o.model_identity = engine.checkpoint().identity();
  EvalProgress progress(isatty(2) != 0, a.quiet);
  if (!a.quiet) fmt::print(stderr, "dsocr: {}\n", engine.describe());
  const CompressEvalSummary summary =
      run_compress_eval(engine, engine.tokenizer(), renderer, corpus, o, progress, &signals.interrupted(), a.restart);
  if (summary.cancelled) {
    fmt::print(stderr, "\ndsocr: interrupted: {} page reads kept in {}/samples.jsonl; the same command continues\n",
               summary.done + summary.reused, a.out);
    return kExitInterrupted;
  }
  std::fputs(format_table(summary.modes).c_str(), stdout);
  std::fputs(fmt::format("precision: distinct ground-truth words found in the output / distinct ground-truth words "
                         "(Fox/GOT-OCR2.0 eval); compression: text tokens / vision tokens; {}/summary.json, "
                         "{}/chart.svg\n",
                         a.out, a.out)
                 .c_str(),
             stdout);
  return summary.failed > 0 ? kExitFailure : kExitOk;
}

}  // namespace

void add_compress_eval_command(CLI::App& app, SignalWatcher& signals) {
  auto a = std::make_shared<CompressEvalArgs>();
  auto* cmd = app.add_subcommand(
      "compress-eval",
      "Measure optical context compression: each sample of CORPUS (a folder of .txt files, or JSONL with id and\n"
      "text) is rendered onto one page, read back in every --modes with the Fox prompt, and scored (precision as\n"
      "the Fox/GOT-OCR2.0 evaluation, edit distance, compression = text tokens / vision tokens). Writes\n"
      "OUT/samples.jsonl (one line per sample and mode, as soon as it is done), OUT/summary.json, OUT/chart.svg,\n"
      "and prints the paper's Table 2 (buckets of 100 text tokens). A killed run continues when run again.");
  cmd->add_option("corpus", a->corpus, "Folder of .txt files, or a JSONL file of {\"id\", \"text\"}")->required();
  cmd->add_option("-o,--out", a->out, "Output folder")->required();
  cmd->add_option("-m,--model", a->model, "Model directory (default: $DSOCR_MODEL, then the dsocr cache)");
  cmd->add_option("--modes", a->modes, "Comma-separated modes")->default_str("tiny,small");
  cmd->add_option("--control", a->control,
                  "none, or shuffled: the words of every line shuffled, to separate reading from guessing")
      ->default_str("none");
  cmd->add_option("--prompt", a->prompt, "Prompt (default the Fox benchmark's: <image>\\nFree OCR.)");
  add_render_options(cmd, a->render);
  cmd->add_option("--max-tiles", a->max_tiles, "Gundam modes: most tiles per page, 2..9")->default_str("6");
  cmd->add_option("--max-tokens", a->max_tokens, "Most tokens to generate per page (default: the context)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_flag("--no-ngram", a->no_ngram, "Disable the no-repeat n-gram guard");
  cmd->add_option("-p,--parallel", a->parallel, "Pages computed at once")->default_str("4")->check(CLI::Range(1, 256));
  cmd->add_option("--kv-memory", a->kv_memory_gb, "GiB for the attention cache")->check(CLI::Range(0.01, 1024.0));
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
  cmd->add_flag("--restart", a->restart, "Discard the results in OUT made with other options and start again");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress output");
  cmd->footer(kExitCodesHelp);
  cmd->callback([a, &signals] {
    const int rc = run_compress_eval_command(*a, signals);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace dsocr::app
