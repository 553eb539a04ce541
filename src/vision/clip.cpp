#include "vision/clip.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/interpolate.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/vit_attention.h"
#include "core/error.h"

namespace dsocr {

namespace {
constexpr float kLayerNormEps = 1e-5f;
}

ClipEncoder::ClipEncoder(const Checkpoint& ckpt, ThreadPool& pool) : pool_(pool), config_(ckpt.config().clip) {
  const std::string p = "model.vision_model.";
  auto f32 = [&](const std::string& name) { return ckpt.tensor(p + name).to_f32(); };
  auto weight = [&](const std::string& name) { return cpu::Weight::of(ckpt.tensor(p + name)); };

  class_embedding_ = f32("embeddings.class_embedding");
  position_embedding_ = f32("embeddings.position_embedding.weight");
  pre_ln_w_ = f32("pre_layrnorm.weight");
  pre_ln_b_ = f32("pre_layrnorm.bias");
  for (int i = 0; i < config_.layers; ++i) {
    const std::string b = "transformer.layers." + std::to_string(i) + ".";
    Layer l;
    l.ln1_w = f32(b + "layer_norm1.weight");
    l.ln1_b = f32(b + "layer_norm1.bias");
    l.ln2_w = f32(b + "layer_norm2.weight");
    l.ln2_b = f32(b + "layer_norm2.bias");
    l.qkv = weight(b + "self_attn.qkv_proj.weight");
    l.qkv_b = f32(b + "self_attn.qkv_proj.bias");
    l.out = weight(b + "self_attn.out_proj.weight");
    l.out_b = f32(b + "self_attn.out_proj.bias");
    l.fc1 = weight(b + "mlp.fc1.weight");
    l.fc1_b = f32(b + "mlp.fc1.bias");
    l.fc2 = weight(b + "mlp.fc2.weight");
    l.fc2_b = f32(b + "mlp.fc2.bias");
    layers_.push_back(std::move(l));
  }
}

const std::vector<float>& ClipEncoder::position_embedding(int n) {
  const int src = config_.pos_grid();
  if (n == src) return position_embedding_;
  auto it = pos_cache_.find(n);
  if (it == pos_cache_.end()) {
    const int w = config_.width;
    std::vector<float> table(size_t(1 + n * n) * w);
    std::copy_n(position_embedding_.begin(), w, table.begin());  // CLS row
    cpu::resize_bicubic_antialias(position_embedding_.data() + w, src, src, w, n, n, table.data() + w);
    it = pos_cache_.emplace(n, std::move(table)).first;
  }
  return it->second;
}

std::vector<float> ClipEncoder::forward(const float* sam_tokens, int batch, int n, const IntermediateSink* sink) {
  const int w = config_.width;
  const int seq = 1 + n * n;
  const int64_t rows = int64_t(batch) * seq;
  auto emit = [&](const std::string& name, const float* data) {
    if (sink && *sink) (*sink)(name, data, {batch, seq, w});
  };

  // [CLS ; SAM tokens] + position embedding.
  const std::vector<float>& pos = position_embedding(n);
  std::vector<float> x(size_t(rows * w));
  for (int b = 0; b < batch; ++b) {
    float* dst = x.data() + int64_t(b) * seq * w;
    std::memcpy(dst, class_embedding_.data(), size_t(w) * sizeof(float));
    std::memcpy(dst + w, sam_tokens + int64_t(b) * n * n * w, size_t(n) * n * w * sizeof(float));
    cpu::add_inplace(pool_, dst, pos.data(), int64_t(seq) * w);
  }
  emit("clip.embeddings", x.data());
  cpu::layer_norm(pool_, x.data(), rows, w, pre_ln_w_.data(), pre_ln_b_.data(), kLayerNormEps, x.data());
  emit("clip.pre_layrnorm", x.data());

  const cpu::AttentionShape shape{config_.heads, config_.head_dim()};
  std::vector<float> normed(x.size());
  std::vector<float> wide(size_t(rows) * size_t(std::max(3 * w, config_.ffn)));
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    cpu::layer_norm(pool_, x.data(), rows, w, l.ln1_w.data(), l.ln1_b.data(), kLayerNormEps, normed.data());
    cpu::linear(pool_, normed.data(), rows, l.qkv, l.qkv_b.data(), wide.data());
    cpu::attention_global(pool_, shape, wide.data(), batch, seq, normed.data());
    cpu::linear(pool_, normed.data(), rows, l.out, l.out_b.data(), x.data(), /*accumulate=*/true);

    cpu::layer_norm(pool_, x.data(), rows, w, l.ln2_w.data(), l.ln2_b.data(), kLayerNormEps, normed.data());
    cpu::linear(pool_, normed.data(), rows, l.fc1, l.fc1_b.data(), wide.data());
    cpu::quick_gelu(pool_, wide.data(), rows * config_.ffn);
    cpu::linear(pool_, wide.data(), rows, l.fc2, l.fc2_b.data(), x.data(), /*accumulate=*/true);
    emit("clip.layer" + std::to_string(i), x.data());
  }
  emit("clip.out_with_cls", x.data());
  return x;
}

}  // namespace dsocr
