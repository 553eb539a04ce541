#include "io/checkpoint.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"
#include "io/files.h"
#include "io/model_files.h"

namespace fs = std::filesystem;

namespace dsocr {

std::vector<TensorSpec> checkpoint_layout(const ModelConfig& c) {
  std::vector<TensorSpec> t;
  auto add = [&](std::string name, std::vector<int64_t> shape) { t.push_back({std::move(name), std::move(shape)}); };
  const SamConfig& s = c.sam;
  const int64_t sw = s.width, g = s.pos_grid(), hd = s.head_dim();
  const std::string sp = "model.sam_model.";
  add(sp + "patch_embed.proj.weight", {sw, 3, s.patch, s.patch});
  add(sp + "patch_embed.proj.bias", {sw});
  add(sp + "pos_embed", {1, g, g, sw});
  for (int i = 0; i < s.layers; ++i) {
    const std::string b = sp + "blocks." + std::to_string(i) + ".";
    const int64_t rel = s.is_global(i) ? 2 * g - 1 : 2 * int64_t(s.window) - 1;
    add(b + "norm1.weight", {sw});
    add(b + "norm1.bias", {sw});
    add(b + "attn.qkv.weight", {3 * sw, sw});
    add(b + "attn.qkv.bias", {3 * sw});
    add(b + "attn.proj.weight", {sw, sw});
    add(b + "attn.proj.bias", {sw});
    add(b + "attn.rel_pos_h", {rel, hd});
    add(b + "attn.rel_pos_w", {rel, hd});
    add(b + "norm2.weight", {sw});
    add(b + "norm2.bias", {sw});
    add(b + "mlp.lin1.weight", {s.mlp_dim, sw});
    add(b + "mlp.lin1.bias", {s.mlp_dim});
    add(b + "mlp.lin2.weight", {sw, s.mlp_dim});
    add(b + "mlp.lin2.bias", {sw});
  }
  const int64_t nc = s.neck_channels, d2 = s.downsample_channels[0], d3 = s.downsample_channels[1];
  add(sp + "neck.0.weight", {nc, sw, 1, 1});
  add(sp + "neck.1.weight", {nc});
  add(sp + "neck.1.bias", {nc});
  add(sp + "neck.2.weight", {nc, nc, 3, 3});
  add(sp + "neck.3.weight", {nc});
  add(sp + "neck.3.bias", {nc});
  add(sp + "net_2.weight", {d2, nc, 3, 3});
  add(sp + "net_3.weight", {d3, d2, 3, 3});

  const ClipConfig& v = c.clip;
  const int64_t cw = v.width, cg = v.pos_grid();
  const std::string cp = "model.vision_model.";
  add(cp + "embeddings.class_embedding", {cw});
  add(cp + "embeddings.patch_embedding.weight", {cw, 3, v.patch, v.patch});
  add(cp + "embeddings.position_embedding.weight", {cg * cg + 1, cw});
  add(kPositionIdsName, {1, cg * cg + 1});
  add(cp + "pre_layrnorm.weight", {cw});
  add(cp + "pre_layrnorm.bias", {cw});
  for (int i = 0; i < v.layers; ++i) {
    const std::string b = cp + "transformer.layers." + std::to_string(i) + ".";
    add(b + "layer_norm1.weight", {cw});
    add(b + "layer_norm1.bias", {cw});
    add(b + "self_attn.qkv_proj.weight", {3 * cw, cw});
    add(b + "self_attn.qkv_proj.bias", {3 * cw});
    add(b + "self_attn.out_proj.weight", {cw, cw});
    add(b + "self_attn.out_proj.bias", {cw});
    add(b + "layer_norm2.weight", {cw});
    add(b + "layer_norm2.bias", {cw});
    add(b + "mlp.fc1.weight", {v.ffn, cw});
    add(b + "mlp.fc1.bias", {v.ffn});
    add(b + "mlp.fc2.weight", {cw, v.ffn});
    add(b + "mlp.fc2.bias", {cw});
  }

  const int64_t h = c.lm.hidden;
  add("model.projector.layers.weight", {c.projector.n_embed, c.projector.input_dim});
  add("model.projector.layers.bias", {c.projector.n_embed});
  add("model.image_newline", {h});
  add("model.view_seperator", {h});

  const LmConfig& lm = c.lm;
  const int64_t qdim = int64_t(lm.heads) * lm.head_dim;
  add("model.embed_tokens.weight", {lm.vocab_size, h});
  for (int i = 0; i < lm.layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    add(b + "input_layernorm.weight", {h});
    add(b + "post_attention_layernorm.weight", {h});
    add(b + "self_attn.q_proj.weight", {qdim, h});
    add(b + "self_attn.k_proj.weight", {qdim, h});
    add(b + "self_attn.v_proj.weight", {qdim, h});
    add(b + "self_attn.o_proj.weight", {h, qdim});
    if (!lm.is_moe_layer(i)) {
      add(b + "mlp.gate_proj.weight", {lm.intermediate, h});
      add(b + "mlp.up_proj.weight", {lm.intermediate, h});
      add(b + "mlp.down_proj.weight", {h, lm.intermediate});
      continue;
    }
    add(b + "mlp.gate.weight", {lm.n_routed_experts, h});
    for (int e = 0; e < lm.n_routed_experts; ++e) {
      const std::string x = b + "mlp.experts." + std::to_string(e) + ".";
      add(x + "gate_proj.weight", {lm.moe_intermediate, h});
      add(x + "up_proj.weight", {lm.moe_intermediate, h});
      add(x + "down_proj.weight", {h, lm.moe_intermediate});
    }
    if (lm.n_shared_experts > 0) {
      const int64_t si = lm.shared_intermediate();
      add(b + "mlp.shared_experts.gate_proj.weight", {si, h});
      add(b + "mlp.shared_experts.up_proj.weight", {si, h});
      add(b + "mlp.shared_experts.down_proj.weight", {h, si});
    }
  }
  add("model.norm.weight", {h});
  add("lm_head.weight", {lm.vocab_size, h});
  return t;
}

namespace {

// Shard file names: from the index when there is one, else the single *.safetensors file.
std::vector<std::string> shard_files(const fs::path& dir, std::map<std::string, std::string>* weight_map) {
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file_text(index.string()));
    } catch (const nlohmann::json::exception& e) {
      fail("{}: not valid JSON ({})", index.string(), e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      fail("{}: no 'weight_map' object", index.string());
    std::vector<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("{}: weight_map entry '{}' is not a file name", index.string(), it.key());
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        fail("{}: weight_map entry '{}' points outside the model directory: '{}'", index.string(), it.key(), f);
      (*weight_map)[it.key()] = f;
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
    }
    std::sort(files.begin(), files.end());
    return files;
  }
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") files.push_back(e.path().filename().string());
  if (files.empty()) fail("{}: no *.safetensors weights and no model.safetensors.index.json", dir.string());
  if (files.size() > 1)
    fail("{}: {} *.safetensors files but no model.safetensors.index.json to say how they fit together", dir.string(),
         files.size());
  return files;
}

}  // namespace

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) fail("{}: not a directory (expected a DeepSeek-OCR model directory)", dir);
  config_ = load_model_config((d / "config.json").string());
  tokenizer_path_ = resolve_link_file((d / "tokenizer.json").string());
  if (!fs::exists(tokenizer_path_)) fail("{}: missing tokenizer.json", dir);

  std::map<std::string, std::string> weight_map;
  for (const std::string& f : shard_files(d, &weight_map)) {
    const fs::path p = d / f;
    if (!fs::exists(p)) fail("{}: missing weight shard listed in the index", p.string());
    shards_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    const size_t idx = shards_.size() - 1;
    for (const auto& [name, entry] : shards_.back()->header().tensors) {
      if (where_.count(name)) fail("{}: tensor '{}' is also in {}", p.string(), name, shards_[where_[name]]->path());
      where_[name] = idx;
    }
  }
  for (const auto& [name, file] : weight_map) {
    auto it = where_.find(name);
    if (it == where_.end())
      fail("{}: tensor '{}' listed in model.safetensors.index.json is missing from {}", dir, name, file);
  }
  std::map<std::string, TensorLocation> tensors;
  for (const auto& [name, shard] : where_)
    tensors[name] = {&shards_[shard]->header().tensors.at(name), shards_[shard]->path()};
  check_layout(config_, tensors, dir);
  for (const TensorSpec& spec : checkpoint_layout(config_)) checked_.insert(spec.name);
}

