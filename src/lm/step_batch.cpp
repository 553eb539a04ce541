#include "lm/step_batch.h"

#include "core/error.h"

namespace dsocr {

void StepBatch::clear() {
  ids.clear();
  features.clear();
  positions.clear();
  slots.clear();
  row_begin.assign(1, 0);
  first_position.clear();
  block_tables.clear();
  logit_rows.clear();
}

void StepBatch::begin_sequence(int position, const int32_t* block_table, int block_size) {
  if (position < 0) fail("step batch: negative position {}", position);
  if (block_size < 1) fail("step batch: block size {}", block_size);
  first_position.push_back(position);
  block_tables.push_back(block_table);
  row_begin.push_back(rows());
  block_size_ = block_size;
}

void StepBatch::add_row(int32_t id, const float* feature) {
  if (first_position.empty()) fail("step batch: a row before any sequence");
  const int position = first_position.back() + (rows() - row_begin[row_begin.size() - 2]);
  ids.push_back(id);
  features.push_back(feature);
  positions.push_back(position);
  slots.push_back(block_tables.back()[position / block_size_] * block_size_ + position % block_size_);
  ++row_begin.back();
}

void StepBatch::add_token(int32_t id) {
  if (id < 0) fail("step batch: negative token id {}", id);
  add_row(id, nullptr);
}

void StepBatch::add_feature(const float* row) {
  if (!row) fail("step batch: null feature row");
  add_row(-1, row);
}

AttentionBatch StepBatch::attention() const {
  return {sequences(), row_begin.data(), first_position.data(), block_tables.data()};
}

}  // namespace dsocr
