#include "vision/sam.h"

#include <algorithm>

#include "backend/cpu/interpolate.h"
#include "core/error.h"

namespace dsocr {

namespace {
constexpr float kLayerNormEps = 1e-6f;  // blocks and LayerNorm2d of the neck
constexpr ConvGeometry kDown{3, 2, 1};  // the compressor convs
}  // namespace

SamEncoder::SamEncoder(const Checkpoint& ckpt, Backend& backend, const std::vector<int>& view_sizes)
    : backend_(backend), config_(ckpt.config().sam) {
  const std::string p = "model.sam_model.";
  auto constant = [&](const std::string& name) { return backend_.constant(ckpt.tensor(p + name)); };
  auto host = [&](const std::string& name) { return ckpt.tensor(p + name).to_f32(); };
  auto weight = [&](const std::string& name) { return backend_.weight(ckpt.tensor(p + name)); };

  patch_w_ = weight("patch_embed.proj.weight");
  patch_b_ = constant("patch_embed.proj.bias");
  pos_embed_ = host("pos_embed");
  for (int i = 0; i < config_.layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    Block blk;
    blk.norm1_w = constant(b + "norm1.weight");
    blk.norm1_b = constant(b + "norm1.bias");
    blk.norm2_w = constant(b + "norm2.weight");
    blk.norm2_b = constant(b + "norm2.bias");
    blk.qkv = weight(b + "attn.qkv.weight");
    blk.qkv_b = constant(b + "attn.qkv.bias");
    blk.proj = weight(b + "attn.proj.weight");
    blk.proj_b = constant(b + "attn.proj.bias");
    blk.lin1 = weight(b + "mlp.lin1.weight");
    blk.lin1_b = constant(b + "mlp.lin1.bias");
    blk.lin2 = weight(b + "mlp.lin2.weight");
    blk.lin2_b = constant(b + "mlp.lin2.bias");
    blk.rel_h = host(b + "attn.rel_pos_h");
    blk.rel_w = host(b + "attn.rel_pos_w");
    blk.global = config_.is_global(i);
    blocks_.push_back(std::move(blk));
  }
  neck_conv1_ = weight("neck.0.weight");
  neck_ln1_w_ = constant("neck.1.weight");
  neck_ln1_b_ = constant("neck.1.bias");
  neck_conv2_ = weight("neck.2.weight");
  neck_ln2_w_ = constant("neck.3.weight");
  neck_ln2_b_ = constant("neck.3.bias");
  net2_ = weight("net_2.weight");
  net3_ = weight("net_3.weight");
  for (int size : view_sizes) fit_tables(size);
}

int SamEncoder::output_grid(int size) const { return kDown.out_size(kDown.out_size(size / config_.patch)); }

// Position tables fitted to one view size, kept on the host (for tests) and in the backend.
void SamEncoder::fit_tables(int size) {
  if (size < config_.patch || size % config_.patch != 0)
    fail("SAM encoder: view size {} is not a positive multiple of the patch size {}", size, config_.patch);
  const int grid = size / config_.patch, src = config_.pos_grid();
  if (tables_.count(grid)) return;
  std::vector<float>& pos = pos_host_[grid];
  if (grid == src) {
    pos = pos_embed_;
  } else {
    pos.resize(size_t(grid) * grid * config_.width);
    cpu::resize_bicubic_antialias(pos_embed_.data(), src, src, config_.width, grid, grid, pos.data());
  }
  Tables& t = tables_[grid];
  t.pos = backend_.constant(std::span<const float>(pos));
  const int dim = config_.head_dim();
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& blk = blocks_[i];
    const int side = blk.global ? grid : config_.window;
    auto key = std::make_pair(int(i), side);
    if (!rel_host_.count(key)) {
      const int length = 2 * side - 1;
      auto fit = [&](const std::vector<float>& table) {
        const int have = int(table.size()) / dim;
        if (have == length) return table;
        std::vector<float> resized(size_t(length) * dim);
        cpu::resize_linear(table.data(), have, dim, length, resized.data());
        return resized;
      };
      rel_host_[key] = {fit(blk.rel_h), fit(blk.rel_w)};
    }
    const auto& [h, w] = rel_host_[key];
    t.rel[int(i)] = {backend_.constant(std::span<const float>(h)), backend_.constant(std::span<const float>(w))};
  }
}

const std::vector<float>& SamEncoder::pos_embed(int grid) const {
  auto it = pos_host_.find(grid);
  if (it == pos_host_.end()) fail("SAM encoder: no position table for a {}x{} grid", grid, grid);
  return it->second;
}

const std::pair<std::vector<float>, std::vector<float>>& SamEncoder::rel_pos(int block, int side) const {
  auto it = rel_host_.find({block, side});
  if (it == rel_host_.end()) fail("SAM encoder: no relative-position table of block {} for side {}", block, side);
  return it->second;
}

