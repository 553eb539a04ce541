#include "backend/cpu/kernel_ns.h"

#include "backend/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/simd.h"
#include "core/error.h"

namespace dsocr::cpu::DSOCR_KERNEL_NS {

namespace {

using simd::axpy;
using simd::dot;

// Where a row's query sits: its sequence's block table and its position.
struct RowInfo {
  const int32_t* table;
  int64_t position;
};

RowInfo row_info(const AttentionBatch& b, int64_t row) {
  const int32_t* end = b.row_begin + b.sequences + 1;
  const int64_t s = int64_t(std::upper_bound(b.row_begin, end, int32_t(row)) - b.row_begin) - 1;
  return {b.block_tables[s], b.first_position[s] + (row - b.row_begin[s])};
}

int64_t chunks_of(int64_t position) { return (position + 1 + kKeyChunk - 1) / kKeyChunk; }

// The partial of keys [k0, k1) for one head of one query: m = max score, l = sum exp(s - m),
// acc = sum exp(s - m) v. scores: kKeyChunk floats.
template <typename T>
void chunk_partial(const PagedKv& kv, const int32_t* table, int64_t head_offset, int dim, const float* q, float scale,
                   int64_t k0, int64_t k1, float* scores, float* m, float* l, float* acc) {
  std::fill(acc, acc + dim, 0.0f);
  const T* K = static_cast<const T*>(kv.keys) + head_offset;
  const T* V = static_cast<const T*>(kv.values) + head_offset;
  auto row = [&](int64_t j) { return (int64_t(table[j / kv.block_size]) * kv.block_size + j % kv.block_size) * kv.width; };
  const int64_t n = k1 - k0;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    const float s = dot(q, K + row(k0 + j), dim) * scale;
    scores[j] = s;
    mx = std::max(mx, s);
  }
  // Probabilities a vector at a time, the tail through a partial vector (the same formula for all).
  const simd::V vmx = simd::set1(mx);
  for (int64_t j = 0; j < n; j += simd::kW) {
    const int m = int(std::min<int64_t>(simd::kW, n - j));
    if (m == simd::kW) simd::store(scores + j, simd::exp(simd::sub(simd::load(scores + j), vmx)));
    else simd::store_n(scores + j, simd::exp(simd::sub(simd::load_n(scores + j, m), vmx)), m);
  }
  float sum = 0;
  int64_t j;
  for (j = 0; j < n; ++j) {
    sum += scores[j];
    axpy(scores[j], V + row(k0 + j), acc, dim);
  }
  *m = mx;
  *l = sum;
}

// out = sum_c exp(m_c - M) acc_c / sum_c exp(m_c - M) l_c over the chunks in order, M = max m_c.
void merge(const float* m, const float* l, const float* acc, int64_t chunks, int dim, float* out) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < chunks; ++c) mx = std::max(mx, m[c]);
  std::fill(out, out + dim, 0.0f);
  float total = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    if (l[c] == 0) continue;
    const float w = std::exp(m[c] - mx);
    total += w * l[c];
    axpy(w, acc + c * dim, out, dim);
  }
  const float inv = 1.0f / total;
  for (int d = 0; d < dim; ++d) out[d] *= inv;
}

template <typename T>
void run(ThreadPool& pool, const float* q, int64_t ldq, const PagedKv& kv, const AttentionBatch& b, int heads, int dim,
         float scale, float* out, int64_t ldo, float* scratch) {
  const int64_t rows = b.row_begin[b.sequences];
  const int64_t tasks = rows * heads;
  if (tasks >= 4 * int64_t(pool.size())) {
    // Many rows: one task per (row, head), its chunks one after the other.
    pool.parallel_for(size_t(tasks), [&](size_t t0, size_t t1) {
      thread_local std::vector<float> part;
      float scores[kKeyChunk];
      for (size_t t = t0; t < t1; ++t) {
        const int64_t r = int64_t(t) / heads, h = int64_t(t) % heads;
        const RowInfo info = row_info(b, r);
        const int64_t chunks = chunks_of(info.position);
        if (part.size() < size_t(chunks * (dim + 2))) part.resize(size_t(chunks * (dim + 2)));
        float* m = part.data();
        float* l = m + chunks;
        float* acc = l + chunks;
        for (int64_t c = 0; c < chunks; ++c)
          chunk_partial<T>(kv, info.table, h * dim, dim, q + r * ldq + h * dim, scale, c * kKeyChunk,
                           std::min(info.position + 1, (c + 1) * kKeyChunk), scores, m + c, l + c, acc + c * dim);
        merge(m, l, acc, chunks, dim, out + r * ldo + h * dim);
      }
    });
    return;
  }
  // Few rows (decode): every chunk is its own piece, so long contexts use every thread.
  // scratch: [tasks + 1] int64 piece offsets, then m, l and acc of every piece.
  int64_t* first_piece = reinterpret_cast<int64_t*>(scratch);
  first_piece[0] = 0;
  for (int64_t t = 0; t < tasks; ++t) first_piece[t + 1] = first_piece[t] + chunks_of(row_info(b, t / heads).position);
  const int64_t pieces = first_piece[tasks];
  float* m = scratch + 2 * (tasks + 1);
  float* l = m + pieces;
  float* acc = l + pieces;
  pool.parallel_for(size_t(pieces), [&](size_t p0, size_t p1) {
    float scores[kKeyChunk];
    for (size_t p = p0; p < p1; ++p) {
      const int64_t t = int64_t(std::upper_bound(first_piece, first_piece + tasks + 1, int64_t(p)) - first_piece) - 1;
      const int64_t r = t / heads, h = t % heads, c = int64_t(p) - first_piece[t];
      const RowInfo info = row_info(b, r);
      chunk_partial<T>(kv, info.table, h * dim, dim, q + r * ldq + h * dim, scale, c * kKeyChunk,
                       std::min(info.position + 1, (c + 1) * kKeyChunk), scores, m + p, l + p, acc + int64_t(p) * dim);
    }
  });
  pool.parallel_for(size_t(tasks), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t r = int64_t(t) / heads, h = int64_t(t) % heads, p = first_piece[t];
      merge(m + p, l + p, acc + p * dim, first_piece[t + 1] - p, dim, out + r * ldo + h * dim);
    }
  });
}

}  // namespace

size_t paged_attention_scratch_floats(const AttentionBatch& b, int heads, int head_dim, int threads) {
  const int64_t rows = b.row_begin[b.sequences];
  if (rows * heads >= 4 * int64_t(threads)) return 0;
  int64_t pieces = 0;
  for (int64_t r = 0; r < rows; ++r) pieces += chunks_of(row_info(b, r).position) * heads;
  return size_t(2 * (rows * heads + 1) + pieces * (head_dim + 2));
}

void paged_attention(ThreadPool& pool, const float* q, int64_t ldq, const PagedKv& kv, const AttentionBatch& b,
                     int heads, int head_dim, float scale, float* out, int64_t ldo, float* scratch) {
  if (b.sequences <= 0 || b.row_begin[b.sequences] <= 0) return;
  if (kv.dtype == DType::F32)
    run<float>(pool, q, ldq, kv, b, heads, head_dim, scale, out, ldo, scratch);
  else if (kv.dtype == DType::BF16)
    run<uint16_t>(pool, q, ldq, kv, b, heads, head_dim, scale, out, ldo, scratch);
  else
    fail("attention: KV cache dtype {} is not supported", dtype_name(kv.dtype));
}

}  // namespace dsocr::cpu::DSOCR_KERNEL_NS
