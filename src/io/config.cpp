#include "io/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/files.h"

namespace dsocr {

using nlohmann::json;

bool SamConfig::is_global(int block) const {
  return std::find(global_attn_indexes.begin(), global_attn_indexes.end(), block) != global_attn_indexes.end();
}

namespace {

// Reads key from obj into out when present (null counts as absent); the JSON type must match.
template <typename T>
void read(const json& obj, const char* key, T* out, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    fail("{}: key '{}' has the wrong type ({})", what, key, it->type_name());
  }
}

// An int from a JSON integer; refuses floats (nlohmann would truncate 12.7 to 12) and values
// outside int (a cast would wrap 2^32 + 12 to 12, or be undefined for a double).
int to_int(const json& v, const char* key, const std::string& what) {
  if (!v.is_number_integer())
    fail("{}: key '{}' has the wrong type ({}; expected an integer)", what, key, v.type_name());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int>::max())) fail("{}: key '{}' is {}, outside the int range", what, key, u);
    return int(u);
  }
  const int64_t i = v.get<int64_t>();
  if (i < std::numeric_limits<int>::min() || i > std::numeric_limits<int>::max())
    fail("{}: key '{}' is {}, outside the int range", what, key, i);
  return int(i);
}

template <>
void read<int>(const json& obj, const char* key, int* out, const std::string& what) {
  auto it = obj.find(key);
  if (it != obj.end() && !it->is_null()) *out = to_int(*it, key, what);
}

template <>
void read<std::vector<int>>(const json& obj, const char* key, std::vector<int>* out, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_array())
    fail("{}: key '{}' has the wrong type ({}; expected an array of integers)", what, key, it->type_name());
  out->clear();
  for (const json& v : *it) out->push_back(to_int(v, key, what));
}

// A float from any JSON number; one beyond float's range is refused here (the cast would be
// undefined), the rest is validate()'s business.
template <>
void read<float>(const json& obj, const char* key, float* out, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_number()) fail("{}: key '{}' has the wrong type ({}; expected a number)", what, key, it->type_name());
  const double d = it->get<double>();
  if (!(std::fabs(d) <= double(std::numeric_limits<float>::max())))
    fail("{}: key '{}' is {}, outside the float range", what, key, d);
  *out = float(d);
}

