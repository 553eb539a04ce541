#include "lm/decoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace dsocr {

Decoder::Decoder(const Checkpoint& ckpt, Backend& backend) : cfg_(ckpt.config().lm), backend_(backend) {
  if (cfg_.kv_heads != cfg_.heads)
    fail("{}: grouped-query attention ({} heads, {} kv heads) is not supported", ckpt.dir(), cfg_.heads, cfg_.kv_heads);
  if (cfg_.head_dim % 2 != 0) fail("{}: head_dim {} must be even for RoPE", ckpt.dir(), cfg_.head_dim);
  auto weight = [&](const std::string& name) { return backend_.weight(ckpt.tensor(name)); };
  auto vector = [&](const std::string& name) { return backend_.constant(ckpt.tensor(name)); };
  auto mlp = [&](const std::string& p) {
    return ExpertMlp{weight(p + "gate_proj.weight"), weight(p + "up_proj.weight"), weight(p + "down_proj.weight")};
  };

  for (int i = 0; i < cfg_.layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = vector(b + "input_layernorm.weight");
    L.post_attention_norm = vector(b + "post_attention_layernorm.weight");
    L.q = weight(b + "self_attn.q_proj.weight");
    L.k = weight(b + "self_attn.k_proj.weight");
    L.v = weight(b + "self_attn.v_proj.weight");
    L.o = weight(b + "self_attn.o_proj.weight");
    L.moe = cfg_.is_moe_layer(i);
    if (!L.moe) {
      L.dense = mlp(b + "mlp.");
    } else {
      L.router = weight(b + "mlp.gate.weight");
      for (int e = 0; e < cfg_.n_routed_experts; ++e) L.experts.push_back(mlp(b + "mlp.experts." + std::to_string(e) + "."));
      L.has_shared = cfg_.n_shared_experts > 0;
      if (L.has_shared) L.experts.push_back(mlp(b + "mlp.shared_experts."));
    }
    layers_.push_back(std::move(L));
  }
  final_norm_ = vector("model.norm.weight");
  embed_tokens_ = weight("model.embed_tokens.weight");
  lm_head_ = weight("lm_head.weight");

  // RoPE table exactly as transformers builds it, all in float32: inv_freq = 1 / theta^(2i/d),
  // angle = float(pos) * inv_freq, then cos / sin of that float angle.
  const int half = cfg_.head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i)
    inv_freq[size_t(i)] = 1.0f / std::pow(cfg_.rope_theta, float(2 * i) / float(cfg_.head_dim));
  const size_t positions = size_t(cfg_.max_position_embeddings);
  std::vector<float> cos(positions * size_t(half)), sin(positions * size_t(half));
  for (size_t p = 0; p < positions; ++p)
    for (int i = 0; i < half; ++i) {
      const float angle = float(p) * inv_freq[size_t(i)];
      cos[p * size_t(half) + size_t(i)] = float(std::cos(double(angle)));
      sin[p * size_t(half) + size_t(i)] = float(std::sin(double(angle)));
    }
  rope_cos_ = backend_.constant(std::span<const float>(cos));
  rope_sin_ = backend_.constant(std::span<const float>(sin));
}

size_t Decoder::workspace_bytes(int rows) const {
  const size_t n = size_t(std::max(rows, 1)), hidden = size_t(cfg_.hidden);
  const size_t width = size_t(cfg_.heads) * size_t(cfg_.head_dim);
  const size_t k = size_t(cfg_.experts_per_token) + 1;  // routed experts per row + the shared one
  const size_t inter = std::max<size_t>(size_t(cfg_.intermediate),
                                        size_t(cfg_.moe_intermediate) * k + size_t(cfg_.shared_intermediate()));
  size_t floats = 2 * n * hidden + 4 * n * width + n * size_t(std::max(cfg_.n_routed_experts, 1));
  floats += n * k * hidden;       // grouped expert outputs
  floats += n * k * hidden;       // backend: grouped inputs
  floats += 2 * n * inter;        // gate and up (dense or grouped)
  floats += 1 << 20;              // attention partials of a decode step, alignment
  return floats * sizeof(float);
}

