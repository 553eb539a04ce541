// DeepEncoder on the CPU against the golden data (golden README §E): every intermediate of the
// Small 640 view of the document image, and the full feature sequence of 5 images x 5 modes.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/vit_attention.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "vision/encoder.h"
#include "vision/preprocess.h"

namespace dsocr {
namespace {

constexpr float kTolerance = 1e-4f;  // golden README §T: fp32 noise is ~4e-6

const std::string kData = DSOCR_TEST_DATA;

struct Intermediate {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

// max |a - b| over equal-length arrays.
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// Channels-last [h, w, c] -> the golden's channels-first [c, h, w].
std::vector<float> hwc_to_chw(const std::vector<float>& x, int64_t h, int64_t w, int64_t c) {
  std::vector<float> out(x.size());
  for (int64_t i = 0; i < h * w; ++i)
    for (int64_t k = 0; k < c; ++k) out[size_t(k * h * w + i)] = x[size_t(i * c + k)];
  return out;
}

std::vector<float> normalised_view(const std::string& relative_path) {
  const Image image = load_image(kData + "/" + relative_path);
  std::vector<float> pixels(size_t(3) * image.width * image.height);
  normalize_to_chw(image, pixels.data());
  return pixels;
}

class EncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pool_ = std::make_unique<ThreadPool>(2);
    backend_ = std::make_unique<CpuBackend>(*pool_);
    ckpt_ = std::make_unique<Checkpoint>(DSOCR_TEST_MODEL);
    encoder_ = std::make_unique<VisionEncoder>(*ckpt_, *backend_);
  }
  static void TearDownTestSuite() {
    encoder_.reset();
    ckpt_.reset();
    backend_.reset();
    pool_.reset();
  }
  static std::unique_ptr<ThreadPool> pool_;
  static std::unique_ptr<CpuBackend> backend_;
  static std::unique_ptr<Checkpoint> ckpt_;
  static std::unique_ptr<VisionEncoder> encoder_;
};
std::unique_ptr<ThreadPool> EncoderTest::pool_;
std::unique_ptr<CpuBackend> EncoderTest::backend_;
std::unique_ptr<Checkpoint> EncoderTest::ckpt_;
std::unique_ptr<VisionEncoder> EncoderTest::encoder_;

// Every intermediate the encoder reports, by name.
struct Recorder : TensorObserver {
  std::map<std::string, Intermediate> got;
  void on_tensor(std::string_view name, const float* data, std::span<const int64_t> shape) override {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    got[std::string(name)] = {std::vector<float>(data, data + n), std::vector<int64_t>(shape.begin(), shape.end())};
  }
};

TEST_F(EncoderTest, DocSmallIntermediates) {
  Recorder recorder;
  std::map<std::string, Intermediate>& got = recorder.got;
  const std::vector<float> pixels = normalised_view("preproc/views/doc__global_640_resized.png");
  const std::vector<float> features = encoder_->encode_views(pixels.data(), 1, 640, &recorder);

  const SafetensorsFile golden(kData + "/encoder/doc_small_intermediates.safetensors");
  std::set<std::string> compared;
  auto expect_close = [&](const std::string& key, const std::vector<float>& mine) {
    compared.insert(key);
    const std::vector<float> ref = golden.get(key).to_f32();
    const float diff = max_abs_diff(mine, ref);
    EXPECT_LE(diff, kTolerance) << key;
    RecordProperty(key, std::to_string(diff));
  };

  for (const char* key : {"sam.patch_embed_plus_pos", "sam.block0", "sam.block1", "sam.block3", "clip.embeddings",
                          "clip.pre_layrnorm", "clip.layer0", "clip.out_with_cls", "projector.out"}) {
    ASSERT_TRUE(got.count(key)) << key;
    expect_close(key, got[key].data);
  }
  for (const char* key : {"sam.neck", "sam.net_2", "sam.net_3"}) {
    ASSERT_TRUE(got.count(key)) << key;
    const auto& s = got[key].shape;  // {1, h, w, c}
    ASSERT_EQ(s.size(), 4u);
    expect_close(key, hwc_to_chw(got[key].data, s[1], s[2], s[3]));
  }
  EXPECT_EQ(features, got["projector.out"].data);

  // Resampled position tables.
  expect_close("sam.pos_embed_resized", encoder_->sam().pos_embed(40));
  for (int block : {1, 3}) {
    const auto& [h, w] = encoder_->sam().rel_pos(block, 40);
    expect_close("sam.block" + std::to_string(block) + ".rel_pos_h_resized", h);
    expect_close("sam.block" + std::to_string(block) + ".rel_pos_w_resized", w);
  }
  expect_close("clip.pos_embed_resized", encoder_->clip().position_embedding(10));

  const std::vector<std::string> all = golden.names();
  EXPECT_EQ(compared, std::set<std::string>(all.begin(), all.end()));  // every golden intermediate checked
}

// Builds the page's views from the golden PNGs listed in preproc/index.json.
PageViews golden_views(const nlohmann::json& mode) {
  PageViews views;
  views.grid = {mode["grid_cols_rows"][0].get<int>(), mode["grid_cols_rows"][1].get<int>()};
  for (const auto& v : mode["views"]) {
    Image image = load_image(kData + "/" + v["file"].get<std::string>());
    if (v["role"] == "global") {
      views.global_size = image.width;
      views.global = std::move(image);
    } else {
      EXPECT_EQ(v["index"].get<size_t>(), views.tiles.size());
      views.tile_size = image.width;
      views.tiles.push_back(std::move(image));
    }
  }
  return views;
}

class FeatureSequenceTest : public EncoderTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(FeatureSequenceTest, MatchesGolden) {
  const std::string key = GetParam();  // "<image>.<mode>"
  const std::string image = key.substr(0, key.find('.')), mode = key.substr(key.find('.') + 1);
  nlohmann::json index;
  std::ifstream(kData + "/preproc/index.json") >> index;
  const nlohmann::json& m = index.at(image).at("modes").at(mode);
  const PageViews views = golden_views(m);

