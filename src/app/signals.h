// SIGINT and SIGTERM handled on one thread of their own: the constructor blocks them in the calling
// thread, so every thread started afterwards (engine, pools) inherits the mask and is never
// interrupted inside a kernel or an allocator. The first signal sets interrupted() (work stops at
// the next step and keeps what is finished); a second one exits at once with 130.
#pragma once
#include <atomic>
#include <csignal>
#include <thread>

namespace dsocr::app {

class SignalWatcher {
 public:
  SignalWatcher();
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  const std::atomic<bool>& interrupted() const { return interrupted_; }

 private:
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> stop_{false};
  sigset_t previous_;
  std::thread thread_;
};

}  // namespace dsocr::app