void check_layout(const ModelConfig& config, const std::map<std::string, TensorLocation>& tensors,
                  const std::string& dir) {
  for (const TensorSpec& spec : checkpoint_layout(config)) {
    auto it = tensors.find(spec.name);
    if (it == tensors.end())
      fail("{}: missing tensor '{}' (expected shape {})", dir, spec.name, shape_to_string(spec.shape));
    const SafetensorsHeader::Entry& e = *it->second.entry;
    if (e.shape != spec.shape)
      fail("{}: tensor '{}' has shape {} but config.json implies {}", it->second.file, spec.name,
           shape_to_string(e.shape), shape_to_string(spec.shape));
    const bool is_ids = spec.name == kPositionIdsName;
    if (!is_ids && e.dtype != DType::BF16 && e.dtype != DType::F16 && e.dtype != DType::F32)
      fail("{}: tensor '{}' has dtype {}, expected a float type", it->second.file, spec.name, dtype_name(e.dtype));
  }
}

TensorView Checkpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: missing tensor '{}'", dir_, name);
  if (!checked_.count(name))
    fail("{}: tensor '{}' is not part of the layout config.json describes, so its shape is unchecked", dir_, name);
  return shards_[it->second]->get(name);
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : where_) out.push_back(k);
  return out;
}