// 4 x width, the official mlp_ratio, saturated: an absurd width is reported by validate(), not
// turned into an overflow here.
int four_times(int width) {
  return int(std::clamp<int64_t>(4 * int64_t(width), std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

// The config.json paths named in validate()'s messages.
constexpr const char* kSam = "vision_config.width.sam_vit_b.";
constexpr const char* kClip = "vision_config.width.clip-l-14-224.";
constexpr const char* kProjector = "projector_config.";

// Checks validate() runs, each naming the config.json key and what it allows.
struct Checker {
  const std::string& what;

  void range(int64_t v, int64_t lo, int64_t hi, std::string_view key, std::string_view prefix = "") const {
    if (v < lo || v > hi) fail("{}: '{}{}' is {}, allowed range [{}, {}]", what, prefix, key, v, lo, hi);
  }
  void positive_finite(float v, std::string_view key) const {
    if (!(std::isfinite(v) && v > 0)) fail("{}: '{}' is {}, must be a finite number > 0", what, key, v);
  }
  // heads in [1, width], width % heads == 0 and width / heads <= kMaxHeadDim.
  void heads(int width, int heads, std::string_view width_key, std::string_view heads_key,
             std::string_view prefix = "") const {
    range(heads, 1, width, heads_key, prefix);
    if (width % heads != 0)
      fail("{}: '{}{}' {} is not divisible by '{}{}' {}", what, prefix, width_key, width, prefix, heads_key, heads);
    if (width / heads > config_limits::kMaxHeadDim)
      fail("{}: '{}{}' {} / '{}' {} gives a head size of {}, allowed at most {}", what, prefix, width_key, width,
           heads_key, heads, width / heads, config_limits::kMaxHeadDim);
  }
  // image_size in [1, kMaxImageSize], patch_size in [1, image_size] dividing it, grid <= kMaxPosGrid.
  void patch_grid(int image_size, int patch, std::string_view prefix) const {
    range(image_size, 1, config_limits::kMaxImageSize, "image_size", prefix);
    range(patch, 1, image_size, "patch_size", prefix);
    if (image_size % patch != 0)
      fail("{}: '{}patch_size' {} does not divide '{}image_size' {}", what, prefix, patch, prefix, image_size);
    if (image_size / patch > config_limits::kMaxPosGrid)
      fail("{}: '{}image_size' {} / 'patch_size' {} gives a {}-patch position grid, allowed at most {}", what, prefix,
           image_size, patch, image_size / patch, config_limits::kMaxPosGrid);
  }
};

}  // namespace

void validate(const ModelConfig& c, const std::string& what) {
  using namespace config_limits;
  const Checker check{what};

  // Language model (keys at the top level or in language_config).
  const LmConfig& lm = c.lm;
  check.range(lm.hidden, 1, kMaxWidth, "hidden_size");
  check.range(lm.layers, 1, kMaxLayers, "num_hidden_layers");
  check.heads(lm.hidden, lm.heads, "hidden_size", "num_attention_heads");
  if (lm.kv_heads != lm.heads)
    fail("{}: 'num_key_value_heads' {} must equal 'num_attention_heads' {} (grouped-query attention is not supported)",
         what, lm.kv_heads, lm.heads);
  check.range(lm.head_dim, 2, kMaxHeadDim, "head_dim");
  if (lm.head_dim % 2 != 0) fail("{}: 'head_dim' {} must be even (RoPE rotates pairs)", what, lm.head_dim);
  if (int64_t(lm.heads) * lm.head_dim > kMaxWidth)
    fail("{}: 'num_attention_heads' {} x 'head_dim' {} is {}, allowed at most {}", what, lm.heads, lm.head_dim,
         int64_t(lm.heads) * lm.head_dim, kMaxWidth);
  check.range(lm.intermediate, 1, kMaxWidth, "intermediate_size");
  check.range(lm.n_routed_experts, 0, kMaxExperts, "n_routed_experts");  // 0: every layer dense
  check.range(lm.first_k_dense_replace, 0, lm.layers, "first_k_dense_replace");
  check.range(lm.moe_layer_freq, 1, lm.layers, "moe_layer_freq");
  if (lm.n_routed_experts > 0) {
    check.range(lm.moe_intermediate, 1, kMaxWidth, "moe_intermediate_size");
    check.range(lm.experts_per_token, 1, lm.n_routed_experts, "num_experts_per_tok");
    check.range(lm.n_shared_experts, 0, kMaxExperts, "n_shared_experts");
    if (int64_t(lm.moe_intermediate) * lm.n_shared_experts > kMaxWidth)
      fail("{}: 'moe_intermediate_size' {} x 'n_shared_experts' {} (the shared experts' width) is {}, "
           "allowed at most {}",
           what, lm.moe_intermediate, lm.n_shared_experts, int64_t(lm.moe_intermediate) * lm.n_shared_experts,
           kMaxWidth);
    check.positive_finite(lm.routed_scaling_factor, "routed_scaling_factor");
  }
  check.positive_finite(lm.rms_norm_eps, "rms_norm_eps");
  check.positive_finite(lm.rope_theta, "rope_theta");
  check.range(lm.max_position_embeddings, 1, kMaxPositions, "max_position_embeddings");
  if (int64_t(lm.max_position_embeddings) * lm.head_dim > kMaxRopeEntries)
    fail("{}: 'max_position_embeddings' {} x 'head_dim' {} RoPE entries exceed {} (a {} MiB table)", what,
         lm.max_position_embeddings, lm.head_dim, kMaxRopeEntries, (kMaxRopeEntries * 4) >> 20);
  const int64_t kv_bytes = int64_t(lm.layers) * lm.max_position_embeddings * lm.heads * lm.head_dim * 4 * 2;
  if (kv_bytes > kMaxKvCacheBytes)
    fail("{}: 'max_position_embeddings' {} needs a {} GiB KV cache for {} layers x {} heads x {}, "
         "allowed at most {} GiB",
         what, lm.max_position_embeddings, kv_bytes >> 30, lm.layers, lm.heads, lm.head_dim, kMaxKvCacheBytes >> 30);
  check.range(lm.vocab_size, 1, kMaxVocab, "vocab_size");
  check.range(lm.bos_token_id, 0, lm.vocab_size - 1, "bos_token_id");
  check.range(lm.eos_token_id, 0, lm.vocab_size - 1, "eos_token_id");
  if (c.image_token_id < 0 || c.image_token_id >= lm.vocab_size)
    fail("{}: 'vocab_size' {} does not hold the <image> token id {} (fixed, as in the official code)", what,
         lm.vocab_size, c.image_token_id);

  // SAM ViT-B and its compressor.
  const SamConfig& sam = c.sam;
  check.range(sam.width, 1, kMaxWidth, "width", kSam);
  check.range(sam.layers, 1, kMaxLayers, "layers", kSam);
  check.heads(sam.width, sam.heads, "width", "heads", kSam);
  check.range(sam.mlp_dim, 1, kMaxWidth, "mlp_dim", kSam);
  check.patch_grid(sam.image_size, sam.patch, kSam);
  check.range(sam.window, 1, sam.pos_grid(), "window_size", kSam);
  check.range(sam.neck_channels, 1, kMaxWidth, "neck_channels", kSam);
  if (sam.downsample_channels.size() != 2)
    fail("{}: '{}downsample_channels' has {} entries, must have 2 (net_2 and net_3)", what, kSam,
         sam.downsample_channels.size());
  for (int d : sam.downsample_channels) check.range(d, 1, kMaxWidth, "downsample_channels", kSam);
  if (sam.global_attn_indexes.size() > size_t(sam.layers))
    fail("{}: '{}global_attn_indexes' has {} entries for {} layers", what, kSam, sam.global_attn_indexes.size(),
         sam.layers);
  for (size_t i = 0; i < sam.global_attn_indexes.size(); ++i) {
    const int g = sam.global_attn_indexes[i];
    check.range(g, 0, sam.layers - 1, "global_attn_indexes", kSam);
    if (std::find(sam.global_attn_indexes.begin(), sam.global_attn_indexes.begin() + std::ptrdiff_t(i), g) !=
        sam.global_attn_indexes.begin() + std::ptrdiff_t(i))
      fail("{}: '{}global_attn_indexes' lists layer {} twice", what, kSam, g);
  }

  // CLIP-L (its own patch embedding is unused; patch_size and image_size size its position table).
  const ClipConfig& clip = c.clip;
  check.range(clip.width, 1, kMaxWidth, "width", kClip);
  check.range(clip.layers, 1, kMaxLayers, "layers", kClip);
  check.heads(clip.width, clip.heads, "width", "heads", kClip);
  check.range(clip.ffn, 1, kMaxWidth, "ffn_hidden_size", kClip);
  check.patch_grid(clip.image_size, clip.patch, kClip);

  // Couplings of the towers: CLIP reads SAM's compressor output, the projector maps [CLIP | SAM]
  // features onto the LM's hidden size.
  if (clip.width != sam.downsample_channels[1])
    fail("{}: '{}width' {} must equal '{}downsample_channels[1]' {} (CLIP consumes SAM's features)", what, kClip,
         clip.width, kSam, sam.downsample_channels[1]);
  check.range(c.projector.input_dim, 1, 2 * kMaxWidth, "input_dim", kProjector);
  check.range(c.projector.n_embed, 1, kMaxWidth, "n_embed", kProjector);
  if (c.projector.input_dim != clip.width + sam.downsample_channels[1])
    fail("{}: '{}input_dim' {} must be CLIP width + SAM channels = {}", what, kProjector, c.projector.input_dim,
         clip.width + sam.downsample_channels[1]);
  if (c.projector.n_embed != lm.hidden)
    fail("{}: '{}n_embed' {} must equal 'hidden_size' {}", what, kProjector, c.projector.n_embed, lm.hidden);
}

ModelConfig parse_model_config(const std::string& text, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail("{}: not valid JSON ({})", what, e.what());
  }
  if (!j.is_object()) fail("{}: not a JSON object", what);

  ModelConfig c;
  read(j, "_name_or_path", &c.name, what);

  // Language model: language_config wins over the duplicated top-level keys (they agree in the official file).
  const json& lj = j.contains("language_config") && j["language_config"].is_object() ? j["language_config"] : j;
  LmConfig& lm = c.lm;
  auto lm_read = [&](const char* key, auto* out) {
    read(j, key, out, what);
    read(lj, key, out, what);
  };
  lm_read("hidden_size", &lm.hidden);
  lm_read("num_hidden_layers", &lm.layers);
  lm_read("num_attention_heads", &lm.heads);
  lm.kv_heads = lm.heads;
  lm_read("num_key_value_heads", &lm.kv_heads);
  lm_read("intermediate_size", &lm.intermediate);
  lm_read("moe_intermediate_size", &lm.moe_intermediate);
  lm_read("n_routed_experts", &lm.n_routed_experts);
  lm_read("n_shared_experts", &lm.n_shared_experts);
  lm_read("num_experts_per_tok", &lm.experts_per_token);
  lm_read("first_k_dense_replace", &lm.first_k_dense_replace);
  lm_read("moe_layer_freq", &lm.moe_layer_freq);
  lm_read("norm_topk_prob", &lm.norm_topk_prob);
  lm_read("routed_scaling_factor", &lm.routed_scaling_factor);
  lm_read("rms_norm_eps", &lm.rms_norm_eps);
  lm_read("rope_theta", &lm.rope_theta);
  lm_read("max_position_embeddings", &lm.max_position_embeddings);
  lm_read("vocab_size", &lm.vocab_size);
  lm_read("bos_token_id", &lm.bos_token_id);
  lm_read("eos_token_id", &lm.eos_token_id);
  lm.head_dim = lm.heads > 0 ? lm.hidden / lm.heads : 0;
  lm_read("head_dim", &lm.head_dim);

  bool use_mla = false;
  lm_read("use_mla", &use_mla);
  if (use_mla) fail("{}: use_mla is true; dsocr runs the DeepSeek-OCR decoder, which uses plain MHA", what);
  std::string scoring = "softmax", act = "silu", topk_method = "greedy";
  lm_read("scoring_func", &scoring);
  lm_read("hidden_act", &act);
  lm_read("topk_method", &topk_method);
  if (scoring != "softmax") fail("{}: scoring_func '{}' is not supported (only softmax)", what, scoring);
  if (act != "silu") fail("{}: hidden_act '{}' is not supported (only silu)", what, act);
  if (topk_method != "greedy" && topk_method != "gready")
    fail("{}: topk_method '{}' is not supported (only greedy)", what, topk_method);
  if (lj.contains("rope_scaling") && !lj["rope_scaling"].is_null())
    fail("{}: rope_scaling is set; DeepSeek-OCR uses none and dsocr does not implement it", what);

  // Vision: sizes from vision_config.width (the official code hard-codes them; the golden tiny model sets them).
  if (j.contains("vision_config") && j["vision_config"].is_object()) {
    const json& vc = j["vision_config"];
    if (vc.contains("width") && vc["width"].is_object()) {
      const json& w = vc["width"];
      if (w.contains("sam_vit_b") && w["sam_vit_b"].is_object()) {
        const json& s = w["sam_vit_b"];
        SamConfig& sam = c.sam;
        read(s, "width", &sam.width, what);
        read(s, "layers", &sam.layers, what);
        read(s, "heads", &sam.heads, what);
        read(s, "global_attn_indexes", &sam.global_attn_indexes, what);
        read(s, "downsample_channels", &sam.downsample_channels, what);
        read(s, "neck_channels", &sam.neck_channels, what);
        read(s, "window_size", &sam.window, what);
        read(s, "patch_size", &sam.patch, what);
        read(s, "image_size", &sam.image_size, what);
        sam.mlp_dim = four_times(sam.width);  // mlp_ratio 4 is hard-coded in the official code
        read(s, "mlp_dim", &sam.mlp_dim, what);
      }
      if (w.contains("clip-l-14-224") && w["clip-l-14-224"].is_object()) {
        const json& s = w["clip-l-14-224"];
        ClipConfig& clip = c.clip;
        read(s, "width", &clip.width, what);
        read(s, "layers", &clip.layers, what);
        read(s, "heads", &clip.heads, what);
        read(s, "image_size", &clip.image_size, what);
        read(s, "patch_size", &clip.patch, what);
        clip.ffn = four_times(clip.width);
        read(s, "ffn_hidden_size", &clip.ffn, what);
      }
    }
  }
  if (j.contains("projector_config") && j["projector_config"].is_object()) {
    const json& p = j["projector_config"];
    std::string type = "linear";
    read(p, "projector_type", &type, what);
    if (type != "linear") fail("{}: projector_type '{}' is not supported (only linear)", what, type);
    read(p, "input_dim", &c.projector.input_dim, what);
    read(p, "n_embed", &c.projector.n_embed, what);
  }

  validate(c, what);
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_file_text(path), path);
}

