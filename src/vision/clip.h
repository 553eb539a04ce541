// CLIP-L tower of the DeepEncoder (spec §4.1-4.6): its own patch embedding is skipped, the SAM
// compressor output is the token sequence. Float32 on the CPU, bf16 weights used in place.
#pragma once
#include <map>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "vision/sam.h"

namespace dsocr {

class ClipEncoder {
 public:
  ClipEncoder(const Checkpoint& ckpt, ThreadPool& pool);

  // sam_tokens: [batch, n*n, width] (SAM output, channels-last). Returns the last hidden state with
  // the CLS token first: [batch, 1 + n*n, width].
  std::vector<float> forward(const float* sam_tokens, int batch, int n, const IntermediateSink* sink = nullptr);

  int width() const { return config_.width; }
  // Position table for an n x n grid: [1 + n*n, width], row 0 (CLS) unchanged (cached).
  const std::vector<float>& position_embedding(int n);

 private:
  struct Layer {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
    cpu::Weight qkv, out, fc1, fc2;
    std::vector<float> qkv_b, out_b, fc1_b, fc2_b;
  };

  ThreadPool& pool_;
  ClipConfig config_;
  std::vector<float> class_embedding_, position_embedding_, pre_ln_w_, pre_ln_b_;
  std::vector<Layer> layers_;
  std::map<int, std::vector<float>> pos_cache_;
};

}  // namespace dsocr
