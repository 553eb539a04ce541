// The engine's thread pool: every item exactly once, exceptions carried back to the caller, several
// outside threads sharing one pool (run under ThreadSanitizer in CI: label `concurrency`).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

using namespace dsocr;

TEST(ThreadPool, CoversEveryItemOnce) {
  ThreadPool pool(4);
  for (size_t n : {size_t(1), size_t(3), size_t(4), size_t(17), size_t(1000)})
    for (size_t min_chunk : {size_t(1), size_t(8), size_t(5000)}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](size_t a, size_t b) {
        for (size_t i = a; i < b; ++i) hits[i].fetch_add(1);
      }, min_chunk);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " item " << i;
    }
}

TEST(ThreadPool, ChunkExceptionReachesTheCallerAndThePoolGoesOn) {
  ThreadPool pool(3);
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> ran{0};
    EXPECT_THROW(pool.parallel_for(64, [&](size_t a, size_t) {
      ran.fetch_add(1);
      if (a >= 21) throw std::runtime_error("chunk failed");
    }), std::runtime_error);
    EXPECT_GE(ran.load(), 1);
  }
  std::atomic<size_t> sum{0};
  pool.parallel_for(100, [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 4950u);
  try {
    pool.parallel_for(8, [&](size_t a, size_t) {
      if (a == 0) throw std::invalid_argument("first chunk");
    });
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "first chunk");
  }
}

TEST(ThreadPool, SeveralCallersShareOnePool) {
  ThreadPool pool(2);
  constexpr int kCallers = 4, kRounds = 200;
  std::vector<std::thread> callers;
  std::vector<long> totals(kCallers, 0);
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        std::vector<int> out(97, 0);
        pool.parallel_for(out.size(), [&](size_t a, size_t b) {
          for (size_t i = a; i < b; ++i) out[i] = int(i) + c;
        });
        for (int v : out) totals[size_t(c)] += v;
      }
    });
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(totals[size_t(c)], long(kRounds) * (96 * 97 / 2 + 97 * c));
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.parallel_for(4, [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i)
      pool.parallel_for(10, [&](size_t x, size_t y) { inner += int(y - x); });
  });
  EXPECT_EQ(inner.load(), 40);
}