std::string official_config_json() {
  // spec §2: the official HF config.json (language keys duplicated at the top level).
  json lang = {{"architectures", {"DeepseekV2ForCausalLM"}},
               {"bos_token_id", 0},
               {"eos_token_id", 1},
               {"first_k_dense_replace", 1},
               {"hidden_size", 1280},
               {"intermediate_size", 6848},
               {"kv_lora_rank", nullptr},
               {"lm_head", true},
               {"max_position_embeddings", 8192},
               {"moe_intermediate_size", 896},
               {"n_group", 1},
               {"n_routed_experts", 64},
               {"n_shared_experts", 2},
               {"num_attention_heads", 10},
               {"num_experts_per_tok", 6},
               {"num_hidden_layers", 12},
               {"num_key_value_heads", 10},
               {"q_lora_rank", nullptr},
               {"qk_nope_head_dim", 0},
               {"qk_rope_head_dim", 0},
               {"rm_head", false},
               {"topk_group", 1},
               {"topk_method", "greedy"},
               {"torch_dtype", "bfloat16"},
               {"use_mla", false},
               {"v_head_dim", 0},
               {"vocab_size", 129280}};
  nlohmann::ordered_json j;
  j["_name_or_path"] = "deepseek-ai/DeepSeek-OCR";
  j["candidate_resolutions"] = {{1024, 1024}};
  j["global_view_pos"] = "head";
  j["architectures"] = {"DeepseekOCRForCausalLM"};
  j["language_config"] = lang;
  j["model_type"] = "deepseek_vl_v2";
  j["projector_config"] = {{"input_dim", 2048}, {"model_type", "mlp_projector"}, {"n_embed", 1280},
                           {"projector_type", "linear"}};
  j["tile_tag"] = "2D";
  j["torch_dtype"] = "bfloat16";
  j["transformers_version"] = "4.46.3";
  j["vision_config"] = {
      {"image_size", 1024},
      {"mlp_ratio", 3.7362},
      {"model_name", "deeplip_b_l"},
      {"model_type", "vision"},
      {"width",
       {{"clip-l-14-224", {{"heads", 16}, {"image_size", 224}, {"layers", 24}, {"patch_size", 14}, {"width", 1024}}},
        {"sam_vit_b",
         {{"downsample_channels", {512, 1024}},
          {"global_attn_indexes", {2, 5, 8, 11}},
          {"heads", 12},
          {"layers", 12},
          {"width", 768}}}}}};
  for (auto it = lang.begin(); it != lang.end(); ++it)
    if (it.key() != "architectures" && it.key() != "torch_dtype") j[it.key()] = it.value();
  return j.dump(1) + "\n";
}

}  // namespace dsocr
