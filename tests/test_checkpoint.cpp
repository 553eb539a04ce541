#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "io/synth_checkpoint.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

const std::string kModel = DSOCR_TEST_MODEL;

void write_file(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// A scratch copy of the tiny model whose files can be altered; weights are linked unless copied.
struct ScratchModel {
  fs::path dir;
  explicit ScratchModel(const std::string& name) {
    dir = fs::temp_directory_path() / ("dsocr_ckpt_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : {"config.json", "tokenizer.json", "model.safetensors.index.json"})
      fs::copy_file(fs::canonical(fs::path(kModel) / f), dir / f);
    fs::create_symlink(fs::canonical(fs::path(kModel) / "model-00001-of-000001.safetensors"),
                       dir / "model-00001-of-000001.safetensors");
  }
  ~ScratchModel() { fs::remove_all(dir); }
  fs::path shard() const { return dir / "model-00001-of-000001.safetensors"; }
  void replace_shard(const std::string& bytes) const {
    fs::remove(shard());
    write_file(shard(), bytes);
  }
  void edit_config(const std::string& from, const std::string& to) const {
    std::string c = read_file_text((dir / "config.json").string());
    size_t pos = 0;
    int n = 0;
    while ((pos = c.find(from, pos)) != std::string::npos) {
      c.replace(pos, from.size(), to);
      pos += to.size();
      ++n;
    }
    ASSERT_GT(n, 0) << from;
    write_file(dir / "config.json", c);
  }
};

std::string open_error(const fs::path& dir) {
  try {
    Checkpoint c(dir.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Checkpoint, OpensTinyGoldenModel) {
  Checkpoint ckpt(kModel);
  const ModelConfig& c = ckpt.config();
  EXPECT_EQ(c.lm.hidden, 64);
  EXPECT_EQ(c.lm.layers, 3);
  EXPECT_EQ(c.lm.head_dim, 32);
  EXPECT_EQ(c.lm.experts_per_token, 3);
  EXPECT_FALSE(c.lm.norm_topk_prob);
  EXPECT_FLOAT_EQ(c.lm.rms_norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c.lm.rope_theta, 10000.0f);
  EXPECT_EQ(c.sam.width, 96);
  EXPECT_EQ(c.sam.global_attn_indexes, (std::vector<int>{1, 3}));
  EXPECT_EQ(c.sam.neck_channels, 32);
  EXPECT_EQ(c.sam.mlp_dim, 384);
  EXPECT_EQ(c.clip.ffn, 512);
  EXPECT_EQ(c.projector.input_dim, 256);
  EXPECT_EQ(ckpt.tensor_names().size(), 181u);
  const ParameterCounts p = ckpt.count_parameters();
  EXPECT_EQ(p.total(), 18316128);
  EXPECT_EQ(p.non_float, 257);
  EXPECT_EQ(p.other, 0);
  EXPECT_EQ(p.lm_embed, 129280 * 64);
  EXPECT_EQ(p.dtypes.at("BF16"), 180);
  EXPECT_EQ(p.dtypes.at("I64"), 1);
}

TEST(Checkpoint, LayoutMatchesTheOfficialTensorCount) {
  const ModelConfig official = parse_model_config(official_config_json(), "official");
  const auto layout = checkpoint_layout(official);
  EXPECT_EQ(layout.size(), 2711u);
  int64_t floats = 0;
  for (const auto& t : layout) {
    if (t.name == kPositionIdsName) continue;
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    floats += n;
  }
  EXPECT_EQ(floats, 3336106240);
}

TEST(Checkpoint, RejectsMissingFilesAndBadConfig) {
  {
    ScratchModel m("noconfig");
    fs::remove(m.dir / "config.json");
    EXPECT_NE(open_error(m.dir).find("config.json: cannot open"), std::string::npos);
  }
  {
    ScratchModel m("badjson");
    write_file(m.dir / "config.json", "{\"hidden_size\": ");
    EXPECT_NE(open_error(m.dir).find("not valid JSON"), std::string::npos);
  }
  {
    ScratchModel m("mla");
    m.edit_config("\"use_mla\": false", "\"use_mla\": true");
    EXPECT_NE(open_error(m.dir).find("use_mla"), std::string::npos);
  }
  {
    ScratchModel m("notok");
    fs::remove(m.dir / "tokenizer.json");
    EXPECT_NE(open_error(m.dir).find("missing tokenizer.json"), std::string::npos);
  }
  {
    ScratchModel m("wrongtype");
    m.edit_config("\"num_hidden_layers\": 3", "\"num_hidden_layers\": \"three\"");
    EXPECT_NE(open_error(m.dir).find("'num_hidden_layers' has the wrong type"), std::string::npos);
  }
  EXPECT_NE(open_error(fs::temp_directory_path() / "dsocr_no_such_dir").find("not a directory"), std::string::npos);
}

TEST(Checkpoint, RejectsShapeThatDisagreesWithConfig) {
  ScratchModel m("shape");
  m.edit_config("\"intermediate_size\": 128", "\"intermediate_size\": 256");
  const std::string e = open_error(m.dir);
  EXPECT_NE(e.find("model.layers.0.mlp.gate_proj.weight' has shape [128, 64] but config.json implies [256, 64]"),
            std::string::npos)
      << e;
}

TEST(Checkpoint, RejectsTruncatedShard) {
  ScratchModel m("trunc");
  const std::string bytes = read_file_text((fs::canonical(m.shard())).string());
  m.replace_shard(bytes.substr(0, bytes.size() / 2));
  const std::string e = open_error(m.dir);
  EXPECT_NE(e.find("beyond the data section"), std::string::npos) << e;
  EXPECT_NE(e.find("model-00001-of-000001.safetensors"), std::string::npos) << e;
  m.replace_shard(bytes.substr(0, 5));
  EXPECT_NE(open_error(m.dir).find("truncated"), std::string::npos);
}

TEST(Checkpoint, RejectsMissingTensor) {
  ScratchModel m("missing");
  SafetensorsFile src(fs::canonical(m.shard()).string());
  SafetensorsWriter w;
  for (const auto& name : src.names()) {
    if (name == "model.layers.2.mlp.experts.5.up_proj.weight") continue;
    TensorView t = src.get(name);
    w.add(name, t.dtype, t.shape, t.data, t.nbytes);
  }
  fs::remove(m.shard());
  w.write(m.shard().string());
  std::string e = open_error(m.dir);
  // The index still lists it, so the index check names it first.
  EXPECT_NE(e.find("model.layers.2.mlp.experts.5.up_proj.weight"), std::string::npos) << e;
  fs::remove(m.dir / "model.safetensors.index.json");
  e = open_error(m.dir);
  EXPECT_NE(e.find("missing tensor 'model.layers.2.mlp.experts.5.up_proj.weight'"), std::string::npos) << e;
}

TEST(Checkpoint, RejectsIndexNamingAMissingShard) {
  ScratchModel m("index");
  std::string idx = read_file_text((m.dir / "model.safetensors.index.json").string());
  const std::string from = "\"lm_head.weight\": \"model-00001-of-000001.safetensors\"";
  const size_t pos = idx.find(from);
  ASSERT_NE(pos, std::string::npos);
  idx.replace(pos, from.size(), "\"lm_head.weight\": \"model-00002-of-000002.safetensors\"");
  write_file(m.dir / "model.safetensors.index.json", idx);
  EXPECT_NE(open_error(m.dir).find("missing weight shard"), std::string::npos);
}

TEST(SynthCheckpoint, FullSizeLayoutAsSparseFile) {
  const fs::path out = fs::temp_directory_path() / "dsocr_synth_full";
  fs::remove_all(out);
  SynthOptions o;
  o.out_dir = out.string();
  o.tokenizer = (fs::path(kModel) / "tokenizer.json").string();
  o.sparse = true;
  const SynthResult r = write_synthetic_checkpoint(o);
  EXPECT_EQ(r.tensors, 2711);
  EXPECT_EQ(r.bytes, fs::file_size(out / "model-00001-of-000001.safetensors"));
  Checkpoint ckpt(out.string());
  const ParameterCounts p = ckpt.count_parameters();
  EXPECT_EQ(p.total(), 3336106240);
  EXPECT_EQ(p.lm(), 2934734080);
  EXPECT_EQ(p.clip, 303177728);
  EXPECT_EQ(p.sam, 95569152);
  EXPECT_EQ(p.projector, 2622720);
  EXPECT_EQ(p.special, 2560);
  // Data section = 3,336,106,240 bf16 values + 257 int64 position ids: the official shard's size.
  EXPECT_EQ(r.bytes - ckpt.shards()[0]->header().data_start, 6672214536ull);
  fs::remove_all(out);
}

TEST(SynthCheckpoint, RandomTinyCheckpointLoadsWithSaneValues) {
  const fs::path out = fs::temp_directory_path() / "dsocr_synth_tiny";
  fs::remove_all(out);
  SynthOptions o;
  o.out_dir = out.string();
  o.like = kModel;
  o.seed = 7;
  write_synthetic_checkpoint(o);
  Checkpoint ckpt(out.string());
  EXPECT_EQ(ckpt.count_parameters().total(), 18316128);
  auto stats = [&](const std::string& name) {
    auto v = ckpt.tensor(name).to_f32();
    double s = 0, s2 = 0;
    for (float x : v) {
      s += x;
      s2 += double(x) * x;
    }
    const double mean = s / double(v.size());
    return std::pair<double, double>(mean, std::sqrt(s2 / double(v.size()) - mean * mean));
  };
  auto [m1, s1] = stats("model.layers.1.input_layernorm.weight");
  EXPECT_NEAR(m1, 1.0, 0.05);
  auto [m2, s2] = stats("model.layers.0.mlp.up_proj.weight");  // N(0, 1/sqrt(64))
  EXPECT_NEAR(m2, 0.0, 0.01);
  EXPECT_NEAR(s2, 0.125, 0.01);
  auto ids = ckpt.tensor(kPositionIdsName);
  EXPECT_EQ(reinterpret_cast<const int64_t*>(ids.data)[256], 256);
  fs::remove_all(out);
}
