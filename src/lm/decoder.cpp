#include "lm/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/cache_attention.h"
#include "backend/cpu/linear_batch.h"
#include "backend/cpu/ops.h"
#include "core/error.h"

namespace dsocr {

namespace {

std::vector<float> vector_f32(const Checkpoint& ckpt, const std::string& name) { return ckpt.tensor(name).to_f32(); }

cpu::Weight weight(const Checkpoint& ckpt, const std::string& name) { return cpu::Weight::of(ckpt.tensor(name)); }

// Start of row `first` of a row-major [*, width] buffer.
float* rows_of(std::vector<float>& v, int64_t first, int64_t width) { return v.data() + first * width; }

}  // namespace

// Activations of one forward() call.
struct Decoder::Scratch {
  std::vector<float> x;        // residual stream [n, hidden]
  std::vector<float> h;        // normalised input of the current block [n, hidden]
  std::vector<float> q, k, v;  // [n, heads * head_dim]
  std::vector<float> attn;     // attention output before o_proj [n, heads * head_dim]
};

Decoder::Decoder(const Checkpoint& ckpt, ThreadPool& pool) : cfg_(ckpt.config().lm), pool_(pool) {
  if (cfg_.kv_heads != cfg_.heads)
    fail("{}: grouped-query attention ({} heads, {} kv heads) is not supported", ckpt.dir(), cfg_.heads, cfg_.kv_heads);
  if (cfg_.head_dim % 2 != 0) fail("{}: head_dim {} must be even for RoPE", ckpt.dir(), cfg_.head_dim);

  for (int i = 0; i < cfg_.layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    Layer L;
    L.input_norm = vector_f32(ckpt, b + "input_layernorm.weight");
    L.post_attention_norm = vector_f32(ckpt, b + "post_attention_layernorm.weight");
    L.q = weight(ckpt, b + "self_attn.q_proj.weight");
    L.k = weight(ckpt, b + "self_attn.k_proj.weight");
    L.v = weight(ckpt, b + "self_attn.v_proj.weight");
    L.o = weight(ckpt, b + "self_attn.o_proj.weight");
    L.moe = cfg_.is_moe_layer(i);
    const auto mlp = [&](const std::string& p) {
      return Mlp{weight(ckpt, p + "gate_proj.weight"), weight(ckpt, p + "up_proj.weight"),
                 weight(ckpt, p + "down_proj.weight")};
    };
    if (!L.moe) {
      L.dense = mlp(b + "mlp.");
    } else {
      L.router = weight(ckpt, b + "mlp.gate.weight");
      for (int e = 0; e < cfg_.n_routed_experts; ++e) L.experts.push_back(mlp(b + "mlp.experts." + std::to_string(e) + "."));
      L.has_shared = cfg_.n_shared_experts > 0;
      if (L.has_shared) L.shared = mlp(b + "mlp.shared_experts.");
    }
    layers_.push_back(std::move(L));
  }
  final_norm_ = vector_f32(ckpt, "model.norm.weight");
  embed_tokens_ = weight(ckpt, "model.embed_tokens.weight");
  lm_head_ = weight(ckpt, "lm_head.weight");

  // RoPE table exactly as transformers builds it, all in float32: inv_freq = 1 / theta^(2i/d),
  // angle = float(pos) * inv_freq, then cos / sin of that float angle.
  const int half = cfg_.head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i)
    inv_freq[size_t(i)] = 1.0f / std::pow(cfg_.rope_theta, float(2 * i) / float(cfg_.head_dim));
  const size_t positions = size_t(cfg_.max_position_embeddings);
  rope_cos_.resize(positions * size_t(half));
  rope_sin_.resize(positions * size_t(half));
  for (size_t p = 0; p < positions; ++p)
    for (int i = 0; i < half; ++i) {
      const float angle = float(p) * inv_freq[size_t(i)];
      rope_cos_[p * size_t(half) + size_t(i)] = float(std::cos(double(angle)));
      rope_sin_[p * size_t(half) + size_t(i)] = float(std::sin(double(angle)));
    }
}

void Decoder::embed(std::span<const int32_t> ids, float* out) const {
  const int64_t hidden = cfg_.hidden;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= embed_tokens_.rows)
      fail("token id {} at index {} is outside the vocabulary [0, {})", ids[i], i, embed_tokens_.rows);
  const size_t row_bytes = size_t(hidden) * dtype_size(embed_tokens_.dtype);
  for (size_t i = 0; i < ids.size(); ++i)
    to_f32(embed_tokens_.dtype, static_cast<const uint8_t*>(embed_tokens_.data) + size_t(ids[i]) * row_bytes,
           out + int64_t(i) * hidden, size_t(hidden));
}

