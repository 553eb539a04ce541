// CLIP-L tower of the DeepEncoder (spec §4.1-4.6) against the Backend: its own patch embedding is
// skipped, the SAM compressor output is the token sequence. Position tables for the grids of the
// given view sizes are fitted at load.
#pragma once
#include <map>
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"

namespace dsocr {

class ClipEncoder {
 public:
  // grids: the SAM output grids (n x n) this tower will see.
  ClipEncoder(const Checkpoint& ckpt, Backend& backend, const std::vector<int>& grids);

  // sam_tokens: [batch, n*n, width] (SAM output, channels-last). Writes the last hidden state with the
  // CLS token first to out: [batch, 1 + n*n, width]. Observer: "clip.embeddings", "clip.pre_layrnorm",
  // "clip.layer<i>", "clip.out_with_cls".
  void forward(const float* sam_tokens, int batch, int n, float* out, TensorObserver* observer = nullptr);

  int width() const { return config_.width; }
  // Host copy of the position table for an n x n grid: [1 + n*n, width], row 0 (CLS) unchanged.
  const std::vector<float>& position_embedding(int n) const;

 private:
  struct Layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    Weight qkv, out, fc1, fc2;
    const float *qkv_b, *out_b, *fc1_b, *fc2_b;
  };

  Backend& backend_;
  ClipConfig config_;
  const float* class_embedding_ = nullptr;
  const float *pre_ln_w_ = nullptr, *pre_ln_b_ = nullptr;
  std::vector<Layer> layers_;
  std::map<int, std::vector<float>> pos_host_;
  std::map<int, const float*> pos_;  // backend copies
};

}  // namespace dsocr
