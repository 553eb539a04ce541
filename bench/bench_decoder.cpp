// Language-model throughput on the CPU for a model directory (the full-size model made by
// `dsocr synth-checkpoint`, or any official-layout checkpoint):
//   prefill tokens/s, decode tokens/s for one sequence, the weight bytes a decode step actually reads
//   (attention, dense MLP or the selected routed + shared experts, router, lm_head) per second against
//   the machine's measured read bandwidth, and the resident memory after a long context.
// Usage: bench_decoder MODEL_DIR [prefill_tokens=1000] [decode_steps=64] [long_context=4096] [threads=0]
//                     [kv=bf16|f32]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "backend/cpu/simd.h"  // immintrin.h, with GCC 12's false warnings silenced

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "lm/decoder.h"
#include "lm/sampling.h"
#include "bench_memory.h"

using namespace dsocr;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Sum of n floats with four independent accumulators (vectorised where the build allows): a read
// that is limited by memory bandwidth, not by one add chain.
float sum_floats(const float* p, size_t n) {
  size_t i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; ++j) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(p + i + size_t(j) * 16));
  s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
#else
  float acc[16] = {};
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += p[i + size_t(j)];
  for (float a : acc) s += a;
#endif
  for (; i < n; ++i) s += p[i];
  return s;
}

// Best of a few passes of every thread summing its share of [data, data + n).
double read_gbs(ThreadPool& pool, const float* data, size_t n) {
  double best = 0;
  volatile float sink = 0;
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<float> partial(size_t(pool.size()) * 16, 0.0f);
    const auto t0 = Clock::now();
    pool.parallel_for(n, [&](size_t a, size_t b) {
      partial[(a * size_t(pool.size()) / n) * 16] += sum_floats(data + a, b - a);
    }, 1 << 16);
    const double s = seconds_since(t0);
    for (float p : partial) sink = sink + p;
    best = std::max(best, double(n * sizeof(float)) / s / 1e9);
  }
  return best;
}

// Read bandwidth: a buffer far larger than the caches. The same read over a tensor of the mapped
// checkpoint: file pages are 4 KiB (no huge pages), which costs TLB misses and stops the hardware
// prefetchers at every page boundary.
double mapped_read_bandwidth_gbs(ThreadPool& pool, const TensorView& t) {
  return read_gbs(pool, reinterpret_cast<const float*>(t.data), t.nbytes / sizeof(float));
}

double read_bandwidth_gbs(ThreadPool& pool, size_t bytes) {
  std::vector<float> buffer(bytes / sizeof(float));
  pool.parallel_for(buffer.size(), [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i) buffer[i] = float(i & 1023);
  }, 1 << 16);
  return read_gbs(pool, buffer.data(), buffer.size());
}

