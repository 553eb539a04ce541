// The model's hyper-parameters, read from an official config.json (spec §2) with the official
// defaults for keys the file omits, and completed from tensor shapes where the official code
// hard-codes a size (golden README §A.2).
#pragma once
#include <string>
#include <vector>

namespace dsocr {

struct SamConfig {
  int width = 768, layers = 12, heads = 12, mlp_dim = 3072;
  int window = 14, patch = 16, image_size = 1024, neck_channels = 256;
  std::vector<int> global_attn_indexes = {2, 5, 8, 11};
  std::vector<int> downsample_channels = {512, 1024};  // net_2, net_3 outputs
  int head_dim() const { return width / heads; }
  int pos_grid() const { return image_size / patch; }  // 64
  bool is_global(int block) const;
};

struct ClipConfig {
  int width = 1024, layers = 24, heads = 16, ffn = 4096;
  int image_size = 224, patch = 14;
  int head_dim() const { return width / heads; }
  int pos_grid() const { return image_size / patch; }  // 16 (plus one CLS row)
};

struct ProjectorConfig {
  int input_dim = 2048, n_embed = 1280;
};

struct LmConfig {
  int hidden = 1280, layers = 12, heads = 10, kv_heads = 10, head_dim = 128;
  int intermediate = 6848, moe_intermediate = 896;
  int n_routed_experts = 64, n_shared_experts = 2, experts_per_token = 6;
  int first_k_dense_replace = 1, moe_layer_freq = 1;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  int max_position_embeddings = 8192;
  int vocab_size = 129280;
  int bos_token_id = 0, eos_token_id = 1;
  bool is_moe_layer(int layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  int shared_intermediate() const { return moe_intermediate * n_shared_experts; }
};

struct ModelConfig {
  SamConfig sam;
  ClipConfig clip;
  ProjectorConfig projector;
  LmConfig lm;
  int image_token_id = 128815;
  std::string name;  // _name_or_path, informational
};

// Parses config.json text; `what` names the file in errors. Rejects configurations this engine
// cannot run (MLA, non-softmax routing, non-SiLU activation) with a clear message.
ModelConfig parse_model_config(const std::string& json_text, const std::string& what);
ModelConfig load_model_config(const std::string& path);

// The official config.json for the full-size model (used by synth-checkpoint).
std::string official_config_json();

}  // namespace dsocr
