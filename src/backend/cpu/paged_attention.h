// Causal attention of a step's query rows over a paged KV cache (spec §9), batch invariant.
//
// The keys of a query are cut into fixed chunks of kKeyChunk positions counted from position 0; each
// chunk gives a partial (running max m, sum l of exp(s - m), acc = sum exp(s - m) v) and the chunks are
// merged in position order. Chunk boundaries depend only on the query's position, so a row gets the
// same bits whether the call has one row (decode) or thousands (prefill), and whatever the thread count:
// only the distribution of chunks over threads changes (a decode row splits its chunks across threads).
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "core/thread_pool.h"

namespace dsocr::cpu {

constexpr int kKeyChunk = 256;  // internal linkage: the header is compiled into every kernel variant

struct PagedKv {
  const void* keys;    // this layer's key rows, slot-addressed: [blocks * block_size, width]
  const void* values;  // likewise
  DType dtype;         // F32 or BF16
  int block_size;
  int64_t width;       // elements per row (heads * head_dim)
};

// scratch: at least paged_attention_scratch_floats(...) floats (partials of split rows).
size_t paged_attention_scratch_floats(const AttentionBatch& batch, int heads, int head_dim, int threads);
void paged_attention(ThreadPool& pool, const float* q, int64_t ldq, const PagedKv& kv, const AttentionBatch& batch,
                     int heads, int head_dim, float scale, float* out, int64_t ldo, float* scratch);

}  // namespace dsocr::cpu
