// An official DeepSeek-OCR model directory, opened as-is: config.json, tokenizer.json and the
// weights (one *.safetensors file, or the shards listed by model.safetensors.index.json), all
// memory-mapped. Every tensor the model needs is checked against the config at open time.
#pragma once
#include <map>
#include <memory>
#include <set>
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
// Includes the unused CLIP patch embedding and the I64 position_ids buffer. `config` must have
// passed validate() (its bounds keep every shape product inside int64).
std::vector<TensorSpec> checkpoint_layout(const ModelConfig& config);
inline constexpr const char* kPositionIdsName = "model.vision_model.embeddings.position_ids";

// A tensor's header entry and the file that holds it (named in errors).
struct TensorLocation {
  const SafetensorsHeader::Entry* entry = nullptr;
  std::string file;
};

// Checks that every tensor of checkpoint_layout(config) is in `tensors` with exactly that shape and
// a float dtype (position_ids: any), so that no size the model code reads can disagree with
// config.json. Throws Error naming the file, the tensor and both shapes; a missing tensor names
// `dir`. Tensors outside the layout are ignored (Checkpoint::tensor refuses them).
void check_layout(const ModelConfig& config, const std::map<std::string, TensorLocation>& tensors,
                  const std::string& dir);

// Float parameter counts per component (spec §1.2), from the tensor headers.
struct ParameterCounts {
  int64_t sam = 0, clip = 0, projector = 0, special = 0;  // special: image_newline + view_seperator
  int64_t lm_embed = 0, lm_attention = 0, lm_dense_mlp = 0, lm_router = 0, lm_experts = 0, lm_shared = 0,
          lm_norms = 0, lm_head = 0;
  int64_t other = 0;       // float tensors outside the official layout
  int64_t non_float = 0;   // elements of integer buffers (position_ids)
  std::map<std::string, int64_t> dtypes;  // dtype name -> number of tensors
  int64_t lm() const {
    return lm_embed + lm_attention + lm_dense_mlp + lm_router + lm_experts + lm_shared + lm_norms + lm_head;
  }
  int64_t vision() const { return sam + clip + projector + special; }
  int64_t total() const { return vision() + lm() + other; }
  // Parameters one decode token touches: attention, dense MLP or top-k routed + shared experts, router, lm_head.
  int64_t active_per_token(const LmConfig& lm) const;
};

class Checkpoint {
 public:
  // Opens DIR; throws Error naming the file and the problem (missing file, truncated shard, missing
  // tensor, shape that disagrees with the config, ...).
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const std::string& tokenizer_path() const { return tokenizer_path_; }

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // A tensor of checkpoint_layout(config()), whose shape was checked at open time; throws naming
  // the tensor for any other name, so model code cannot read a size config.json did not vouch for.
  TensorView tensor(const std::string& name) const;
  std::vector<std::string> tensor_names() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  size_t mapped_bytes() const;
  // What the weights are, cheaply: the SHA-256 (16 hex digits) of config.json and of every shard's
  // header and size. Two directories with the same identity hold the same model (for any practical
  // purpose: a change of values that keeps every header and size is not seen).
  std::string identity() const;
  ParameterCounts count_parameters() const;

 private:
  std::string dir_;
  ModelConfig config_;
  std::string tokenizer_path_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> where_;  // tensor name -> shard index
  std::set<std::string> checked_;         // the names of checkpoint_layout(config_)
};

}  // namespace dsocr
