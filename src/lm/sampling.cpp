#include "lm/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace dsocr {

int32_t argmax(std::span<const float> logits) {
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i)
    if (!std::isnan(logits[i]) && logits[i] > -std::numeric_limits<float>::infinity() &&
        (best < 0 || logits[i] > logits[size_t(best)]))
      best = int32_t(i);
  if (best < 0) fail("sampling: no token can be chosen ({} logits, all NaN or -inf)", logits.size());
  return best;
}

TopTwo top_two(std::span<const float> logits) {
  if (logits.size() < 2) fail("sampling: top_two needs at least 2 logits, got {}", logits.size());
  const int32_t id = argmax(logits);
  float second = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i)
    if (int32_t(i) != id && !std::isnan(logits[i])) second = std::max(second, logits[i]);
  return {id, logits[size_t(id)], second};
}

Sampler::Sampler(SamplingConfig config) : cfg_(config), rng_(config.seed) {
  if (!(cfg_.top_p > 0.0f && cfg_.top_p <= 1.0f)) fail("sampling: top_p {} is not in (0, 1]", cfg_.top_p);
  if (std::isnan(cfg_.temperature)) fail("sampling: temperature is NaN");
}

int32_t Sampler::next(std::span<const float> logits) {
  const int32_t best = argmax(logits);
  if (cfg_.temperature <= 0.0f) return best;

  // softmax(logits / T) over the finite entries, most likely first (lowest id first on ties).
  const double inv_t = 1.0 / double(cfg_.temperature);
  const double top = double(logits[size_t(best)]);
  candidates_.clear();
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i]) || logits[i] == -std::numeric_limits<float>::infinity()) continue;
    const double p = std::exp((double(logits[i]) - top) * inv_t);
    if (p > 0) candidates_.push_back({p, int32_t(i)});
    total += p;
  }
  std::sort(candidates_.begin(), candidates_.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });

  // Nucleus: the shortest prefix whose mass reaches top_p (always at least one token).
  size_t keep = 0;
  double mass = 0;
  while (keep < candidates_.size() && (keep == 0 || mass < double(cfg_.top_p) * total)) mass += candidates_[keep++].first;

  std::uniform_real_distribution<double> uniform(0.0, mass);
  double u = uniform(rng_);
  for (size_t i = 0; i < keep; ++i) {
    u -= candidates_[i].first;
    if (u < 0) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace dsocr