ParameterCounts Checkpoint::count_parameters() const {
  ParameterCounts c;
  auto starts = [](const std::string& s, const char* p) { return s.rfind(p, 0) == 0; };
  auto has = [](const std::string& s, const char* p) { return s.find(p) != std::string::npos; };
  for (const auto& [name, idx] : where_) {
    const auto& e = shards_[idx]->header().tensors.at(name);
    c.dtypes[std::string(dtype_name(e.dtype))]++;
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    if (e.dtype == DType::I64 || e.dtype == DType::I32 || e.dtype == DType::U8) {
      c.non_float += n;
      continue;
    }
    if (starts(name, "model.sam_model.")) c.sam += n;
    else if (starts(name, "model.vision_model.")) c.clip += n;
    else if (starts(name, "model.projector.")) c.projector += n;
    else if (name == "model.image_newline" || name == "model.view_seperator") c.special += n;
    else if (name == "model.embed_tokens.weight") c.lm_embed += n;
    else if (name == "lm_head.weight") c.lm_head += n;
    else if (starts(name, "model.layers.") && has(name, ".self_attn.")) c.lm_attention += n;
    else if (starts(name, "model.layers.") && has(name, ".mlp.experts.")) c.lm_experts += n;
    else if (starts(name, "model.layers.") && has(name, ".mlp.shared_experts.")) c.lm_shared += n;
    else if (starts(name, "model.layers.") && has(name, ".mlp.gate.weight")) c.lm_router += n;
    else if (starts(name, "model.layers.") && has(name, ".mlp.")) c.lm_dense_mlp += n;
    else if (has(name, "layernorm") || name == "model.norm.weight") c.lm_norms += n;
    else c.other += n;
  }
  return c;
}

int64_t ParameterCounts::active_per_token(const LmConfig& lm) const {
  const int moe_layers = [&] {
    int n = 0;
    for (int i = 0; i < lm.layers; ++i) n += lm.is_moe_layer(i);
    return n;
  }();
  const int64_t per_expert = moe_layers > 0 && lm.n_routed_experts > 0
                                 ? lm_experts / (int64_t(moe_layers) * lm.n_routed_experts)
                                 : 0;
  return lm_attention + lm_dense_mlp + lm_router + lm_shared + lm_norms + lm_head +
         int64_t(moe_layers) * lm.experts_per_token * per_expert;
}

std::string Checkpoint::identity() const {
  Sha256 h;
  h.update(read_file_text((std::filesystem::path(dir_) / "config.json").string()));
  for (const auto& shard : shards_) {
    h.update(shard->header_bytes());
    h.update(std::to_string(shard->file_size()));
  }
  return h.finish_hex().substr(0, 16);
}

size_t Checkpoint::mapped_bytes() const {
  size_t n = 0;
  for (const auto& s : shards_) n += std::filesystem::file_size(s->path());
  return n;
}

}  // namespace dsocr
