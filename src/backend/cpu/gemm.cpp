#include "backend/cpu/gemm.h"

#include "backend/cpu/vec_math.h"  // immintrin.h, with GCC 12's false warnings silenced

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

#ifdef DSOCR_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

namespace dsocr::cpu {

Weight Weight::of(const TensorView& t) {
  if (t.shape.empty()) fail("weight '{}' is a scalar", t.name);
  Weight w;
  w.dtype = t.dtype;
  w.data = t.data;
  w.rows = t.shape[0];
  w.cols = t.shape[0] == 0 ? 0 : t.numel() / t.shape[0];
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    fail("weight '{}' has dtype {}, expected F32, BF16 or F16", t.name, dtype_name(t.dtype));
  return w;
}

Weight Weight::row_slice(int64_t begin, int64_t count) const {
  Weight w = *this;
  w.data = static_cast<const uint8_t*>(data) + size_t(begin * cols) * dtype_size(dtype);
  w.rows = count;
  return w;
}

const char* gemm_backend_name() {
#ifdef DSOCR_HAVE_DNNL
  return "oneDNN";
#else
  return "built-in";
#endif
}

namespace {

// Widens rows [r0, r1) of W into dst (row-major, cols wide).
void widen_rows(const Weight& W, int64_t r0, int64_t r1, float* dst) {
  const size_t n = size_t((r1 - r0) * W.cols);
  const uint8_t* src = static_cast<const uint8_t*>(W.data) + size_t(r0 * W.cols) * dtype_size(W.dtype);
  if (W.dtype == DType::BF16) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load16(s + i));
#endif
    for (; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
  } else {
    to_f32(W.dtype, src, dst, n);
  }
}

// Few rows of A (decode): stream W once, reading bf16 directly; each thread owns a range of
// output features. Up to 4 rows of A share each loaded weight vector.
template <typename T>
void gemv_rows(const float* A, int64_t M, int64_t lda, const T* W, int64_t K, int64_t n0, int64_t n1,
               const float* bias, float* C, int64_t ldc, bool accumulate) {
#if defined(__AVX512F__)
  // One row of A (a decode step): four weight rows at a time, so that four independent FMA chains
  // and four memory streams are in flight instead of one latency-bound chain.
  if (M == 1 && K % 16 == 0) {
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) {
      const T* w0 = W + n * K;
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
             acc3 = _mm512_setzero_ps();
      // Hardware prefetchers stop at 4 KiB page boundaries: fetch the next group's rows ahead.
      const char* next = reinterpret_cast<const char*>(w0 + 4 * K);
      const bool prefetch = n + 8 <= n1;
      for (int64_t k = 0; k < K; k += 16) {
        if (prefetch && (k * int64_t(sizeof(T))) % 64 == 0) {
          const int64_t off = k * int64_t(sizeof(T)), row = K * int64_t(sizeof(T));
          _mm_prefetch(next + off, _MM_HINT_T0);
          _mm_prefetch(next + row + off, _MM_HINT_T0);
          _mm_prefetch(next + 2 * row + off, _MM_HINT_T0);
          _mm_prefetch(next + 3 * row + off, _MM_HINT_T0);
        }
        const __m512 a = _mm512_loadu_ps(A + k);
        acc0 = _mm512_fmadd_ps(a, load16(w0 + k), acc0);
        acc1 = _mm512_fmadd_ps(a, load16(w0 + K + k), acc1);
        acc2 = _mm512_fmadd_ps(a, load16(w0 + 2 * K + k), acc2);
        acc3 = _mm512_fmadd_ps(a, load16(w0 + 3 * K + k), acc3);
      }
      const float sums[4] = {_mm512_reduce_add_ps(acc0), _mm512_reduce_add_ps(acc1), _mm512_reduce_add_ps(acc2),
                             _mm512_reduce_add_ps(acc3)};
      for (int r = 0; r < 4; ++r) {
        const float v = sums[r] + (bias ? bias[n + r] : 0.0f);
        C[n + r] = accumulate ? C[n + r] + v : v;
      }
    }
    n0 = n;  // the remaining rows take the general path
  }
#endif
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mb = std::min<int64_t>(4, M - m0);
    for (int64_t n = n0; n < n1; ++n) {
      const T* w = W + n * K;
      float sums[4] = {0, 0, 0, 0};
      int64_t k = 0;
#if defined(__AVX512F__)
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (; k + 16 <= K; k += 16) {
        __m512 wv = load16(w + k);
        for (int64_t r = 0; r < mb; ++r) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(A + (m0 + r) * lda + k), wv, acc[r]);
      }
      for (int64_t r = 0; r < mb; ++r) sums[r] = _mm512_reduce_add_ps(acc[r]);
#endif
      for (; k < K; ++k) {
        float wk;
        if constexpr (std::is_same_v<T, float>) wk = w[k]; else wk = bf16_to_f32(w[k]);
        for (int64_t r = 0; r < mb; ++r) sums[r] += A[(m0 + r) * lda + k] * wk;
      }
      for (int64_t r = 0; r < mb; ++r) {
        float v = sums[r] + (bias ? bias[n] : 0.0f);
        float& out = C[(m0 + r) * ldc + n];
        out = accumulate ? out + v : v;
      }
    }
  }
}

