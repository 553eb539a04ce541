#include "engine/kv_blocks.h"

#include "core/error.h"

namespace dsocr {

KvBlockPool::KvBlockPool(int blocks, int block_size) : block_size_(block_size) {
  if (blocks < 1 || block_size < 1) fail("KV cache: {} blocks of {} tokens is not a pool", blocks, block_size);
  free_.reserve(size_t(blocks));
  for (int b = blocks - 1; b >= 0; --b) free_.push_back(b);  // block 0 on top
}

bool KvBlockPool::reserve(std::vector<int32_t>& table, int tokens) {
  const int need = blocks_for(tokens, block_size_) - int(table.size());
  if (need <= 0) return true;
  if (need > free()) return false;
  for (int i = 0; i < need; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockPool::release(std::vector<int32_t>& table) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) free_.push_back(*it);
  table.clear();
}

}  // namespace dsocr
