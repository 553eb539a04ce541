// Writes a checkpoint directory in the official format (config.json, tokenizer.json,
// model-00001-of-000001.safetensors, model.safetensors.index.json) filled with random bf16 values
// of sane scales, so that speed and memory can be measured without the real weights.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace dsocr {

struct SynthOptions {
  std::string out_dir;
  std::string like;            // a config.json, or a model directory holding one; empty: the official full-size config
  std::string tokenizer;       // tokenizer.json to copy; empty: taken from `like` when it is a directory
  uint64_t seed = 1;
  bool sparse = false;         // leave the tensor data as holes (zeros): the full layout at no disk cost
  int threads = 0;             // 0: all cores
  std::function<void(uint64_t done, uint64_t total)> progress;  // bytes written so far
};

struct SynthResult {
  uint64_t bytes = 0;          // size of the safetensors file
  int tensors = 0;
  double seconds = 0;
};

SynthResult write_synthetic_checkpoint(const SynthOptions& options);

}  // namespace dsocr
