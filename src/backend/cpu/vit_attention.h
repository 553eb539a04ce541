// Multi-head self-attention of the vision towers (SAM windowed/global blocks, CLIP), on the packed
// output of a qkv projection: each token row holds [q | k | v], each `heads x dim`.
//
// Work is split over (image, window or query chunk, head) across the pool; each task runs its own
// AVX-512 micro-kernels (scores q k^T, softmax with the optional decomposed relative-position bias,
// then P v), holding at most a block of queries x keys of scores. No oneDNN call happens inside
// the pool (oneDNN has its own OpenMP threads), and no attention matrix is ever materialised.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace dsocr::cpu {

// Decomposed relative-position tables (SAM, spec §3.4) for a grid_h x grid_w token grid: a query at
// (qy, qx) and a key at (ky, kx) get the bias q·h[qy - ky + grid_h - 1] + q·w[qx - kx + grid_w - 1]
// with the unscaled q. h is [2*grid_h - 1, dim], w is [2*grid_w - 1, dim].
struct RelPosTables {
  const float* h = nullptr;
  const float* w = nullptr;
};

struct AttentionShape {
  int heads = 1;
  int dim = 64;  // per head; the softmax scale is 1/sqrt(dim)
};

// Every token attends to all tokens of its image (no mask).
// qkv: [batch * tokens, 3 * heads * dim]; out: [batch * tokens, heads * dim].
// With rel, the tokens form a row-major grid_h x grid_w grid (tokens == grid_h * grid_w).
void attention_global(ThreadPool& pool, AttentionShape shape, const float* qkv, int batch, int tokens, float* out,
                      const RelPosTables* rel = nullptr, int grid_h = 0, int grid_w = 0);

// Non-overlapping window x window attention over each image's grid x grid tokens (row-major),
// the grid zero-padded on the bottom/right to a multiple of `window` (SAM, spec §3.3): padded
// positions take part as keys/values with the row `pad_qkv` ([3 * heads * dim], the projection of
// a zero input, i.e. the qkv bias) and produce no output. rel (optional) is for a window x window grid.
void attention_windowed(ThreadPool& pool, AttentionShape shape, const float* qkv, int batch, int grid, int window,
                        const float* pad_qkv, float* out, const RelPosTables* rel = nullptr);

}  // namespace dsocr::cpu