// q' = q cos + rotate_half(q) sin over each head, rotate_half(q) = [-q2, q1] (NeoX pairs (j, j + d/2)).
void Decoder::apply_rope(float* x, int n, int64_t ld, int first_position) const {
  const int half = cfg_.head_dim / 2;
  pool_.parallel_for(size_t(n), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* c = rope_cos_.data() + (size_t(first_position) + r) * size_t(half);
      const float* s = rope_sin_.data() + (size_t(first_position) + r) * size_t(half);
      for (int head = 0; head < cfg_.heads; ++head) {
        float* v = x + int64_t(r) * ld + int64_t(head) * cfg_.head_dim;
        for (int j = 0; j < half; ++j) {
          const float a = v[j], b = v[j + half];
          v[j] = a * c[j] - b * s[j];
          v[j + half] = b * c[j] + a * s[j];
        }
      }
    }
  }, 16);
}

void Decoder::attention(const Layer& L, int layer_index, Scratch& s, int n, KvCache& cache) {
  const int64_t width = int64_t(cfg_.heads) * cfg_.head_dim;
  const int first = cache.size();
  const cpu::LinearJob qkv[] = {{s.h.data(), n, L.q, s.q.data()},
                                {s.h.data(), n, L.k, s.k.data()},
                                {s.h.data(), n, L.v, s.v.data()}};
  cpu::linear_batch(pool_, qkv);
  for (const auto* w : {&L.q, &L.k, &L.v, &L.o}) note_read(*w);
  apply_rope(s.q.data(), n, width, first);
  apply_rope(s.k.data(), n, width, first);
  cache.store(layer_index, first, n, s.k.data(), width, s.v.data(), width);

  cpu::CacheAttentionArgs a{};
  a.q = s.q.data();
  a.ldq = width;
  a.k = cache.keys(layer_index);
  a.v = cache.values(layer_index);
  a.kv_dtype = cache.dtype();
  a.ldkv = cache.row_width();
  a.out = s.attn.data();
  a.ldo = width;
  a.tq = n;
  a.tk = first + n;
  a.heads = cfg_.heads;
  a.dim = cfg_.head_dim;
  a.scale = 1.0f / std::sqrt(float(cfg_.head_dim));
  a.q_offset = first;
  cpu::cache_attention(pool_, a);
  cpu::linear(pool_, s.attn.data(), n, L.o, nullptr, s.x.data(), /*accumulate=*/true);
}

void Decoder::moe(const Layer& L, int moe_index, Scratch& s, int n, DecoderProbe* probe) {
  const int experts = cfg_.n_routed_experts, top_k = cfg_.experts_per_token;

  // Router in float32: softmax over all experts, then the top-k probabilities (lowest id first on ties),
  // renormalised only when norm_topk_prob, times routed_scaling_factor.
  std::vector<float> probs(size_t(n) * size_t(experts));
  cpu::linear(pool_, s.h.data(), n, L.router, nullptr, probs.data());
  note_read(L.router);
  cpu::softmax_rows(probs.data(), n, experts);
  std::vector<int32_t> top_ids(size_t(n) * size_t(top_k));
  std::vector<float> top_weights(size_t(n) * size_t(top_k));
  std::vector<int32_t> order(static_cast<size_t>(experts));
  for (int r = 0; r < n; ++r) {
    const float* p = probs.data() + int64_t(r) * experts;
    const auto key = [&](int32_t e) { return std::isnan(p[e]) ? -std::numeric_limits<float>::infinity() : p[e]; };
    for (int e = 0; e < experts; ++e) order[size_t(e)] = e;
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int32_t a, int32_t b) {
      return key(a) != key(b) ? key(a) > key(b) : a < b;
    });
    float sum = 0;
    for (int j = 0; j < top_k; ++j) sum += p[order[size_t(j)]];
    for (int j = 0; j < top_k; ++j) {
      const int32_t e = order[size_t(j)];
      const float w = cfg_.norm_topk_prob ? p[e] / (sum + 1e-20f) : p[e];
      top_ids[size_t(r * top_k + j)] = e;
      top_weights[size_t(r * top_k + j)] = w * cfg_.routed_scaling_factor;
    }
  }
  if (probe) {
    const int rows = std::min(probe->rows, n);
    for (int i = 0; i < rows; ++i) {
      const int r = n - rows + i;
      const size_t dst = size_t(moe_index * probe->rows + i);
      std::copy_n(probs.data() + int64_t(r) * experts, experts, probe->router_probs.data() + dst * size_t(experts));
      std::copy_n(top_ids.data() + r * top_k, top_k, probe->router_topk_ids.data() + dst * size_t(top_k));
      std::copy_n(top_weights.data() + r * top_k, top_k, probe->router_topk_weights.data() + dst * size_t(top_k));
    }
  }

  // Rows routed to each expert, with their weights. The shared expert is one more route that sees
  // every row with weight 1.
  std::vector<Route> routes;
  {
    std::vector<Route> by_expert(static_cast<size_t>(experts));
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < top_k; ++j) {
        Route& route = by_expert[size_t(top_ids[size_t(r * top_k + j)])];
        route.rows.push_back(r);
        route.weights.push_back(top_weights[size_t(r * top_k + j)]);
      }
    for (int e = 0; e < experts; ++e)
      if (!by_expert[size_t(e)].rows.empty()) {
        by_expert[size_t(e)].mlp = &L.experts[size_t(e)];
        routes.push_back(std::move(by_expert[size_t(e)]));
      }
  }
  if (L.has_shared) routes.push_back(all_rows(L.shared, n));
  mlp_block(routes, s, n);
}