  const std::vector<float> features = encoder_->encode_page(views);
  const SafetensorsFile golden(kData + "/encoder/features.safetensors");
  const TensorView ref = golden.get(key);
  ASSERT_EQ(ref.dim(0), m["placeholders"].get<int64_t>());
  ASSERT_EQ(int64_t(features.size()), ref.dim(0) * ref.dim(1));
  EXPECT_EQ(int64_t(features.size()) / encoder_->n_embed(), placeholder_count(views));
  EXPECT_LE(max_abs_diff(features, ref.to_f32()), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(AllImagesAndModes, FeatureSequenceTest, ::testing::ValuesIn([] {
                           std::vector<std::string> keys;
                           for (const char* image : {"doc", "wide", "small", "tall", "square"})
                             for (const char* mode : {"tiny", "small", "base", "large", "gundam6"})
                               keys.push_back(std::string(image) + "." + mode);
                           return keys;
                         }()),
                         [](const auto& info) {
                           std::string name = info.param;
                           name[name.find('.')] = '_';
                           return name;
                         });

TEST_F(EncoderTest, RejectsViewSizeNotMultipleOfPatch) {
  std::vector<float> pixels(3 * 100 * 100, 0.0f);
  EXPECT_THROW(encoder_->encode_views(pixels.data(), 1, 100), Error);
}

TEST(PageLayout, StitchesTilesRowMajorThenGlobalThenSeparator) {
  // 2 cols x 1 row of 2x2 tiles, 1x1 global, dim 1: values encode (tile, y, x).
  const std::vector<float> tiles = {0, 1, 2, 3, 10, 11, 12, 13};
  const float global = 100, newline = -1, separator = -2;
  const std::vector<float> out = layout_page_features(&global, 1, tiles.data(), 2, {2, 1}, &newline, &separator, 1);
  EXPECT_EQ(out, (std::vector<float>{0, 1, 10, 11, -1, 2, 3, 12, 13, -1, 100, -1, -2}));
  const std::vector<float> no_tiles = layout_page_features(&global, 1, nullptr, 0, {1, 1}, &newline, &separator, 1);
  EXPECT_EQ(no_tiles, (std::vector<float>{100, -1, -2}));
}

// Naive attention of one image (double accumulation) for checking the blocked kernels.
std::vector<float> naive_attention(const std::vector<float>& qkv, int tokens, int heads, int dim) {
  const int width = heads * dim;
  std::vector<float> out(size_t(tokens) * width);
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < tokens; ++i) {
      std::vector<double> s(tokens);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < tokens; ++j) {
        double d = 0;
        for (int c = 0; c < dim; ++c) d += double(qkv[size_t(i * 3 * width + h * dim + c)]) * qkv[size_t(j * 3 * width + width + h * dim + c)];
        s[size_t(j)] = d / std::sqrt(double(dim));
        mx = std::max(mx, s[size_t(j)]);
      }
      for (double& x : s) sum += x = std::exp(x - mx);
      for (int c = 0; c < dim; ++c) {
        double acc = 0;
        for (int j = 0; j < tokens; ++j) acc += s[size_t(j)] * qkv[size_t(j * 3 * width + 2 * width + h * dim + c)];
        out[size_t(i * width + h * dim + c)] = float(acc / sum);
      }
    }
  return out;
}

TEST(VitAttention, GlobalMatchesNaiveForOddSizes) {
  ThreadPool pool(2);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto [tokens, heads, dim] : {std::tuple{37, 3, 80}, std::tuple{101, 2, 64}, std::tuple{5, 1, 20}}) {
    std::vector<float> qkv(size_t(2 * tokens * 3 * heads * dim));  // two images
    for (float& x : qkv) x = normal(rng);
    std::vector<float> out(size_t(2 * tokens * heads * dim));
    cpu::attention_global(pool, {heads, dim}, qkv.data(), 2, tokens, out.data());
    for (int b = 0; b < 2; ++b) {
      const std::vector<float> one(qkv.begin() + b * tokens * 3 * heads * dim, qkv.begin() + (b + 1) * tokens * 3 * heads * dim);
      const std::vector<float> mine(out.begin() + b * tokens * heads * dim, out.begin() + (b + 1) * tokens * heads * dim);
      EXPECT_LE(max_abs_diff(mine, naive_attention(one, tokens, heads, dim)), 1e-5f) << tokens << " " << dim;
    }
  }
}

