// The scheduler and the KV block pool alone (host logic): budgets, admission, chunked prefill,
// preemption of the newest sequence, block accounting.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "engine/scheduler.h"

using namespace dsocr;

namespace {
SequenceState seq(uint64_t arrival, int prompt) {
  SequenceState s;
  s.arrival = arrival;
  s.prompt_tokens = prompt;
  return s;
}
// What the engine does after a step: computed tokens advance, sampled tokens become known.
void run(const StepPlan& plan) {
  for (const ScheduledWork& w : plan.work) {
    w.seq->computed += w.count;
    if (w.logits) ++w.seq->output_tokens;
  }
}
}  // namespace

TEST(KvBlocks, ReserveGrowsTablesAndReleaseReturnsEverything) {
  KvBlockPool pool(10, 16);
  std::vector<int32_t> a, b;
  EXPECT_TRUE(pool.reserve(a, 1));
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(pool.reserve(a, 16));
  EXPECT_EQ(a.size(), 1u);
  EXPECT_TRUE(pool.reserve(a, 17));
  EXPECT_EQ(a.size(), 2u);
  EXPECT_TRUE(pool.reserve(b, 16 * 8));
  EXPECT_EQ(pool.free(), 0);
  EXPECT_FALSE(pool.reserve(a, 33));
  EXPECT_EQ(a.size(), 2u) << "a failed reserve leaves the table as it was";
  pool.release(b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.free(), 8);
  pool.release(a);
  EXPECT_EQ(pool.free(), pool.total());
  EXPECT_THROW(KvBlockPool(0, 16), Error);
}

TEST(Scheduler, DecodeFirstThenChunkedPrefillUnderTheBudget) {
  KvBlockPool pool(100, 16);
  Scheduler s({4, 100}, pool);
  SequenceState a = seq(1, 150), b = seq(2, 30);
  s.add(&a);
  s.add(&b);
  StepPlan p = s.schedule();  // a takes the whole budget as a prefill chunk
  ASSERT_EQ(p.work.size(), 1u);
  EXPECT_EQ(p.work[0].seq, &a);
  EXPECT_EQ(p.work[0].count, 100);
  EXPECT_FALSE(p.work[0].logits);
  run(p);
  p = s.schedule();  // the rest of a (50, logits), then b (30, logits)
  ASSERT_EQ(p.work.size(), 2u);
  EXPECT_EQ(p.work[0].count, 50);
  EXPECT_TRUE(p.work[0].logits);
  EXPECT_EQ(p.work[1].seq, &b);
  EXPECT_EQ(p.work[1].count, 30);
  EXPECT_EQ(p.tokens, 80);
  run(p);
  p = s.schedule();  // both decode one token
  ASSERT_EQ(p.work.size(), 2u);
  EXPECT_EQ(p.work[0].count, 1);
  EXPECT_EQ(p.work[0].first, 150);
  EXPECT_EQ(p.work[1].first, 30);
  EXPECT_EQ(s.running(), 2u);
  s.remove(&a);
  s.remove(&b);
  EXPECT_EQ(pool.free(), pool.total());
}

TEST(Scheduler, SlotsLimitRunningSequences) {
  KvBlockPool pool(100, 16);
  Scheduler s({2, 1000}, pool);
  SequenceState a = seq(1, 10), b = seq(2, 10), c = seq(3, 10);
  s.add(&c);
  s.add(&a);
  s.add(&b);
  const StepPlan p = s.schedule();
  ASSERT_EQ(p.work.size(), 2u);
  EXPECT_EQ(p.work[0].seq, &a) << "oldest first, whatever the order of add()";
  EXPECT_EQ(p.work[1].seq, &b);
  EXPECT_EQ(s.waiting(), 1u);
}

TEST(Scheduler, NewestIsPreemptedWhenBlocksRunOutAndRecomputedLater) {
  KvBlockPool pool(4, 16);  // 64 tokens
  Scheduler s({4, 1000}, pool);
  SequenceState a = seq(1, 16), b = seq(2, 15);
  s.add(&a);
  s.add(&b);
  StepPlan p = s.schedule();
  ASSERT_EQ(p.work.size(), 2u);
  run(p);  // a: 16 computed + 1 known; b: 15 + 1
  // Grow both until the pool is full: a needs a second block at once, b when its 17th token arrives.
  int preempted_at = -1;
  for (int step = 0; step < 40 && preempted_at < 0; ++step) {
    p = s.schedule();
    if (!p.preempted.empty()) {
      preempted_at = step;
      ASSERT_EQ(p.preempted.size(), 1u);
      EXPECT_EQ(p.preempted[0], &b) << "the newest sequence gives way";
      EXPECT_EQ(b.computed, 0);
      EXPECT_EQ(b.preemptions, 1);
      EXPECT_TRUE(b.blocks.empty());
    }
    run(p);
  }
  ASSERT_GE(preempted_at, 0);
  EXPECT_EQ(s.waiting(), 1u);
  // When a finishes, b is admitted again and recomputes everything it knew (prompt + generated).
  const int known = b.known();
  s.remove(&a);
  p = s.schedule();
  ASSERT_EQ(p.work.size(), 1u);
  EXPECT_EQ(p.work[0].seq, &b);
  EXPECT_EQ(p.work[0].first, 0);
  EXPECT_EQ(p.work[0].count, known);
  EXPECT_TRUE(p.work[0].logits);
}

TEST(Scheduler, ASequenceLargerThanThePoolIsExhaustedNotLooping) {
  KvBlockPool pool(2, 16);
  Scheduler s({4, 1000}, pool);
  SequenceState big = seq(1, 40);
  s.add(&big);
  const StepPlan p = s.schedule();
  EXPECT_TRUE(p.work.empty());
  ASSERT_EQ(p.exhausted.size(), 1u);
  EXPECT_EQ(p.exhausted[0], &big);
  EXPECT_EQ(pool.free(), 2);
}
