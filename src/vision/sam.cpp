#include "vision/sam.h"

#include <algorithm>

#include "backend/cpu/conv.h"
#include "backend/cpu/interpolate.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/vit_attention.h"
#include "core/error.h"

namespace dsocr {

namespace {
constexpr float kLayerNormEps = 1e-6f;  // blocks and LayerNorm2d of the neck
}

SamEncoder::SamEncoder(const Checkpoint& ckpt, ThreadPool& pool) : pool_(pool), config_(ckpt.config().sam) {
  const std::string p = "model.sam_model.";
  auto f32 = [&](const std::string& name) { return ckpt.tensor(p + name).to_f32(); };
  auto weight = [&](const std::string& name) { return cpu::Weight::of(ckpt.tensor(p + name)); };

  patch_w_ = weight("patch_embed.proj.weight");
  patch_b_ = f32("patch_embed.proj.bias");
  pos_embed_ = f32("pos_embed");
  for (int i = 0; i < config_.layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    Block blk;
    blk.norm1_w = f32(b + "norm1.weight");
    blk.norm1_b = f32(b + "norm1.bias");
    blk.norm2_w = f32(b + "norm2.weight");
    blk.norm2_b = f32(b + "norm2.bias");
    blk.qkv = weight(b + "attn.qkv.weight");
    blk.qkv_b = f32(b + "attn.qkv.bias");
    blk.proj = weight(b + "attn.proj.weight");
    blk.proj_b = f32(b + "attn.proj.bias");
    blk.lin1 = weight(b + "mlp.lin1.weight");
    blk.lin1_b = f32(b + "mlp.lin1.bias");
    blk.lin2 = weight(b + "mlp.lin2.weight");
    blk.lin2_b = f32(b + "mlp.lin2.bias");
    blk.rel_h = f32(b + "attn.rel_pos_h");
    blk.rel_w = f32(b + "attn.rel_pos_w");
    blk.global = config_.is_global(i);
    blocks_.push_back(std::move(blk));
  }
  neck_conv1_ = weight("neck.0.weight");
  neck_ln1_w_ = f32("neck.1.weight");
  neck_ln1_b_ = f32("neck.1.bias");
  neck_conv2_ = weight("neck.2.weight");
  neck_ln2_w_ = f32("neck.3.weight");
  neck_ln2_b_ = f32("neck.3.bias");
  net2_ = weight("net_2.weight");
  net3_ = weight("net_3.weight");
}

int SamEncoder::output_grid(int size) const {
  constexpr cpu::ConvGeometry down{3, 2, 1};
  return down.out_size(down.out_size(size / config_.patch));
}

const std::vector<float>& SamEncoder::pos_embed(int grid) {
  const int src = config_.pos_grid();
  if (grid == src) return pos_embed_;
  auto it = pos_cache_.find(grid);
  if (it == pos_cache_.end()) {
    std::vector<float> resized(size_t(grid) * grid * config_.width);
    cpu::resize_bicubic_antialias(pos_embed_.data(), src, src, config_.width, grid, grid, resized.data());
    it = pos_cache_.emplace(grid, std::move(resized)).first;
  }
  return it->second;
}

const std::pair<std::vector<float>, std::vector<float>>& SamEncoder::rel_pos(int block, int side) {
  auto key = std::make_pair(block, side);
  auto it = rel_cache_.find(key);
  if (it == rel_cache_.end()) {
    const Block& blk = blocks_.at(size_t(block));
    const int dim = config_.head_dim(), length = 2 * side - 1;
    auto fit = [&](const std::vector<float>& table) {
      const int have = int(table.size()) / dim;
      if (have == length) return table;
      std::vector<float> resized(size_t(length) * dim);
      cpu::resize_linear(table.data(), have, dim, length, resized.data());
      return resized;
    };
    it = rel_cache_.emplace(key, std::make_pair(fit(blk.rel_h), fit(blk.rel_w))).first;
  }
  return it->second;
}

// x += Attn(LN1(x)); x += MLP(LN2(x)) over batch grids of grid x grid tokens (spec §3.3-3.4).
// normed: [tokens, width] scratch; wide: [tokens, max(3*width, mlp_dim)] scratch.
void SamEncoder::run_block(int index, float* x, int batch, int grid, float* normed, float* wide) {
  Block& blk = blocks_[size_t(index)];
  const int width = config_.width;
  const int64_t tokens = int64_t(batch) * grid * grid;
  const cpu::AttentionShape shape{config_.heads, config_.head_dim()};

  cpu::layer_norm(pool_, x, tokens, width, blk.norm1_w.data(), blk.norm1_b.data(), kLayerNormEps, normed);
  float* qkv = wide;
  cpu::linear(pool_, normed, tokens, blk.qkv, blk.qkv_b.data(), qkv);
  float* attn = normed;  // the normalised input is no longer needed
  if (blk.global) {
    const auto& [rh, rw] = rel_pos(index, grid);
    const cpu::RelPosTables rel{rh.data(), rw.data()};
    cpu::attention_global(pool_, shape, qkv, batch, grid * grid, attn, &rel, grid, grid);
  } else {
    // Windows are zero-padded after norm1, so a padded token's projection is exactly the qkv bias.
    const auto& [rh, rw] = rel_pos(index, config_.window);
    const cpu::RelPosTables rel{rh.data(), rw.data()};
    cpu::attention_windowed(pool_, shape, qkv, batch, grid, config_.window, blk.qkv_b.data(), attn, &rel);
  }
  cpu::linear(pool_, attn, tokens, blk.proj, blk.proj_b.data(), x, /*accumulate=*/true);

  cpu::layer_norm(pool_, x, tokens, width, blk.norm2_w.data(), blk.norm2_b.data(), kLayerNormEps, normed);
  float* hidden = wide;
  cpu::linear(pool_, normed, tokens, blk.lin1, blk.lin1_b.data(), hidden);
  cpu::gelu_erf(pool_, hidden, tokens * config_.mlp_dim);
  cpu::linear(pool_, hidden, tokens, blk.lin2, blk.lin2_b.data(), x, /*accumulate=*/true);
}

std::vector<float> SamEncoder::forward(const float* pixels_chw, int batch, int size, const IntermediateSink* sink) {
  const int patch = config_.patch, width = config_.width;
  if (batch < 1 || size < patch || size % patch != 0)
    fail("SAM encoder: view size {} is not a positive multiple of the patch size {}", size, patch);
  const int grid = size / patch;
  const int64_t tokens = int64_t(batch) * grid * grid;
  auto emit = [&](const char* name, const float* data, std::vector<int64_t> shape) {
    if (sink && *sink) (*sink)(name, data, shape);
  };

  // Patch embedding: a stride-16 convolution, done on channels-last pixels.
  std::vector<float> x(size_t(tokens * width));
  {
    std::vector<float> pixels_hwc(size_t(batch) * size * size * 3);
    const int64_t plane = int64_t(size) * size;
    for (int b = 0; b < batch; ++b)
      for (int64_t i = 0; i < plane; ++i)
        for (int c = 0; c < 3; ++c) pixels_hwc[size_t((b * plane + i) * 3 + c)] = pixels_chw[(b * 3 + c) * plane + i];
    cpu::conv2d_nhwc(pool_, pixels_hwc.data(), batch, size, size, patch_w_, patch_b_.data(), {patch, patch, 0}, x.data());
  }
  const std::vector<float>& pos = pos_embed(grid);
  for (int b = 0; b < batch; ++b) cpu::add_inplace(pool_, x.data() + size_t(b) * pos.size(), pos.data(), int64_t(pos.size()));
  emit("sam.patch_embed_plus_pos", x.data(), {batch, grid, grid, width});

  {
    std::vector<float> normed(x.size());
    std::vector<float> wide(size_t(tokens) * size_t(std::max(3 * width, config_.mlp_dim)));
    for (int i = 0; i < config_.layers; ++i) {
      run_block(i, x.data(), batch, grid, normed.data(), wide.data());
      emit(("sam.block" + std::to_string(i)).c_str(), x.data(), {batch, grid, grid, width});
    }
  }

  // Neck: conv1x1 -> LayerNorm2d -> conv3x3 -> LayerNorm2d; then the compressor convs (no norm, no activation).
  const int nc = config_.neck_channels;
  std::vector<float> neck_a(size_t(tokens * nc)), neck_b(size_t(tokens * nc));
  cpu::conv2d_nhwc(pool_, x.data(), batch, grid, grid, neck_conv1_, nullptr, {1, 1, 0}, neck_a.data());
  cpu::layer_norm(pool_, neck_a.data(), tokens, nc, neck_ln1_w_.data(), neck_ln1_b_.data(), kLayerNormEps, neck_a.data());
  cpu::conv2d_nhwc(pool_, neck_a.data(), batch, grid, grid, neck_conv2_, nullptr, {3, 1, 1}, neck_b.data());
  cpu::layer_norm(pool_, neck_b.data(), tokens, nc, neck_ln2_w_.data(), neck_ln2_b_.data(), kLayerNormEps, neck_b.data());
  emit("sam.neck", neck_b.data(), {batch, grid, grid, nc});

  constexpr cpu::ConvGeometry down{3, 2, 1};
  const int g2 = down.out_size(grid), g3 = down.out_size(g2);
  std::vector<float> net2(size_t(batch) * g2 * g2 * net2_.rows);
  cpu::conv2d_nhwc(pool_, neck_b.data(), batch, grid, grid, net2_, nullptr, down, net2.data());
  emit("sam.net_2", net2.data(), {batch, g2, g2, net2_.rows});
  std::vector<float> net3(size_t(batch) * g3 * g3 * net3_.rows);
  cpu::conv2d_nhwc(pool_, net2.data(), batch, g2, g2, net3_, nullptr, down, net3.data());
  emit("sam.net_3", net3.data(), {batch, g3, g3, net3_.rows});
  return net3;
}

}  // namespace dsocr
