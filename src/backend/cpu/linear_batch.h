// Several independent linears on the same thread pool. For a few rows of activations (decode: q/k/v of
// one token, the experts it was routed to) each product is a short weight stream; running them as one
// parallel pass over blocks of output features costs one thread-pool round trip instead of one each.
#pragma once
#include <cstdint>
#include <span>

#include "backend/cpu/gemm.h"

namespace dsocr::cpu {

// C[M, W.rows] = A[M, W.cols] * W^T, dense row strides (lda = W.cols, ldc = W.rows).
struct LinearJob {
  const float* A;
  int64_t M;
  Weight W;
  float* C;
};

void linear_batch(ThreadPool& pool, std::span<const LinearJob> jobs);

}  // namespace dsocr::cpu
