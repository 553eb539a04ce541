#include "backend/cpu/cache_attention.h"

#include "backend/cpu/vec_math.h"  // immintrin.h, with GCC 12's false warnings silenced

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace dsocr::cpu {

namespace {

inline float widen(float x) { return x; }
inline float widen(uint16_t x) { return bf16_to_f32(x); }

template <typename T>
float dot(const float* q, const T* k, int64_t n) {
  int64_t i = 0;
  float sum = 0;
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(k + i), acc);
  sum = _mm512_reduce_add_ps(acc);
#endif
  for (; i < n; ++i) sum += q[i] * widen(k[i]);
  return sum;
}

template <typename T>
void axpy(float a, const T* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 av = _mm512_set1_ps(a);
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, load16(x + i), _mm512_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += a * widen(x[i]);
}

// One (query, head, key range) piece: returns the running max m and the sum l of exp(s - m), and
// acc = sum_j exp(s_j - m) v_j. An empty range gives m = -inf, l = 0, acc = 0.
template <typename T>
void attend_range(const CacheAttentionArgs& a, const float* q, int64_t head, int64_t k0, int64_t k1,
                  std::vector<float>& scores, float* m, float* l, float* acc) {
  std::fill(acc, acc + a.dim, 0.0f);
  *m = -std::numeric_limits<float>::infinity();
  *l = 0;
  if (k1 <= k0) return;
  const T* K = static_cast<const T*>(a.k) + head * a.dim;
  const T* V = static_cast<const T*>(a.v) + head * a.dim;
  scores.resize(size_t(k1 - k0));
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = k0; j < k1; ++j) {
    const float s = dot(q, K + j * a.ldkv, a.dim) * a.scale;
    scores[size_t(j - k0)] = s;
    mx = std::max(mx, s);
  }
  // Probabilities 16 at a time (the scalar exp cost as much as the dot products), then the values.
  const int64_t n = k1 - k0;
  int64_t j = 0;
#if defined(__AVX512F__)
  for (; j + 16 <= n; j += 16)
    _mm512_storeu_ps(&scores[size_t(j)], exp_ps(_mm512_sub_ps(_mm512_loadu_ps(&scores[size_t(j)]), _mm512_set1_ps(mx))));
#endif
  for (; j < n; ++j) scores[size_t(j)] = std::exp(scores[size_t(j)] - mx);
  float sum = 0;
  for (j = 0; j < n; ++j) {
    sum += scores[size_t(j)];
    axpy(scores[size_t(j)], V + (k0 + j) * a.ldkv, acc, a.dim);
  }
  *m = mx;
  *l = sum;
}

template <typename T>
void run(ThreadPool& pool, const CacheAttentionArgs& a) {
  // Enough pieces for every thread (a decode step has only `heads` query rows), but no key chunk
  // shorter than kMinChunk: merging partial results is not free.
  constexpr int64_t kMinChunk = 128;
  const int64_t rows = a.tq * a.heads;
  const int64_t wanted = std::max<int64_t>(1, (4 * int64_t(pool.size()) + rows - 1) / rows);
  const int64_t chunk = std::max(kMinChunk, (a.tk + wanted - 1) / wanted);
  const int64_t chunks = (a.tk + chunk - 1) / chunk;
  const int64_t pieces = rows * chunks;

  const size_t n_pieces = size_t(pieces);
  std::vector<float> piece_max(n_pieces), piece_sum(n_pieces), acc(n_pieces * size_t(a.dim));
  pool.parallel_for(size_t(pieces), [&](size_t p0, size_t p1) {
    std::vector<float> scores;
    for (size_t p = p0; p < p1; ++p) {
      const int64_t row = int64_t(p) / chunks, c = int64_t(p) % chunks;
      const int64_t i = row / a.heads, head = row % a.heads;
      const int64_t visible = std::min(a.tk, a.q_offset + i + 1);
      const int64_t k0 = c * chunk, k1 = std::min(visible, k0 + chunk);
      attend_range<T>(a, a.q + i * a.ldq + head * a.dim, head, k0, k1, scores, &piece_max[p], &piece_sum[p],
                      acc.data() + int64_t(p) * a.dim);
    }
  });

  // Merge the chunks of each (query, head): rescale to the common max, then normalise.
  pool.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t row = r0; row < r1; ++row) {
      const int64_t i = int64_t(row) / a.heads, head = int64_t(row) % a.heads;
      float* out = a.out + i * a.ldo + head * a.dim;
      const int64_t first = int64_t(row) * chunks;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < chunks; ++c) mx = std::max(mx, piece_max[size_t(first + c)]);
      std::fill(out, out + a.dim, 0.0f);
      float total = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        if (piece_sum[size_t(first + c)] == 0) continue;
        const float w = std::exp(piece_max[size_t(first + c)] - mx);
        total += w * piece_sum[size_t(first + c)];
        axpy(w, acc.data() + (first + c) * a.dim, out, a.dim);
      }
      const float inv = 1.0f / total;
      for (int64_t d = 0; d < a.dim; ++d) out[d] *= inv;
    }
  }, 4);
}

}  // namespace

void cache_attention(ThreadPool& pool, const CacheAttentionArgs& a) {
  if (a.tq <= 0) return;
  if (a.q_offset < 0 || a.q_offset + a.tq > a.tk)
    fail("attention: {} queries at offset {} do not fit {} cached keys", a.tq, a.q_offset, a.tk);
  if (a.kv_dtype == DType::F32)
    run<float>(pool, a);
  else if (a.kv_dtype == DType::BF16)
    run<uint16_t>(pool, a);
  else
    fail("attention: KV cache dtype {} is not supported", dtype_name(a.kv_dtype));
}

}  // namespace dsocr::cpu
