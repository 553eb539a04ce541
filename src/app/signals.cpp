#include "app/signals.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace dsocr::app {

namespace {
sigset_t watched() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}
}  // namespace

SignalWatcher::SignalWatcher() {
  const sigset_t set = watched();
  pthread_sigmask(SIG_BLOCK, &set, &previous_);
  thread_ = std::thread([this] {
    const sigset_t set = watched();
    const timespec tick{0, 100 * 1000 * 1000};
    while (!stop_.load()) {
      siginfo_t info;
      const int sig = sigtimedwait(&set, &info, &tick);
      if (sig < 0) continue;  // timeout or EINTR: look at stop_ again
      if (!graceful_.load() || interrupted_.exchange(true)) _exit(130);  // stop now
      const char msg[] = "\ndsocr: interrupted, finishing cleanly (again to quit at once)\n";
      (void)!write(2, msg, sizeof msg - 1);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  stop_ = true;
  thread_.join();
  // Signals stay blocked: what arrives now, during exit, is not worth a death by signal.
}

}  // namespace dsocr::app
