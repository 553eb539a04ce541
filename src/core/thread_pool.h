// A fixed pool of worker threads shared by the whole engine (no global pool: the engine owns one
// and passes it down). parallel_for splits [0, n) into contiguous chunks and the calling thread
// takes chunks too. A decode step dispatches ~100 small jobs, so hand-offs are lock-free: idle
// workers spin briefly on an atomic before sleeping, and the caller spins for completion.
//
// A chunk that throws does not take the process down: the first exception of a job is kept, the
// job's other chunks still run to completion (they may be skipped once one has failed), and
// parallel_for rethrows it in the caller. One job runs at a time; callers on other threads wait.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsocr {

class ThreadPool {
 public:
  explicit ThreadPool(int threads = 0);  // 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // fn(begin, end) over contiguous chunks of [0, n); at most size() chunks, none smaller than
  // min_chunk items. Returns when all chunks are done; rethrows the first exception a chunk threw
  // (chunks not yet started are then skipped). Nested calls run inline.
  void parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn, size_t min_chunk = 1);

 private:
  void worker_loop();
  // Claims and runs chunks of the job of `generation` until none is left.
  void run_chunks(uint32_t generation);

  std::vector<std::thread> workers_;
  std::mutex submit_;  // one job at a time from outside the pool

  // The current job; written before `state_` announces its generation, stable until it completes.
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t job_n_ = 0;
  std::atomic<uint32_t> job_chunks_{0};  // atomic: a worker late for the previous job may read it
  // High 32 bits: job generation; low 32 bits: next chunk to claim. One word, so that a worker
  // late for one job can never claim a chunk of the next.
  std::atomic<uint64_t> state_{0};
  std::atomic<uint32_t> pending_{0};  // chunks of the current job not finished yet
  std::atomic<bool> failed_{false};   // a chunk of the current job threw
  std::mutex error_mutex_;
  std::exception_ptr error_;          // the first exception of the current job

  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace dsocr