StepStats Decoder::forward(const StepBatch& b, KvStorage& kv, float* logits, TensorObserver* observer) {
  Backend& be = backend_;
  const int64_t n = b.rows(), hidden = cfg_.hidden, width = int64_t(cfg_.heads) * cfg_.head_dim;
  const int64_t vocab = lm_head_.rows;
  if (n <= 0) fail("decoder: a step needs at least one row");
  if (b.features.size() != size_t(n) || b.positions.size() != size_t(n) || b.slots.size() != size_t(n) ||
      b.row_begin.size() != size_t(b.sequences()) + 1 || b.row_begin.back() != n ||
      b.block_tables.size() != size_t(b.sequences()))
    fail("decoder: inconsistent step batch ({} rows, {} sequences)", n, b.sequences());
  for (int64_t r = 0; r < n; ++r)
    if (b.positions[size_t(r)] < 0 || b.positions[size_t(r)] >= cfg_.max_position_embeddings)
      fail("decoder: position {} is outside the context of {} tokens", b.positions[size_t(r)], cfg_.max_position_embeddings);
  for (size_t i = 0; i < b.logit_rows.size(); ++i)
    if (b.logit_rows[i] < 0 || b.logit_rows[i] >= n || (i > 0 && b.logit_rows[i] <= b.logit_rows[i - 1]))
      fail("decoder: logit rows must be ascending rows of the step");
  const KvLayout& kvl = kv.layout();
  if (kvl.layers != cfg_.layers || kvl.width != width)
    fail("decoder: KV storage ({} layers x {}) does not match the model ({} layers x {})", kvl.layers, kvl.width,
         cfg_.layers, width);

  Workspace& ws = be.workspace();
  WorkspaceScope scope(ws);
  float* x = ws.floats(size_t(n * hidden));
  float* h = ws.floats(size_t(n * hidden));
  float* q = ws.floats(size_t(n * width));
  float* k = ws.floats(size_t(n * width));
  float* v = ws.floats(size_t(n * width));
  float* attn = ws.floats(size_t(n * width));
  const AttentionBatch ab = b.attention();
  const float scale = 1.0f / std::sqrt(float(cfg_.head_dim));
  StepStats stats;

  be.embed(embed_tokens_, b.ids.data(), b.features.data(), n, x);
  observe(observer, be, "lm.embed", x, {n, hidden});
  for (int l = 0; l < cfg_.layers; ++l) {
    const Layer& L = layers_[size_t(l)];
    const std::string prefix = observer ? "lm.layer" + std::to_string(l) : std::string();

    // Attention.
    be.rms_norm(x, n, hidden, L.input_norm, cfg_.rms_norm_eps, h);
    const Weight qkv_w[] = {L.q, L.k, L.v};
    float* const qkv_out[] = {q, k, v};
    be.linear_multi(h, n, qkv_w, qkv_out);
    be.rope(q, n, width, cfg_.heads, cfg_.head_dim, b.positions.data(), rope_cos_, rope_sin_);
    be.rope(k, n, width, cfg_.heads, cfg_.head_dim, b.positions.data(), rope_cos_, rope_sin_);
    be.kv_write(kv, l, k, v, n, width, b.slots.data());
    be.paged_attention(q, width, kv, l, ab, cfg_.heads, cfg_.head_dim, scale, attn, width);
    be.linear(attn, n, L.o, nullptr, x, /*accumulate=*/true);
    for (const Weight* w : {&L.q, &L.k, &L.v, &L.o}) stats.weight_bytes += w->nbytes();

    // MLP.
    be.rms_norm(x, n, hidden, L.post_attention_norm, cfg_.rms_norm_eps, h);
    WorkspaceScope mlp_scope(ws);
    if (!L.moe) {
      const int64_t inter = L.dense.gate.rows;
      float* gate = ws.floats(size_t(n * inter));
      float* up = ws.floats(size_t(n * inter));
      const Weight gu_w[] = {L.dense.gate, L.dense.up};
      float* const gu_out[] = {gate, up};
      be.linear_multi(h, n, gu_w, gu_out);
      be.silu_mul(gate, up, n * inter);
      be.linear(gate, n, L.dense.down, nullptr, x, /*accumulate=*/true);
      stats.weight_bytes += L.dense.gate.nbytes() + L.dense.up.nbytes() + L.dense.down.nbytes();
    } else {
      const int experts = cfg_.n_routed_experts, top_k = cfg_.experts_per_token;
      float* probs = ws.floats(size_t(n * experts));
      be.linear(h, n, L.router, nullptr, probs);
      const RouterConfig rc{experts, top_k, cfg_.norm_topk_prob, cfg_.routed_scaling_factor, L.has_shared};
      const ExpertRouting& routing = be.route_experts(probs, n, rc);
      if (observer) {
        observe(observer, be, prefix + ".router_probs", probs, {n, experts});
        const int64_t shape[] = {n, top_k};
        observer->on_ids(prefix + ".topk_ids", routing.top_ids(), shape);
        observer->on_tensor(prefix + ".topk_weights", routing.top_weights(), shape);
      }
      float* y = ws.floats(size_t(routing.grouped_rows() * hidden));
      be.expert_mlp(h, routing, L.experts, y);
      be.moe_combine(y, routing, x, hidden);
      const ExpertMlp& e0 = L.experts.front();
      stats.weight_bytes += L.router.nbytes() + uint64_t(routing.experts_hit()) *
                                                    (e0.gate.nbytes() + e0.up.nbytes() + e0.down.nbytes());
      if (L.has_shared) {
        const ExpertMlp& s = L.experts.back();
        stats.weight_bytes += s.gate.nbytes() + s.up.nbytes() + s.down.nbytes();
      }
      stats.experts_hit += routing.experts_hit();
    }
    if (observer) observe(observer, be, prefix + ".out", x, {n, hidden});
  }

  // Final norm and lm_head only for the rows whose logits are wanted.
  const int64_t m = int64_t(b.logit_rows.size());
  if (m == 0) return stats;
  be.gather_rows(h, hidden, x, hidden, b.logit_rows.data(), m, hidden);
  be.rms_norm(h, m, hidden, final_norm_, cfg_.rms_norm_eps, h);
  observe(observer, be, "lm.final_norm", h, {m, hidden});
  be.linear(h, m, lm_head_, nullptr, logits);
  observe(observer, be, "lm.logits", logits, {m, vocab});
  stats.weight_bytes += lm_head_.nbytes();
  return stats;
}

