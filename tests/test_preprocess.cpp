// Preprocessing against the official goldens (tests/data/preproc, golden README §D): every view of
// every image x mode bit for bit, tile grids, placeholder counts, the normalisation LUT.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "vision/preprocess.h"
#include "vision/resample.h"

using namespace dsocr;
using nlohmann::json;

namespace {

const std::string kData = DSOCR_TEST_DATA;

json load_json(const std::string& relative) {
  std::ifstream in(kData + "/" + relative);
  if (!in) throw std::runtime_error("cannot open " + relative);
  return json::parse(in);
}

std::string sha256_of(const Image& image) {
  Sha256 hasher;
  hasher.update(image.rgb.data(), image.rgb.size());
  return hasher.finish_hex();
}

// "<n> differing bytes, first at (x, y)" or "" when identical.
std::string describe_difference(const Image& ours, const Image& golden) {
  if (ours.width != golden.width || ours.height != golden.height)
    return fmt::format("size {}x{} vs {}x{}", ours.width, ours.height, golden.width, golden.height);
  size_t differing = 0, first = 0;
  for (size_t i = 0; i < ours.rgb.size(); ++i)
    if (ours.rgb[i] != golden.rgb[i] && differing++ == 0) first = i;
  if (differing == 0) return "";
  const size_t pixel = first / 3;
  return fmt::format("{} differing bytes, first at x={} y={}: {} vs {}", differing, pixel % size_t(ours.width),
                     pixel / size_t(ours.width), ours.rgb[first], golden.rgb[first]);
}

struct GoldenMode {
  Mode mode;
  int max_tiles;
};

GoldenMode golden_mode(const std::string& key) {
  if (key == "gundam6") return {Mode::Gundam, 6};
  if (key == "gundam9") return {Mode::Gundam, 9};
  return {parse_mode(key), kDefaultMaxTiles};
}

class PreprocessGolden : public testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { index_ = new json(load_json("preproc/index.json")); }
  static void TearDownTestSuite() {
    delete index_;
    index_ = nullptr;
  }
  static json* index_;
};
json* PreprocessGolden::index_ = nullptr;

}  // namespace

TEST_P(PreprocessGolden, EveryViewBitExact) {
  const json& entry = (*index_)[GetParam()];
  const Image page = load_image(kData + "/" + entry["file"].get<std::string>());
  ASSERT_EQ(page.width, entry["size_wh"][0].get<int>());
  ASSERT_EQ(page.height, entry["size_wh"][1].get<int>());

  std::map<std::string, Image> golden_views;  // the same file serves several modes
  int compared = 0;
  for (const auto& [mode_key, golden] : entry["modes"].items()) {
    SCOPED_TRACE(mode_key);
    const GoldenMode gm = golden_mode(mode_key);
    const PageViews views = make_views(page, gm.mode, gm.max_tiles);
    const ModeSpec spec = mode_spec(gm.mode);
    EXPECT_EQ(spec.base_size, golden["base_size"].get<int>());
    EXPECT_EQ(spec.image_size, golden["image_size"].get<int>());
    EXPECT_EQ(spec.crop, golden["crop_mode"].get<bool>());
    EXPECT_EQ(views.grid.cols, golden["grid_cols_rows"][0].get<int>());
    EXPECT_EQ(views.grid.rows, golden["grid_cols_rows"][1].get<int>());
    EXPECT_EQ(int(views.tiles.size()), golden["num_tiles"].get<int>());
    EXPECT_EQ(placeholder_count(views), golden["placeholders"].get<int>());
    EXPECT_EQ(views.global_size, spec.base_size);

    for (const json& view : golden["views"]) {
      const std::string file = view["file"].get<std::string>();
      SCOPED_TRACE(file);
      auto [it, inserted] = golden_views.try_emplace(file);
      if (inserted) {
        it->second = load_image(kData + "/" + file);
        ASSERT_EQ(sha256_of(it->second), view["sha256_raw_rgb"].get<std::string>()) << "PNG decoder";
      }
      const Image& expected = it->second;
      ASSERT_EQ(expected.height, view["shape_hwc"][0].get<int>());
      ASSERT_EQ(expected.width, view["shape_hwc"][1].get<int>());
      const Image* ours = &views.global;
      if (view["role"] == "tile") {
        const int k = view["index"].get<int>();
        ASSERT_LT(k, int(views.tiles.size()));
        EXPECT_EQ(k, view["row"].get<int>() * views.grid.cols + view["col"].get<int>());
        ours = &views.tiles[size_t(k)];
      }
      EXPECT_EQ(describe_difference(*ours, expected), "");
      ++compared;
    }
  }
  EXPECT_EQ(compared, [&] {
    int n = 0;
    for (const auto& [key, golden] : entry["modes"].items()) n += int(golden["views"].size());
    return n;
  }());
  EXPECT_EQ(entry["modes"].size(), 6u);
}

