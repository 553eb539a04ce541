// Matrix products on the CPU. Activations are float32; weights stay in the checkpoint's dtype
// (bf16 memory-mapped) and are widened exactly to float32 on the fly, so results equal a float32
// evaluation of the bf16 weights (what the golden data was made with).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"

namespace dsocr::cpu {

// A weight matrix in PyTorch Linear layout: rows = output features, cols = input features.
// A conv weight [out, in, kh, kw] is viewed as [out, in*kh*kw].
struct Weight {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;

  static Weight of(const TensorView& t);  // any rank >= 1; trailing dims folded into cols
  Weight row_slice(int64_t begin, int64_t count) const;  // rows [begin, begin+count)
  size_t nbytes() const { return size_t(rows * cols) * dtype_size(dtype); }
};

// C[M, W.rows] = A[M, W.cols] * W^T (+ bias[W.rows]). lda/ldc default to the dense widths.
// accumulate: C += instead of C =.
void linear(ThreadPool& pool, const float* A, int64_t M, const Weight& W, const float* bias, float* C,
            bool accumulate = false, int64_t lda = 0, int64_t ldc = 0);

// Plain float32 GEMM on row-major matrices: C = alpha * A * op(B) + beta * C,
// A [M,K], op(B) = B [K,N] or B^T with B [N,K] when trans_b.
void sgemm(ThreadPool& pool, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Name of the GEMM implementation in use ("oneDNN 2.6" or "built-in").
const char* gemm_backend_name();

}  // namespace dsocr::cpu
