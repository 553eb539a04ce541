#include "backend/expert_routing.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace dsocr {

void HostExpertRouting::assign(const float* probs, int64_t n_rows, const RouterConfig& cfg) {
  const int experts = cfg.experts, top_k = cfg.top_k;
  if (top_k < 1 || top_k > experts) fail("router: top {} of {} experts", top_k, experts);
  rows = n_rows;
  config = cfg;
  ids.resize(size_t(rows * top_k));
  weights.resize(size_t(rows * top_k));
  order_.resize(size_t(experts));
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = probs + r * experts;
    const auto key = [&](int32_t e) { return std::isnan(p[e]) ? -std::numeric_limits<float>::infinity() : p[e]; };
    for (int e = 0; e < experts; ++e) order_[size_t(e)] = e;
    std::partial_sort(order_.begin(), order_.begin() + top_k, order_.end(),
                      [&](int32_t a, int32_t b) { return key(a) != key(b) ? key(a) > key(b) : a < b; });
    float sum = 0;
    for (int j = 0; j < top_k; ++j) sum += p[order_[size_t(j)]];
    for (int j = 0; j < top_k; ++j) {
      const int32_t e = order_[size_t(j)];
      const float w = cfg.norm_topk_prob ? p[e] / (sum + 1e-20f) : p[e];
      ids[size_t(r * top_k + j)] = e;
      weights[size_t(r * top_k + j)] = w * cfg.scaling;
    }
  }

  // Counting sort by expert; rows stay in ascending order inside each expert.
  const int slots = experts + (cfg.shared ? 1 : 0);
  expert_begin.assign(size_t(experts) + 2, 0);
  for (int64_t i = 0; i < rows * top_k; ++i) ++expert_begin[size_t(ids[size_t(i)]) + 1];
  if (cfg.shared) expert_begin[size_t(experts) + 1] = int32_t(rows);
  hit = 0;
  for (int e = 0; e < experts; ++e) hit += expert_begin[size_t(e) + 1] > 0 ? 1 : 0;
  for (int e = 0; e < slots; ++e) expert_begin[size_t(e) + 1] += expert_begin[size_t(e)];
  if (!cfg.shared) expert_begin[size_t(experts) + 1] = expert_begin[size_t(experts)];
  const int64_t grouped = expert_begin[size_t(experts) + 1];
  grouped_row.resize(size_t(grouped));
  grouped_weight.resize(size_t(grouped));
  fill_.assign(expert_begin.begin(), expert_begin.end() - 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < top_k; ++j) {
      const int32_t e = ids[size_t(r * top_k + j)];
      const int32_t g = fill_[size_t(e)]++;
      grouped_row[size_t(g)] = int32_t(r);
      grouped_weight[size_t(g)] = weights[size_t(r * top_k + j)];
    }
  if (cfg.shared)
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t g = fill_[size_t(experts)]++;
      grouped_row[size_t(g)] = int32_t(r);
      grouped_weight[size_t(g)] = 1.0f;
    }
  // Each row's experts by ascending id (the order moe_combine adds them in), as grouped indices
  // (rows ascend within an expert, so a second pass over the rows finds each one's slot).
  combine_order.resize(size_t(rows * top_k));
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* o = combine_order.data() + r * top_k;
    std::copy_n(ids.data() + r * top_k, top_k, o);
    std::sort(o, o + top_k);
  }
  fill_.assign(expert_begin.begin(), expert_begin.end() - 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < top_k; ++j) {
      int32_t& slot = combine_order[size_t(r * top_k + j)];
      slot = fill_[size_t(slot)]++;
    }
}

}  // namespace dsocr
