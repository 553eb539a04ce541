// The DeepSeek-OCR language model (spec §9): a 12-layer pre-norm decoder with plain multi-head
// attention (NeoX RoPE over the whole head), a dense SwiGLU in layer 0 and routed + shared SwiGLU
// experts in the other layers, on the CPU in float32 with the bf16 weights widened on the fly.
//
// One forward() call runs new tokens after those already in the KV cache: a whole prompt (prefill:
// batched products, MoE rows grouped by expert) or one token (decode: weight streaming).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "lm/kv_cache.h"

namespace dsocr {

// Optional record of the internals of the last `rows` tokens of one forward() call (for tests and
// debugging). Arrays are row-major; "moe layers" are the MoE layers in order. When the call has fewer
// than `rows` tokens, only the first n rows of each block are filled (the rest stay zero).
struct DecoderProbe {
  int rows = 8;
  std::vector<float> residual_after_layer;      // [layers][rows][hidden]
  std::vector<float> router_probs;              // [moe layers][rows][n_routed_experts], softmax
  std::vector<int32_t> router_topk_ids;         // [moe layers][rows][experts_per_token], by weight, descending
  std::vector<float> router_topk_weights;       // [moe layers][rows][experts_per_token], after scaling
  std::vector<float> final_norm_hidden;         // [rows][hidden]
  std::vector<float> logits;                    // [rows][vocab]
};

class Decoder {
 public:
  // Keeps references to ckpt (its mapped weights) and pool; both must outlive the decoder.
  Decoder(const Checkpoint& ckpt, ThreadPool& pool);

  const LmConfig& config() const { return cfg_; }

  // out[n, hidden] = embed_tokens rows of ids, widened to float32. Throws on an id outside the vocabulary.
  void embed(std::span<const int32_t> ids, float* out) const;

  // Runs n new tokens (input embeddings [n, hidden]) at positions cache.size() .. cache.size()+n-1 and
  // appends their keys and values to the cache. Writes the logits of the last token to last_logits
  // ([vocab]) and, when given, those of every token to all_logits ([n, vocab]); either may be null.
  // lm_head runs only for the rows whose logits are asked for. Throws (cache unchanged) when the
  // tokens do not fit the cache.
  void forward(const float* embeddings, int n, KvCache& cache, float* last_logits, float* all_logits = nullptr,
               DecoderProbe* probe = nullptr);

  // A cache for this model holding up to `capacity` tokens.
  KvCache make_cache(int capacity, KvPrecision precision = KvPrecision::F32) const {
    return KvCache(cfg_, capacity, precision);
  }

  // Bytes of weight matrices streamed by forward() since the last reset: attention, the dense MLP or
  // the router and the experts actually selected, lm_head; each matrix counted every time it is
  // streamed (once per call, except for prompts longer than 2048 tokens, whose MLPs run in passes).
  uint64_t weight_bytes_read() const { return weight_bytes_read_; }
  void reset_weight_bytes_read() { weight_bytes_read_ = 0; }

 private:
  struct Mlp {  // SwiGLU: down(silu(gate x) * up x)
    cpu::Weight gate, up, down;
  };
  struct Layer {
    std::vector<float> input_norm, post_attention_norm;
    cpu::Weight q, k, v, o;
    bool moe = false;
    Mlp dense;                 // !moe
    cpu::Weight router;        // moe: [n_routed_experts, hidden]
    std::vector<Mlp> experts;  // moe
    bool has_shared = false;
    Mlp shared;
  };
  // Rows of the block input that go through one MLP, and the weights of its outputs.
  struct Route {
    const Mlp* mlp = nullptr;
    std::vector<int32_t> rows;
    std::vector<float> weights;
  };
  struct Scratch;

  void attention(const Layer& layer, int layer_index, Scratch& s, int n, KvCache& cache);
  void moe(const Layer& layer, int moe_index, Scratch& s, int n, DecoderProbe* probe);
  static Route all_rows(const Mlp& mlp, int n);
  // x[row] += sum over routes of weight * mlp(h[row]) (rows grouped by MLP, batched products).
  void mlp_block(std::vector<Route>& routes, Scratch& s, int n);
  void apply_rope(float* x, int n, int64_t ld, int first_position) const;
  void note_read(const cpu::Weight& w) { weight_bytes_read_ += w.nbytes(); }

  LmConfig cfg_;
  ThreadPool& pool_;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  cpu::Weight embed_tokens_, lm_head_;
  std::vector<float> rope_cos_, rope_sin_;  // [max_position_embeddings][head_dim / 2]
  uint64_t weight_bytes_read_ = 0;
};

}  // namespace dsocr
