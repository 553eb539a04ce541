// The host side of MoE routing that every backend shares: from router probabilities to each row's
// top-k experts and the rows grouped by expert (expert e's rows ascending, e = 0 .. experts-1, then
// the shared pseudo-expert with every row), plus the order moe_combine adds a row's experts in
// (ascending expert id). Same inputs, same grouping, on every backend.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace dsocr {

class HostExpertRouting : public ExpertRouting {
 public:
  int64_t grouped_rows() const override { return int64_t(grouped_row.size()); }
  const int32_t* top_ids() const override { return ids.data(); }
  const float* top_weights() const override { return weights.data(); }
  int experts_hit() const override { return hit; }

  // probs: [rows, config.experts] softmax outputs on the host. Top-k by probability (NaN last, ties
  // to the lower id), renormalised when norm_topk_prob, times scaling; then the grouping.
  void assign(const float* probs, int64_t rows, const RouterConfig& config);

  int64_t rows = 0;
  RouterConfig config;
  std::vector<int32_t> ids;             // [rows, top_k], by weight, descending
  std::vector<float> weights;           // [rows, top_k]
  std::vector<int32_t> expert_begin;    // [experts + 2]: grouped range of expert e (index experts: shared)
  std::vector<int32_t> grouped_row;     // source row of each grouped row
  std::vector<float> grouped_weight;    // its weight
  std::vector<int32_t> combine_order;   // [rows, top_k]: grouped index of the row's experts, ascending id
  int hit = 0;                          // routed experts with at least one row

 private:
  std::vector<int32_t> order_, fill_;   // scratch, kept from step to step
};

}  // namespace dsocr