void Decoder::embed(std::span<const int32_t> ids, float* out) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= embed_tokens_.rows)
      fail("token id {} at index {} is outside the vocabulary [0, {})", ids[i], i, embed_tokens_.rows);
  backend_.embed(embed_tokens_, ids.data(), nullptr, int64_t(ids.size()), out);
}

StepStats Decoder::forward(const float* embeddings, int n, KvCache& cache, float* last_logits, float* all_logits,
                           TensorObserver* observer) {
  const int64_t hidden = cfg_.hidden, vocab = lm_head_.rows;
  if (n <= 0) fail("decoder: forward needs at least one token, got {}", n);
  if (cache.layers() != cfg_.layers || cache.row_width() != int64_t(cfg_.heads) * cfg_.head_dim)
    fail("decoder: KV cache ({} layers x {}) does not match the model", cache.layers(), cache.row_width());
  const int first = cache.size();
  if (int64_t(first) + n > cache.capacity())
    fail("decoder: {} tokens after {} exceed the KV cache capacity of {} tokens", n, first, cache.capacity());

  StepStats total;
  StepBatch batch;
  for (int done = 0; done < n;) {
    const int rows = std::min(max_step_rows(), n - done);
    const bool last_chunk = done + rows == n;
    batch.clear();
    batch.begin_sequence(first + done, cache.block_table(), cache.block_size());
    for (int r = 0; r < rows; ++r) {
      batch.add_feature(embeddings + int64_t(done + r) * hidden);
      if (all_logits || (last_chunk && r + 1 == rows && last_logits)) batch.want_logits();
    }
    float* out = all_logits ? all_logits + int64_t(done) * vocab : last_logits;
    const StepStats s = forward(batch, cache.storage(), out, observer);
    total.weight_bytes += s.weight_bytes;
    total.experts_hit += s.experts_hit;
    if (all_logits && last_chunk && last_logits)
      backend_.copy(last_logits, all_logits + int64_t(n - 1) * vocab, size_t(vocab));
    done += rows;
  }
  cache.commit(n);
  return total;
}

}  // namespace dsocr
