#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace dsocr {

namespace {
bool by_arrival(const SequenceState* a, const SequenceState* b) { return a->arrival < b->arrival; }
}  // namespace

Scheduler::Scheduler(SchedulerConfig config, KvBlockPool& blocks) : config_(config), blocks_(blocks) {
  if (config_.max_sequences < 1 || config_.token_budget < 1)
    fail("scheduler: {} sequences and {} tokens per step is not a configuration", config_.max_sequences,
         config_.token_budget);
}

void Scheduler::insert_waiting(SequenceState* seq) {
  waiting_.insert(std::upper_bound(waiting_.begin(), waiting_.end(), seq, by_arrival), seq);
}

void Scheduler::add(SequenceState* seq) {
  if (seq->known() < 1) fail("scheduler: a sequence without tokens");
  insert_waiting(seq);
}

void Scheduler::remove(SequenceState* seq) {
  running_.erase(std::remove(running_.begin(), running_.end(), seq), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), seq), waiting_.end());
  blocks_.release(seq->blocks);
}

void Scheduler::preempt(SequenceState* seq) {
  running_.erase(std::remove(running_.begin(), running_.end(), seq), running_.end());
  blocks_.release(seq->blocks);
  seq->computed = 0;
  ++seq->preemptions;
  insert_waiting(seq);
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  int budget = config_.token_budget;

  // Running sequences, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    SequenceState* seq = running_[i];
    const int count = std::min(seq->known() - seq->computed, budget);
    if (count <= 0) {
      ++i;
      continue;
    }
    bool preempted_self = false;
    while (!blocks_.reserve(seq->blocks, seq->computed + count)) {
      SequenceState* victim = running_.back();
      if (victim == seq && running_.size() == 1) {  // alone and still no room: the pool is too small
        running_.erase(running_.begin() + ptrdiff_t(i));
        blocks_.release(seq->blocks);
        plan.exhausted.push_back(seq);
        preempted_self = true;
        break;
      }
      // A victim scheduled earlier in this step gives its work back.
      for (size_t w = 0; w < plan.work.size(); ++w)
        if (plan.work[w].seq == victim) {
          budget += plan.work[w].count;
          plan.tokens -= plan.work[w].count;
          plan.work.erase(plan.work.begin() + ptrdiff_t(w));
          break;
        }
      preempt(victim);
      plan.preempted.push_back(victim);
      if (victim == seq) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) continue;  // running_[i] is now the next sequence
    plan.work.push_back({seq, seq->computed, count, seq->computed + count == seq->known()});
    plan.tokens += count;
    budget -= count;
    ++i;
  }

  // Waiting sequences, oldest first, while nothing had to be preempted.
  while (plan.preempted.empty() && !waiting_.empty() && budget > 0 &&
         running_.size() < size_t(config_.max_sequences)) {
    SequenceState* seq = waiting_.front();
    const int count = std::min(seq->known() - seq->computed, budget);
    // Admission leaves a block per running sequence free, so that the next decode steps do not
    // immediately preempt what was just admitted.
    const int needed = KvBlockPool::blocks_for(seq->computed + count, blocks_.block_size()) - int(seq->blocks.size());
    const bool alone = running_.empty();
    if (!alone && needed + int(running_.size()) > blocks_.free()) break;
    if (!blocks_.reserve(seq->blocks, seq->computed + count)) {
      if (alone) {  // not even the first chunk of the only sequence fits
        waiting_.pop_front();
        plan.exhausted.push_back(seq);
        continue;
      }
      break;
    }
    waiting_.pop_front();
    running_.insert(std::upper_bound(running_.begin(), running_.end(), seq, by_arrival), seq);
    plan.work.push_back({seq, seq->computed, count, seq->computed + count == seq->known()});
    plan.tokens += count;
    budget -= count;
  }
  return plan;
}

}  // namespace dsocr