TEST(VitAttention, WindowedEqualsGlobalPerPaddedWindow) {
  // A 5x5 grid with 3x3 windows: 4 windows, padded to 6x6. Window (1,1) holds real tokens
  // (3..4, 3..4) and 5 padded keys; compare its queries against global attention over that window.
  ThreadPool pool(2);
  const int grid = 5, window = 3, heads = 2, dim = 24, width = heads * dim;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> qkv(size_t(grid * grid * 3 * width)), pad(size_t(3 * width));
  for (float& x : qkv) x = normal(rng);
  for (float& x : pad) x = normal(rng);
  std::vector<float> out(size_t(grid * grid * width));
  cpu::attention_windowed(pool, {heads, dim}, qkv.data(), 1, grid, window, pad.data(), out.data());

  std::vector<float> win;
  for (int y = 3; y < 6; ++y)
    for (int x = 3; x < 6; ++x) {
      const float* src = (y < grid && x < grid) ? qkv.data() + (y * grid + x) * 3 * width : pad.data();
      win.insert(win.end(), src, src + 3 * width);
    }
  const std::vector<float> ref = naive_attention(win, window * window, heads, dim);
  for (int y = 3; y < grid; ++y)
    for (int x = 3; x < grid; ++x)
      for (int c = 0; c < width; ++c)
        EXPECT_NEAR(out[size_t((y * grid + x) * width + c)], ref[size_t(((y - 3) * window + (x - 3)) * width + c)], 1e-5f);
}

}  // namespace
}  // namespace dsocr
