// One decoder step over rows of many sequences (continuous batching): each row is a token (its id)
// or a vision feature row spliced into a prompt, at a position, with the KV slot its keys and values
// go to. Rows of one sequence are consecutive and at consecutive positions (a prefill chunk, or one
// decode token). logit_rows are the rows whose next-token logits are wanted, in ascending order.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace dsocr {

struct StepBatch {
  std::vector<int32_t> ids;               // token id, or -1 where the row is a feature
  std::vector<const float*> features;     // the feature row (backend memory) where ids < 0, else null
  std::vector<int32_t> positions;
  std::vector<int32_t> slots;             // KV slot = block * block_size + offset
  std::vector<int32_t> row_begin{0};      // [sequences + 1]
  std::vector<int32_t> first_position;    // [sequences]
  std::vector<const int32_t*> block_tables;  // [sequences]: the sequence's blocks in position order
  std::vector<int32_t> logit_rows;

  int rows() const { return int(ids.size()); }
  int sequences() const { return int(first_position.size()); }
  void clear();

  // Starts a sequence whose next row is at `position`, with its block table (which must cover every
  // row added) and block size. Then add_token / add_feature append its rows.
  void begin_sequence(int position, const int32_t* block_table, int block_size);
  void add_token(int32_t id);
  void add_feature(const float* row);
  // The next-token logits of the row just added are wanted.
  void want_logits() { logit_rows.push_back(rows() - 1); }

  AttentionBatch attention() const;

 private:
  void add_row(int32_t id, const float* feature);
  int block_size_ = 16;
};

}  // namespace dsocr
