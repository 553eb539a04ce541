// The engine with many pages in flight, on a full-size checkpoint (dsocr synth-checkpoint): for 1, 2,
// 4, 8 and 16 pages at once (A4 Gundam pages, N output tokens each, EOS ignored) the output tokens/s
// and pages/s end to end, the decode-only rate (steps with no prefill in them), and the weight bytes
// one decode step reads against the experts it hits; batch 1 is the baseline in the same run. Then a
// 16-page PDF through the document tool at --parallel 8 against --parallel 1.
//   bench_engine MODEL_DIR [TOKENS=256] [COUNTS=1,2,4,8,16] [THREADS=0] [VISION_THREADS=-1] [PDF_TOKENS=64]
// PDF_TOKENS 0 skips the document part.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "bench_memory.h"
#include "bench_page.h"
#include "core/error.h"
#include "engine/document.h"
#include "engine/engine.h"
#include "io/pdf.h"
#include "io/pdf_writer.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int> parse_counts(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) out.push_back(std::max(1, std::atoi(part.c_str())));
  return out;
}

struct Run {
  int pages = 0;
  double seconds = 0, decode_tps = 0, bytes_per_token = 0, experts_per_layer = 0;
  uint64_t tokens = 0;
};

Run run_pages(const EngineOptions& base, int pages, int tokens, const std::vector<Image>& images) {
  EngineOptions o = base;
  o.max_sequences = pages;
  Engine engine(o);
  const LmConfig& lm = engine.checkpoint().config().lm;
  int moe_layers = 0;
  for (int l = 0; l < lm.layers; ++l) moe_layers += lm.is_moe_layer(l);
  OcrRequest r;
  r.mode = Mode::Gundam;
  r.generation.max_new_tokens = tokens;
  r.generation.ignore_eos = true;
  r.generation.ngram.enabled = false;  // random weights loop; the guard would bend the token stream
  const auto t0 = Clock::now();
  std::vector<std::shared_ptr<PageJob>> jobs;
  for (int i = 0; i < pages; ++i) jobs.push_back(engine.submit(images[size_t(i) % images.size()], r));
  Run run;
  run.pages = pages;
  for (auto& j : jobs) {
    const OcrResult res = j->wait();
    if (res.status != RequestStatus::Ok) fail("page failed: {}", res.error);
    run.tokens += res.tokens.size();
  }
  run.seconds = seconds_since(t0);
  const EngineStats s = engine.stats();
  run.decode_tps = s.decode_seconds > 0 ? double(s.decode_rows) / s.decode_seconds : 0;
  run.bytes_per_token = s.decode_rows > 0 ? double(s.decode_weight_bytes) / double(s.decode_rows) : 0;
  run.experts_per_layer = s.decode_steps > 0 ? double(s.decode_experts_hit) / double(s.decode_steps) / moe_layers : 0;
  std::printf("  %2d pages: %6.1f s, %6.1f output tok/s, %.3f pages/s | decode-only %6.1f tok/s in %llu steps, "
              "%.2f GB of weights per token, %.1f of %d experts hit per layer and step\n",
              pages, run.seconds, double(run.tokens) / run.seconds, pages / run.seconds, run.decode_tps,
              (unsigned long long)s.decode_steps, run.bytes_per_token / 1e9, run.experts_per_layer, lm.n_routed_experts);
  std::fflush(stdout);
  return run;
}

class QuietObserver : public BatchObserver {};

// Reads every weight file once, so that the first configuration does not pay for disk reads the later
// ones are spared (the checkpoint is mapped; which pages are cached depends on what ran before).
double warm_page_cache(const std::string& model_dir) {
  std::vector<char> buffer(size_t(16) << 20);
  double bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir)) {
    if (entry.path().extension() != ".safetensors") continue;
    std::FILE* f = std::fopen(entry.path().c_str(), "rb");
    if (!f) fail("{}: cannot open", entry.path().string());
    for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0;) bytes += double(n);
    std::fclose(f);
  }
  return bytes;
}

