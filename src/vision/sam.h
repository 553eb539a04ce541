// SAM ViT-B image encoder with the 16x conv compressor (spec §3), float32 on the CPU with the
// checkpoint's bf16 weights used in place.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"

namespace dsocr {

// Receives named intermediate activations for inspection (names as in the golden files, e.g.
// "sam.block0", "clip.layer0"). Data is channels-last: shape {batch, height, width, channels} for
// token grids, {batch, tokens, channels} for sequences.
using IntermediateSink =
    std::function<void(const std::string& name, const float* data, const std::vector<int64_t>& shape)>;

class SamEncoder {
 public:
  SamEncoder(const Checkpoint& ckpt, ThreadPool& pool);

  // pixels: [batch, 3, size, size] normalised (spec §5.1), size a multiple of the patch size.
  // Returns the compressor output channels-last: [batch, n, n, out_channels()], n = output_grid(size).
  std::vector<float> forward(const float* pixels_chw, int batch, int size, const IntermediateSink* sink = nullptr);

  int out_channels() const { return config_.downsample_channels[1]; }
  int output_grid(int size) const;  // size / 64 for the supported sizes

  // The absolute position table fitted to a grid x grid patch grid: [grid, grid, width] (cached).
  const std::vector<float>& pos_embed(int grid);
  // The relative-position tables of `block` for a side x side attention grid: {h, w}, each
  // [2*side - 1, head_dim] (cached; resampled only when the checkpoint's length differs).
  const std::pair<std::vector<float>, std::vector<float>>& rel_pos(int block, int side);

 private:
  struct Block {
    std::vector<float> norm1_w, norm1_b, norm2_w, norm2_b;
    cpu::Weight qkv, proj, lin1, lin2;
    std::vector<float> qkv_b, proj_b, lin1_b, lin2_b;
    std::vector<float> rel_h, rel_w;  // checkpoint tables [length, head_dim]
    bool global = false;
  };

  void run_block(int index, float* x, int batch, int grid, float* normed, float* wide);

  ThreadPool& pool_;
  SamConfig config_;
  cpu::Weight patch_w_;
  std::vector<float> patch_b_, pos_embed_;  // pos_embed_: [pos_grid, pos_grid, width]
  std::vector<Block> blocks_;
  cpu::Weight neck_conv1_, neck_conv2_, net2_, net3_;
  std::vector<float> neck_ln1_w_, neck_ln1_b_, neck_ln2_w_, neck_ln2_b_;
  std::map<int, std::vector<float>> pos_cache_;
  std::map<std::pair<int, int>, std::pair<std::vector<float>, std::vector<float>>> rel_cache_;
};

}  // namespace dsocr
