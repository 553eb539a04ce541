// The model's hyper-parameters, read from an official config.json (spec §2) with the official
// defaults for keys the file omits, and completed from tensor shapes where the official code
// hard-codes a size (golden README §A.2).
#pragma once
#include <cstdint>
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

// The ranges validate() allows (the official model's values in brackets). They are far above any
// DeepSeek-OCR-like model and keep everything the engine derives from a config bounded: tensor
// element counts stay below 2^48 (what a safetensors header may declare), whole-model products such
// as layers x hidden x vocab or layers x experts x intermediate x hidden stay below 2^52 (no int64
// overflow), sizes the model code computes in `int` (3 x width, window^2 x head_dim, 1 + grid^2)
// stay below 2^31, and the tables built at load time have a stated ceiling.
namespace config_limits {
inline constexpr int kMaxLayers = 256;         // per tower [SAM 12, CLIP 24, LM 12]
inline constexpr int kMaxWidth = 1 << 16;      // any channel count or hidden/intermediate size [<= 6848]
inline constexpr int kMaxHeadDim = 1024;       // per attention head [SAM 64, CLIP 64, LM 128]
inline constexpr int kMaxImageSize = 4096;     // a tower's native input side [SAM 1024, CLIP 224]
inline constexpr int kMaxPosGrid = 256;        // image_size / patch_size [SAM 64, CLIP 16]
inline constexpr int kMaxExperts = 512;        // routed, and shared, experts [64, 2]
inline constexpr int kMaxVocab = 1 << 20;      // vocab_size [129280]
inline constexpr int kMaxPositions = 1 << 20;  // max_position_embeddings [8192]
// The decoder's float32 RoPE cos/sin tables hold max_position_embeddings x head_dim floats:
// at most 2^27 of them (512 MiB) [8192 x 128 = 2^20, 4 MiB].
inline constexpr int64_t kMaxRopeEntries = int64_t(1) << 27;
// A float32 KV cache for the whole context (layers x max_position_embeddings x heads x head_dim x
// 4 bytes, for K and V) is reserved up front: at most 64 GiB [0.94 GiB].
inline constexpr int64_t kMaxKvCacheBytes = int64_t(64) << 30;
}  // namespace config_limits

// Throws Error unless every field of `config` is inside its range above and every coupling the
// engine relies on holds (width % heads == 0, an even RoPE head_dim, image_size % patch_size == 0,
// experts_per_token <= n_routed_experts, token ids inside the vocabulary, CLIP consuming SAM's
// channels, the projector mapping SAM + CLIP onto the LM's hidden size, ...). The message is one
// line: `what` (the file), the config.json key and the allowed range.
void validate(const ModelConfig& config, const std::string& what);

// Parses config.json text and validate()s it; `what` names the file in errors. Integer keys must
// be JSON integers that fit an int, float keys finite numbers that fit a float. Rejects
// configurations this engine cannot run (MLA, non-softmax routing, non-SiLU activation).
ModelConfig parse_model_config(const std::string& json_text, const std::string& what);
ModelConfig load_model_config(const std::string& path);

// The official config.json for the full-size model (used by synth-checkpoint).
std::string official_config_json();

}  // namespace dsocr
