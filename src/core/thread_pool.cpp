#include "core/thread_pool.h"

#include <algorithm>

namespace dsocr {

namespace {
thread_local bool t_inside_pool = false;
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn, size_t min_chunk) {
  if (n == 0) return;
  size_t chunks = std::min<size_t>(size_t(size()), (n + std::max<size_t>(min_chunk, 1) - 1) / std::max<size_t>(min_chunk, 1));
  if (chunks <= 1 || t_inside_pool || workers_.empty()) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return !busy_; });  // one job at a time
  busy_ = true;
  job_ = &fn;
  job_n_ = n;
  job_chunks_ = chunks;
  next_chunk_ = 0;
  pending_ = chunks;
  ++generation_;
  lock.unlock();
  wake_.notify_all();

  t_inside_pool = true;
  for (;;) {
    lock.lock();
    if (next_chunk_ >= job_chunks_) break;
    size_t c = next_chunk_++;
    lock.unlock();
    fn(c * n / chunks, (c + 1) * n / chunks);
    lock.lock();
    --pending_;
    lock.unlock();
  }
  t_inside_pool = false;
  done_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
  busy_ = false;
  lock.unlock();
  done_.notify_all();
}

void ThreadPool::worker_loop(int) {
  t_inside_pool = true;
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || (job_ && generation_ != seen && next_chunk_ < job_chunks_); });
    if (stop_) return;
    seen = generation_;
    while (job_ && next_chunk_ < job_chunks_) {
      size_t c = next_chunk_++;
      const auto* fn = job_;
      size_t n = job_n_, chunks = job_chunks_;
      lock.unlock();
      (*fn)(c * n / chunks, (c + 1) * n / chunks);
      lock.lock();
      if (--pending_ == 0) done_.notify_all();
    }
  }
}

}  // namespace dsocr
