#include "lm/ngram.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace dsocr {

NgramGuard::NgramGuard(NgramGuardConfig cfg) : cfg_(std::move(cfg)) {
  if (cfg_.ngram_size < 1) fail("no-repeat n-gram guard: ngram_size must be >= 1, got {}", cfg_.ngram_size);
  if (cfg_.window < 0) fail("no-repeat n-gram guard: window must be >= 0, got {}", cfg_.window);
  std::sort(cfg_.whitelist.begin(), cfg_.whitelist.end());
}

std::vector<int32_t> NgramGuard::banned(std::span<const int32_t> generated) const {
  std::vector<int32_t> out;
  const size_t n = size_t(cfg_.ngram_size);
  const size_t len = generated.size();
  // n == 1 bans nothing, as in the official code: its "prefix" ids[-0:] is the whole sequence, which never
  // equals an empty n-gram head. (transformers' processor would ban every id seen instead.)
  if (!cfg_.enabled || n < 2 || len < n) return out;

  // Candidate n-gram starts: max(0, len - W) <= i <= len - n, i.e. every n-gram inside the last W ids.
  // The last start i = len - n overlaps the prefix itself, so a run of n equal ids bans that id.
  const size_t window = size_t(cfg_.window);
  const size_t first = len > window ? len - window : 0;
  const size_t last = len - n;
  const std::span<const int32_t> prefix = generated.subspan(len - (n - 1));
  for (size_t i = first; i <= last; ++i) {
    if (std::equal(prefix.begin(), prefix.end(), generated.begin() + ptrdiff_t(i))) {
      out.push_back(generated[i + n - 1]);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  std::erase_if(out, [&](int32_t id) {
    return std::binary_search(cfg_.whitelist.begin(), cfg_.whitelist.end(), id);
  });
  return out;
}

void NgramGuard::apply(std::span<const int32_t> generated, float* logits, int vocab) const {
  for (int32_t id : banned(generated)) {
    if (id >= 0 && id < vocab) logits[id] = -std::numeric_limits<float>::infinity();
  }
}

}  // namespace dsocr
