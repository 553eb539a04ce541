// Bookkeeping of the paged KV cache (as vLLM's block manager): the cache storage (backend.h
// KvStorage) is cut into fixed blocks of block_size token rows; each sequence owns a block table
// listing its blocks in position order, and takes blocks from one pool as it grows. Nothing is
// reserved for a full context: a page holds only the blocks its tokens fill.
// Not thread-safe: one scheduler owns it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsocr {

class KvBlockPool {
 public:
  KvBlockPool(int blocks, int block_size);

  int block_size() const { return block_size_; }
  int total() const { return int(free_.capacity()); }
  int free() const { return int(free_.size()); }
  int used() const { return total() - free(); }
  static int blocks_for(int tokens, int block_size) { return (tokens + block_size - 1) / block_size; }

  // Grows `table` so it covers positions 0 .. tokens-1. Returns false, leaving the table as it was,
  // when the pool has too few free blocks.
  bool reserve(std::vector<int32_t>& table, int tokens);
  // Returns every block of the table to the pool and empties it.
  void release(std::vector<int32_t>& table);

 private:
  int block_size_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
};

}  // namespace dsocr
