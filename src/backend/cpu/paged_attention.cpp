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

// One pass over a chunk's keys serves several heads: the keys are taken kSubBlock at a time and every
// head of the group works on that sub-block while its rows (all heads' parts, contiguous) are in cache,
// so the cache is read in order, once. Keys are scored a few at a time (one load of the query per
// vector, one chain per key) and each head's accumulator is carried in registers through a sub-block,
// a slab of kSlab vectors at a time. Every dot product and every element's sum of p_j v_j are the same
// operations in the same order as one key and one head at a time (simd::dot, simd::axpy): head groups,
// sub-blocks and slabs change where the work is done, never the bits.
constexpr int kKeysPerPass = 4;
constexpr int kSubBlock = 16;
constexpr int kSlab = simd::kRegisters >= 32 ? 8 : 4;

// The partials of keys [k0, k1) for heads [h0, h1) of one query row q (head h at q + h * dim):
// m = max score, l = sum exp(s - m), acc = sum exp(s - m) v, head h's at m[(h - h0) * stride],
// l[(h - h0) * stride], acc[(h - h0) * stride * dim]. scores: (h1 - h0) * kKeyChunk floats.
template <typename T>
void chunk_partials(const PagedKv& kv, const int32_t* table, int h0, int h1, int dim, const float* q, float scale,
                    int64_t k0, int64_t k1, float* scores, float* m, float* l, float* acc, int64_t stride) {
  const T* K = static_cast<const T*>(kv.keys);
  const T* V = static_cast<const T*>(kv.values);
  auto row = [&](int64_t j) { return (int64_t(table[j / kv.block_size]) * kv.block_size + j % kv.block_size) * kv.width; };
  const int64_t n = k1 - k0;
  const int vec_end = dim - dim % simd::kW;
  auto widen = [](T x) {
    if constexpr (sizeof(T) == 2) return simd::bf16_widen(x);
    else return float(x);
  };
  int64_t rows[kKeyChunk];  // each key's slot row, for both passes
  for (int64_t j = 0; j < n; ++j) rows[j] = row(k0 + j);
  for (int64_t b = 0; b < n; b += kSubBlock) {
    const int64_t e = std::min<int64_t>(n, b + kSubBlock);
    for (int h = h0; h < h1; ++h) {
      const float* qh = q + int64_t(h) * dim;
      float* sc = scores + int64_t(h - h0) * kKeyChunk;
      int64_t j = b;
      for (; j + kKeysPerPass <= e; j += kKeysPerPass) {
        const T* k[kKeysPerPass];
        simd::V a[kKeysPerPass];
        for (int u = 0; u < kKeysPerPass; ++u) k[u] = K + rows[j + u] + int64_t(h) * dim, a[u] = simd::zero();
        for (int d = 0; d < vec_end; d += simd::kW) {
          const simd::V qv = simd::load(qh + d);
          for (int u = 0; u < kKeysPerPass; ++u) a[u] = simd::fma(qv, simd::load(k[u] + d), a[u]);
        }
        for (int u = 0; u < kKeysPerPass; ++u) {
          float s = simd::reduce_add(a[u]);
          for (int d = vec_end; d < dim; ++d) s = std::fma(qh[d], widen(k[u][d]), s);
          sc[j + u] = s * scale;
        }
      }
      for (; j < e; ++j) sc[j] = dot(qh, K + rows[j] + int64_t(h) * dim, dim) * scale;
    }
  }
  // Probabilities a vector at a time, the tail through a partial vector (the same formula for all).
  for (int h = h0; h < h1; ++h) {
    float* sc = scores + int64_t(h - h0) * kKeyChunk;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, sc[j]);
    const simd::V vmx = simd::set1(mx);
    for (int64_t j = 0; j < n; j += simd::kW) {
      const int w = int(std::min<int64_t>(simd::kW, n - j));
      if (w == simd::kW) simd::store(sc + j, simd::exp(simd::sub(simd::load(sc + j), vmx)));
      else simd::store_n(sc + j, simd::exp(simd::sub(simd::load_n(sc + j, w), vmx)), w);
    }
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += sc[j];
    m[(h - h0) * stride] = mx;
    l[(h - h0) * stride] = sum;
  }
  for (int64_t b = 0; b < n; b += kSubBlock) {
    const int64_t e = std::min<int64_t>(n, b + kSubBlock);
    for (int h = h0; h < h1; ++h) {
      const float* sc = scores + int64_t(h - h0) * kKeyChunk;
      float* ah = acc + int64_t(h - h0) * stride * dim;
      const T* vh = V + int64_t(h) * dim;
      for (int d0 = 0; d0 < vec_end; d0 += kSlab * simd::kW) {
        const int vecs = std::min(kSlab, (vec_end - d0) / simd::kW);
        simd::V a[kSlab];
        for (int r = 0; r < vecs; ++r) a[r] = b == 0 ? simd::zero() : simd::load(ah + d0 + r * simd::kW);
        for (int64_t j = b; j < e; ++j) {
          const T* v = vh + rows[j] + d0;
          const simd::V p = simd::set1(sc[j]);
          if (vecs == kSlab) {  // a constant trip count, so that a[] stays in registers
            for (int r = 0; r < kSlab; ++r) a[r] = simd::fma(p, simd::load(v + r * simd::kW), a[r]);
          } else {
            for (int r = 0; r < vecs; ++r) a[r] = simd::fma(p, simd::load(v + r * simd::kW), a[r]);
          }
        }
        for (int r = 0; r < vecs; ++r) simd::store(ah + d0 + r * simd::kW, a[r]);
      }
      for (int d = vec_end; d < dim; ++d) {
        float t = b == 0 ? 0.0f : ah[d];
        for (int64_t j = b; j < e; ++j) t = std::fma(sc[j], widen(vh[rows[j] + d]), t);
        ah[d] = t;
      }
    }
  }
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

