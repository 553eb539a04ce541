// The engine: many pages at once. submit() hands a page to a pipeline of threads:
//   prepare (views + prompt ids)  ->  vision (same-size views of several pages in one SAM/CLIP batch)
//   ->  language model (continuous batching over a paged KV cache, engine/scheduler.h)
// Each page has its own stop rules, n-gram guard, sampler and text stream. A page's tokens do not
// depend on which other pages run with it (the backend is batch invariant, backend/backend.h).
//
// Threads: one prepares pages; the language model runs on its own thread with its own pool; vision
// either runs on a second pool of its own (vision_threads > 0: encoding overlaps decoding) or on the
// model's thread between steps (vision_threads == 0). A failing or cancelled page ends alone and
// frees its KV blocks; an exception inside a step fails the pages of that step, not the engine.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "core/thread_pool.h"
#include "engine/request.h"
#include "engine/scheduler.h"
#include "io/checkpoint.h"
#include "lm/decoder.h"
#include "lm/kv_cache.h"
#include "text/tokenizer.h"
#include "vision/encoder.h"

namespace dsocr {

struct EngineOptions {
  std::string model_dir;
  int threads = 0;           // CPU threads in all (0: every core)
  int vision_threads = -1;   // of those, a pool for vision; 0: vision between model steps; -1: auto
  int max_sequences = 8;     // pages computing at once
  int token_budget = 1024;   // rows per model step (prefill chunks + decode tokens)
  int vision_budget = 16384; // SAM patch tokens per vision batch (a 1024 view has 4096, a 640 tile 1600)
  int lookahead = -1;        // pages prepared/encoded ahead of the model; -1: max_sequences
  int64_t kv_memory = 0;     // bytes of KV blocks; 0: from the machine's available memory
  int block_size = 16;       // tokens per KV block
  KvPrecision kv_precision = KvPrecision::BF16;
  bool fast_gemm = false;    // oneDNN sgemm for many-row products (not batch invariant)
  // "cpu", or "cuda": the language model and vision on GPU 0 (vision between model steps), in a build
  // with the CUDA backend; the constructor throws naming the reason when there is none.
  std::string device = "cpu";
};

struct EngineStats {
  int queued = 0;       // submitted, not yet prepared
  int prepared = 0;     // waiting for vision
  int encoded = 0;      // features ready, not yet in the scheduler
  int waiting = 0;      // in the scheduler, waiting for a slot or blocks
  int running = 0;      // computing
  int kv_blocks_used = 0, kv_blocks_total = 0;
  uint64_t steps = 0, step_rows = 0, generated_tokens = 0, prompt_tokens = 0, preemptions = 0;
  uint64_t pages_done = 0, pages_failed = 0, vision_batches = 0, vision_views = 0;
  uint64_t weight_bytes = 0;      // weights streamed by the decode steps (see StepStats)
  uint64_t experts_hit = 0;       // routed experts hit, summed over steps and MoE layers
  double lm_seconds = 0, vision_seconds = 0;
  // Steps in which every row is a decode token (no prefill mixed in).
  uint64_t decode_steps = 0, decode_rows = 0, decode_weight_bytes = 0, decode_experts_hit = 0;
  double decode_seconds = 0;
};

class Engine : public PageRecognizer {
 public:
  explicit Engine(const EngineOptions& options);
  ~Engine() override;  // cancels what is still pending and joins the threads
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::shared_ptr<PageJob> submit(Image page, OcrRequest request, TextCallback on_text = {}) override;
  EngineStats stats() const;

  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineOptions& options() const { return options_; }  // with the automatic values resolved
  std::string describe() const;  // backend, threads, KV cache, budgets: one line

 private:
  struct Request;
  using RequestPtr = std::shared_ptr<Request>;

  void prepare_loop();
  void vision_loop();
  void model_loop();
  // Takes pages waiting for vision (FCFS, within the budget); empty when there are none or enough
  // are ahead of the model. Needs mutex_.
  std::vector<RequestPtr> take_vision_batch_locked();
  void encode(std::vector<RequestPtr>& batch, VisionEncoder& encoder);
  void step(const StepPlan& plan);
  void sample(Request& r, const float* logits);
  void complete(Request& r, RequestStatus status, std::string error = {});
  void leave_scheduler(SequenceState* seq);
  void wake_all();

  EngineOptions options_;
  std::unique_ptr<ThreadPool> model_pool_, vision_pool_;
  std::unique_ptr<Backend> model_backend_, vision_backend_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<VisionEncoder> model_side_encoder_, vision_side_encoder_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<KvStorage> kv_;
  std::unique_ptr<KvBlockPool> blocks_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Buffer> logits_;  // [max_sequences, vocab]

  // Shared state, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable prepare_cv_, vision_cv_, model_cv_;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  std::deque<RequestPtr> queued_, prepared_, encoded_;
  int encoding_ = 0;          // pages inside a vision batch right now
  int model_pages_ = 0;       // pages the model thread holds (scheduler + being finished)
  bool cancel_pending_ = false;
  EngineStats stats_;

  // Model thread only.
  std::map<SequenceState*, RequestPtr> active_;
  StepBatch batch_;

  std::vector<std::thread> threads_;
};

// Bytes for the KV cache when none is given: 30% of the available memory, at most 8 GiB, at least
// one full context.
int64_t default_kv_memory(int64_t full_context_bytes);

}  // namespace dsocr
