// Timing for the benchmarks: the best of several runs after a warm-up.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>

namespace dsocr::bench {

// The shortest of `repeats` timed calls of fn, in seconds, after one untimed call.
inline double best_seconds(int repeats, const std::function<void()>& fn) {
  fn();  // warm-up
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace dsocr::bench
