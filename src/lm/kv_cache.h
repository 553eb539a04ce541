// Keys and values of every decoder layer for one sequence (spec §9: per layer [tokens, heads x head_dim]
// for K and for V). Storage is float32 by default, which is what the golden data was computed with;
// bf16 halves the memory (the full 8192-token context of the real model: 0.94 GiB in float32,
// 0.47 GiB in bf16) and the bytes read per decode step, at the cost of rounding K and V to bf16.
// Memory is reserved for `capacity` tokens up front but only pages that get written become resident.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "io/config.h"

namespace dsocr {

enum class KvPrecision { F32, BF16 };

class KvCache {
 public:
  // Throws Error when capacity is not in [1, max_position_embeddings].
  KvCache(const LmConfig& config, int capacity, KvPrecision precision = KvPrecision::F32);

  int size() const { return size_; }          // tokens stored (= position of the next token)
  int capacity() const { return capacity_; }  // tokens that fit
  int layers() const { return layers_; }
  int64_t row_width() const { return row_width_; }  // kv heads x head_dim
  KvPrecision precision() const { return precision_; }
  DType dtype() const { return precision_ == KvPrecision::F32 ? DType::F32 : DType::BF16; }
  size_t reserved_bytes() const;

  void clear() { size_ = 0; }
  void truncate(int tokens);  // forget everything from position `tokens` on (tokens <= size())

  // Writes n rows of K and V (float32, row strides ldk / ldv) of `layer` at positions
  // first .. first+n-1 (first + n <= capacity). They become visible to size() only after commit().
  void store(int layer, int first, int n, const float* k, int64_t ldk, const float* v, int64_t ldv);
  void commit(int n);  // size() += n, once every layer has stored its rows

  // Start of the layer's rows (dtype(), row_width() elements per row).
  const void* keys(int layer) const { return keys_.get() + size_t(layer) * layer_bytes(); }
  const void* values(int layer) const { return values_.get() + size_t(layer) * layer_bytes(); }

 private:
  size_t layer_bytes() const { return size_t(capacity_) * size_t(row_width_) * dtype_size(dtype()); }
  void store_rows(uint8_t* dst, const float* src, int64_t ld, int n) const;

  int layers_ = 0, capacity_ = 0, size_ = 0;
  int64_t row_width_ = 0;
  KvPrecision precision_;
  std::unique_ptr<uint8_t[]> keys_, values_;  // [layers][capacity][row_width], uninitialised
};

}  // namespace dsocr
