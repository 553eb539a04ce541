// Causal multi-head attention of new query rows over a KV cache whose rows are float32 or bf16
// (spec §9). Work is split over (query row, head, key chunk) so that a single decode row still keeps
// every thread busy; the partial results of the chunks are merged with the running-max softmax rescaling.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace dsocr::cpu {

struct CacheAttentionArgs {
  const float* q; int64_t ldq;   // [tq, heads * dim]
  const void* k; const void* v;  // cache rows [tk, heads * dim] of type kv_dtype (F32 or BF16)
  DType kv_dtype; int64_t ldkv;  // elements per cache row
  float* out; int64_t ldo;       // [tq, heads * dim]
  int64_t tq, tk, heads, dim;
  float scale;
  int64_t q_offset;  // query i is at position q_offset + i and sees keys 0 .. q_offset + i (< tk)
};

// out = softmax(scale * q k^T, causal) v for every head.
void cache_attention(ThreadPool& pool, const CacheAttentionArgs& a);

}  // namespace dsocr::cpu
