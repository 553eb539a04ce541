// Decode attention over the paged KV cache at long context (issue 15): the decoder's shape (10 heads x
// 128, a 1280-wide KV row per slot, 16-slot blocks in a shuffled block table), one query row per
// sequence, for every instruction set this CPU runs (each variant's table called directly). The
// baseline, measured in the same run, is a plain streaming read of the same K and V bytes over the same
// threads: attention cannot be faster than reading its cache once, so the ratio says how close it is.
//   bench_attention [THREADS=0] [REPEATS=5] [CONTEXTS=1024,4096,8192]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "backend/cpu/kernels.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

using namespace dsocr;

namespace {

constexpr int kHeads = 10, kHeadDim = 128, kBlock = 16, kLayers = 12;
constexpr int64_t kWidth = int64_t(kHeads) * kHeadDim;

// Sums every 16-bit word of [data, data + n) over the pool: a read of the bytes at streaming speed.
uint64_t stream_read(ThreadPool& pool, const uint16_t* data, size_t n) {
  std::vector<uint64_t> part(size_t(pool.size()) * 8, 0);
  const size_t per = (n + size_t(pool.size()) - 1) / size_t(pool.size());
  pool.parallel_for(size_t(pool.size()), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const size_t b = std::min(n, t * per), e = std::min(n, b + per);
      uint64_t s = 0;
      for (size_t i = b; i < e; i += 32) s += data[i];  // one word per 64-byte line: the lines are still read
      part[t * 8] = s;
    }
  });
  return std::accumulate(part.begin(), part.end(), uint64_t(0));
}

}  // namespace

int main(int argc, char** argv) {
  ThreadPool pool(argc > 1 ? std::atoi(argv[1]) : 0);
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::vector<int> contexts;
  {
    std::stringstream in(argc > 3 ? argv[3] : "1024,4096,8192");
    for (std::string c; std::getline(in, c, ',');) contexts.push_back(std::max(1, std::atoi(c.c_str())));
  }
  const int max_context = *std::max_element(contexts.begin(), contexts.end());
  const int sequences_max = 8;
  const int blocks_per_seq = (max_context + kBlock - 1) / kBlock;
  const int64_t slots = int64_t(blocks_per_seq) * kBlock * sequences_max;

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> keys(size_t(slots * kWidth)), values(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = f32_to_bf16(normal(rng)), values[i] = f32_to_bf16(normal(rng));
  std::vector<int32_t> block_ids(size_t(blocks_per_seq) * sequences_max);
  std::iota(block_ids.begin(), block_ids.end(), 0);
  std::shuffle(block_ids.begin(), block_ids.end(), rng);  // a cache after many pages: blocks anywhere
  std::vector<float> q(size_t(sequences_max) * kWidth), out(q.size());
  for (float& x : q) x = normal(rng);

  std::vector<const cpu::KernelVariant*> variants;
  for (const cpu::KernelVariant& v : cpu::kernel_variants())
    if (v.supported) variants.push_back(&v);
  std::printf("%d threads; decode attention, bf16 KV, %d heads x %d, blocks of %d; ms per token = %d layers\n",
              pool.size(), kHeads, kHeadDim, kBlock, kLayers);
  std::printf("%-10s %8s %14s", "sequences", "context", "stream read");
  for (const cpu::KernelVariant* v : variants) std::printf(" %22s", v->name);
  std::printf("\n");
  std::vector<uint64_t> checksum(variants.size(), 1469598103934665603ull);  // FNV-1a of every output's bits
  for (int sequences : {1, sequences_max}) {
    for (int context : contexts) {
      const size_t n = static_cast<size_t>(sequences);
      std::vector<int32_t> row_begin(n + 1), first(n);
      std::vector<const int32_t*> tables(n);
      for (int s = 0; s < sequences; ++s) {
        row_begin[size_t(s) + 1] = s + 1;
        first[size_t(s)] = context - 1;  // the query is the context's last position
        tables[size_t(s)] = block_ids.data() + size_t(s) * blocks_per_seq;
      }
      AttentionBatch batch;
      batch.sequences = sequences;
      batch.row_begin = row_begin.data();
      batch.first_position = first.data();
      batch.block_tables = tables.data();
      const cpu::PagedKv kv{keys.data(), values.data(), DType::BF16, kBlock, kWidth};
      const double bytes = 2.0 * double(sequences) * context * kWidth * 2;  // K and V, bf16
      // The baseline reads as many bytes as attention does, the cache's first blocks (contiguous).
      const size_t words = size_t(bytes / 4);
      uint64_t sink = 0;
      const double stream_s = bench::best_seconds(repeats, [&] {
        sink += stream_read(pool, keys.data(), std::min(words, keys.size()));
        sink += stream_read(pool, values.data(), std::min(words, values.size()));
      });
      std::printf("%-10d %8d %8.2f ms/t ", sequences, context, stream_s * kLayers * 1e3);
      for (size_t vi = 0; vi < variants.size(); ++vi) {
        const cpu::KernelVariant* v = variants[vi];
        std::vector<float> scratch(v->table->paged_attention_scratch_floats(batch, kHeads, kHeadDim, pool.size()) + 1);
        const double s = bench::best_seconds(repeats, [&] {
          v->table->paged_attention(pool, q.data(), kWidth, kv, batch, kHeads, kHeadDim, 0.088f, out.data(), kWidth,
                                    scratch.data());
        });
        std::printf(" %7.2f ms/t %4.1f GB/s %.2f", s * kLayers * 1e3, bytes / s * 1e-9, stream_s / s);
        for (size_t i = 0; i < n * kWidth; ++i) {
          uint32_t bits;
          std::memcpy(&bits, &out[i], 4);
          checksum[vi] = (checksum[vi] ^ bits) * 1099511628211ull;
        }
      }
      std::printf("\n");
      if (sink == 42) std::printf(" ");
    }
  }
  std::printf("ms/t: milliseconds per token (one layer's time x %d); GB/s: K and V bytes read per second; the last "
              "figure: stream read time / kernel time (1 = as fast as reading the cache once)\n",
              kLayers);
  std::printf("output checksum:");
  for (size_t vi = 0; vi < variants.size(); ++vi) std::printf(" %s %016llx", variants[vi]->name, (unsigned long long)checksum[vi]);
  std::printf("\n");
  return 0;
}
