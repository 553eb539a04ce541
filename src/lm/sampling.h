// Choosing the next token from a row of logits: greedy argmax (the official drivers' setting, spec §6.4)
// or, optionally, temperature / top-p sampling with a seeded generator (reproducible per seed).
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace dsocr {

// Index of the largest logit; ties go to the lowest id, NaN never wins. Throws on an empty row or
// when every entry is NaN or -inf (nothing can be chosen).
int32_t argmax(std::span<const float> logits);

// The best two logits (for greedy margins): {best id, best logit, second logit}.
struct TopTwo {
  int32_t id;
  float best, second;
  float margin() const { return best - second; }
};
TopTwo top_two(std::span<const float> logits);  // needs at least two entries

struct SamplingConfig {
  float temperature = 0.0f;  // <= 0: greedy (argmax)
  float top_p = 1.0f;        // keep the smallest set of most likely tokens whose probability reaches top_p
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws Error when top_p is not in (0, 1] or temperature is NaN.
  explicit Sampler(SamplingConfig config);
  int32_t next(std::span<const float> logits);
  const SamplingConfig& config() const { return cfg_; }

 private:
  SamplingConfig cfg_;
  std::mt19937_64 rng_;
  std::vector<std::pair<double, int32_t>> candidates_;  // scratch: (probability, id)
};

}  // namespace dsocr