Decoder::Route Decoder::all_rows(const Mlp& mlp, int n) {
  Route route{&mlp, std::vector<int32_t>(static_cast<size_t>(n)), std::vector<float>(static_cast<size_t>(n), 1.0f)};
  for (int r = 0; r < n; ++r) route.rows[size_t(r)] = r;
  return route;
}

void Decoder::mlp_block(std::vector<Route>& routes, Scratch& s, int n) {
  const int64_t hidden = cfg_.hidden;
  // Passes of at most kPassRows gathered rows keep the scratch bounded for long prompts (a route
  // longer than that is split); a decode step is one pass in which every selected expert streams
  // its weights in the same two thread-pool rounds.
  constexpr size_t kPassRows = 2048;
  for (size_t i = 0; i < routes.size(); ++i)
    if (routes[i].rows.size() > kPassRows) {
      Route tail{routes[i].mlp, std::vector<int32_t>(routes[i].rows.begin() + kPassRows, routes[i].rows.end()),
                 std::vector<float>(routes[i].weights.begin() + kPassRows, routes[i].weights.end())};
      routes[i].rows.resize(kPassRows);
      routes[i].weights.resize(kPassRows);
      routes.push_back(std::move(tail));
    }

  std::vector<float> ffn_out(size_t(n * hidden), 0.0f);  // sum over routes of weight * mlp(h)
  std::vector<float> x_in, gate, up, y;
  for (size_t first = 0; first < routes.size();) {
    size_t last = first, rows = 0;
    int64_t inter_rows = 0;
    while (last < routes.size() && (last == first || rows + routes[last].rows.size() <= kPassRows)) {
      rows += routes[last].rows.size();
      inter_rows += int64_t(routes[last].rows.size()) * routes[last].mlp->gate.rows;
      ++last;
    }
    x_in.resize(rows * size_t(hidden));
    y.resize(rows * size_t(hidden));
    gate.resize(size_t(inter_rows));
    up.resize(size_t(inter_rows));

    std::vector<cpu::LinearJob> gate_up, down;
    int64_t row = 0, inter_offset = 0;
    for (size_t i = first; i < last; ++i) {
      const Route& route = routes[i];
      const int64_t m = int64_t(route.rows.size());
      for (int64_t j = 0; j < m; ++j)
        std::memcpy(rows_of(x_in, row + j, hidden), s.h.data() + int64_t(route.rows[size_t(j)]) * hidden,
                    size_t(hidden) * sizeof(float));
      gate_up.push_back({rows_of(x_in, row, hidden), m, route.mlp->gate, gate.data() + inter_offset});
      gate_up.push_back({rows_of(x_in, row, hidden), m, route.mlp->up, up.data() + inter_offset});
      down.push_back({gate.data() + inter_offset, m, route.mlp->down, rows_of(y, row, hidden)});
      for (const auto* w : {&route.mlp->gate, &route.mlp->up, &route.mlp->down}) note_read(*w);
      row += m;
      inter_offset += m * route.mlp->gate.rows;
    }
    cpu::linear_batch(pool_, gate_up);
    cpu::silu_mul(pool_, gate.data(), inter_rows, up.data(), inter_rows, 1, inter_rows);
    cpu::linear_batch(pool_, down);

    row = 0;
    for (size_t i = first; i < last; ++i) {
      const Route& route = routes[i];
      for (size_t j = 0; j < route.rows.size(); ++j, ++row) {
        float* out = ffn_out.data() + int64_t(route.rows[j]) * hidden;
        const float* src = y.data() + row * hidden;
        const float w = route.weights[j];
        for (int64_t c = 0; c < hidden; ++c) out[c] += w * src[c];
      }
    }
    first = last;
  }
  cpu::add_inplace(pool_, s.x.data(), ffn_out.data(), n * hidden);
}