INSTANTIATE_TEST_SUITE_P(Images, PreprocessGolden, testing::Values("doc", "wide", "small", "tall", "square"));

TEST(Preprocess, GridTableMax6AndMax9) {
  const json table = load_json("preproc/grid_table.json");
  ASSERT_EQ(table["rows"].size(), 205u);
  for (const json& row : table["rows"]) {
    const int w = row["w"].get<int>(), h = row["h"].get<int>();
    for (const auto& [key, max_tiles] : {std::pair{"max6", 6}, std::pair{"max9", 9}}) {
      SCOPED_TRACE(fmt::format("{}x{} {}", w, h, key));
      const json& expected = row[key];
      const TileGrid grid = page_tile_grid(w, h, Mode::Gundam, max_tiles);
      EXPECT_EQ(grid.cols, expected["grid_cols_rows"][0].get<int>());
      EXPECT_EQ(grid.rows, expected["grid_cols_rows"][1].get<int>());
      const int tiles = grid.cols * grid.rows > 1 ? grid.cols * grid.rows : 0;
      EXPECT_EQ(tiles, expected["tiles"].get<int>());
      EXPECT_EQ(placeholder_count(1024, 640, grid), expected["placeholders"].get<int>());
    }
  }
  for (const auto& [name, count] : table["non_crop_mode_placeholders"].items()) {
    const ModeSpec spec = mode_spec(parse_mode(name));
    EXPECT_EQ(placeholder_count(spec.base_size, 0, {}), count.get<int>()) << name;
  }
}

TEST(Preprocess, CandidateOrderIsCPythons) {
  // Produced by CPython 3.11 for min 2 (spec §5.3 lists max 6 and max 9).
  const std::map<int, std::string> expected = {
      {2, "1,2 2,1"},
      {3, "1,2 2,1 3,1 1,3"},
      {4, "1,2 2,1 3,1 1,3 4,1 1,4 2,2"},
      {5, "1,2 2,1 3,1 1,3 4,1 1,4 2,2 1,5 5,1"},
      {6, "1,2 2,1 3,1 1,3 4,1 1,4 2,2 1,5 5,1 6,1 2,3 1,6 3,2"},
      {7, "1,2 2,1 3,1 1,3 4,1 1,4 2,2 1,5 5,1 6,1 2,3 1,6 3,2 7,1 1,7"},
      {8, "1,2 2,1 3,1 1,3 2,2 4,1 1,4 5,1 1,5 1,6 6,1 3,2 2,3 7,1 1,7 4,2 2,4 1,8 8,1"},
      {9, "1,2 2,1 3,1 1,3 2,2 4,1 1,4 5,1 1,5 1,6 6,1 3,2 2,3 7,1 1,7 4,2 2,4 1,8 8,1 1,9 3,3 9,1"},
  };
  for (const auto& [max_tiles, order] : expected) {
    std::string ours;
    for (const TileGrid& g : candidate_tile_grids(2, max_tiles))
      ours += fmt::format("{}{},{}", ours.empty() ? "" : " ", g.cols, g.rows);
    EXPECT_EQ(ours, order) << "max " << max_tiles;
  }
  // Another minimum, also from CPython 3.11.
  std::string ours;
  for (const TileGrid& g : candidate_tile_grids(1, 9)) ours += fmt::format("{},{} ", g.cols, g.rows);
  EXPECT_EQ(ours, "1,1 1,2 2,1 3,1 1,3 2,2 4,1 1,4 5,1 1,5 1,6 6,1 3,2 2,3 7,1 1,7 4,2 2,4 1,8 8,1 1,9 3,3 9,1 ");
}

