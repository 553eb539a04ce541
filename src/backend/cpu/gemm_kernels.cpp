#include "backend/cpu/kernel_ns.h"

#include "backend/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "backend/cpu/simd.h"
#include "core/error.h"

// The batch-invariant linear() of gemm.h, compiled once per instruction set.
namespace dsocr::cpu::DSOCR_KERNEL_NS {

namespace {

// ---- one vector of kLanes floats, and the fixed-order reduction every path shares ----------------

using simd::V;
using Vec = V;
constexpr int kLanes = simd::kW;
inline Vec vzero() { return simd::zero(); }
inline Vec vload(const float* p) { return simd::load(p); }
inline Vec vload(const uint16_t* p) { return simd::load(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return simd::fma(a, b, c); }
inline void vstore(float* p, Vec v) { simd::store(p, v); }
inline float reduce(Vec x) { return simd::reduce_add(x); }

#if defined(__AVX512F__)
// simd::reduce_add of 16 accumulators at once, with the same pairings (so the same bits): lane 4L + m
// of the result is reduce(acc[4m + L]).
inline __m512 reduce16(const Vec* acc) {
  __m512 t[8], u[4], v[2];
  for (int j = 0; j < 8; ++j)
    t[j] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * j].v, acc[2 * j + 1].v, 0x44),
                         _mm512_shuffle_f32x4(acc[2 * j].v, acc[2 * j + 1].v, 0xEE));
  for (int j = 0; j < 4; ++j)
    u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0x88), _mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0xDD));
  for (int j = 0; j < 2; ++j)
    v[j] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * j], u[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(u[2 * j], u[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
#endif

// A loaded vector that several FMAs use stays in its register: without this GCC folds the load into
// every FMA as a memory operand, and the repeated loads (one 512-bit load per cycle on Zen 4) halve
// the kernels' speed.
inline void in_register(Vec& v) { simd::keep_in_register(v); }

inline float widen(float x) { return x; }
inline float widen(uint16_t x) { return simd::bf16_widen(x); }

// Every kernel below produces, for each output element, reduce(fma chain over the full k-blocks);
// the k past the last block, the bias and the accumulation are applied by finish().
inline void finish(float s, const float* a, const float* w, int64_t k_from, int64_t K, const float* bias, int64_t n,
                   float* out, bool accumulate) {
  for (int64_t k = k_from; k < K; ++k) s = simd::fma_scalar(a[k], w[k], s);
  const float v = bias ? s + bias[n] : s;
  *out = accumulate ? *out + v : v;
}
template <typename T>
inline void finish(float s, const float* a, const T* w, int64_t k_from, int64_t K, const float* bias, int64_t n,
                   float* out, bool accumulate) {
  for (int64_t k = k_from; k < K; ++k) s = simd::fma_scalar(a[k], widen(w[k]), s);
  const float v = bias ? s + bias[n] : s;
  *out = accumulate ? *out + v : v;
}

// ---- few rows (decode): weights streamed straight from the checkpoint ---------------------------

// Kernels stay out of line: inlined into their callers, GCC runs out of general registers for the
// row pointers and keeps them in vector registers, moving them back every iteration.
#define DSOCR_KERNEL __attribute__((noinline))

// Hardware prefetchers stop at 4 KiB pages and follow few streams: while one group of weight rows
// is multiplied, the next group's rows (`rows` of them from `next`, stride ldw) are fetched at the
// same offsets, one cache line per row every 64 bytes.
template <typename T>
inline void prefetch_rows(const T* next, int64_t ldw, int rows, int64_t k) {
  if (next && (k * int64_t(sizeof(T))) % 64 == 0)
    for (int r = 0; r < rows; ++r) simd::prefetch(next + r * ldw + k);
}

// One row of A against 8 weight rows (8 memory streams in flight). sums[c] for row c.
template <typename T>
DSOCR_KERNEL void direct_1x8(const float* a, const T* w, int64_t ldw, int64_t kblocks, float* sums, const T* next) {
  const T *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;
  const T *w4 = w + 4 * ldw, *w5 = w + 5 * ldw, *w6 = w + 6 * ldw, *w7 = w + 7 * ldw;
  Vec c0 = vzero(), c1 = vzero(), c2 = vzero(), c3 = vzero(), c4 = vzero(), c5 = vzero(), c6 = vzero(), c7 = vzero();
  for (int64_t k = 0; k < kblocks * kLanes; k += kLanes) {
    prefetch_rows(next, ldw, 8, k);
    Vec av = vload(a + k);
    in_register(av);
    c0 = vfma(av, vload(w0 + k), c0);
    c1 = vfma(av, vload(w1 + k), c1);
    c2 = vfma(av, vload(w2 + k), c2);
    c3 = vfma(av, vload(w3 + k), c3);
    c4 = vfma(av, vload(w4 + k), c4);
    c5 = vfma(av, vload(w5 + k), c5);
    c6 = vfma(av, vload(w6 + k), c6);
    c7 = vfma(av, vload(w7 + k), c7);
  }
  sums[0] = reduce(c0), sums[1] = reduce(c1), sums[2] = reduce(c2), sums[3] = reduce(c3);
  sums[4] = reduce(c4), sums[5] = reduce(c5), sums[6] = reduce(c6), sums[7] = reduce(c7);
}

// Two rows of A against 4 weight rows. sums[r * 4 + c].
template <typename T>
DSOCR_KERNEL void direct_2x4(const float* a0, const float* a1, const T* w, int64_t ldw, int64_t kblocks, float* sums,
                             const T* next) {
  const T *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;
  Vec c00 = vzero(), c01 = vzero(), c02 = vzero(), c03 = vzero();
  Vec c10 = vzero(), c11 = vzero(), c12 = vzero(), c13 = vzero();
  for (int64_t k = 0; k < kblocks * kLanes; k += kLanes) {
    prefetch_rows(next, ldw, 4, k);
    Vec x0 = vload(a0 + k), x1 = vload(a1 + k);
    in_register(x0), in_register(x1);
    Vec v = vload(w0 + k);
    in_register(v);
    c00 = vfma(x0, v, c00), c10 = vfma(x1, v, c10);
    v = vload(w1 + k);
    in_register(v);
    c01 = vfma(x0, v, c01), c11 = vfma(x1, v, c11);
    v = vload(w2 + k);
    in_register(v);
    c02 = vfma(x0, v, c02), c12 = vfma(x1, v, c12);
    v = vload(w3 + k);
    in_register(v);
    c03 = vfma(x0, v, c03), c13 = vfma(x1, v, c13);
  }
  sums[0] = reduce(c00), sums[1] = reduce(c01), sums[2] = reduce(c02), sums[3] = reduce(c03);
  sums[4] = reduce(c10), sums[5] = reduce(c11), sums[6] = reduce(c12), sums[7] = reduce(c13);
}

// One row of A against up to 4 weight rows (the last row of an odd count; feature tails).
template <typename T>
void direct_1xn(const float* a, const T* w, int64_t ldw, int cols, int64_t kblocks, float* sums) {
  for (int c = 0; c < cols; ++c) {
    const T* wc = w + c * ldw;
    Vec x = vzero();
    for (int64_t k = 0; k < kblocks * kLanes; k += kLanes) x = vfma(vload(a + k), vload(wc + k), x);
    sums[c] = reduce(x);
  }
}

// Rows [m0, m1) x features [n0, n1) with the weights read straight from the checkpoint; W points at
// the row of feature n0. One row streams 8 weight rows at a time; more rows go in pairs under each
// group of 4 weight rows, which stays in L1 while the pairs pass.
template <typename T>
void direct_rows(const float* A, int64_t lda, int64_t m0, int64_t m1, const T* W, int64_t K, int64_t n0, int64_t n1,
                 const float* bias, float* C, int64_t ldc, bool accumulate) {
  const int64_t kblocks = K / kLanes, k_from = kblocks * kLanes;
  float sums[8];
  if (m1 - m0 == 1) {
    const float* a = A + m0 * lda;
    for (int64_t n = n0; n < n1; n += 8) {
      const int cols = int(std::min<int64_t>(8, n1 - n));
      const T* w = W + (n - n0) * K;
      const T* next = n + 16 <= n1 ? w + 8 * K : nullptr;
      if (cols == 8) direct_1x8(a, w, K, kblocks, sums, next);
      else direct_1xn(a, w, K, cols, kblocks, sums);
      for (int c = 0; c < cols; ++c) finish(sums[c], a, w + c * K, k_from, K, bias, n + c, C + m0 * ldc + n + c, accumulate);
    }
    return;
  }
  for (int64_t n = n0; n < n1; n += 4) {
    const int cols = int(std::min<int64_t>(4, n1 - n));
    const T* w = W + (n - n0) * K;
    int64_t m = m0;
    for (; m + 2 <= m1; m += 2) {
      const float *a0 = A + m * lda, *a1 = a0 + lda;
      if (cols == 4) {
        // The first pair brings the group in from memory and fetches the next group.
        direct_2x4(a0, a1, w, K, kblocks, sums, n + 8 <= n1 ? w + 4 * K : nullptr);
      } else {
        direct_1xn(a0, w, K, cols, kblocks, sums);
        direct_1xn(a1, w, K, cols, kblocks, sums + 4);
      }
      for (int c = 0; c < cols; ++c) {
        finish(sums[c], a0, w + c * K, k_from, K, bias, n + c, C + m * ldc + n + c, accumulate);
        finish(sums[4 + c], a1, w + c * K, k_from, K, bias, n + c, C + (m + 1) * ldc + n + c, accumulate);
      }
    }
    if (m < m1) {
      const float* a = A + m * lda;
      direct_1xn(a, w, K, cols, kblocks, sums);
      for (int c = 0; c < cols; ++c) finish(sums[c], a, w + c * K, k_from, K, bias, n + c, C + m * ldc + n + c, accumulate);
    }
  }
}

// ---- many rows: packed float32 tiles, kTileRows rows x 4 features -----------------------------------

// Rows per tile: kTileRows x 4 accumulators, kTileRows row vectors and one weight vector must fit the
// vector registers (4 rows with 32 registers, 3 with 16), or the kernel spills every iteration.
constexpr int kTileRows = simd::kRegisters >= 32 ? 4 : 3;

// Packed layouts: a row tile is [kblock][kTileRows rows][kLanes], a feature tile [kblock][4 features]
// [kLanes]; one pointer each walks them, so the kernel needs no per-row addresses.
template <int Rows, typename T>
void pack_tile(const T* src, int64_t ld, int count, int64_t kblocks, float* dst) {
  const T* s[Rows];
  for (int r = 0; r < Rows; ++r) s[r] = src + std::min(r, count - 1) * ld;
  for (int64_t kb = 0; kb < kblocks; ++kb, dst += Rows * kLanes) {
    const int64_t k = kb * kLanes;
    for (int r = 0; r < Rows; ++r) vstore(dst + r * kLanes, vload(s[r] + k));
  }
}

// sums[r * 4 + c] for a packed row tile and feature tile.
DSOCR_KERNEL void packed_tile(const float* ap, const float* wp, int64_t kblocks, float* sums) {
  Vec acc[kTileRows][4];
  for (auto& row : acc)
    for (Vec& a : row) a = vzero();
  for (int64_t kb = 0; kb < kblocks; ++kb, ap += kTileRows * kLanes, wp += 4 * kLanes) {
    Vec x[kTileRows];
    for (int r = 0; r < kTileRows; ++r) x[r] = vload(ap + r * kLanes), in_register(x[r]);
    for (int c = 0; c < 4; ++c) {
      Vec v = vload(wp + c * kLanes);
      in_register(v);
      for (int r = 0; r < kTileRows; ++r) acc[r][c] = vfma(x[r], v, acc[r][c]);
    }
  }
#if defined(__AVX512F__)
  if constexpr (kTileRows == 4) {
    // reduce16 returns lane 4L + m = reduce(acc[4m + L]): pass element e = r*4 + c as flat[4(e%4) + e/4].
    Vec flat[16];
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c) flat[4 * c + r] = acc[r][c];
    _mm512_storeu_ps(sums, reduce16(flat));
    return;
  }
#endif
  for (int r = 0; r < kTileRows; ++r)
    for (int c = 0; c < 4; ++c) sums[r * 4 + c] = reduce(acc[r][c]);
}

// Rows [m0, m1) x features [n0, n1) through packed tiles. W points at the row of feature n0.
// scratch: kTileRows * K (row tile) + (n1 - n0 rounded up to 4) * K (feature tiles) floats.
template <typename T>
void packed_rows(const float* A, int64_t lda, int64_t m0, int64_t m1, const T* W, int64_t K, int64_t n0, int64_t n1,
                 const float* bias, float* C, int64_t ldc, bool accumulate, float* scratch) {
  const int64_t kblocks = K / kLanes, k_from = kblocks * kLanes;
  const int64_t feature_tile_floats = 4 * kblocks * kLanes;
  float* row_tile = scratch;
  float* feature_tiles = scratch + kTileRows * kblocks * kLanes;
  const int64_t ntiles = (n1 - n0 + 3) / 4;
  for (int64_t t = 0; t < ntiles; ++t)
    pack_tile<4>(W + t * 4 * K, K, int(std::min<int64_t>(4, n1 - n0 - t * 4)), kblocks,
                 feature_tiles + t * feature_tile_floats);
  alignas(64) float sums[kTileRows * 4];
  for (int64_t m = m0; m < m1; m += kTileRows) {
    const int rows = int(std::min<int64_t>(kTileRows, m1 - m));
    pack_tile<kTileRows>(A + m * lda, lda, rows, kblocks, row_tile);
    for (int64_t t = 0; t < ntiles; ++t) {
      const int64_t n = n0 + t * 4;
      const int cols = int(std::min<int64_t>(4, n1 - n));
      packed_tile(row_tile, feature_tiles + t * feature_tile_floats, kblocks, sums);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
          finish(sums[r * 4 + c], A + (m + r) * lda, W + (t * 4 + c) * K, k_from, K, bias, n + c,
                 C + (m + r) * ldc + n + c, accumulate);
    }
  }
}

// Per-thread scratch (reused across calls, never zero-filled); slot 0 for packed tiles, slot 1 for
// widened weights.
float* thread_scratch(size_t floats, int slot = 0) {
  thread_local std::unique_ptr<float[]> buffer[2];
  thread_local size_t capacity[2] = {0, 0};
  if (capacity[slot] < floats) {
    buffer[slot].reset(new float[floats]);
    capacity[slot] = floats;
  }
  return buffer[slot].get();
}

// Widens rows [r0, r1) of W into dst (row-major, cols wide).
void widen_rows(const Weight& W, int64_t r0, int64_t r1, float* dst) {
  const size_t n = size_t((r1 - r0) * W.cols);
  const uint8_t* src = static_cast<const uint8_t*>(W.data) + size_t(r0 * W.cols) * dtype_size(W.dtype);
  if (W.dtype == DType::BF16) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) vstore(dst + i, vload(s + i));
    for (; i < n; ++i) dst[i] = simd::bf16_widen(s[i]);
  } else {
    to_f32(W.dtype, src, dst, n);
  }
}

