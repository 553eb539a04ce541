#include "core/thread_pool.h"

#include <algorithm>
#include <utility>


namespace dsocr {

namespace {
thread_local bool t_inside_pool = false;

// About 100-300 microseconds of polling before an idle worker sleeps: long enough to bridge the
// gaps between the jobs of one decode step, short enough not to burn a core between pages.
constexpr int kSpinIterations = 1 << 14;

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

inline uint32_t generation_of(uint64_t state) { return uint32_t(state >> 32); }
inline uint32_t chunk_of(uint64_t state) { return uint32_t(state); }
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(uint32_t generation) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(s) != generation || chunk_of(s) >= job_chunks_.load(std::memory_order_relaxed)) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const size_t c = chunk_of(s), chunks = job_chunks_.load(std::memory_order_relaxed), n = job_n_;
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        (*job_)(c * n / chunks, (c + 1) * n / chunks);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn, size_t min_chunk) {
  if (n == 0) return;
  min_chunk = std::max<size_t>(min_chunk, 1);
  const size_t chunks = std::min<size_t>(size_t(size()), (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1 || t_inside_pool || workers_.empty()) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> one_job(submit_);
  failed_.store(false, std::memory_order_relaxed);
  error_ = nullptr;
  job_ = &fn;
  job_n_ = n;
  job_chunks_.store(uint32_t(chunks), std::memory_order_relaxed);
  pending_.store(uint32_t(chunks), std::memory_order_relaxed);
  const uint32_t generation = generation_of(state_.load(std::memory_order_relaxed)) + 1;
  state_.store(uint64_t(generation) << 32, std::memory_order_seq_cst);  // publishes the job
  if (sleeping_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);  // a worker between its check and its wait sees it
    wake_.notify_all();
  }

  t_inside_pool = true;
  run_chunks(generation);
  t_inside_pool = false;
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) cpu_relax(); else std::this_thread::yield();
  }
  job_ = nullptr;
  if (failed_.load(std::memory_order_acquire)) {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(error_mutex_);
      e = std::exchange(error_, nullptr);
    }
    std::rethrow_exception(e);
  }
}

void ThreadPool::worker_loop() {
  t_inside_pool = true;
  uint32_t seen = 0;
  for (;;) {
    uint32_t generation = generation_of(state_.load(std::memory_order_acquire));
    for (int spins = 0; generation == seen && !stop_.load(std::memory_order_relaxed); ++spins) {
      if (spins < kSpinIterations) {
        cpu_relax();
      } else {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] {
          return stop_.load() || generation_of(state_.load(std::memory_order_seq_cst)) != seen;
        });
        sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        spins = 0;
      }
      generation = generation_of(state_.load(std::memory_order_acquire));
    }
    if (stop_.load()) return;
    seen = generation;
    run_chunks(generation);
  }
}

}  // namespace dsocr
