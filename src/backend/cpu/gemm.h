// Matrix products on the CPU. Activations are float32; weights stay in the checkpoint's dtype
// (bf16 memory-mapped) and are widened exactly to float32 on the fly, so results are a float32
// evaluation of the bf16 weights (what the golden data was made with).
//
// linear() is batch invariant: every output element is the same fixed sequence of float operations
// whatever the number of rows M, the row's place in A, the thread count or the tile it falls in:
//   acc[0:L] = fma chain over k-blocks of L lanes in k order (L = 16 with AVX-512, 8 with AVX2, 1 otherwise);
//   s = acc reduced in a fixed pairing order (lane i + lane i + L/2, then L/4, ...);
//   s = fma(a[k], w[k], s) for the k past the last full block, in order;
//   out = s + bias[n]; C = accumulate ? C + out : out.
// A decode step (one row) and a 4,000-row prefill therefore give every row identical bits.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "core/thread_pool.h"

namespace dsocr::cpu {

using dsocr::Weight;

// C[M, W.rows] = A[M, W.cols] * W^T (+ bias[W.rows]); accumulate: C += instead of C =.
// lda/ldc 0: the dense widths. Weights F32, BF16 or F16.
void linear(ThreadPool& pool, const float* A, int64_t M, const Weight& W, const float* bias, float* C,
            bool accumulate = false, int64_t lda = 0, int64_t ldc = 0);

// The lane count of linear()'s accumulators in this build (16, 8 or 1) and its name ("avx512", ...).
int linear_lanes();
const char* linear_isa();

// Plain float32 GEMM on row-major matrices: C = alpha * A * op(B) + beta * C, A [M,K],
// op(B) = B [K,N] or B^T with B [N,K] when trans_b. oneDNN's sgemm when built with it (fast, but its
// blocking depends on the shape: not batch invariant), else a simple blocked loop. For benchmarks
// (the machine's sgemm rate) and the opt-in fast path.
void sgemm(ThreadPool& pool, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// linear() through sgemm (widening bf16 weights in blocks): faster for large M on some machines,
// not batch invariant. Used only when a backend is created with fast_gemm.
void linear_sgemm(ThreadPool& pool, const float* A, int64_t M, const Weight& W, const float* bias, float* C,
                  bool accumulate = false, int64_t lda = 0, int64_t ldc = 0);

// Name of the sgemm implementation ("oneDNN" or "built-in").
const char* gemm_backend_name();

}  // namespace dsocr::cpu
