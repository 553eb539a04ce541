// No-repeat n-gram guard of the official vLLM drivers (spec §6.4): before each decode step, ban every id
// that would complete an n-gram already seen in the last `window` generated ids.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace dsocr {

struct NgramGuardConfig {
  int ngram_size = 30;  // n: the driver values are 30 (image), 20 (PDF), 40 (eval)
  int window = 90;      // W: only n-grams lying entirely within the last W generated ids are compared
  std::vector<int32_t> whitelist = {128821, 128822};  // <td>, </td>: table cells legitimately repeat
  bool enabled = true;
};

class NgramGuard {
 public:
  // Throws dsocr::Error when ngram_size < 1 or window < 0.
  explicit NgramGuard(NgramGuardConfig cfg);

  // Ids that may not come next, given the generated ids so far (generated tokens only, no prompt, oldest
  // first). Sorted, without duplicates, whitelist removed. Looks only at the last `window` ids: the cost
  // is O(window * ngram_size) in the worst case and about O(window) in practice, whatever the length.
  std::vector<int32_t> banned(std::span<const int32_t> generated) const;

  // Sets logits[id] = -inf for every banned id in [0, vocab).
  void apply(std::span<const int32_t> generated, float* logits, int vocab) const;

  const NgramGuardConfig& config() const { return cfg_; }

 private:
  NgramGuardConfig cfg_;
};

}  // namespace dsocr
