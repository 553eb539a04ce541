// dsocr ocr: pages in, text out. A single image streams its text to stdout; PDFs, folders and
// several inputs go to --out DIR as NAME.md / NAME.raw.md / NAME.json (+ crops, annotated pages,
// hOCR, ALTO, searchable PDF), or to stdout as JSON lines (--format jsonl --out -).
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/progress.h"
#include "app/signals.h"
#include "core/error.h"
#include "engine/document.h"
#include "engine/engine.h"
#include "engine/shard.h"
#include "io/pdf.h"
#include "io/model_locator.h"
#include "text/prompt.h"
#include "text/stream_filter.h"

namespace dsocr::app {

namespace {

struct OcrArgs {
  std::vector<std::string> inputs;
  std::string model, mode = "gundam", task = "markdown", locate, prompt, out, pages, format = "md,json", shard;
  std::string pdf_renderer = "default", device = "cpu";
  int shard_pages = 200;
  int max_tiles = 6, max_tokens = 0, threads = 0, parallel = 0;
  int ngram = -1, ngram_window = -1;
  bool no_ngram = false, emit_ids = false, raw = false, boxes = false, resume = false, retry_failed = false;
  bool quiet = false, kv_f32 = false, fast_gemm = false;
  double dpi = 144, kv_memory_gb = 0;
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
  Sampler check_sampling(g.sampling);
  return r;
}

void write_stdout(std::string_view text) {
  if (text.empty()) return;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    throw OutputError(fmt::format("stdout: write failed: {}", std::strerror(errno)));
}

// One image, text to stdout as it is generated (or the ids as JSON).
int run_single(Engine& engine, const OcrArgs& a, const OcrRequest& request, const std::atomic<bool>& interrupted) {
  const Image page = load_image(a.inputs.front());
  GroundingStreamFilter filter;
  std::atomic<bool> stdout_failed{false};
  std::string stdout_error;
  auto on_text = [&](std::string_view piece) {
    if (!a.emit_ids && !stdout_failed) {
      try {
        write_stdout(a.raw ? std::string(piece) : filter.push(piece));
      } catch (const Error& e) {
        stdout_error = e.what();
        stdout_failed = true;
      }
    }
    return !interrupted.load() && !stdout_failed.load();
  };
  auto job = engine.submit(page, request, on_text);
  while (!job->wait_for(std::chrono::milliseconds(50)))
    if (interrupted.load()) job->cancel();
  const OcrResult r = job->wait();
  if (stdout_failed) throw OutputError(stdout_error);
  if (r.status == RequestStatus::BadInput || r.status == RequestStatus::EngineError) fail("{}: {}", a.inputs.front(), r.error);
  if (a.emit_ids) write_stdout(nlohmann::json(r.tokens).dump() + "\n");
  else write_stdout((a.raw ? "" : filter.flush()) + "\n");
  if (!a.quiet)
    fmt::print(stderr,
               "dsocr: {} {}x{}, mode {}, grid {}x{}, {} image tokens, {} generated, stop: {}; "
               "encode {:.2f}s, prefill {:.2f}s, decode {:.2f}s ({:.1f} tok/s)\n",
               a.inputs.front(), r.page_width, r.page_height, mode_name(request.mode), r.grid.cols, r.grid.rows,
               r.image_tokens, r.tokens.size(), stop_reason_name(r.stop), r.timings.encode, r.timings.prefill,
               r.timings.decode, r.timings.decode > 0 ? double(r.tokens.size()) / r.timings.decode : 0.0);
  if (r.stop == StopReason::Cancelled) return kExitInterrupted;
  return kExitOk;
}

// Errors in what the user asked for are usage errors (exit code 2).
template <typename Fn>
auto usage(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

int run_ocr(const OcrArgs& a, SignalWatcher& signals) {
  const OcrRequest request = usage([&] { return make_request(a); });
  const std::set<OutputFormat> formats = usage([&] { return parse_formats(a.format); });
  const std::vector<int> pages = usage([&] { return a.pages.empty() ? std::vector<int>{} : parse_page_ranges(a.pages); });
  if (!std::isfinite(a.dpi) || a.dpi < 18 || a.dpi > 1200) throw UsageError(fmt::format("--dpi {}: must be 18..1200", a.dpi));
  const PdfRenderer pdf_renderer = usage([&] {
    const PdfRenderer r = parse_pdf_renderer(a.pdf_renderer);
    check_pdf_renderer(r);
    return r;
  });
  if (a.out == "-" && formats != std::set<OutputFormat>{OutputFormat::Jsonl})
    throw UsageError("--out - writes JSON lines: use it with --format jsonl");
  if (formats.count(OutputFormat::Jsonl) && a.out != "-")
    throw UsageError("--format jsonl goes to stdout: use it with --out -");
  if (a.retry_failed && !a.resume) throw UsageError("--retry-failed goes with --resume");
  const ShardSpec shard = usage([&] { return a.shard.empty() ? ShardSpec{} : parse_shard(a.shard, std::getenv); });
  if (!a.shard.empty() && (a.out.empty() || a.out == "-")) throw UsageError("--shard needs an output folder (--out DIR)");
  std::vector<std::string> missing;
  std::vector<InputDocument> docs = collect_inputs(a.inputs, &missing, a.out == "-" ? "" : a.out);
  docs = shard_inputs(docs, shard, a.shard_pages, [&](const InputDocument& d) {
    try {
      return PdfDocument(d.path, pdf_renderer).page_count();
    } catch (const Error&) {
      return 0;  // unreadable: the whole document goes to one shard, which reports it
    }
  });
  const bool single = a.out.empty() && missing.empty() && docs.size() == 1 && !docs.front().is_pdf &&
                      a.inputs.size() == 1 && a.inputs.front() != "-";
  if (!single && a.out.empty()) {
    if (!missing.empty() && a.inputs.size() == 1) fail("{}: no such file or directory", missing.front());
    throw UsageError("several pages or documents need an output folder: add --out DIR (or --out - --format jsonl)");
  }
  if (docs.empty() && missing.empty() && a.shard.empty()) fail("no images or PDFs found in {}", fmt::join(a.inputs, ", "));
  if (!a.pages.empty() && single) throw UsageError("--pages applies to PDF inputs");
  if ((a.emit_ids || a.raw) && !single) throw UsageError("--emit-ids and --raw apply to a single image without --out");

  if (!single && a.out != "-") prepare_output_dir(a.out);  // before the model loads
  signals.set_graceful();  // from here on Ctrl-C stops cleanly and keeps what is finished
  EngineOptions eo;
  eo.model_dir = resolve_model_dir(a.model);
  eo.threads = a.threads;
  eo.kv_precision = a.kv_f32 ? KvPrecision::F32 : KvPrecision::BF16;
  eo.fast_gemm = a.fast_gemm;
  eo.device = a.device;
  eo.kv_memory = int64_t(a.kv_memory_gb * double(int64_t(1) << 30));
  int parallel = a.parallel;
  if (parallel <= 0) {
    const Checkpoint probe(eo.model_dir);
    parallel = single ? 1 : default_parallel(eo, probe);
  }
  eo.max_sequences = parallel;
  Engine engine(eo);
  if (single) return run_single(engine, a, request, signals.interrupted());

  BatchOptions options;
  options.out_dir = a.out;
  options.request = request;
  if (a.ngram >= 0 || a.ngram_window >= 0 || a.no_ngram) options.pdf_ngram.reset();  // the user's guard everywhere
  options.dpi = a.dpi;
  options.pdf_renderer = pdf_renderer;
  options.pages = pages;
  options.boxes = a.boxes;
  options.resume = a.resume;
  options.retry_failed = a.retry_failed;
  options.formats = formats;
  options.parallel = parallel;
  options.model_identity = engine.checkpoint().identity();
  options.model_name = engine.checkpoint().config().name;
  const ProgressStyle style = a.quiet ? ProgressStyle::Quiet : (isatty(2) ? ProgressStyle::Bar : ProgressStyle::Lines);
  auto progress = make_progress(style);
  if (style == ProgressStyle::Lines) fmt::print(stderr, "dsocr: {}\n", engine.describe());
  for (const std::string& m : missing) progress->on_failure(m, m + ": no such file or directory");
  if (a.out != "-") write_shard_manifest(a.out, shard, docs, false, nullptr);
  BatchRunner runner(engine, options, *progress, &signals.interrupted());
  BatchSummary summary = runner.run(docs);
  if (a.out != "-") write_shard_manifest(a.out, shard, docs, !summary.cancelled && summary.fatal.empty(), &summary);
  summary.documents += int(missing.size());
  summary.documents_failed += int(missing.size());
  progress.reset();
  print_summary(summary);
  if (summary.cancelled) return kExitInterrupted;
  if (!summary.fatal.empty()) return kExitFailure;
  if (summary.usage_errors > 0 && summary.documents_failed == summary.usage_errors) return kExitUsage;
  return summary.ok() ? kExitOk : kExitFailure;
}

}  // namespace

int default_parallel(const EngineOptions& eo, const Checkpoint& ckpt) {
  const LmConfig& lm = ckpt.config().lm;
  const int64_t per_token = int64_t(lm.layers) * 2 * lm.heads * lm.head_dim * (eo.kv_precision == KvPrecision::F32 ? 4 : 2);
  const int64_t memory = eo.kv_memory > 0 ? eo.kv_memory : default_kv_memory(per_token * lm.max_position_embeddings);
  return int(std::clamp<int64_t>(memory / (per_token * 2500), 1, 16));
}

void add_ocr_command(CLI::App& app, SignalWatcher& signals) {
  auto a = std::make_shared<OcrArgs>();
  auto* cmd = app.add_subcommand("ocr",
                                 "Read pages: images, PDFs or folders of them.\n"
                                 "One image without --out streams its text to stdout; otherwise each document\n"
                                 "becomes NAME.md (clean markdown), NAME.raw.md (model output with boxes) and\n"
                                 "NAME.json (pages with their text, stop reasons, blocks with boxes in page pixels)\n"
                                 "in --out DIR, NAME being the input's file name (or its path inside a folder given).");
  cmd->add_option("inputs", a->inputs, "Image files (png, jpg, webp, tiff, bmp, gif), PDFs, folders, or - for stdin")->required();
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
  cmd->add_option("--shard", a->shard,
                  "K/N (K from 0): this worker's share of the inputs, for job arrays writing into one --out;\n"
                  "auto or auto/N: K and N from SLURM_ARRAY_TASK_ID/_COUNT or Kubernetes' JOB_COMPLETION_INDEX");
  cmd->add_option("--shard-pages", a->shard_pages, "With --shard: PDFs longer than this are split into ranges of this many pages")
      ->default_str("200")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-o,--out", a->out, "Output folder (needed for PDFs, folders and several inputs); - with --format jsonl");
  cmd->add_option("--format", a->format,
                  "Outputs, comma-separated: md (NAME.md, NAME.raw.md), json, hocr (NAME.hocr), alto (NAME.alto.xml),\n"
                  "pdf (NAME.pdf: page images with a searchable text layer), or jsonl alone (one page per line on\n"
                  "stdout with --out -)")
      ->default_str("md,json");
  cmd->add_option("--max-tokens", a->max_tokens, "Most tokens to generate per page (default: up to the 8192 context)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--ngram", a->ngram, "No-repeat n-gram size (default 30 for images, 20 for PDF pages)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--ngram-window", a->ngram_window, "No-repeat window in tokens (default 90 for images, 50 for PDF pages)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_flag("--no-ngram", a->no_ngram, "Disable the no-repeat n-gram guard (pages may loop until the token limit)");
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (default 0: greedy, as the official drivers)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling threshold when --temperature > 0, in (0, 1]")
      ->default_str("1")
      ->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--seed", a->seed, "Sampling seed");
  cmd->add_flag("--emit-ids", a->emit_ids, "Single image: print the generated token ids as a JSON array instead of text");
  cmd->add_flag("--raw", a->raw, "Single image: show the model's text as is, with its <|ref|>/<|det|> box tags");
  cmd->add_option("--dpi", a->dpi, "PDF rendering resolution, 18..1200")->default_str("144");
  cmd->add_option("--pdf-renderer", a->pdf_renderer, pdf_renderer_help())->default_str(pdf_renderer_name(PdfRenderer::Default));
  cmd->add_option("--pages", a->pages, "PDF pages to read, e.g. 1-3,7 (default: all)");
  cmd->add_flag("--boxes", a->boxes, "Also write each page with its layout boxes drawn (NAME.boxes.png / .pdf)");
  cmd->add_flag("--resume", a->resume,
                "Reuse what an earlier run with the same source and options finished (pages of an interrupted\n"
                "document included); run only what is missing. Anything made differently is redone, and why is said.");
  cmd->add_flag("--retry-failed", a->retry_failed, "With --resume: run again the pages that failed before");
  cmd->add_option("-p,--parallel", a->parallel,
                  "Pages computed at once (default: what the KV cache memory holds, at most 16)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--kv-memory", a->kv_memory_gb, "GiB for the attention cache (default: 30% of available memory, at most 8)")
      ->check(CLI::Range(0.01, 1024.0));
  cmd->add_flag("--kv-f32", a->kv_f32,
                "Keep the attention cache in float32 (default bf16: half the memory; float32 matches a float32\n"
                "reference bit for bit)");
  cmd->add_option("--device", a->device,
                  "cpu, or cuda: the model on GPU 0 (a build with the CUDA backend; not yet measured on a GPU)")
      ->default_str("cpu")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--fast-gemm", a->fast_gemm,
                "oneDNN's sgemm for prefill and vision products (when built with it): faster on some CPUs, but a\n"
                "page's tokens may then depend on the other pages in its batch");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
  cmd->add_flag("-q,--quiet", a->quiet, "No progress output (failures are still reported)");
  cmd->footer(kExitCodesHelp);
  cmd->callback([a, &signals] {
    const int rc = run_ocr(*a, signals);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace dsocr::app