#ifndef DSOCR_HAVE_DNNL
// Built-in blocked SGEMM used when oneDNN is absent (C = alpha*A*B + beta*C, B given as [K,N] or [N,K]).
void sgemm_builtin(ThreadPool& pool, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  pool.parallel_for(size_t(M), [&](size_t m0, size_t m1) {
    std::vector<float> row(static_cast<size_t>(N));
    for (size_t m = m0; m < m1; ++m) {
      std::fill(row.begin(), row.end(), 0.0f);
      const float* a = A + int64_t(m) * lda;
      if (trans_b) {
        for (int64_t n = 0; n < N; ++n) {
          const float* b = B + n * ldb;
          float s = 0;
          for (int64_t k = 0; k < K; ++k) s += a[k] * b[k];
          row[size_t(n)] = s;
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          const float av = a[k];
          const float* b = B + k * ldb;
          for (int64_t n = 0; n < N; ++n) row[size_t(n)] += av * b[n];
        }
      }
      float* c = C + int64_t(m) * ldc;
      for (int64_t n = 0; n < N; ++n) c[n] = alpha * row[size_t(n)] + (beta == 0.0f ? 0.0f : beta * c[n]);
    }
  });
}
#endif

}  // namespace

void sgemm(ThreadPool& pool, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
#ifdef DSOCR_HAVE_DNNL
  // The engine's own pool splits the product (along the larger side) and each part runs oneDNN on
  // one OpenMP thread: OpenMP teams next to the pool would oversubscribe the cores and spin-wait.
  const bool split_n = N >= M;
  const int64_t extent = split_n ? N : M;
  const int64_t grain = split_n ? 64 : 16;
  pool.parallel_for(size_t(extent), [&](size_t b, size_t e) {
    thread_local bool single = (omp_set_num_threads(1), true);
    (void)single;
    const int64_t i0 = int64_t(b), n = int64_t(e - b);
    dnnl_status_t st;
    if (split_n)
      st = dnnl_sgemm('N', trans_b ? 'T' : 'N', M, n, K, alpha, A, lda, trans_b ? B + i0 * ldb : B + i0, ldb, beta,
                      C + i0, ldc);
    else
      st = dnnl_sgemm('N', trans_b ? 'T' : 'N', n, N, K, alpha, A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
    if (st != dnnl_success) fail("oneDNN sgemm failed (status {})", int(st));
  }, size_t(grain));
#else
  sgemm_builtin(pool, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void linear(ThreadPool& pool, const float* A, int64_t M, const Weight& W, const float* bias, float* C, bool accumulate,
            int64_t lda, int64_t ldc) {
  const int64_t N = W.rows, K = W.cols;
  if (lda == 0) lda = K;
  if (ldc == 0) ldc = N;
  if (M == 0 || N == 0) return;

  if (M <= 8 || W.dtype == DType::F16) {
    if (W.dtype == DType::F16) {
      // Rare dtype: widen in row blocks and reuse the f32 path.
      const int64_t block = 256;
      std::vector<float> tmp(size_t(block * K));
      for (int64_t r0 = 0; r0 < N; r0 += block) {
        const int64_t r1 = std::min(N, r0 + block);
        widen_rows(W, r0, r1, tmp.data());
        Weight f{DType::F32, tmp.data(), r1 - r0, K};
        linear(pool, A, M, f, bias ? bias + r0 : nullptr, C + r0, accumulate, lda, ldc);
      }
      return;
    }
    pool.parallel_for(size_t(N), [&](size_t n0, size_t n1) {
      if (W.dtype == DType::BF16)
        gemv_rows(A, M, lda, static_cast<const uint16_t*>(W.data), K, int64_t(n0), int64_t(n1), bias, C, ldc, accumulate);
      else
        gemv_rows(A, M, lda, static_cast<const float*>(W.data), K, int64_t(n0), int64_t(n1), bias, C, ldc, accumulate);
    }, 16);
    return;
  }

  // Many rows: widen W in row blocks (bounded scratch, reused across calls, never zero-filled)
  // and hand each block to SGEMM.
  const float* Wf = nullptr;
  float* scratch = nullptr;
  int64_t block = N;
  if (W.dtype == DType::F32) {
    Wf = static_cast<const float*>(W.data);
  } else {
    block = std::max<int64_t>(64, std::min<int64_t>(N, (int64_t(8) << 20) / std::max<int64_t>(K, 1)));
    thread_local std::unique_ptr<float[]> buffer;
    thread_local size_t capacity = 0;
    if (capacity < size_t(block * K)) {
      capacity = size_t(block * K);
      buffer.reset(new float[capacity]);
    }
    scratch = buffer.get();
  }
  for (int64_t r0 = 0; r0 < N; r0 += block) {
    const int64_t r1 = std::min(N, r0 + block);
    const float* wb = Wf ? Wf + r0 * K : scratch;
    if (!Wf) {
      pool.parallel_for(size_t(r1 - r0), [&](size_t a, size_t b) {
        widen_rows(W, r0 + int64_t(a), r0 + int64_t(b), scratch + int64_t(a) * K);
      }, 8);
    }
    float* c = C + r0;
    if (bias && !accumulate) {
      for (int64_t m = 0; m < M; ++m) std::memcpy(c + m * ldc, bias + r0, size_t(r1 - r0) * 4);
      sgemm(pool, true, M, r1 - r0, K, 1.0f, A, lda, wb, K, 1.0f, c, ldc);
    } else {
      sgemm(pool, true, M, r1 - r0, K, 1.0f, A, lda, wb, K, accumulate ? 1.0f : 0.0f, c, ldc);
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = r0; n < r1; ++n) C[m * ldc + n] += bias[n];
    }
  }
}

}  // namespace dsocr::cpu
