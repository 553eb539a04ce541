// validate(): one case per rule of io/config.h (each bad config -> an Error that names the key), the
// config reader's strict number types, and the checkpoint layout check for configs that pass
// validate() but lie about a size the checkpoint's tensors have.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/files.h"
#include "io/safetensors.h"

using namespace dsocr;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kModel = DSOCR_TEST_MODEL;

json official() { return json::parse(official_config_json()); }
json tiny() { return json::parse(read_file_text(kModel + "/config.json")); }

// Sets a language-model key where parse_model_config reads it (top level and language_config).
void set_lm(json& j, const std::string& key, const json& value) {
  j[key] = value;
  if (j.contains("language_config")) j["language_config"][key] = value;
}
void set_sam(json& j, const std::string& key, const json& value) {
  j["vision_config"]["width"]["sam_vit_b"][key] = value;
}
void set_clip(json& j, const std::string& key, const json& value) {
  j["vision_config"]["width"]["clip-l-14-224"][key] = value;
}

// The message parse_model_config throws for this config ("" when it is accepted).
std::string error_of(const json& j) {
  try {
    parse_model_config(j.dump(), "cfg/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string error_of_validate(const ModelConfig& c) {
  try {
    validate(c, "cfg/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Every message is one line naming the file and the given fragments (the key, the range).
#define EXPECT_REJECTED(message, ...)                                             \
  do {                                                                            \
    const std::string m_ = (message);                                             \
    EXPECT_EQ(m_.rfind("cfg/config.json: ", 0), 0u) << m_;                        \
    EXPECT_EQ(m_.find('\n'), std::string::npos) << m_;                            \
    for (const std::string& f_ : std::initializer_list<std::string>{__VA_ARGS__}) \
      EXPECT_NE(m_.find(f_), std::string::npos) << f_ << " not in: " << m_;       \
  } while (0)

json lm_with(const std::string& key, const json& value) {
  json j = official();
  set_lm(j, key, value);
  return j;
}
json sam_with(const std::string& key, const json& value) {
  json j = official();
  set_sam(j, key, value);
  return j;
}
json clip_with(const std::string& key, const json& value) {
  json j = official();
  set_clip(j, key, value);
  return j;
}

}  // namespace

TEST(ConfigValidate, OfficialAndTinyConfigsPass) {
  const ModelConfig o = parse_model_config(official_config_json(), "official");
  EXPECT_NO_THROW(validate(o, "official"));
  EXPECT_EQ(o.lm.max_position_embeddings, 8192);
  EXPECT_EQ(o.sam.pos_grid(), 64);
  EXPECT_EQ(o.clip.pos_grid(), 16);
  EXPECT_EQ(o.lm.shared_intermediate(), 1792);
  const ModelConfig t = load_model_config(kModel + "/config.json");
  EXPECT_NO_THROW(validate(t, "tiny"));
  EXPECT_EQ(t.lm.hidden, 64);
  EXPECT_EQ(t.sam.mlp_dim, 384);
  EXPECT_NO_THROW(Checkpoint{kModel});
}

// ---- language model ----

TEST(ConfigValidate, LmSizes) {
  EXPECT_REJECTED(error_of(lm_with("hidden_size", 0)), "'hidden_size' is 0, allowed range [1, 65536]");
  EXPECT_REJECTED(error_of(lm_with("hidden_size", 65537)), "'hidden_size' is 65537, allowed range [1, 65536]");
  EXPECT_REJECTED(error_of(lm_with("num_hidden_layers", 0)), "'num_hidden_layers' is 0, allowed range [1, 256]");
  EXPECT_REJECTED(error_of(lm_with("num_hidden_layers", 257)), "'num_hidden_layers' is 257");
  EXPECT_REJECTED(error_of(lm_with("intermediate_size", 0)), "'intermediate_size' is 0, allowed range [1, 65536]");
  EXPECT_REJECTED(error_of(lm_with("intermediate_size", 1 << 20)), "'intermediate_size' is 1048576");
  EXPECT_REJECTED(error_of(lm_with("moe_intermediate_size", 0)),
                  "'moe_intermediate_size' is 0, allowed range [1, 65536]");
  EXPECT_REJECTED(error_of(lm_with("vocab_size", 0)), "'vocab_size' is 0, allowed range [1, 1048576]");
  EXPECT_REJECTED(error_of(lm_with("vocab_size", (1 << 20) + 1)), "'vocab_size' is 1048577");
}

TEST(ConfigValidate, LmHeads) {
  EXPECT_REJECTED(error_of(lm_with("num_attention_heads", 0)), "'num_attention_heads' is 0, allowed range [1, 1280]");
  EXPECT_REJECTED(error_of(lm_with("num_attention_heads", 3)),
                  "'hidden_size' 1280 is not divisible by 'num_attention_heads' 3");
  json j = official();
  set_lm(j, "num_key_value_heads", 5);
  EXPECT_REJECTED(error_of(j), "'num_key_value_heads' 5 must equal 'num_attention_heads' 10");
}

TEST(ConfigValidate, LmHeadDim) {
  EXPECT_REJECTED(error_of(lm_with("head_dim", 127)), "'head_dim' 127 must be even");
  EXPECT_REJECTED(error_of(lm_with("head_dim", 0)), "'head_dim' is 0, allowed range [2, 1024]");
  EXPECT_REJECTED(error_of(lm_with("head_dim", 2048)), "'head_dim' is 2048");
  json j = lm_with("num_attention_heads", 80);  // 1280 / 80 = 16, fine alone
  set_lm(j, "num_key_value_heads", 80);
  set_lm(j, "head_dim", 1024);  // 80 x 1024 q/k/v rows
  EXPECT_REJECTED(error_of(j), "'num_attention_heads' 80 x 'head_dim' 1024 is 81920, allowed at most 65536");
  // hidden_size / heads > kMaxHeadDim.
  json k = lm_with("hidden_size", 4096);
  set_lm(k, "num_attention_heads", 2);
  EXPECT_REJECTED(error_of(k), "gives a head size of 2048, allowed at most 1024");
}

TEST(ConfigValidate, LmExperts) {
  EXPECT_REJECTED(error_of(lm_with("n_routed_experts", -1)), "'n_routed_experts' is -1, allowed range [0, 512]");
  EXPECT_REJECTED(error_of(lm_with("n_routed_experts", 513)), "'n_routed_experts' is 513");
  EXPECT_REJECTED(error_of(lm_with("num_experts_per_tok", 0)), "'num_experts_per_tok' is 0, allowed range [1, 64]");
  EXPECT_REJECTED(error_of(lm_with("num_experts_per_tok", 65)), "'num_experts_per_tok' is 65, allowed range [1, 64]");
  EXPECT_REJECTED(error_of(lm_with("n_shared_experts", -1)), "'n_shared_experts' is -1, allowed range [0, 512]");
  EXPECT_REJECTED(error_of(lm_with("n_shared_experts", 100)),
                  "'moe_intermediate_size' 896 x 'n_shared_experts' 100 (the shared experts' width) is 89600");
  EXPECT_REJECTED(error_of(lm_with("first_k_dense_replace", -1)),
                  "'first_k_dense_replace' is -1, allowed range [0, 12]");
  EXPECT_REJECTED(error_of(lm_with("first_k_dense_replace", 13)), "'first_k_dense_replace' is 13");
  EXPECT_REJECTED(error_of(lm_with("moe_layer_freq", 0)), "'moe_layer_freq' is 0, allowed range [1, 12]");
  // A dense model (no routed experts) ignores the expert keys.
  json dense = lm_with("n_routed_experts", 0);
  set_lm(dense, "num_experts_per_tok", 0);
  EXPECT_EQ(error_of(dense), "");
}

TEST(ConfigValidate, LmFloats) {
  EXPECT_REJECTED(error_of(lm_with("rms_norm_eps", 0)), "'rms_norm_eps' is 0, must be a finite number > 0");
  EXPECT_REJECTED(error_of(lm_with("rms_norm_eps", -1e-6)), "'rms_norm_eps' is -1e-06");
  EXPECT_REJECTED(error_of(lm_with("rms_norm_eps", 1e-60)), "'rms_norm_eps' is 0");  // underflows float
  EXPECT_REJECTED(error_of(lm_with("rms_norm_eps", 1e300)), "key 'rms_norm_eps' is 1e+300, outside the float range");
  EXPECT_REJECTED(error_of(lm_with("rope_theta", 0)), "'rope_theta' is 0, must be a finite number > 0");
  EXPECT_REJECTED(error_of(lm_with("rope_theta", -10000)), "'rope_theta' is -10000");
  EXPECT_REJECTED(error_of(lm_with("routed_scaling_factor", 0)),
                  "'routed_scaling_factor' is 0, must be a finite number > 0");
  EXPECT_REJECTED(error_of(lm_with("rope_theta", "big")), "key 'rope_theta' has the wrong type (string");
  ModelConfig c = parse_model_config(official_config_json(), "x");
  c.lm.rms_norm_eps = std::numeric_limits<float>::quiet_NaN();
  EXPECT_REJECTED(error_of_validate(c), "'rms_norm_eps' is nan");
  c = parse_model_config(official_config_json(), "x");
  c.lm.rope_theta = std::numeric_limits<float>::infinity();
  EXPECT_REJECTED(error_of_validate(c), "'rope_theta' is inf");
}

TEST(ConfigValidate, LmContextBoundsTheRopeTableAndKvCache) {
  EXPECT_REJECTED(error_of(lm_with("max_position_embeddings", 0)),
                  "'max_position_embeddings' is 0, allowed range [1, 1048576]");
  // 2^30 positions: the decoder constructor used to build a 1 TiB RoPE table for this.
  EXPECT_REJECTED(error_of(lm_with("max_position_embeddings", 1 << 30)), "'max_position_embeddings' is 1073741824");
  json rope = lm_with("max_position_embeddings", 1 << 20);
  set_lm(rope, "head_dim", 256);
  EXPECT_REJECTED(error_of(rope), "'max_position_embeddings' 1048576 x 'head_dim' 256 RoPE entries exceed 134217728");
  json kv = lm_with("max_position_embeddings", 1 << 19);
  set_lm(kv, "num_hidden_layers", 256);
  EXPECT_REJECTED(error_of(kv), "'max_position_embeddings' 524288 needs a 1280 GiB KV cache", "allowed at most 64 GiB");
  EXPECT_EQ(error_of(lm_with("max_position_embeddings", 1 << 19)), "");  // RoPE 2^26 entries, KV cache 60 GiB
}

TEST(ConfigValidate, TokenIdsInsideTheVocabulary) {
  EXPECT_REJECTED(error_of(lm_with("bos_token_id", -1)), "'bos_token_id' is -1, allowed range [0, 129279]");
  EXPECT_REJECTED(error_of(lm_with("eos_token_id", 129280)), "'eos_token_id' is 129280, allowed range [0, 129279]");
  EXPECT_REJECTED(error_of(lm_with("vocab_size", 128815)),
                  "'vocab_size' 128815 does not hold the <image> token id 128815");
  EXPECT_EQ(error_of(lm_with("vocab_size", 128816)), "");
}

TEST(ConfigValidate, IntegersMustBeJsonIntegersThatFitAnInt) {
  EXPECT_REJECTED(error_of(lm_with("num_hidden_layers", 12.5)),
                  "key 'num_hidden_layers' has the wrong type (number; expected an integer)");
  EXPECT_REJECTED(error_of(lm_with("num_hidden_layers", "12")), "key 'num_hidden_layers' has the wrong type (string");
  // 2^32 + 12 used to wrap to 12 silently.
  EXPECT_REJECTED(error_of(lm_with("num_hidden_layers", (uint64_t(1) << 32) + 12)),
                  "key 'num_hidden_layers' is 4294967308, outside the int range");
  EXPECT_REJECTED(error_of(lm_with("vocab_size", -(int64_t(1) << 40))),
                  "key 'vocab_size' is -1099511627776, outside the int range");
  EXPECT_REJECTED(error_of(sam_with("global_attn_indexes", json::array({2, 5.5}))),
                  "key 'global_attn_indexes' has the wrong type");
  EXPECT_REJECTED(error_of(sam_with("global_attn_indexes", 2)),
                  "key 'global_attn_indexes' has the wrong type (number; expected an array");
  EXPECT_REJECTED(error_of(lm_with("use_mla", 1)), "key 'use_mla' has the wrong type");
}

// ---- SAM ----

TEST(ConfigValidate, SamSizes) {
  const std::string p = "'vision_config.width.sam_vit_b.";
  EXPECT_REJECTED(error_of(sam_with("width", 0)), (p + "width' is 0, allowed range [1, 65536]"));
  EXPECT_REJECTED(error_of(sam_with("layers", 0)), (p + "layers' is 0, allowed range [1, 256]"));
  EXPECT_REJECTED(error_of(sam_with("layers", 1000)), (p + "layers' is 1000"));
  EXPECT_REJECTED(error_of(sam_with("mlp_dim", 0)), (p + "mlp_dim' is 0, allowed range [1, 65536]"));
  EXPECT_REJECTED(error_of(sam_with("neck_channels", 0)), (p + "neck_channels' is 0, allowed range [1, 65536]"));
  // A width whose 4 x mlp_ratio overflows int is reported as a width.
  EXPECT_REJECTED(error_of(sam_with("width", 1 << 30)), (p + "width' is 1073741824"));
}

TEST(ConfigValidate, SamHeads) {
  const std::string p = "'vision_config.width.sam_vit_b.";
  EXPECT_REJECTED(error_of(sam_with("heads", 0)), (p + "heads' is 0, allowed range [1, 768]"));
  EXPECT_REJECTED(error_of(sam_with("heads", 5)), (p + "width' 768 is not divisible by " + p + "heads' 5"));
  json j = sam_with("width", 2048);
  set_sam(j, "heads", 1);
  EXPECT_REJECTED(error_of(j), (p + "width' 2048 / 'heads' 1 gives a head size of 2048, allowed at most 1024"));
}

TEST(ConfigValidate, SamPatchGridAndWindow) {
  const std::string p = "'vision_config.width.sam_vit_b.";
  EXPECT_REJECTED(error_of(sam_with("patch_size", 0)), (p + "patch_size' is 0, allowed range [1, 1024]"));
  EXPECT_REJECTED(error_of(sam_with("patch_size", 17)),
                  (p + "patch_size' 17 does not divide " + p + "image_size' 1024"));
  EXPECT_REJECTED(error_of(sam_with("patch_size", 2)), "gives a 512-patch position grid, allowed at most 256");
  EXPECT_REJECTED(error_of(sam_with("image_size", 0)), (p + "image_size' is 0, allowed range [1, 4096]"));
  EXPECT_REJECTED(error_of(sam_with("image_size", 8192)), (p + "image_size' is 8192"));
  EXPECT_REJECTED(error_of(sam_with("window_size", 0)), (p + "window_size' is 0, allowed range [1, 64]"));
  EXPECT_REJECTED(error_of(sam_with("window_size", 65)), (p + "window_size' is 65, allowed range [1, 64]"));
}

TEST(ConfigValidate, SamChannelsAndGlobalLayers) {
  const std::string p = "'vision_config.width.sam_vit_b.";
  EXPECT_REJECTED(error_of(sam_with("downsample_channels", json::array({512, 1024, 2048}))),
                  (p + "downsample_channels' has 3 entries, must have 2"));
  EXPECT_REJECTED(error_of(sam_with("downsample_channels", json::array())), (p + "downsample_channels' has 0 entries"));
  EXPECT_REJECTED(error_of(sam_with("downsample_channels", json::array({0, 1024}))),
                  (p + "downsample_channels' is 0, allowed range [1, 65536]"));
  EXPECT_REJECTED(error_of(sam_with("global_attn_indexes", json::array({2, 12}))),
                  (p + "global_attn_indexes' is 12, allowed range [0, 11]"));
  EXPECT_REJECTED(error_of(sam_with("global_attn_indexes", json::array({-1}))), (p + "global_attn_indexes' is -1"));
  EXPECT_REJECTED(error_of(sam_with("global_attn_indexes", json::array({2, 5, 2}))),
                  (p + "global_attn_indexes' lists layer 2 twice"));
  EXPECT_EQ(error_of(sam_with("global_attn_indexes", json::array())), "");  // all windowed is fine
}

// ---- CLIP ----

TEST(ConfigValidate, ClipPatchSizeZeroIsAnErrorNotSigfpe) {
  // Used to die with SIGFPE (image_size / patch_size) while building the layout at load.
  EXPECT_REJECTED(error_of(clip_with("patch_size", 0)),
                  "'vision_config.width.clip-l-14-224.patch_size' is 0, allowed range [1, 224]");
  const fs::path dir = fs::temp_directory_path() / "dsocr_validate_clip_patch0";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"tokenizer.json", "model.safetensors.index.json", "model-00001-of-000001.safetensors"})
    fs::create_symlink(fs::canonical(fs::path(kModel) / f), dir / f);
  json j = tiny();
  set_clip(j, "patch_size", 0);
  write_file_atomic((dir / "config.json").string(), j.dump(1));
  try {
    Checkpoint c(dir.string());
    ADD_FAILURE() << "opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: 'vision_config.width.clip-l-14-224.patch_size' is 0"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(ConfigValidate, ClipSizes) {
  const std::string p = "'vision_config.width.clip-l-14-224.";
  EXPECT_REJECTED(error_of(clip_with("width", 0)), (p + "width' is 0, allowed range [1, 65536]"));
  EXPECT_REJECTED(error_of(clip_with("layers", 0)), (p + "layers' is 0, allowed range [1, 256]"));
  EXPECT_REJECTED(error_of(clip_with("heads", 0)), (p + "heads' is 0, allowed range [1, 1024]"));
  EXPECT_REJECTED(error_of(clip_with("heads", 5)), (p + "width' 1024 is not divisible by " + p + "heads' 5"));
  EXPECT_REJECTED(error_of(clip_with("ffn_hidden_size", 0)), (p + "ffn_hidden_size' is 0, allowed range [1, 65536]"));
  EXPECT_REJECTED(error_of(clip_with("image_size", 225)),
                  (p + "patch_size' 14 does not divide " + p + "image_size' 225"));
  EXPECT_REJECTED(error_of(clip_with("image_size", 0)), (p + "image_size' is 0, allowed range [1, 4096]"));
  EXPECT_REJECTED(error_of(clip_with("patch_size", 225)), (p + "patch_size' is 225, allowed range [1, 224]"));
}

// ---- couplings ----

TEST(ConfigValidate, TowersAndProjectorFitTogether) {
  EXPECT_REJECTED(error_of(clip_with("width", 512)),
                  "'vision_config.width.clip-l-14-224.width' 512 must equal "
                  "'vision_config.width.sam_vit_b.downsample_channels[1]' 1024");
  json j = official();
  j["projector_config"]["input_dim"] = 2047;
  EXPECT_REJECTED(error_of(j), "'projector_config.input_dim' 2047 must be CLIP width + SAM channels = 2048");
  j["projector_config"]["input_dim"] = 0;
  EXPECT_REJECTED(error_of(j), "'projector_config.input_dim' is 0, allowed range [1, 131072]");
  j = official();
  j["projector_config"]["n_embed"] = 1024;
  EXPECT_REJECTED(error_of(j), "'projector_config.n_embed' 1024 must equal 'hidden_size' 1280");
  j["projector_config"]["n_embed"] = -5;
  EXPECT_REJECTED(error_of(j), "'projector_config.n_embed' is -5, allowed range [1, 65536]");
}

// The largest config inside every bound: its layout builds and every shape product fits int64.
TEST(ConfigValidate, LargestAllowedSizesKeepLayoutProductsInsideInt64) {
  ModelConfig c;
  using namespace config_limits;
  c.lm.hidden = kMaxWidth;
  c.lm.layers = 4;  // the layout's length grows with layers; the products below do not depend on it
  c.lm.heads = 64;
  c.lm.kv_heads = 64;
  c.lm.head_dim = 1024;
  c.lm.intermediate = kMaxWidth;
  c.lm.moe_intermediate = kMaxWidth / 2;
  c.lm.n_routed_experts = 2;
  c.lm.n_shared_experts = 2;
  c.lm.experts_per_token = 2;
  c.lm.moe_layer_freq = 1;
  c.lm.max_position_embeddings = 1 << 14;  // KV cache 4 x 2^14 x 2^16 x 8 bytes = 32 GiB
  c.lm.vocab_size = kMaxVocab;
  c.projector.n_embed = kMaxWidth;
  c.sam.width = kMaxWidth;
  c.sam.heads = 64;
  c.sam.mlp_dim = kMaxWidth;
  c.sam.image_size = kMaxImageSize;
  c.sam.patch = kMaxImageSize / kMaxPosGrid;
  c.sam.window = kMaxPosGrid;
  c.sam.neck_channels = kMaxWidth;
  c.sam.downsample_channels = {kMaxWidth, kMaxWidth};
  c.clip.width = kMaxWidth;
  c.clip.heads = 64;
  c.clip.ffn = kMaxWidth;
  c.clip.image_size = kMaxImageSize;
  c.clip.patch = kMaxImageSize / kMaxPosGrid;
  c.projector.input_dim = 2 * kMaxWidth;
  ASSERT_EQ(error_of_validate(c), "");
  int64_t largest = 0;
  for (const TensorSpec& t : checkpoint_layout(c)) {
    int64_t n = 1;
    for (int64_t d : t.shape) {
      ASSERT_GT(d, 0) << t.name;
      n *= d;
    }
    largest = std::max(largest, n);
  }
  EXPECT_EQ(largest, int64_t(kMaxVocab) * kMaxWidth);  // embed_tokens / lm_head: 2^36 < 2^48
}

// ---- the checkpoint layout: a config that passes validate() but lies about a size ----

namespace {

// A scratch model: the tiny model's files linked, its config.json replaced.
struct LyingModel {
  fs::path dir;
  explicit LyingModel(const std::string& name, const json& config) {
    dir = fs::temp_directory_path() / ("dsocr_validate_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : {"tokenizer.json", "model.safetensors.index.json", "model-00001-of-000001.safetensors"})
      fs::create_symlink(fs::canonical(fs::path(kModel) / f), dir / f);
    write_file_atomic((dir / "config.json").string(), config.dump(1));
  }
  ~LyingModel() { fs::remove_all(dir); }
  std::string open_error() const {
    try {
      Checkpoint c(dir.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

std::string lie(const std::string& name, void (*edit)(json&)) {
  json j = tiny();
  edit(j);
  EXPECT_NO_THROW(parse_model_config(j.dump(), name)) << name;  // the lie passes validate()
  return LyingModel(name, j).open_error();
}

}  // namespace

TEST(CheckpointLayout, EverySizeTheModelReadsIsComparedWithTheTensors) {
  EXPECT_NE(lie("inter", [](json& j) { set_lm(j, "intermediate_size", 96); })
                .find("'model.layers.0.mlp.gate_proj.weight' has shape [128, 64] but config.json implies [96, 64]"),
            std::string::npos);
  EXPECT_NE(
      lie("moe", [](json& j) { set_lm(j, "moe_intermediate_size", 48); })
          .find("'model.layers.1.mlp.experts.0.gate_proj.weight' has shape [32, 64] but config.json implies [48, 64]"),
      std::string::npos);
  EXPECT_NE(lie("shared", [](json& j) { set_lm(j, "n_shared_experts", 3); })
                .find("'model.layers.1.mlp.shared_experts.gate_proj.weight' has shape [64, 64] but config.json implies "
                      "[96, 64]"),
            std::string::npos);
  EXPECT_NE(lie("experts", [](json& j) { set_lm(j, "n_routed_experts", 9); })
                .find("'model.layers.1.mlp.gate.weight' has shape [8, 64] but config.json implies [9, 64]"),
            std::string::npos);
  EXPECT_NE(lie("vocab", [](json& j) { set_lm(j, "vocab_size", 129000); })
                .find("'model.embed_tokens.weight' has shape [129280, 64] but config.json implies [129000, 64]"),
            std::string::npos);
  EXPECT_NE(lie("layers", [](json& j) { set_lm(j, "num_hidden_layers", 4); })
                .find("missing tensor 'model.layers.3.input_layernorm.weight'"),
            std::string::npos);
  EXPECT_NE(lie("headdim", [](json& j) { set_lm(j, "head_dim", 16); })
                .find("'model.layers.0.self_attn.q_proj.weight' has shape [64, 64] but config.json implies [32, 64]"),
            std::string::npos);
  EXPECT_NE(
      lie("sammlp", [](json& j) { set_sam(j, "mlp_dim", 192); })
          .find("'model.sam_model.blocks.0.mlp.lin1.weight' has shape [384, 96] but config.json implies [192, 96]"),
      std::string::npos);
  EXPECT_NE(lie("samwin", [](json& j) { set_sam(j, "window_size", 7); })
                .find("'model.sam_model.blocks.0.attn.rel_pos_h' has shape [27, 48] but config.json implies [13, 48]"),
            std::string::npos);
  EXPECT_NE(lie("samheads", [](json& j) { set_sam(j, "heads", 4); })
                .find("'model.sam_model.blocks.0.attn.rel_pos_h' has shape [27, 48] but config.json implies [27, 24]"),
            std::string::npos);
  EXPECT_NE(lie("samimg", [](json& j) { set_sam(j, "image_size", 512); })
                .find("'model.sam_model.pos_embed' has shape [1, 64, 64, 96] but config.json implies [1, 32, 32, 96]"),
            std::string::npos);
  EXPECT_NE(lie("sampatch", [](json& j) { set_sam(j, "patch_size", 8); })
                .find("'model.sam_model.patch_embed.proj.weight' has shape [96, 3, 16, 16] but config.json implies "
                      "[96, 3, 8, 8]"),
            std::string::npos);
  EXPECT_NE(
      lie("neck", [](json& j) { set_sam(j, "neck_channels", 16); })
          .find("'model.sam_model.neck.0.weight' has shape [32, 96, 1, 1] but config.json implies [16, 96, 1, 1]"),
      std::string::npos);
  EXPECT_NE(lie("global",
                [](json& j) {
                  set_sam(j, "global_attn_indexes", json::array({1, 2}));
                })
                .find("'model.sam_model.blocks.2.attn.rel_pos_h' has shape [27, 48] but config.json implies [127, 48]"),
            std::string::npos);
  EXPECT_NE(lie("clipffn", [](json& j) { set_clip(j, "ffn_hidden_size", 256); })
                .find("'model.vision_model.transformer.layers.0.mlp.fc1.weight' has shape [512, 128] but config.json "
                      "implies [256, 128]"),
            std::string::npos);
  EXPECT_NE(lie("clipimg", [](json& j) { set_clip(j, "image_size", 112); })
                .find("'model.vision_model.embeddings.position_embedding.weight' has shape [257, 128] but config.json "
                      "implies [65, 128]"),
            std::string::npos);
  EXPECT_NE(lie("cliplayers", [](json& j) { set_clip(j, "layers", 3); })
                .find("missing tensor 'model.vision_model.transformer.layers.2.layer_norm1.weight'"),
            std::string::npos);
}

TEST(CheckpointLayout, TensorsOutsideTheLayoutCannotBeRead) {
  const fs::path dir = fs::temp_directory_path() / "dsocr_validate_extra";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"config.json", "tokenizer.json"})
    fs::create_symlink(fs::canonical(fs::path(kModel) / f), dir / f);
  SafetensorsFile src(fs::canonical(fs::path(kModel) / "model-00001-of-000001.safetensors").string());
  SafetensorsWriter w;
  for (const auto& name : src.names()) {
    const TensorView t = src.get(name);
    w.add(name, t.dtype, t.shape, t.data, t.nbytes);
  }
  const std::vector<float> extra(6, 1.0f);
  w.add_f32("model.layers.0.mlp.experts.8.up_proj.weight", {2, 3}, extra);
  w.write((dir / "model.safetensors").string());
  const Checkpoint ckpt(dir.string());
  EXPECT_TRUE(ckpt.has("model.layers.0.mlp.experts.8.up_proj.weight"));
  EXPECT_EQ(ckpt.tensor("lm_head.weight").shape, (std::vector<int64_t>{129280, 64}));
  try {
    ckpt.tensor("model.layers.0.mlp.experts.8.up_proj.weight");
    ADD_FAILURE() << "read an unchecked tensor";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("tensor 'model.layers.0.mlp.experts.8.up_proj.weight' is not part of the layout"),
        std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(CheckpointLayout, CheckLayoutWorksOnHeadersAlone) {
  const ModelConfig c = load_model_config(kModel + "/config.json");
  SafetensorsFile src(fs::canonical(fs::path(kModel) / "model-00001-of-000001.safetensors").string());
  std::map<std::string, TensorLocation> tensors;
  for (const auto& [name, entry] : src.header().tensors) tensors[name] = {&entry, "shard.safetensors"};
  EXPECT_NO_THROW(check_layout(c, tensors, "dir"));
  SafetensorsHeader::Entry wrong = src.header().tensors.at("model.norm.weight");
  wrong.dtype = DType::I32;
  tensors["model.norm.weight"].entry = &wrong;
  try {
    check_layout(c, tensors, "dir");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "shard.safetensors: tensor 'model.norm.weight' has dtype I32, expected a float type");
  }
  tensors.erase("model.norm.weight");
  try {
    check_layout(c, tensors, "dir");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "dir: missing tensor 'model.norm.weight' (expected shape [64])");
  }
}