// Heads per unit of work: all of them when there are enough units for the threads, fewer (more
// units) otherwise. Only the distribution of the work depends on it.
int head_group(int64_t units, int heads, int threads) {
  const int64_t want = 4 * int64_t(threads);
  if (units >= want) return heads;
  const int64_t groups = std::min<int64_t>(heads, (want + units - 1) / units);
  return int((heads + groups - 1) / groups);
}

template <typename T>
void run(ThreadPool& pool, const float* q, int64_t ldq, const PagedKv& kv, const AttentionBatch& b, int heads, int dim,
         float scale, float* out, int64_t ldo, float* scratch) {
  const int64_t rows = b.row_begin[b.sequences];
  const int threads = pool.size();
  if (rows * heads >= 4 * int64_t(threads)) {
    // Many rows: one task per (row, head group), its chunks one after the other.
    const int group = head_group(rows, heads, threads);
    const int64_t groups = (heads + group - 1) / group;
    pool.parallel_for(size_t(rows * groups), [&](size_t t0, size_t t1) {
      thread_local std::vector<float> part, scores;
      if (scores.size() < size_t(group) * kKeyChunk) scores.resize(size_t(group) * kKeyChunk);
      for (size_t t = t0; t < t1; ++t) {
        const int64_t r = int64_t(t) / groups;
        const int h0 = int(int64_t(t) % groups) * group, h1 = std::min(heads, h0 + group);
        const RowInfo info = row_info(b, r);
        const int64_t chunks = chunks_of(info.position);
        const size_t need = size_t(int64_t(h1 - h0) * chunks * (dim + 2));
        if (part.size() < need) part.resize(need);
        float* m = part.data();
        float* l = m + (h1 - h0) * chunks;
        float* acc = l + (h1 - h0) * chunks;
        for (int64_t c = 0; c < chunks; ++c)
          chunk_partials<T>(kv, info.table, h0, h1, dim, q + r * ldq, scale, c * kKeyChunk,
                            std::min(info.position + 1, (c + 1) * kKeyChunk), scores.data(), m + c, l + c,
                            acc + c * dim, chunks);
        for (int h = h0; h < h1; ++h)
          merge(m + (h - h0) * chunks, l + (h - h0) * chunks, acc + (h - h0) * chunks * dim, chunks, dim,
                out + r * ldo + int64_t(h) * dim);
      }
    });
    return;
  }
  // Few rows (decode): a unit is one chunk of one row for a group of heads, so long contexts use every
  // thread. scratch: [rows * heads + 1] int64 offsets of each (row, head)'s chunks, [rows + 1] int64
  // offsets of each row's units, then m, l and acc of every (row, head, chunk).
  const int64_t tasks = rows * heads;
  int64_t* first_piece = reinterpret_cast<int64_t*>(scratch);
  int64_t* first_unit = first_piece + tasks + 1;
  // first_unit holds each row's chunk count until the head group is known.
  first_piece[0] = 0;
  int64_t total_chunks = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t chunks = chunks_of(row_info(b, r).position);
    for (int h = 0; h < heads; ++h) first_piece[r * heads + h + 1] = first_piece[r * heads + h] + chunks;
    first_unit[r + 1] = chunks;
    total_chunks += chunks;
  }
  const int group = head_group(total_chunks, heads, threads);
  const int64_t groups = (heads + group - 1) / group;
  first_unit[0] = 0;
  for (int64_t r = 0; r < rows; ++r) first_unit[r + 1] = first_unit[r] + first_unit[r + 1] * groups;
  float* m = scratch + 2 * (tasks + 1 + rows + 1);
  float* l = m + first_piece[tasks];
  float* acc = l + first_piece[tasks];
  pool.parallel_for(size_t(first_unit[rows]), [&](size_t u0, size_t u1) {
    thread_local std::vector<float> scores;
    if (scores.size() < size_t(group) * kKeyChunk) scores.resize(size_t(group) * kKeyChunk);
    for (size_t u = u0; u < u1; ++u) {
      const int64_t r = int64_t(std::upper_bound(first_unit, first_unit + rows + 1, int64_t(u)) - first_unit) - 1;
      const RowInfo info = row_info(b, r);
      const int64_t chunks = chunks_of(info.position), local = int64_t(u) - first_unit[r];
      const int64_t c = local / groups;
      const int h0 = int(local % groups) * group, h1 = std::min(heads, h0 + group);
      const int64_t p = first_piece[r * heads + h0] + c;
      chunk_partials<T>(kv, info.table, h0, h1, dim, q + r * ldq, scale, c * kKeyChunk,
                        std::min(info.position + 1, (c + 1) * kKeyChunk), scores.data(), m + p, l + p, acc + p * dim,
                        chunks);
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
  return size_t(2 * (rows * heads + 1 + rows + 1) + pieces * (head_dim + 2));
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
