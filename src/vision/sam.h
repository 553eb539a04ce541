// SAM ViT-B image encoder with the 16x conv compressor (spec §3), written against the Backend.
// Position tables for every view size of the resolution modes are built at load (never inside a
// forward call), so several encodes may run at once on different backends.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"

namespace dsocr {

class SamEncoder {
 public:
  // view_sizes: the square view sides this encoder will be asked to run (tables are fitted for
  // them at load); the official modes use 512, 640, 1024 and 1280.
  SamEncoder(const Checkpoint& ckpt, Backend& backend, const std::vector<int>& view_sizes);

  // pixels: [batch, 3, size, size] normalised (spec §5.1) in backend memory, size one of the view
  // sizes. Writes the compressor output channels-last to out: [batch, n, n, out_channels()],
  // n = output_grid(size). Intermediates ("sam.patch_embed_plus_pos", "sam.block<i>", "sam.neck",
  // "sam.net_2", "sam.net_3", channels-last) go to the observer.
  void forward(const float* pixels_chw, int batch, int size, float* out, TensorObserver* observer = nullptr);

  int out_channels() const { return config_.downsample_channels[1]; }
  int output_grid(int size) const;  // size / 64 for the supported sizes

  // Host copies of the fitted tables, for tests: the absolute position table for a grid x grid patch
  // grid ([grid, grid, width]) and the relative-position tables of `block` for a side x side
  // attention grid ({h, w}, each [2*side - 1, head_dim]). Throws for a size not fitted at load.
  const std::vector<float>& pos_embed(int grid) const;
  const std::pair<std::vector<float>, std::vector<float>>& rel_pos(int block, int side) const;

 private:
  struct Block {
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    Weight qkv, proj, lin1, lin2;
    const float *qkv_b, *proj_b, *lin1_b, *lin2_b;
    std::vector<float> rel_h, rel_w;  // checkpoint tables [length, head_dim] (host)
    bool global = false;
  };
  struct Tables {
    const float* pos = nullptr;                   // backend copy of pos_host_[grid]
    std::map<int, RelPos> rel;                    // block -> fitted tables (backend copies)
  };

  void run_block(int index, float* x, int batch, int grid, float* normed, float* wide, const Tables& tables);
  void fit_tables(int size);

  Backend& backend_;
  SamConfig config_;
  Weight patch_w_;
  const float* patch_b_ = nullptr;
  std::vector<float> pos_embed_;  // checkpoint table [pos_grid, pos_grid, width] (host)
  std::vector<Block> blocks_;
  Weight neck_conv1_, neck_conv2_, net2_, net3_;
  const float *neck_ln1_w_, *neck_ln1_b_, *neck_ln2_w_, *neck_ln2_b_;
  std::map<int, Tables> tables_;  // by patch grid
  std::map<int, std::vector<float>> pos_host_;
  std::map<std::pair<int, int>, std::pair<std::vector<float>, std::vector<float>>> rel_host_;
};

}  // namespace dsocr