TEST(Preprocess, GundamMasterGridsAndCounts) {
  // 1024 tiles + 1280 global: 421 + (16 * rows) * (16 * cols + 1); the no-tile threshold stays 640.
  struct Case {
    int w, h, max_tiles, cols, rows;
  };
  for (const Case& c : {Case{1191, 1684, 6, 2, 3}, Case{1920, 1080, 6, 2, 1}, Case{1920, 1080, 9, 2, 1},
                        Case{600, 640, 6, 1, 1}, Case{641, 300, 6, 2, 1}, Case{3000, 1000, 6, 3, 1}}) {
    SCOPED_TRACE(fmt::format("{}x{} max {}", c.w, c.h, c.max_tiles));
    const TileGrid grid = page_tile_grid(c.w, c.h, Mode::GundamMaster, c.max_tiles);
    EXPECT_EQ(grid, (TileGrid{c.cols, c.rows}));
    const int expected = c.cols * c.rows > 1 ? 421 + (16 * c.rows) * (16 * c.cols + 1) : 421;
    EXPECT_EQ(placeholder_count(1280, 1024, grid), expected);
  }
  // The tie rule depends on the tile size: a 2000x2000 page ties (2,2) and (3,3) with max 9; the
  // later (3,3) wins only if the page area exceeds half of the tiles' area.
  EXPECT_EQ(page_tile_grid(2000, 2000, Mode::Gundam, 9), (TileGrid{3, 3}));
  EXPECT_EQ(page_tile_grid(2000, 2000, Mode::GundamMaster, 9), (TileGrid{2, 2}));

  Image page = make_image(1300, 700);
  for (size_t i = 0; i < page.rgb.size(); ++i) page.rgb[i] = uint8_t(i * 7 / 5);
  const PageViews views = make_views(page, Mode::GundamMaster);
  EXPECT_EQ(views.global_size, 1280);
  EXPECT_EQ(views.tile_size, 1024);
  ASSERT_EQ(views.grid, (TileGrid{2, 1}));
  ASSERT_EQ(views.tiles.size(), 2u);
  EXPECT_EQ(views.global.width, 1280);
  EXPECT_EQ(views.tiles[1].width, 1024);
  EXPECT_EQ(placeholder_count(views), 421 + 16 * 33);
  const Image resized = resize_bicubic(page, 2048, 1024);
  EXPECT_EQ(describe_difference(views.tiles[1], crop(resized, 1024, 0, 2048, 1024)), "");
}

TEST(Preprocess, ModesAndValidation) {
  for (Mode m : {Mode::Tiny, Mode::Small, Mode::Base, Mode::Large, Mode::Gundam, Mode::GundamMaster})
    EXPECT_EQ(parse_mode(mode_name(m)), m);
  EXPECT_STREQ(mode_name(Mode::GundamMaster), "gundam-master");
  EXPECT_THROW(parse_mode("huge"), Error);

  const Image page = make_image(700, 700, 1, 2, 3);
  for (int bad : {1, 10}) {
    try {
      make_views(page, Mode::Gundam, bad);
      ADD_FAILURE() << "max tiles " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), fmt::format("max tiles must be between 2 and 9, got {}", bad));
    }
  }
  EXPECT_EQ(features_per_side(512), 8);
  EXPECT_EQ(features_per_side(640), 10);
  EXPECT_EQ(features_per_side(1024), 16);
  EXPECT_EQ(features_per_side(1280), 20);

  // Tiny/Small: direct square resize; no tiles in any non-crop mode.
  const PageViews tiny = make_views(make_image(900, 300, 9, 9, 9), Mode::Tiny);
  EXPECT_EQ(tiny.global.width, 512);
  EXPECT_EQ(tiny.global.height, 512);
  EXPECT_FALSE(tiny.has_tiles());
  EXPECT_EQ(tiny.global.rgb, std::vector<uint8_t>(size_t(512) * 512 * 3, 9));  // no pad colour
  EXPECT_EQ(placeholder_count(tiny), 73);
}

