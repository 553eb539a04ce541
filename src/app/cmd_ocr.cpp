// dsocr ocr: pages in, text out. A single image streams its text to stdout; PDFs, folders and
// several inputs go to --out DIR as NAME.md / NAME.raw.md / NAME.json (+ crops, annotated pages).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/progress.h"
#include "core/error.h"
#include "engine/document.h"
#include "engine/engine.h"
#include "io/model_locator.h"
#include "text/prompt.h"
#include "text/stream_filter.h"

namespace dsocr::app {

namespace {

// Set by SIGINT/SIGTERM: the run stops after the current step and keeps what is finished.
// (A signal handler can only reach static storage.)
std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  if (g_interrupted.exchange(true)) _exit(130);  // second Ctrl-C: stop now
  const char msg[] = "\ndsocr: interrupted, finishing cleanly (Ctrl-C again to quit at once)\n";
  (void)!write(2, msg, sizeof msg - 1);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

struct OcrArgs {
  std::vector<std::string> inputs;
  std::string model, mode = "gundam", task = "markdown", locate, prompt, out, pages;
  int max_tiles = 6, max_tokens = 0, threads = 0;
  int ngram = -1, ngram_window = -1;
  bool no_ngram = false, emit_ids = false, raw = false, boxes = false, resume = false, quiet = false;
  bool kv_f32 = false;
  double dpi = 144;
  float temperature = 0, top_p = 1;
  uint64_t seed = 0;
};

OcrRequest make_request(const OcrArgs& a) {
  OcrRequest r;
  r.mode = parse_mode(a.mode);
  r.max_tiles = a.max_tiles;
  page_tile_grid(1024, 1024, r.mode, r.max_tiles);  // checks --max-tiles now, before the model loads
  if (!a.prompt.empty()) {
    r.prompt = normalize_prompt(a.prompt);
  } else {
    const Task task = a.locate.empty() ? parse_task(a.task) : Task::Locate;
    r.prompt = task_prompt(task, a.locate);
  }
  GenerationOptions& g = r.generation;
  g.max_new_tokens = a.max_tokens;
  if (a.ngram >= 0) g.ngram.ngram_size = a.ngram;
  if (a.ngram_window >= 0) g.ngram.window = a.ngram_window;
  g.ngram.enabled = !a.no_ngram;
  NgramGuard check(g.ngram);  // validates the numbers now, not after the model has loaded
  g.sampling.temperature = a.temperature;
  g.sampling.top_p = a.top_p;
  g.sampling.seed = a.seed;
  return r;
}

// One image, text to stdout as it is generated (or the ids as JSON).
int run_single(Engine& engine, const OcrArgs& a, const OcrRequest& request) {
  const Image page = load_image(a.inputs.front());
  GroundingStreamFilter filter;
  auto on_text = [&](std::string_view piece) {
    if (!a.emit_ids) {
      const std::string shown = a.raw ? std::string(piece) : filter.push(piece);
      std::fwrite(shown.data(), 1, shown.size(), stdout);
      std::fflush(stdout);
    }
    return !g_interrupted.load();
  };
  OcrResult r = engine.run(page, request, on_text);
  if (a.emit_ids) {
    fmt::print("{}\n", nlohmann::json(r.tokens).dump());
  } else {
    const std::string rest = a.raw ? "" : filter.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  if (!a.quiet)
    fmt::print(stderr,
               "dsocr: {} {}x{}, mode {}, grid {}x{}, {} image tokens, {} generated, stop: {}; "
               "encode {:.2f}s, prefill {:.2f}s, decode {:.2f}s ({:.1f} tok/s)\n",
               a.inputs.front(), r.page_width, r.page_height, mode_name(request.mode), r.grid.cols, r.grid.rows,
               r.image_tokens, r.tokens.size(), stop_reason_name(r.stop), r.timings.encode, r.timings.prefill,
               r.timings.decode, r.timings.decode > 0 ? double(r.tokens.size()) / r.timings.decode : 0.0);
  if (r.stop == StopReason::Cancelled) return 130;
  return 0;
}

int run_ocr(const OcrArgs& a) {
  const OcrRequest request = make_request(a);
  std::vector<std::string> missing;
  const std::vector<InputDocument> docs = collect_inputs(a.inputs, &missing);
  const bool single = a.out.empty() && missing.empty() && docs.size() == 1 && !docs.front().is_pdf &&
                      a.inputs.size() == 1;
  if (!single && a.out.empty()) {
    if (!missing.empty() && a.inputs.size() == 1) fail("{}: no such file or directory", missing.front());
    fail("several pages or documents need an output folder: add --out DIR");
  }
  if (docs.empty() && missing.empty()) fail("no images or PDFs found in {}", fmt::join(a.inputs, ", "));
  if (!a.pages.empty() && single) fail("--pages applies to PDF inputs");

  install_signal_handlers();
  EngineOptions eo;
  eo.model_dir = resolve_model_dir(a.model);
  eo.threads = a.threads;
  eo.kv_precision = a.kv_f32 ? KvPrecision::F32 : KvPrecision::BF16;
  Engine engine(eo);
  if (single) return run_single(engine, a, request);

  BatchOptions options;
  options.out_dir = a.out;
  options.request = request;
  if (a.ngram >= 0 || a.ngram_window >= 0 || a.no_ngram) options.pdf_ngram.reset();  // the user's guard everywhere
  options.dpi = a.dpi;
  if (!a.pages.empty()) options.pages = parse_page_ranges(a.pages);
  options.boxes = a.boxes;
  options.resume = a.resume;
  const ProgressStyle style = a.quiet ? ProgressStyle::Quiet : (isatty(2) ? ProgressStyle::Bar : ProgressStyle::Lines);
  auto progress = make_progress(style);
  for (const std::string& m : missing) progress->on_failure(m, m + ": no such file or directory");
  BatchRunner runner(engine, options, *progress, &g_interrupted);
  BatchSummary summary = runner.run(docs);
  summary.documents += int(missing.size());
  summary.documents_failed += int(missing.size());
  progress.reset();
  print_summary(summary);
  if (summary.cancelled) return 130;
  return summary.ok() ? 0 : 1;
}

}  // namespace

void add_ocr_command(CLI::App& app) {
  auto a = std::make_shared<OcrArgs>();
  auto* cmd = app.add_subcommand("ocr",
                                 "Read pages: images, PDFs or folders of them.\n"
                                 "One image without --out streams its text to stdout; otherwise each document\n"
                                 "becomes NAME.md (clean markdown), NAME.raw.md (model output with boxes) and\n"
                                 "NAME.json (pages, stop reasons, blocks with boxes in page pixels) in --out DIR.");
  cmd->add_option("inputs", a->inputs, "Image files (png, jpg, webp, tiff, bmp), PDFs or folders")->required();
  cmd->add_option("-m,--model", a->model, "Model directory (default: $DSOCR_MODEL, then the dsocr cache; see `dsocr pull`)");
  cmd->add_option("--mode", a->mode,
                  "tiny (512px, 64 tokens) | small (640, 100) | base (1024, 256) | large (1280, 400) |\n"
                  "gundam (640 tiles + 1024 overview; best for documents) | gundam-master (1024 tiles + 1280)")
      ->default_str("gundam");
  cmd->add_option("--max-tiles", a->max_tiles, "Gundam modes: most tiles per page, 2..9 (6 as the official vLLM drivers)")
      ->default_str("6");
  cmd->add_option("--task", a->task,
                  "markdown (document with layout boxes) | ocr (any image, with boxes) | free (plain text) |\n"
                  "figure (parse a chart or figure) | describe (caption) | locate (with --locate TEXT)")
      ->default_str("markdown");
  cmd->add_option("--locate", a->locate, "Find TEXT in the image and return its boxes (implies --task locate)");
  cmd->add_option("--prompt", a->prompt, "A raw prompt instead of --task; must contain <image>");
  cmd->add_option("-o,--out", a->out, "Output folder (needed for PDFs, folders and several inputs)");
  cmd->add_option("--max-tokens", a->max_tokens, "Most tokens to generate per page (default: up to the 8192 context)");
  cmd->add_option("--ngram", a->ngram, "No-repeat n-gram size (default 30 for images, 20 for PDF pages)");
  cmd->add_option("--ngram-window", a->ngram_window, "No-repeat window in tokens (default 90 for images, 50 for PDF pages)");
  cmd->add_flag("--no-ngram", a->no_ngram, "Disable the no-repeat n-gram guard (pages may loop until the token limit)");
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (default 0: greedy, as the official drivers)");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling threshold when --temperature > 0")->default_str("1");
  cmd->add_option("--seed", a->seed, "Sampling seed");
  cmd->add_flag("--emit-ids", a->emit_ids, "Single image: print the generated token ids as a JSON array instead of text");
  cmd->add_flag("--raw", a->raw, "Single image: show the model's text as is, with its <|ref|>/<|det|> box tags");
  cmd->add_option("--dpi", a->dpi, "PDF rendering resolution")->default_str("144");
  cmd->add_option("--pages", a->pages, "PDF pages to read, e.g. 1-3,7 (default: all)");
  cmd->add_flag("--boxes", a->boxes, "Also write each page with its layout boxes drawn (NAME.boxes.png / .pdf)");
  cmd->add_flag("--resume", a->resume, "Skip documents whose outputs in --out are already complete");
  cmd->add_flag("--kv-f32", a->kv_f32,
                "Keep the attention cache in float32 (default bf16: half the memory; float32 matches a float32\n"
                "reference bit for bit, 0.94 GiB for a full 8192-token context)");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress output (failures are still reported)");
  cmd->callback([a] {
    const int rc = run_ocr(*a);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace dsocr::app