void Decoder::forward(const float* embeddings, int n, KvCache& cache, float* last_logits, float* all_logits,
                      DecoderProbe* probe) {
  const int64_t hidden = cfg_.hidden, width = int64_t(cfg_.heads) * cfg_.head_dim, vocab = lm_head_.rows;
  if (n <= 0) fail("decoder: forward needs at least one token, got {}", n);
  if (cache.layers() != cfg_.layers || cache.row_width() != width)
    fail("decoder: KV cache ({} layers x {}) does not match the model ({} layers x {})", cache.layers(),
         cache.row_width(), cfg_.layers, width);
  const int first = cache.size();
  if (int64_t(first) + n > cache.capacity())
    fail("decoder: {} tokens after {} exceed the KV cache capacity of {} tokens", n, first, cache.capacity());

  const int probe_rows = probe ? std::min(probe->rows, n) : 0;
  if (probe) {
    if (probe->rows < 1) fail("decoder: probe rows must be positive, got {}", probe->rows);
    int moe_layers = 0;
    for (const Layer& L : layers_) moe_layers += L.moe ? 1 : 0;
    const size_t pr = size_t(probe->rows);
    probe->residual_after_layer.assign(size_t(cfg_.layers) * pr * size_t(hidden), 0.0f);
    probe->router_probs.assign(size_t(moe_layers) * pr * size_t(cfg_.n_routed_experts), 0.0f);
    probe->router_topk_ids.assign(size_t(moe_layers) * pr * size_t(cfg_.experts_per_token), -1);
    probe->router_topk_weights.assign(size_t(moe_layers) * pr * size_t(cfg_.experts_per_token), 0.0f);
    probe->final_norm_hidden.assign(pr * size_t(hidden), 0.0f);
    probe->logits.assign(pr * size_t(vocab), 0.0f);
  }

  Scratch s;
  s.x.assign(embeddings, embeddings + int64_t(n) * hidden);
  s.h.resize(size_t(n * hidden));
  s.q.resize(size_t(n * width));
  s.k.resize(size_t(n * width));
  s.v.resize(size_t(n * width));
  s.attn.resize(size_t(n * width));

  int moe_index = 0;
  for (int l = 0; l < cfg_.layers; ++l) {
    const Layer& L = layers_[size_t(l)];
    cpu::rms_norm(pool_, s.x.data(), n, hidden, L.input_norm.data(), cfg_.rms_norm_eps, s.h.data());
    attention(L, l, s, n, cache);
    cpu::rms_norm(pool_, s.x.data(), n, hidden, L.post_attention_norm.data(), cfg_.rms_norm_eps, s.h.data());
    if (L.moe) {
      moe(L, moe_index++, s, n, probe);
    } else {
      std::vector<Route> dense{all_rows(L.dense, n)};
      mlp_block(dense, s, n);
    }
    if (probe)
      std::copy_n(s.x.data() + int64_t(n - probe_rows) * hidden, probe_rows * hidden,
                  probe->residual_after_layer.data() + int64_t(l) * probe->rows * hidden);
  }
  cache.commit(n);

  // Final norm and lm_head only for the rows whose logits are wanted.
  const int rows = all_logits ? n : std::max(last_logits ? 1 : 0, probe_rows);
  if (rows == 0) return;
  const float* tail = s.x.data() + int64_t(n - rows) * hidden;
  cpu::rms_norm(pool_, tail, rows, hidden, final_norm_.data(), cfg_.rms_norm_eps, s.h.data());
  // Written in place when possible: a decode step should not allocate (and page in) a vocab-sized buffer.
  std::vector<float> tail_logits;
  float* logits = all_logits ? all_logits : rows == 1 ? last_logits : nullptr;
  if (!logits) {
    tail_logits.resize(size_t(rows) * size_t(vocab));
    logits = tail_logits.data();
  }
  cpu::linear(pool_, s.h.data(), rows, lm_head_, nullptr, logits);
  note_read(lm_head_);
  if (last_logits && logits != last_logits) std::copy_n(logits + int64_t(rows - 1) * vocab, vocab, last_logits);
  if (probe) {
    std::copy_n(s.h.data() + int64_t(rows - probe_rows) * hidden, probe_rows * hidden, probe->final_norm_hidden.data());
    std::copy_n(logits + int64_t(rows - probe_rows) * vocab, probe_rows * vocab, probe->logits.data());
  }
}

}  // namespace dsocr
