#include "io/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/files.h"

namespace dsocr {

using nlohmann::json;

bool SamConfig::is_global(int block) const {
  return std::find(global_attn_indexes.begin(), global_attn_indexes.end(), block) != global_attn_indexes.end();
}

namespace {

// Reads key from obj into out when present; the type must match.
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

void require_positive(int v, const char* key, const std::string& what) {
  if (v <= 0) fail("{}: '{}' must be positive, got {}", what, key, v);
}

}  // namespace

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
  json rope_scaling;
  if (lj.contains("rope_scaling") && !lj["rope_scaling"].is_null())
    fail("{}: rope_scaling is set; DeepSeek-OCR uses none and dsocr does not implement it", what);

  require_positive(lm.hidden, "hidden_size", what);
  require_positive(lm.layers, "num_hidden_layers", what);
  require_positive(lm.heads, "num_attention_heads", what);
  require_positive(lm.vocab_size, "vocab_size", what);
  require_positive(lm.max_position_embeddings, "max_position_embeddings", what);
  if (lm.hidden % lm.heads != 0) fail("{}: hidden_size {} is not divisible by {} heads", what, lm.hidden, lm.heads);
  if (lm.kv_heads != lm.heads)
    fail("{}: num_key_value_heads {} != num_attention_heads {} (grouped-query attention is not supported)", what,
         lm.kv_heads, lm.heads);
  if (lm.head_dim % 2 != 0) fail("{}: head_dim {} must be even for RoPE", what, lm.head_dim);
  if (lm.moe_layer_freq <= 0) fail("{}: moe_layer_freq must be positive", what);
  if (lm.n_routed_experts > 0 && (lm.experts_per_token <= 0 || lm.experts_per_token > lm.n_routed_experts))
    fail("{}: num_experts_per_tok {} must be in 1..n_routed_experts ({})", what, lm.experts_per_token,
         lm.n_routed_experts);

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
        sam.mlp_dim = 4 * sam.width;  // mlp_ratio 4 is hard-coded in the official code
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
        clip.ffn = 4 * clip.width;
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

  const SamConfig& sam = c.sam;
  require_positive(sam.width, "sam width", what);
  require_positive(sam.layers, "sam layers", what);
  require_positive(sam.heads, "sam heads", what);
  require_positive(sam.patch, "sam patch_size", what);
  require_positive(sam.window, "sam window_size", what);
  if (sam.width % sam.heads != 0) fail("{}: SAM width {} is not divisible by {} heads", what, sam.width, sam.heads);
  if (sam.downsample_channels.size() != 2)
    fail("{}: sam_vit_b.downsample_channels must have 2 entries, got {}", what, sam.downsample_channels.size());
  for (int g : sam.global_attn_indexes)
    if (g < 0 || g >= sam.layers) fail("{}: global_attn_indexes entry {} is outside 0..{}", what, g, sam.layers - 1);
  require_positive(c.clip.width, "clip width", what);
  require_positive(c.clip.heads, "clip heads", what);
  if (c.clip.width % c.clip.heads != 0)
    fail("{}: CLIP width {} is not divisible by {} heads", what, c.clip.width, c.clip.heads);
  if (c.clip.width != sam.downsample_channels[1])
    fail("{}: CLIP width {} must equal SAM's last downsample channels {} (CLIP consumes SAM's features)", what,
         c.clip.width, sam.downsample_channels[1]);
  if (c.projector.input_dim != c.clip.width + sam.downsample_channels[1])
    fail("{}: projector input_dim {} must be CLIP width + SAM channels = {}", what, c.projector.input_dim,
         c.clip.width + sam.downsample_channels[1]);
  if (c.projector.n_embed != lm.hidden)
    fail("{}: projector n_embed {} must equal the LM hidden_size {}", what, c.projector.n_embed, lm.hidden);
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
