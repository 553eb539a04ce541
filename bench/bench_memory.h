// Memory figures for the benchmarks, from /proc/self/status (Linux).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>

namespace dsocr::bench {

// A /proc/self/status field in kB (VmRSS, RssAnon, RssFile, VmHWM, ...); -1 when unavailable.
inline int64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  const std::string prefix = std::string(key) + ":";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()));
  return -1;
}

// Samples RssAnon (memory the process allocated, i.e. everything but the mapped weights and
// other file pages) every few milliseconds and keeps the peak, while it lives.
class PeakAnonymousMemory {
 public:
  PeakAnonymousMemory() : thread_([this] {
    while (!stop_) {
      const int64_t kb = status_kb("RssAnon");
      if (kb > peak_kb_) peak_kb_ = kb;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }) {}
  ~PeakAnonymousMemory() { stop(); }
  int64_t stop() {
    if (!stop_.exchange(true)) thread_.join();
    return peak_kb_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_kb_{0};
  std::thread thread_;
};

}  // namespace dsocr::bench
