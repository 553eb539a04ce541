// The CPU linear() kernels on the model's shapes: the batch-invariant kernel of every instruction set
// this CPU runs (AVX-512, AVX2, baseline: the same binary, each variant's table called directly) and
// oneDNN's sgemm (when built with it), in the same run; GFLOP/s for many rows, GB/s of weights for few.
//   bench_gemm [THREADS=0] [REPEATS=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

using namespace dsocr;

namespace {

struct Shape {
  const char* what;
  int64_t M, N, K;
};

}  // namespace

int main(int argc, char** argv) {
  ThreadPool pool(argc > 1 ? std::atoi(argv[1]) : 0);
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  const Shape shapes[] = {
      {"SAM qkv, 1024 view", 4096, 2304, 768},  {"SAM mlp.lin2, 1024 view", 4096, 768, 3072},
      {"CLIP fc1, 6 tiles", 606, 4096, 1024},   {"LM prefill q, 1000 tok", 1000, 1280, 1280},
      {"LM expert gate, 64 rows", 64, 896, 1280}, {"LM decode q, 1 row", 1, 1280, 1280},
      {"LM decode expert down, 1 row", 1, 1280, 896}, {"LM decode lm_head, 1 row", 1, 129280, 1280},
      {"LM decode lm_head, 8 rows", 8, 129280, 1280},
  };
  std::vector<const cpu::KernelVariant*> variants;
  for (const cpu::KernelVariant& v : cpu::kernel_variants())
    if (v.supported) variants.push_back(&v);
  std::printf("%d threads; batch-invariant linear kernels per instruction set; sgemm %s\n", pool.size(),
              cpu::gemm_backend_name());
  std::printf("%-30s %6s %7s %6s ", "shape", "M", "N", "K");
  for (const cpu::KernelVariant* v : variants) std::printf(" %11s", v->name);
  std::printf(" %11s", "sgemm");
  if (variants.size() > 1) std::printf("  %s/%s", variants[1]->name, variants[0]->name);
  std::printf("  %s/sgemm\n", variants[0]->name);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.M * s.K)), c(size_t(s.M * s.N));
    std::vector<uint16_t> w(size_t(s.N * s.K));
    for (float& x : a) x = dist(rng);
    for (uint16_t& x : w) x = f32_to_bf16(dist(rng) * 0.05f);
    const Weight W{DType::BF16, w.data(), s.N, s.K};
    std::vector<double> t_variant;
    for (const cpu::KernelVariant* v : variants)
      t_variant.push_back(bench::best_seconds(repeats, [&] { v->table->linear(pool, a.data(), s.M, W, nullptr, c.data(), false, 0, 0); }));
    const bool have_sgemm = std::string(cpu::gemm_backend_name()) == "oneDNN" && s.M > 8;
    const double t_sg = have_sgemm ? bench::best_seconds(repeats, [&] { cpu::linear_sgemm(pool, a.data(), s.M, W, nullptr, c.data()); }) : 0;
    const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
    auto rate = [&](double t) {
      char buf[32];
      if (t <= 0) return std::string("-");
      if (s.M <= 8) std::snprintf(buf, sizeof buf, "%.1f GB/s", double(s.N * s.K * 2) / t / 1e9);
      else std::snprintf(buf, sizeof buf, "%.1f GF/s", flops / t / 1e9);
      return std::string(buf);
    };
    std::printf("%-30s %6lld %7lld %6lld ", s.what, (long long)s.M, (long long)s.N, (long long)s.K);
    for (double t : t_variant) std::printf(" %11s", rate(t).c_str());
    std::printf(" %11s", rate(t_sg).c_str());
    if (variants.size() > 1) std::printf("  %12.2f", t_variant[0] / t_variant[1]);
    if (have_sgemm) std::printf("  %8.2f", t_sg / t_variant[0]);
    std::printf("\n");
  }
  return 0;
}