// From this many rows of A the packed kernel runs (weights widened once per block of features);
// fewer rows stream the weights straight from the checkpoint. Exact either way: only speed differs.
constexpr int64_t kPackedFromRows = 16;
constexpr int64_t kFeatureBlock = 64;  // output features per piece of work
constexpr int64_t kRowBlock = 256;     // rows of A per piece of work when M is large

template <typename T>
void product(const float* A, int64_t lda, int64_t m0, int64_t m1, const T* W, int64_t K, int64_t n0, int64_t n1,
             const float* bias, float* C, int64_t ldc, bool accumulate) {
  if (m1 - m0 < kPackedFromRows) {
    direct_rows(A, lda, m0, m1, W, K, n0, n1, bias, C, ldc, accumulate);
  } else {
    const int64_t kpad = (K / kLanes) * kLanes;
    float* scratch = thread_scratch(size_t(kTileRows * kpad + ((n1 - n0 + 3) / 4) * 4 * kpad));
    packed_rows(A, lda, m0, m1, W, K, n0, n1, bias, C, ldc, accumulate, scratch);
  }
}

}  // namespace

void linear(ThreadPool& pool, const float* A, int64_t M, const Weight& W, const float* bias, float* C, bool accumulate,
            int64_t lda, int64_t ldc) {
  const int64_t N = W.rows, K = W.cols;
  if (lda == 0) lda = K;
  if (ldc == 0) ldc = N;
  if (M <= 0 || N <= 0) return;
  if (W.dtype != DType::F32 && W.dtype != DType::BF16 && W.dtype != DType::F16)
    fail("linear: weight dtype {} is not supported", dtype_name(W.dtype));

  const int64_t feature_blocks = (N + kFeatureBlock - 1) / kFeatureBlock;
  const int64_t row_blocks = M > kRowBlock ? (M + kRowBlock - 1) / kRowBlock : 1;
  // Pieces: (row block, feature block), feature-major so a thread's consecutive pieces share weights.
  pool.parallel_for(size_t(feature_blocks * row_blocks), [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      const int64_t fb = int64_t(p) / row_blocks, rb = int64_t(p) % row_blocks;
      const int64_t n0 = fb * kFeatureBlock, n1 = std::min(N, n0 + kFeatureBlock);
      const int64_t m0 = rb * kRowBlock, m1 = row_blocks == 1 ? M : std::min(M, m0 + kRowBlock);
      if (W.dtype == DType::F32) {
        product(A, lda, m0, m1, static_cast<const float*>(W.data) + n0 * K, K, n0, n1, bias, C, ldc, accumulate);
      } else if (W.dtype == DType::BF16) {
        product(A, lda, m0, m1, static_cast<const uint16_t*>(W.data) + n0 * K, K, n0, n1, bias, C, ldc, accumulate);
      } else {  // F16: widened per block, then the float32 path
        float* wide = thread_scratch(size_t((n1 - n0) * K), 1);
        widen_rows(W, n0, n1, wide);
        product(A, lda, m0, m1, static_cast<const float*>(wide), K, n0, n1, bias, C, ldc, accumulate);
      }
    }
  }, 1);
}

}  // namespace dsocr::cpu::DSOCR_KERNEL_NS
