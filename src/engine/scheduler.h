// Continuous batching without prefill/decode phases (as vLLM v1): every sequence has a number of
// known tokens (prompt + generated) and of computed ones (their keys and values are in the cache);
// each step gives the running sequences, oldest first, the tokens they still miss (a decode token, or
// a chunk of a prompt) under a token budget, then admits waiting sequences while budget, sequence
// slots and KV blocks allow. When a running sequence needs a block and none is free, the newest
// running sequence is preempted: its blocks are freed and it waits again, to be recomputed from its
// prompt (features kept) and the tokens it had generated. Host logic only; not thread-safe.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/kv_blocks.h"

namespace dsocr {

struct SequenceState {
  uint64_t arrival = 0;   // submission order: the newest is preempted first
  int prompt_tokens = 0;
  int output_tokens = 0;  // generated so far; kept when preempted
  int computed = 0;       // leading tokens whose keys and values are in the cache
  std::vector<int32_t> blocks;
  int preemptions = 0;
  int known() const { return prompt_tokens + output_tokens; }
};

struct SchedulerConfig {
  int max_sequences = 8;   // sequences computing at once
  int token_budget = 1024; // rows per step
};

// `count` tokens of `seq` from position `first`; logits: the step computes the last known token, so
// the next one can be sampled.
struct ScheduledWork {
  SequenceState* seq;
  int first, count;
  bool logits;
};

struct StepPlan {
  std::vector<ScheduledWork> work;          // running sequences first, then the admitted ones
  std::vector<SequenceState*> preempted;    // moved back to waiting this step
  std::vector<SequenceState*> exhausted;    // alone and still without a block: the KV pool is too small
  int tokens = 0;
  bool empty() const { return work.empty(); }
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, KvBlockPool& blocks);

  void add(SequenceState* seq);     // ready to compute: waits for admission (by arrival)
  void remove(SequenceState* seq);  // finished or cancelled: leaves the scheduler, its blocks freed
  StepPlan schedule();

  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }
  const SchedulerConfig& config() const { return config_; }
  const KvBlockPool& blocks() const { return blocks_; }

 private:
  void preempt(SequenceState* seq);
  void insert_waiting(SequenceState* seq);

  SchedulerConfig config_;
  KvBlockPool& blocks_;
  std::vector<SequenceState*> running_;  // by arrival
  std::deque<SequenceState*> waiting_;   // by arrival
};

}  // namespace dsocr
