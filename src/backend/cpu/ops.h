// Element-wise and normalisation kernels on float32 activations (row-major [rows, dim]).
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace dsocr::cpu {

// y = (x - mean) / sqrt(var + eps) * gamma + beta over each row of `dim` values (biased variance).
// x and y may alias.
void layer_norm(ThreadPool& pool, const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta,
                float eps, float* y);
// y = x * rsqrt(mean(x^2) + eps) * weight, statistics in float32. x and y may alias.
void rms_norm(ThreadPool& pool, const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y);

// gate[i] = silu(gate[i]) * up[i] for rows of `dim`, with row strides.
void silu_mul(ThreadPool& pool, float* gate, int64_t ldg, const float* up, int64_t ldu, int64_t rows, int64_t dim);
void add_inplace(ThreadPool& pool, float* y, const float* x, int64_t n);  // y += x

// Row-wise softmax in place (rows of n values); -inf entries become 0.
void softmax_rows(float* x, int64_t rows, int64_t n);

}  // namespace dsocr::cpu
