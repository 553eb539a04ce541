// The GEMM pieces that are not per instruction set: oneDNN's sgemm (or a simple loop) and
// linear_sgemm on top of it. The batch-invariant linear() is in gemm_kernels.cpp.
#include "backend/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

#ifdef DSOCR_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

namespace dsocr::cpu {

const char* gemm_backend_name() {
#ifdef DSOCR_HAVE_DNNL
  return "oneDNN";
#else
  return "built-in";
#endif
}

namespace {
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

namespace {
// Per-thread scratch for widened weight blocks (reused across calls, never zero-filled).
float* widen_scratch(size_t floats) {
  thread_local std::unique_ptr<float[]> buffer;
  thread_local size_t capacity = 0;
  if (capacity < floats) {
    buffer.reset(new float[floats]);
    capacity = floats;
  }
  return buffer.get();
}
void widen_rows(const Weight& W, int64_t r0, int64_t r1, float* dst) {
  to_f32(W.dtype, static_cast<const uint8_t*>(W.data) + size_t(r0 * W.cols) * dtype_size(W.dtype), dst,
         size_t((r1 - r0) * W.cols));
}
}  // namespace

void linear_sgemm(ThreadPool& pool, const float* A, int64_t M, const Weight& W, const float* bias, float* C,
                  bool accumulate, int64_t lda, int64_t ldc) {
  const int64_t N = W.rows, K = W.cols;
  if (lda == 0) lda = K;
  if (ldc == 0) ldc = N;
  if (M == 0 || N == 0) return;
  if (M <= 8) return linear(pool, A, M, W, bias, C, accumulate, lda, ldc);  // streaming beats widening

  // Widen W in row blocks (bounded scratch, reused across calls) and hand each block to SGEMM.
  const float* Wf = W.dtype == DType::F32 ? static_cast<const float*>(W.data) : nullptr;
  const int64_t block = Wf ? N : std::max<int64_t>(64, std::min<int64_t>(N, (int64_t(8) << 20) / std::max<int64_t>(K, 1)));
  float* scratch = Wf ? nullptr : widen_scratch(size_t(block * K));
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