// Deterministic pseudo-random token ids (a plain LCG), avoiding the special ids at the end of the vocabulary.
std::vector<int32_t> some_tokens(int n, int vocab, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    id = int32_t((seed >> 33) % uint64_t(std::min(vocab, 100000)));
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR [prefill_tokens=1000] [decode_steps=64] [long_context=4096] [threads=0] "
                 "[kv=bf16|f32]\n",
                 argv[0]);
    return 2;
  }
  try {
    const int prefill = argc > 2 ? std::atoi(argv[2]) : 1000;
    const int steps = argc > 3 ? std::atoi(argv[3]) : 64;
    const int long_context = argc > 4 ? std::atoi(argv[4]) : 4096;
    const int threads = argc > 5 ? std::atoi(argv[5]) : 0;
    // bf16 by default, like the engine (GenerationOptions::kv_precision).
    const KvPrecision kv = argc > 6 && std::string(argv[6]) == "f32" ? KvPrecision::F32 : KvPrecision::BF16;
    if (prefill < 1 || steps < 1 || long_context < 0) fail("bad arguments");

    ThreadPool pool(threads);
    CpuBackend backend(pool);
    const auto t_load = Clock::now();
    Checkpoint ckpt(argv[1]);
    Decoder decoder(ckpt, backend);
    const LmConfig& cfg = decoder.config();
    std::printf("model      %s: hidden %d, %d layers, %d experts (top %d), vocab %d; %d threads, KV %s\n",
                argv[1], cfg.hidden, cfg.layers, cfg.n_routed_experts, cfg.experts_per_token, cfg.vocab_size,
                pool.size(), kv == KvPrecision::F32 ? "f32" : "bf16");
    std::printf("load       %.2f s (mapped %.2f GB)\n", seconds_since(t_load), double(ckpt.mapped_bytes()) / 1e9);

    const double bandwidth = read_bandwidth_gbs(pool, size_t(1) << 30);
    std::printf("memory     read bandwidth %.1f GB/s (1 GiB buffer, all threads)\n", bandwidth);
    const double mapped_bandwidth = mapped_read_bandwidth_gbs(pool, ckpt.tensor("lm_head.weight"));
    std::printf("           read bandwidth of the mapped checkpoint %.1f GB/s (lm_head, 4 KiB file pages)\n",
                mapped_bandwidth);

    // Prefill.
    const int64_t hidden = cfg.hidden;
    const int capacity = std::min(cfg.max_position_embeddings, std::max(prefill + steps, long_context));
    KvCache cache = decoder.make_cache(capacity, kv);
    std::vector<int32_t> ids = some_tokens(prefill, cfg.vocab_size, 1);
    std::vector<float> x(size_t(prefill) * size_t(hidden)), logits(size_t(cfg.vocab_size));
    decoder.embed(ids, x.data());
    auto t0 = Clock::now();
    decoder.forward(x.data(), prefill, cache, logits.data());
    const double t_prefill = seconds_since(t0);
    std::printf("prefill    %d tokens in %.3f s: %.1f tokens/s\n", prefill, t_prefill, prefill / t_prefill);

    // Decode (greedy), one sequence.
    uint64_t weight_bytes = 0;
    int32_t token = argmax(logits);
    std::vector<float> e(static_cast<size_t>(hidden));
    t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      decoder.embed(std::span<const int32_t>(&token, 1), e.data());
      weight_bytes += decoder.forward(e.data(), 1, cache, logits.data()).weight_bytes;
      token = argmax(logits);
    }
    const double t_step = seconds_since(t0) / steps;
    const double bytes_per_token = double(weight_bytes) / steps;
    const double kv_bytes = double(cache.size()) * double(cache.row_width()) * 2 * cfg.layers *
                            (kv == KvPrecision::F32 ? 4 : 2);
    std::printf("decode     %d steps at context %d..%d: %.2f ms/token, %.1f tokens/s\n", steps, prefill,
                prefill + steps, t_step * 1e3, 1.0 / t_step);
    const double achieved = bytes_per_token / t_step / 1e9;
    std::printf("           weights read %.1f MB/token -> %.1f GB/s = %.0f%% of measured bandwidth, %.0f%% of the mapped "
                "checkpoint's (KV cache adds %.1f MB/token at the end)\n",
                bytes_per_token / 1e6, achieved, 100.0 * achieved / bandwidth, 100.0 * achieved / mapped_bandwidth,
                kv_bytes / 1e6);

    // Long context: fill the cache, then one more decode step; report resident memory.
    if (long_context > cache.size()) {
      const int more = long_context - cache.size();
      std::vector<int32_t> extra = some_tokens(more, cfg.vocab_size, 2);
      std::vector<float> ex(size_t(more) * size_t(hidden));
      decoder.embed(extra, ex.data());
      t0 = Clock::now();
      decoder.forward(ex.data(), more, cache, logits.data());
      std::printf("long ctx   +%d tokens prefilled in %.2f s (%.1f tokens/s)\n", more, seconds_since(t0),
                  more / seconds_since(t0));
      if (cache.size() < cache.capacity()) {
        token = argmax(logits);
        decoder.embed(std::span<const int32_t>(&token, 1), e.data());
        t0 = Clock::now();
        decoder.forward(e.data(), 1, cache, logits.data());
        std::printf("           decode step at context %d: %.2f ms\n", cache.size(), seconds_since(t0) * 1e3);
      }
    }
    std::printf("memory     context %d tokens, KV reserved %.1f MB; VmRSS %.0f MB = weights touched (RssFile) %.0f MB "
                "+ allocated (RssAnon) %.0f MB\n",
                cache.size(), double(cache.reserved_bytes()) / 1e6, double(bench::status_kb("VmRSS")) / 1e3,
                double(bench::status_kb("RssFile")) / 1e3, double(bench::status_kb("RssAnon")) / 1e3);
    return 0;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "bench_decoder: error: %s\n", ex.what());
    return 1;
  }
}
