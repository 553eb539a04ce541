// SIGINT and SIGTERM handled on one thread of their own: made first thing in main(), the constructor
// blocks them in the main thread, so every thread started afterwards (engine, pools) inherits the
// mask and is never interrupted inside a kernel or an allocator. Until a command asks for a
// graceful stop, a signal exits at once with 130. After set_graceful(), the first signal sets
// interrupted() (work stops at the next step and keeps what is finished); a second exits with 130.
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
  void set_graceful() { graceful_ = true; }

 private:
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> graceful_{false};
  std::atomic<bool> stop_{false};
  sigset_t previous_;
  std::thread thread_;
};

}  // namespace dsocr::app
