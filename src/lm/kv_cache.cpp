#include "lm/kv_cache.h"

#include "core/error.h"

namespace dsocr {

KvCache::KvCache(Backend& backend, const LmConfig& config, int capacity, KvPrecision precision)
    : layers_(config.layers), capacity_(capacity), row_width_(int64_t(config.kv_heads) * config.head_dim),
      precision_(precision) {
  if (capacity < 1 || capacity > config.max_position_embeddings)
    fail("KV cache: capacity {} tokens is outside [1, {}] (max_position_embeddings)", capacity,
         config.max_position_embeddings);
  storage_ = backend.kv_storage({layers_, 1, capacity_, row_width_, dtype()});
}

void KvCache::truncate(int tokens) {
  if (tokens < 0 || tokens > size_) fail("KV cache: cannot truncate {} tokens to {}", size_, tokens);
  size_ = tokens;
}

void KvCache::commit(int n) {
  if (n < 0 || size_ + n > capacity_) fail("KV cache: {} + {} tokens exceed the capacity {}", size_, n, capacity_);
  size_ += n;
}

}  // namespace dsocr
