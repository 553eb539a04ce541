#include "vision/clip.h"

#include <algorithm>
#include <string>

#include "backend/cpu/interpolate.h"
#include "core/error.h"

namespace dsocr {

namespace {
constexpr float kLayerNormEps = 1e-5f;
}

ClipEncoder::ClipEncoder(const Checkpoint& ckpt, Backend& backend, const std::vector<int>& grids)
    : backend_(backend), config_(ckpt.config().clip) {
  const std::string p = "model.vision_model.";
  auto constant = [&](const std::string& name) { return backend_.constant(ckpt.tensor(p + name)); };
  auto weight = [&](const std::string& name) { return backend_.weight(ckpt.tensor(p + name)); };

  class_embedding_ = constant("embeddings.class_embedding");
  pre_ln_w_ = constant("pre_layrnorm.weight");
  pre_ln_b_ = constant("pre_layrnorm.bias");
  for (int i = 0; i < config_.layers; ++i) {
    const std::string b = "transformer.layers." + std::to_string(i) + ".";
    Layer l;
    l.ln1_w = constant(b + "layer_norm1.weight");
    l.ln1_b = constant(b + "layer_norm1.bias");
    l.ln2_w = constant(b + "layer_norm2.weight");
    l.ln2_b = constant(b + "layer_norm2.bias");
    l.qkv = weight(b + "self_attn.qkv_proj.weight");
    l.qkv_b = constant(b + "self_attn.qkv_proj.bias");
    l.out = weight(b + "self_attn.out_proj.weight");
    l.out_b = constant(b + "self_attn.out_proj.bias");
    l.fc1 = weight(b + "mlp.fc1.weight");
    l.fc1_b = constant(b + "mlp.fc1.bias");
    l.fc2 = weight(b + "mlp.fc2.weight");
    l.fc2_b = constant(b + "mlp.fc2.bias");
    layers_.push_back(std::move(l));
  }

  // Position tables: the checkpoint's 16x16 grid (+ CLS) fitted to each grid, CLS row unchanged.
  const std::vector<float> table = ckpt.tensor(p + "embeddings.position_embedding.weight").to_f32();
  const int src = config_.pos_grid(), w = config_.width;
  for (int n : grids) {
    if (pos_host_.count(n)) continue;
    std::vector<float>& t = pos_host_[n];
    if (n == src) {
      t = table;
    } else {
      t.resize(size_t(1 + n * n) * w);
      std::copy_n(table.begin(), w, t.begin());
      cpu::resize_bicubic_antialias(table.data() + w, src, src, w, n, n, t.data() + w);
    }
    pos_[n] = backend_.constant(std::span<const float>(t));
  }
}

const std::vector<float>& ClipEncoder::position_embedding(int n) const {
  auto it = pos_host_.find(n);
  if (it == pos_host_.end()) fail("CLIP encoder: no position table for a {}x{} grid", n, n);
  return it->second;
}

void ClipEncoder::forward(const float* sam_tokens, int batch, int n, float* out, TensorObserver* observer) {
  const int w = config_.width;
  const int seq = 1 + n * n;
  const int64_t rows = int64_t(batch) * seq;
  auto found = pos_.find(n);
  if (found == pos_.end()) fail("CLIP encoder: a {}x{} grid was not prepared at load", n, n);
  Backend& be = backend_;
  Workspace& ws = be.workspace();
  WorkspaceScope scope(ws);

  // [CLS ; SAM tokens] + position embedding, into out (the residual stream).
  float* x = out;
  for (int b = 0; b < batch; ++b) {
    float* dst = x + int64_t(b) * seq * w;
    be.copy(dst, class_embedding_, size_t(w));
    be.copy(dst + w, sam_tokens + int64_t(b) * n * n * w, size_t(n) * n * w);
  }
  be.add_broadcast(x, rows, found->second, seq, w);
  observe(observer, be, "clip.embeddings", x, {batch, seq, w});
  be.layer_norm(x, rows, w, pre_ln_w_, pre_ln_b_, kLayerNormEps, x);
  observe(observer, be, "clip.pre_layrnorm", x, {batch, seq, w});

  float* normed = ws.floats(size_t(rows * w));
  float* wide = ws.floats(size_t(rows) * size_t(std::max(3 * w, config_.ffn)));
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    be.layer_norm(x, rows, w, l.ln1_w, l.ln1_b, kLayerNormEps, normed);
    be.linear(normed, rows, l.qkv, l.qkv_b, wide);
    be.attention_global(wide, batch, seq, config_.heads, config_.head_dim(), normed);
    be.linear(normed, rows, l.out, l.out_b, x, /*accumulate=*/true);

    be.layer_norm(x, rows, w, l.ln2_w, l.ln2_b, kLayerNormEps, normed);
    be.linear(normed, rows, l.fc1, l.fc1_b, wide);
    be.quick_gelu(wide, rows * config_.ffn);
    be.linear(wide, rows, l.fc2, l.fc2_b, x, /*accumulate=*/true);
    if (observer) observe(observer, be, "clip.layer" + std::to_string(i), x, {batch, seq, w});
  }
  observe(observer, be, "clip.out_with_cls", x, {batch, seq, w});
}

}  // namespace dsocr
