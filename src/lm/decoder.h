// The DeepSeek-OCR language model (spec §9): a 12-layer pre-norm decoder with plain multi-head
// attention (NeoX RoPE over the whole head), a dense SwiGLU in layer 0 and routed + shared SwiGLU
// experts in the other layers, written once against the Backend interface.
//
// forward() runs one step of a StepBatch: rows of many sequences (prefill chunks and decode tokens
// mixed), their keys and values written to their KV slots, logits for the rows that ask for them.
//
// Intermediates go to an optional TensorObserver: "lm.embed" [rows, hidden]; per layer l
// "lm.layer<l>.out" [rows, hidden] (the residual after the layer), and for MoE layers
// "lm.layer<l>.router_probs" [rows, experts], ids "lm.layer<l>.topk_ids" [rows, k] (by weight,
// descending) and "lm.layer<l>.topk_weights" [rows, k]; "lm.final_norm" [logit rows, hidden] and
// "lm.logits" [logit rows, vocab].
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "lm/kv_cache.h"
#include "lm/step_batch.h"

namespace dsocr {

// What one step read: weight bytes streamed (each matrix counted once per step: attention, the dense
// MLP or the router and the experts actually selected, lm_head when logits are asked for).
struct StepStats {
  uint64_t weight_bytes = 0;
  int experts_hit = 0;  // routed experts with at least one row, summed over the MoE layers
};

class Decoder {
 public:
  // Keeps references to ckpt (its mapped weights) and backend; both must outlive the decoder.
  Decoder(const Checkpoint& ckpt, Backend& backend);

  const LmConfig& config() const { return cfg_; }
  Backend& backend() { return backend_; }
  const Weight& embed_table() const { return embed_tokens_; }

  // One step. logits: [batch.logit_rows.size(), vocab] in backend memory. Throws (nothing written)
  // when the batch is inconsistent: positions past the context, ids outside the vocabulary.
  StepStats forward(const StepBatch& batch, KvStorage& kv, float* logits, TensorObserver* observer = nullptr);

  // Workspace bytes a step of up to `rows` rows takes (decoder and backend scratch); the engine
  // reserves it once.
  size_t workspace_bytes(int rows) const;

  // ---- one sequence (tools, tests, benchmarks) ----------------------------------------------------
  // out[n, hidden] = embed_tokens rows of ids, widened to float32 (backend memory). Throws on an id
  // outside the vocabulary.
  void embed(std::span<const int32_t> ids, float* out);
  // Runs n new tokens (input embeddings [n, hidden], backend memory) at positions cache.size() ..
  // cache.size()+n-1 and commits them to the cache, in steps of at most max_step_rows() rows. Writes
  // the logits of the last token to last_logits ([vocab]) and, when given, those of every token to
  // all_logits ([n, vocab]); either may be null. Throws (cache unchanged) when they do not fit.
  StepStats forward(const float* embeddings, int n, KvCache& cache, float* last_logits, float* all_logits = nullptr,
                    TensorObserver* observer = nullptr);
  KvCache make_cache(int capacity, KvPrecision precision = KvPrecision::F32) {
    return KvCache(backend_, cfg_, capacity, precision);
  }
  static constexpr int max_step_rows() { return 2048; }

 private:
  struct Layer {
    const float* input_norm = nullptr;
    const float* post_attention_norm = nullptr;
    Weight q, k, v, o;
    bool moe = false;
    ExpertMlp dense;                 // !moe
    Weight router;                   // moe: [n_routed_experts, hidden]
    std::vector<ExpertMlp> experts;  // moe: routed experts, then the shared MLP when there is one
    bool has_shared = false;
  };

  LmConfig cfg_;
  Backend& backend_;
  std::vector<Layer> layers_;
  const float* final_norm_ = nullptr;
  Weight embed_tokens_, lm_head_;
  const float* rope_cos_ = nullptr;  // [max_position_embeddings][head_dim / 2]
  const float* rope_sin_ = nullptr;
};

}  // namespace dsocr