double run_pdf(const EngineOptions& base, const std::string& pdf, int parallel, int tokens, const fs::path& out) {
  EngineOptions o = base;
  o.max_sequences = parallel;
  Engine engine(o);
  BatchOptions b;
  b.out_dir = out.string();
  b.request.mode = Mode::Gundam;
  b.request.generation.max_new_tokens = tokens;
  b.request.generation.ignore_eos = true;
  b.pdf_ngram.reset();
  b.request.generation.ngram.enabled = false;
  b.parallel = parallel;
  b.model_identity = engine.checkpoint().identity();
  QuietObserver quiet;
  std::vector<std::string> missing;
  const auto docs = collect_inputs({pdf}, &missing);
  BatchRunner runner(engine, b, quiet, nullptr);
  const auto t0 = Clock::now();
  const BatchSummary s = runner.run(docs);
  const double took = seconds_since(t0);
  if (!s.ok()) fail("the PDF run failed");
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [TOKENS=256] [COUNTS=1,2,4,8,16] [THREADS=0] [VISION_THREADS=-1] [PDF_TOKENS=64]\n",
                 argv[0]);
    return 2;
  }
  try {
    EngineOptions base;
    base.model_dir = argv[1];
    const int tokens = argc > 2 ? std::atoi(argv[2]) : 256;
    const std::vector<int> counts = parse_counts(argc > 3 ? argv[3] : "1,2,4,8,16");
    base.threads = argc > 4 ? std::atoi(argv[4]) : 0;
    base.vision_threads = argc > 5 ? std::atoi(argv[5]) : -1;
    const int pdf_tokens = argc > 6 ? std::atoi(argv[6]) : 64;
    base.kv_memory = int64_t(4) << 30;
    std::vector<Image> images;
    for (uint32_t seed : {1u, 2u, 3u, 4u}) images.push_back(bench::synthetic_page(1191, 1684, seed));
    std::printf("page cache: read %.2f GB of weights before timing\n", warm_page_cache(base.model_dir) / 1e9);
    {
      Engine probe(base);
      std::printf("engine: %s\n", probe.describe().c_str());
    }
    std::printf("A4 Gundam pages, %d output tokens each (EOS ignored, no n-gram guard)\n", tokens);
    std::vector<Run> runs;
    for (int n : counts) runs.push_back(run_pages(base, n, tokens, images));
    const Run& one = runs.front();
    std::printf("ratios against %d page(s) in flight:\n", one.pages);
    for (const Run& r : runs)
      std::printf("  %2d pages: end to end %.2fx output tok/s, decode-only %.2fx; weights per token %.2fx less\n",
                  r.pages, (double(r.tokens) / r.seconds) / (double(one.tokens) / one.seconds),
                  one.decode_tps > 0 ? r.decode_tps / one.decode_tps : 0,
                  r.bytes_per_token > 0 ? one.bytes_per_token / r.bytes_per_token : 0);
    std::printf("peak RSS %.0f MB (weights mapped %s)\n", double(bench::status_kb("VmHWM")) / 1e3, "in place");

    if (pdf_tokens > 0 && pdf_supported()) {
      const fs::path dir = fs::temp_directory_path() / ("dsocr_bench_engine_" + std::to_string(::getpid()));
      fs::create_directories(dir);
      std::vector<Image> pages;
      for (int i = 0; i < 16; ++i) pages.push_back(images[size_t(i) % images.size()]);
      const std::string pdf = (dir / "doc16.pdf").string();
      write_images_pdf(pages, pdf, 90, 144.0);
      const double t1 = run_pdf(base, pdf, 1, pdf_tokens, dir / "p1");
      const double t8 = run_pdf(base, pdf, 8, pdf_tokens, dir / "p8");
      std::printf("16-page PDF, %d tokens a page: --parallel 1 %.1f s, --parallel 8 %.1f s: %.2fx\n", pdf_tokens, t1, t8,
                  t1 / t8);
      fs::remove_all(dir);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
