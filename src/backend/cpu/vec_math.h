// Activations on float32 arrays, vectorised (backend/cpu/simd.h: exp ~1 ulp, erf ~1e-7 absolute,
// the forms PyTorch's vectorised kernels use). Every element gets the same formula, tails included.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace dsocr::cpu {

// In place over n values, split across the pool: x * 0.5 * (1 + erf(x / sqrt 2)).
void gelu_erf(ThreadPool& pool, float* x, int64_t n);
// In place: x * sigmoid(1.702 x).
void quick_gelu(ThreadPool& pool, float* x, int64_t n);

}  // namespace dsocr::cpu
