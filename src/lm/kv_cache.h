// Keys and values of ONE sequence, for tools and tests that run a single sequence through the
// decoder (the engine's many sequences share a paged pool instead: engine/kv_blocks.h). Storage is
// one block of `capacity` token rows per layer (spec §9: [tokens, heads x head_dim] for K and for V),
// float32 or bf16: bf16 halves the memory (the full 8192-token context of the real model: 0.94 GiB
// in float32, 0.47 GiB in bf16) and the bytes read per decode step, at the cost of rounding K and V.
// Memory is reserved up front but only pages that get written become resident.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "io/config.h"

namespace dsocr {

enum class KvPrecision { F32, BF16 };
inline DType kv_dtype(KvPrecision p) { return p == KvPrecision::F32 ? DType::F32 : DType::BF16; }

class KvCache {
 public:
  // Throws Error when capacity is not in [1, max_position_embeddings].
  KvCache(Backend& backend, const LmConfig& config, int capacity, KvPrecision precision = KvPrecision::F32);

  int size() const { return size_; }          // tokens stored (= position of the next token)
  int capacity() const { return capacity_; }  // tokens that fit
  int layers() const { return layers_; }
  int64_t row_width() const { return row_width_; }  // kv heads x head_dim
  KvPrecision precision() const { return precision_; }
  DType dtype() const { return kv_dtype(precision_); }
  size_t reserved_bytes() const { return storage_->layout().bytes(); }

  void clear() { size_ = 0; }
  void truncate(int tokens);  // forget everything from position `tokens` on (tokens <= size())
  void commit(int n);         // size() += n, once a step has written the rows' keys and values

  KvStorage& storage() { return *storage_; }
  const int32_t* block_table() const { return &kBlock0; }  // the single block
  int block_size() const { return capacity_; }

 private:
  static constexpr int32_t kBlock0 = 0;
  int layers_ = 0, capacity_ = 0, size_ = 0;
  int64_t row_width_ = 0;
  KvPrecision precision_;
  std::unique_ptr<KvStorage> storage_;
};

}  // namespace dsocr
