// Times the CPU DeepEncoder on a synthetic A4 page (1191x1684, 144 dpi) and compares its achieved
// GFLOP/s with the peak of a large SGEMM measured in the same run.
//
//   bench_encoder MODEL_DIR [MODE=gundam] [RUNS=1] [THREADS=0 (all)]
//
// MODEL_DIR is an official-layout model directory (e.g. one made by `dsocr synth-checkpoint`).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/image.h"
#include "vision/encoder.h"
#include "vision/preprocess.h"
#include "bench_memory.h"
#include "bench_page.h"

using namespace dsocr;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Multiply-adds counted as 2 FLOPs; layer norms, activations, softmax and the rel-pos bias terms
// are left out (they are < 1% of the total for the full-size model).
double view_flops(const ModelConfig& c, int size, int batch) {
  const SamConfig& s = c.sam;
  const double g = size / s.patch, tokens = g * g, w = s.width;
  double f = 2 * tokens * w * 3 * s.patch * s.patch;  // patch embedding
  for (int i = 0; i < s.layers; ++i) {
    f += 2 * tokens * (w * 3 * w + w * w + 2 * w * s.mlp_dim);
    const double keys = s.is_global(i) ? tokens : double(s.window) * s.window;
    f += 4 * tokens * keys * w;  // q k^T and p v over all heads
  }
  const double nc = s.neck_channels, d2 = s.downsample_channels[0], d3 = s.downsample_channels[1];
  const double g2 = std::ceil(g / 2), g3 = std::ceil(g2 / 2);
  f += 2 * tokens * w * nc + 2 * tokens * nc * nc * 9 + 2 * g2 * g2 * d2 * nc * 9 + 2 * g3 * g3 * d3 * d2 * 9;

  const ClipConfig& v = c.clip;
  const double seq = 1 + g3 * g3, cw = v.width;
  f += v.layers * (2 * seq * (cw * 3 * cw + cw * cw + 2 * cw * v.ffn) + 4 * seq * seq * cw);
  f += 2 * g3 * g3 * c.projector.input_dim * c.projector.n_embed;
  return f * batch;
}

// A page-like test image: light background, dark "text lines" of pseudo-random word lengths.
double sgemm_peak(ThreadPool& pool, int n) {
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  cpu::sgemm(pool, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
  double best = 1e30;
  for (int r = 0; r < 2; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cpu::sgemm(pool, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * n * n * n / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [MODE=gundam] [RUNS=1] [THREADS=0]\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1];
    const Mode mode = parse_mode(argc > 2 ? argv[2] : "gundam");
    const int runs = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
    ThreadPool pool(argc > 4 ? std::atoi(argv[4]) : 0);

    const Checkpoint ckpt(dir);
    const PageViews views = make_views(bench::synthetic_page(1191, 1684), mode);
    double flops = view_flops(ckpt.config(), views.global_size, 1);
    if (views.has_tiles()) flops += view_flops(ckpt.config(), views.tile_size, int(views.tiles.size()));
    std::printf("model %s, mode %s, A4 page 1191x1684: global %d", dir.c_str(), mode_name(mode), views.global_size);
    if (views.has_tiles()) std::printf(" + %zu tiles of %d (%dx%d)", views.tiles.size(), views.tile_size, views.grid.cols, views.grid.rows);
    std::printf(", %d threads\n", pool.size());

    // The batch-invariant kernels (the default), then oneDNN's sgemm (opt-in) when built with it.
    std::vector<bool> fast_modes = {false};
    if (std::string(cpu::gemm_backend_name()) == "oneDNN") fast_modes.push_back(true);
    std::vector<double> seconds;
    for (bool fast : fast_modes) {
      CpuBackend backend(pool, {.fast_gemm = fast});
      VisionEncoder encoder(ckpt, backend);
      auto t0 = std::chrono::steady_clock::now();
      const std::vector<float> features = encoder.encode_page(views);  // warm-up: JIT kernels, page-in
      std::printf("%s\n  warm-up: %.3f s, %zu features\n", backend.name().c_str(), seconds_since(t0),
                  features.size() / size_t(encoder.n_embed()));
      double best = 1e30;
      const int64_t anon_before_kb = bench::status_kb("RssAnon");
      bench::PeakAnonymousMemory peak_memory;
      for (int r = 0; r < runs; ++r) {
        t0 = std::chrono::steady_clock::now();
        encoder.encode_page(views);
        best = std::min(best, seconds_since(t0));
      }
      const int64_t peak_anon_kb = peak_memory.stop();
      seconds.push_back(best);
      std::printf("  encoder: %.3f s/page (best of %d), %.1f GFLOP, %.1f GFLOP/s\n", best, runs, flops / 1e9,
                  flops / best / 1e9);
      std::printf("  memory beyond the mapped weights (RssAnon): %.0f MB before the page, peak %.0f MB while encoding; "
                  "weights resident (RssFile) %.0f MB\n",
                  double(anon_before_kb) / 1e3, double(peak_anon_kb) / 1e3, double(bench::status_kb("RssFile")) / 1e3);
    }
    const double peak = sgemm_peak(pool, 4096);
    std::printf("sgemm (%s) 4096^3 peak: %.1f GFLOP/s; encoder/peak = %.2f (batch-invariant kernels)",
                cpu::gemm_backend_name(), peak, flops / seconds[0] / 1e9 / peak);
    if (seconds.size() > 1) std::printf(", %.2f (sgemm); invariant/sgemm speed = %.2f", flops / seconds[1] / 1e9 / peak, seconds[1] / seconds[0]);
    std::printf("\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_encoder: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
