// Element-wise, normalisation and attention kernels on float32 activations (row-major [rows, dim]).
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

void gelu_erf(ThreadPool& pool, float* x, int64_t n);    // x * 0.5 * (1 + erf(x / sqrt 2))
void quick_gelu(ThreadPool& pool, float* x, int64_t n);  // x * sigmoid(1.702 x)
// gate[i] = silu(gate[i]) * up[i] for rows of `dim`, with row strides.
void silu_mul(ThreadPool& pool, float* gate, int64_t ldg, const float* up, int64_t ldu, int64_t rows, int64_t dim);
void add_inplace(ThreadPool& pool, float* y, const float* x, int64_t n);  // y += x

// Row-wise softmax in place (rows of n values); -inf entries become 0.
void softmax_rows(float* x, int64_t rows, int64_t n);

// Optional additive bias of decomposed relative positions (SAM, spec §3.4): for query i and key
// j = ky * key_w + kx, bias = rel_h[i * key_h + ky] + rel_w[i * key_w + kx].
struct DecomposedBias {
  const float* rel_h = nullptr;  // [Tq, key_h]
  const float* rel_w = nullptr;  // [Tq, key_w]
  int64_t key_h = 0, key_w = 0;
};

// One head of scaled dot-product attention, computed in blocks of queries so that at most
// block x Tk scores exist at once: out[Tq, dv] = softmax(scale * q k^T + bias, causal) v.
// With causal, query i (absolute position q_offset + i) sees keys 0 .. q_offset + i.
struct AttentionArgs {
  const float* q; int64_t ldq;
  const float* k; int64_t ldk;
  const float* v; int64_t ldv;
  float* out; int64_t ldo;
  int64_t tq, tk, dim;
  float scale;
  bool causal = false;
  int64_t q_offset = 0;
  const DecomposedBias* bias = nullptr;
};
void attention_head(ThreadPool& pool, const AttentionArgs& a);

}  // namespace dsocr::cpu