// x += Attn(LN1(x)); x += MLP(LN2(x)) over batch grids of grid x grid tokens (spec §3.3-3.4).
// normed: [tokens, width] scratch; wide: [tokens, max(3*width, mlp_dim)] scratch.
void SamEncoder::run_block(int index, float* x, int batch, int grid, float* normed, float* wide, const Tables& tables) {
  const Block& blk = blocks_[size_t(index)];
  const int width = config_.width;
  const int64_t tokens = int64_t(batch) * grid * grid;
  Backend& be = backend_;

  be.layer_norm(x, tokens, width, blk.norm1_w, blk.norm1_b, kLayerNormEps, normed);
  float* qkv = wide;
  be.linear(normed, tokens, blk.qkv, blk.qkv_b, qkv);
  float* attn = normed;  // the normalised input is no longer needed
  const RelPos& rel = tables.rel.at(index);
  if (blk.global) {
    be.attention_global(qkv, batch, grid * grid, config_.heads, config_.head_dim(), attn, &rel, grid, grid);
  } else {
    // Windows are zero-padded after norm1, so a padded token's projection is exactly the qkv bias.
    be.attention_windowed(qkv, batch, grid, config_.window, config_.heads, config_.head_dim(), blk.qkv_b, attn, &rel);
  }
  be.linear(attn, tokens, blk.proj, blk.proj_b, x, /*accumulate=*/true);

  be.layer_norm(x, tokens, width, blk.norm2_w, blk.norm2_b, kLayerNormEps, normed);
  float* hidden = wide;
  be.linear(normed, tokens, blk.lin1, blk.lin1_b, hidden);
  be.gelu_erf(hidden, tokens * config_.mlp_dim);
  be.linear(hidden, tokens, blk.lin2, blk.lin2_b, x, /*accumulate=*/true);
}

void SamEncoder::forward(const float* pixels_chw, int batch, int size, float* out, TensorObserver* observer) {
  const int patch = config_.patch, width = config_.width;
  if (batch < 1 || size < patch || size % patch != 0)
    fail("SAM encoder: view size {} is not a positive multiple of the patch size {}", size, patch);
  const int grid = size / patch;
  auto found = tables_.find(grid);
  if (found == tables_.end()) fail("SAM encoder: view size {} was not prepared at load", size);
  const Tables& tables = found->second;
  const int64_t tokens = int64_t(batch) * grid * grid;
  Backend& be = backend_;
  Workspace& ws = be.workspace();
  WorkspaceScope scope(ws);

  // Patch embedding: a stride-16 convolution, done on channels-last pixels.
  float* x = ws.floats(size_t(tokens * width));
  {
    WorkspaceScope pixels_scope(ws);
    float* pixels_hwc = ws.floats(size_t(batch) * size * size * 3);
    be.chw_to_hwc(pixels_chw, batch, 3, size, pixels_hwc);
    be.conv2d(pixels_hwc, batch, size, size, patch_w_, patch_b_, {patch, patch, 0}, x);
  }
  be.add_broadcast(x, tokens, tables.pos, int64_t(grid) * grid, width);
  observe(observer, be, "sam.patch_embed_plus_pos", x, {batch, grid, grid, width});

  {
    WorkspaceScope blocks_scope(ws);
    float* normed = ws.floats(size_t(tokens * width));
    float* wide = ws.floats(size_t(tokens) * size_t(std::max(3 * width, config_.mlp_dim)));
    for (int i = 0; i < config_.layers; ++i) {
      run_block(i, x, batch, grid, normed, wide, tables);
      if (observer) observe(observer, be, "sam.block" + std::to_string(i), x, {batch, grid, grid, width});
    }
  }

  // Neck: conv1x1 -> LayerNorm2d -> conv3x3 -> LayerNorm2d; then the compressor convs (no norm, no activation).
  const int nc = config_.neck_channels;
  float* neck_a = ws.floats(size_t(tokens * nc));
  float* neck_b = ws.floats(size_t(tokens * nc));
  be.conv2d(x, batch, grid, grid, neck_conv1_, nullptr, {1, 1, 0}, neck_a);
  be.layer_norm(neck_a, tokens, nc, neck_ln1_w_, neck_ln1_b_, kLayerNormEps, neck_a);
  be.conv2d(neck_a, batch, grid, grid, neck_conv2_, nullptr, {3, 1, 1}, neck_b);
  be.layer_norm(neck_b, tokens, nc, neck_ln2_w_, neck_ln2_b_, kLayerNormEps, neck_b);
  observe(observer, be, "sam.neck", neck_b, {batch, grid, grid, nc});

  const int g2 = kDown.out_size(grid), g3 = kDown.out_size(g2);
  float* net2 = ws.floats(size_t(batch) * g2 * g2 * size_t(net2_.rows));
  be.conv2d(neck_b, batch, grid, grid, net2_, nullptr, kDown, net2);
  observe(observer, be, "sam.net_2", net2, {batch, g2, g2, net2_.rows});
  be.conv2d(net2, batch, g2, g2, net3_, nullptr, kDown, out);
  observe(observer, be, "sam.net_3", out, {batch, g3, g3, net3_.rows});
}

}  // namespace dsocr
