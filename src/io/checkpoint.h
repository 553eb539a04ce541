// An official DeepSeek-OCR model directory, opened as-is: config.json, tokenizer.json and the
// weights (one *.safetensors file, or the shards listed by model.safetensors.index.json), all
// memory-mapped. Every tensor the model needs is checked against the config at open time.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/safetensors.h"

namespace dsocr {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor of the official checkpoint layout for this config, in a stable order (spec §1.3).
// Includes the unused CLIP patch embedding and the I64 position_ids buffer.
std::vector<TensorSpec> checkpoint_layout(const ModelConfig& config);
inline constexpr const char* kPositionIdsName = "model.vision_model.embeddings.position_ids";

class Checkpoint {
 public:
  // Opens DIR; throws Error naming the file and the problem (missing file, truncated shard, missing
  // tensor, shape that disagrees with the config, ...).
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const std::string& tokenizer_path() const { return tokenizer_path_; }

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  TensorView tensor(const std::string& name) const;  // throws naming the tensor
  std::vector<std::string> tensor_names() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  size_t mapped_bytes() const;

 private:
  std::string dir_;
  ModelConfig config_;
  std::string tokenizer_path_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> where_;  // tensor name -> shard index
};

}  // namespace dsocr