TEST(Preprocess, PadUsesHalfToEvenOffsets) {
  // 500x400 -> contain (1024, 819); offset round(102.5) = 102 (Python rounds half to even).
  const Image padded = pad_to_square(make_image(500, 400, 200, 200, 200), 1024);
  ASSERT_EQ(padded.width, 1024);
  EXPECT_EQ(padded.pixel(0, 101)[0], kPadGrey);
  EXPECT_EQ(padded.pixel(0, 102)[0], 200);
  EXPECT_EQ(padded.pixel(0, 920)[0], 200);
  EXPECT_EQ(padded.pixel(0, 921)[0], kPadGrey);
  // 600x2000 -> (307, 1024); offset round(358.5) = 358.
  const Image tall = pad_to_square(make_image(600, 2000, 50, 50, 50), 1024);
  EXPECT_EQ(tall.pixel(357, 0)[0], kPadGrey);
  EXPECT_EQ(tall.pixel(358, 0)[0], 50);
  EXPECT_EQ(tall.pixel(664, 0)[0], 50);
  EXPECT_EQ(tall.pixel(665, 0)[0], kPadGrey);
}

TEST(Preprocess, ResizeKeepsConstantsAndCopiesSameSize) {
  const Image flat = make_image(333, 97, 10, 128, 250);
  for (auto [w, h] : {std::pair{1000, 50}, std::pair{12, 400}, std::pair{333, 20}, std::pair{7, 97}}) {
    const Image r = resize_bicubic(flat, w, h);
    ASSERT_EQ(r.width, w);
    ASSERT_EQ(r.height, h);
    for (size_t i = 0; i < r.rgb.size(); i += 3) {
      ASSERT_EQ(r.rgb[i], 10);
      ASSERT_EQ(r.rgb[i + 1], 128);
      ASSERT_EQ(r.rgb[i + 2], 250);
    }
  }
  Image noise = make_image(31, 17);
  for (size_t i = 0; i < noise.rgb.size(); ++i) noise.rgb[i] = uint8_t(i * 131 + 7);
  EXPECT_EQ(resize_bicubic(noise, 31, 17).rgb, noise.rgb);
  EXPECT_THROW(resize_bicubic(noise, 0, 5), Error);
}

TEST(Preprocess, NormalisationMatchesTorchvisionLut) {
  SafetensorsFile lut_file(kData + "/preproc/pixel_norm_lut.safetensors");
  const TensorView lut = lut_file.get("lut");
  ASSERT_EQ(lut.dtype, DType::F32);
  ASSERT_EQ(lut.numel(), 256);
  std::vector<float> expected(256);
  std::memcpy(expected.data(), lut.data, 256 * sizeof(float));

  // 16x16 view whose red channel runs through all 256 values; green and blue are permutations.
  Image view = make_image(16, 16);
  for (int i = 0; i < 256; ++i) {
    view.rgb[size_t(3 * i)] = uint8_t(i);
    view.rgb[size_t(3 * i + 1)] = uint8_t(255 - i);
    view.rgb[size_t(3 * i + 2)] = uint8_t(i * 7);
  }
  std::vector<float> chw(3 * 256);
  normalize_to_chw(view, chw.data());
  for (int i = 0; i < 256; ++i) {
    const uint8_t values[3] = {uint8_t(i), uint8_t(255 - i), uint8_t(i * 7)};
    for (int c = 0; c < 3; ++c) {
      uint32_t ours, golden;
      std::memcpy(&ours, &chw[size_t(c * 256 + i)], 4);
      std::memcpy(&golden, &expected[values[c]], 4);
      ASSERT_EQ(ours, golden) << "value " << int(values[c]) << " channel " << c;
    }
  }
  EXPECT_EQ(normalized_pixel(127), expected[127]);
  EXPECT_FLOAT_EQ(normalized_pixel(0), -1.0f);
  EXPECT_FLOAT_EQ(normalized_pixel(255), 1.0f);
}
