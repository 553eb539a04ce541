#include "lm/kv_cache.h"

#include <cstring>

#include "core/error.h"

namespace dsocr {

KvCache::KvCache(const LmConfig& config, int capacity, KvPrecision precision)
    : layers_(config.layers), capacity_(capacity), row_width_(int64_t(config.kv_heads) * config.head_dim),
      precision_(precision) {
  if (capacity < 1 || capacity > config.max_position_embeddings)
    fail("KV cache: capacity {} tokens is outside [1, {}] (max_position_embeddings)", capacity,
         config.max_position_embeddings);
  const size_t bytes = size_t(layers_) * layer_bytes();
  // new[] without () leaves the memory untouched, so the OS commits pages only as tokens arrive.
  keys_.reset(new uint8_t[bytes]);
  values_.reset(new uint8_t[bytes]);
}

size_t KvCache::reserved_bytes() const {
  return 2 * size_t(layers_) * layer_bytes();
}

void KvCache::truncate(int tokens) {
  if (tokens < 0 || tokens > size_) fail("KV cache: cannot truncate {} tokens to {}", size_, tokens);
  size_ = tokens;
}

void KvCache::store_rows(uint8_t* dst, const float* src, int64_t ld, int n) const {
  for (int r = 0; r < n; ++r) {
    const float* s = src + r * ld;
    if (precision_ == KvPrecision::F32) {
      std::memcpy(dst + size_t(r) * size_t(row_width_) * 4, s, size_t(row_width_) * 4);
    } else {
      uint16_t* d = reinterpret_cast<uint16_t*>(dst) + size_t(r) * size_t(row_width_);
      for (int64_t i = 0; i < row_width_; ++i) d[i] = f32_to_bf16(s[i]);
    }
  }
}

void KvCache::store(int layer, int first, int n, const float* k, int64_t ldk, const float* v, int64_t ldv) {
  if (layer < 0 || layer >= layers_ || first < 0 || n < 0 || first + n > capacity_)
    fail("KV cache: cannot store {} tokens at position {} of layer {} (capacity {})", n, first, layer, capacity_);
  const size_t offset = size_t(layer) * layer_bytes() + size_t(first) * size_t(row_width_) * dtype_size(dtype());
  store_rows(keys_.get() + offset, k, ldk, n);
  store_rows(values_.get() + offset, v, ldv, n);
}

void KvCache::commit(int n) {
  if (n < 0 || size_ + n > capacity_) fail("KV cache: {} + {} tokens exceed the capacity {}", size_, n, capacity_);
  size_ += n;
}

}  // namespace dsocr
