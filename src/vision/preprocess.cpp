#include "vision/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "vision/resample.h"

namespace dsocr {
namespace {

// ---- CPython's candidate order -------------------------------------------------------------------
// The official code builds the candidate grids as
//   sorted(set((i, j) for n in range(lo, hi+1) for i in range(1, n+1) for j in range(1, n+1)
//              if lo <= i*j <= hi), key=lambda x: x[0] * x[1])
// The order among grids with equal tile count is the iteration order of that CPython set, which
// decides exact ties in the closest-aspect search. It is deterministic (int and tuple hashes are not
// randomised), so we reproduce CPython 3.8+'s tuple hash and set insertion/resizing exactly.

uint64_t cpython_pair_hash(int a, int b) {
  constexpr uint64_t kPrime1 = 11400714785074694791ULL, kPrime2 = 14029467366897019727ULL,
                     kPrime5 = 2870177450012600261ULL;
  uint64_t acc = kPrime5;
  for (uint64_t lane : {uint64_t(a), uint64_t(b)}) {  // hash(small int) = the int
    acc += lane * kPrime2;
    acc = (acc << 31) | (acc >> 33);
    acc *= kPrime1;
  }
  acc += 2 ^ (kPrime5 ^ 3527539ULL);
  return acc == ~uint64_t(0) ? 1546275796ULL : acc;
}

class CPythonPairSet {
 public:
  void add(std::pair<int, int> key) {
    const uint64_t hash = cpython_pair_hash(key.first, key.second);
    size_t slot = find_slot(slots_, hash, &key);
    if (slots_[slot].used) return;  // already present
    slots_[slot] = {true, hash, key};
    ++count_;
    if (count_ * 5 >= (slots_.size() - 1) * 3) resize(count_ * 4);
  }

  // Iteration order = table order.
  std::vector<std::pair<int, int>> items() const {
    std::vector<std::pair<int, int>> out;
    for (const Slot& s : slots_)
      if (s.used) out.push_back(s.key);
    return out;
  }

 private:
  struct Slot {
    bool used = false;
    uint64_t hash = 0;
    std::pair<int, int> key;
  };
  static constexpr size_t kLinearProbes = 9;

  // CPython's probe sequence: a run of up to 10 adjacent slots, then perturbed jumps. Returns the
  // slot holding `key` (when given) or the first free one.
  static size_t find_slot(const std::vector<Slot>& table, uint64_t hash, const std::pair<int, int>* key) {
    const size_t mask = table.size() - 1;
    size_t i = size_t(hash) & mask;
    uint64_t perturb = hash;
    for (;;) {
      const size_t run = i + kLinearProbes <= mask ? kLinearProbes : 0;
      for (size_t j = i; j <= i + run; ++j) {
        if (!table[j].used) return j;
        if (key && table[j].hash == hash && table[j].key == *key) return j;
      }
      perturb >>= 5;
      i = (i * 5 + 1 + size_t(perturb)) & mask;
    }
  }

  void resize(size_t min_used) {
    size_t size = 8;
    while (size <= min_used) size <<= 1;
    std::vector<Slot> table(size);
    for (const Slot& s : slots_)
      if (s.used) table[find_slot(table, s.hash, nullptr)] = s;
    slots_ = std::move(table);
  }

  std::vector<Slot> slots_ = std::vector<Slot>(8);
  size_t count_ = 0;
};

// Python's round() on a double: half to even (the default FE_TONEAREST mode).
int round_half_even(double v) { return int(std::nearbyint(v)); }

Image paste(const Image& piece, Image canvas, int x0, int y0) {
  for (int y = 0; y < piece.height; ++y)
    std::memcpy(canvas.pixel(x0, y0 + y), piece.pixel(0, y), size_t(piece.width) * 3);
  return canvas;
}

}  // namespace

Mode parse_mode(const std::string& name) {
  for (Mode m : {Mode::Tiny, Mode::Small, Mode::Base, Mode::Large, Mode::Gundam, Mode::GundamMaster})
    if (name == mode_name(m)) return m;
  fail("unknown mode '{}' (expected tiny, small, base, large, gundam or gundam-master)", name);
}

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::Tiny: return "tiny";
    case Mode::Small: return "small";
    case Mode::Base: return "base";
    case Mode::Large: return "large";
    case Mode::Gundam: return "gundam";
    case Mode::GundamMaster: return "gundam-master";
  }
  return "?";
}

ModeSpec mode_spec(Mode mode) {
  switch (mode) {
    case Mode::Tiny: return {512, 512, false};
    case Mode::Small: return {640, 640, false};
    case Mode::Base: return {1024, 1024, false};
    case Mode::Large: return {1280, 1280, false};
    case Mode::Gundam: return {1024, 640, true};
    case Mode::GundamMaster: return {1280, 1024, true};
  }
  fail("invalid mode {}", int(mode));
}

std::vector<TileGrid> candidate_tile_grids(int min_tiles, int max_tiles) {
  if (min_tiles < 1 || max_tiles < min_tiles || max_tiles > kMaxTilesLimit)
    fail("tile grid: invalid tile range {}..{} (allowed 1..{})", min_tiles, max_tiles, kMaxTilesLimit);
  CPythonPairSet set;
  for (int n = min_tiles; n <= max_tiles; ++n)
    for (int i = 1; i <= n; ++i)
      for (int j = 1; j <= n; ++j)
        if (i * j <= max_tiles && i * j >= min_tiles) set.add({i, j});
  std::vector<TileGrid> grids;
  for (const auto& [cols, rows] : set.items()) grids.push_back({cols, rows});
  std::stable_sort(grids.begin(), grids.end(),
                   [](const TileGrid& a, const TileGrid& b) { return a.cols * a.rows < b.cols * b.rows; });
  return grids;
}

TileGrid choose_tile_grid(int width, int height, int min_tiles, int max_tiles, int tile_size) {
  if (width < 1 || height < 1) fail("tile grid: invalid page size {}x{}", width, height);
  const double aspect = double(width) / double(height);
  const double area = double(int64_t(width) * int64_t(height));
  double best_diff = INFINITY;
  TileGrid best;
  for (const TileGrid& grid : candidate_tile_grids(min_tiles, max_tiles)) {
    const double diff = std::abs(aspect - double(grid.cols) / double(grid.rows));
    if (diff < best_diff) {
      best_diff = diff;
      best = grid;
    } else if (diff == best_diff && area > 0.5 * tile_size * tile_size * grid.cols * grid.rows) {
      best = grid;
    }
  }
  return best;
}

Image pad_to_square(const Image& image, int size, uint8_t fill) {
  if (image.empty()) fail("pad: empty image");
  // ImageOps.contain: fit inside size x size keeping the aspect ratio.
  int new_width = size, new_height = size;
  if (image.width != image.height) {
    if (image.width > image.height)
      new_height = round_half_even(double(image.height) / double(image.width) * size);
    else
      new_width = round_half_even(double(image.width) / double(image.height) * size);
  }
  Image resized = resize_bicubic(image, new_width, new_height);
  if (new_width == size && new_height == size) return resized;
  // The offset is round((size - resized) * 0.5), half to even (e.g. 102.5 -> 102).
  const int x0 = new_width != size ? round_half_even((size - new_width) * 0.5) : 0;
  const int y0 = new_width != size ? 0 : round_half_even((size - new_height) * 0.5);
  return paste(resized, make_image(size, size, fill, fill, fill), x0, y0);
}

TileGrid page_tile_grid(int width, int height, Mode mode, int max_tiles) {
  if (max_tiles < kMinTiles || max_tiles > kMaxTilesLimit)
    fail("max tiles must be between {} and {}, got {}", kMinTiles, kMaxTilesLimit, max_tiles);
  const ModeSpec spec = mode_spec(mode);
  if (!spec.crop || (width <= kNoTileMaxSide && height <= kNoTileMaxSide)) return {};
  return choose_tile_grid(width, height, kMinTiles, max_tiles, spec.image_size);
}

PageViews make_views(const Image& page, Mode mode, int max_tiles) {
  if (page.empty()) fail("preprocess: empty page image");
  const TileGrid grid = page_tile_grid(page.width, page.height, mode, max_tiles);
  const ModeSpec spec = mode_spec(mode);
  PageViews views;
  views.mode = mode;
  views.global_size = spec.base_size;
  if (!spec.crop) {
    // Official: resize((S, S)) when S <= 640 (aspect not kept), then ImageOps.pad (a no-op then).
    views.global = spec.image_size <= 640 ? resize_bicubic(page, spec.image_size, spec.image_size)
                                          : pad_to_square(page, spec.base_size);
    return views;
  }
  views.tile_size = spec.image_size;
  views.global = pad_to_square(page, spec.base_size);
  if (grid.cols * grid.rows <= 1) return views;

  views.grid = grid;
  const int tile = spec.image_size;
  const Image resized = resize_bicubic(page, tile * views.grid.cols, tile * views.grid.rows);
  for (int k = 0; k < views.grid.cols * views.grid.rows; ++k) {
    const int x0 = (k % views.grid.cols) * tile, y0 = (k / views.grid.cols) * tile;
    views.tiles.push_back(crop(resized, x0, y0, x0 + tile, y0 + tile));
  }
  return views;
}

int features_per_side(int view_size) { return ((view_size / 16) + 3) / 4; }

int placeholder_count(int global_size, int tile_size, TileGrid grid) {
  const int n = features_per_side(global_size);
  int count = n * (n + 1) + 1;
  if (tile_size > 0 && grid.cols * grid.rows > 1) {
    const int m = features_per_side(tile_size);
    count += (m * grid.rows) * (m * grid.cols + 1);
  }
  return count;
}

VisionTokenCount vision_token_count(int width, int height, Mode mode, int max_tiles) {
  if (width <= 0 || height <= 0) fail("vision tokens: empty page {}x{}", width, height);
  const ModeSpec spec = mode_spec(mode);
  VisionTokenCount c;
  c.grid = page_tile_grid(width, height, mode, max_tiles);
  const int tiles = c.grid.cols * c.grid.rows > 1 ? c.grid.cols * c.grid.rows : 0;
  const int tile_size = tiles > 0 ? spec.image_size : 0;
  c.placeholders = placeholder_count(spec.base_size, tile_size, c.grid);
  const int n = features_per_side(spec.base_size), m = tile_size > 0 ? features_per_side(tile_size) : 0;
  c.raw = n * n + tiles * m * m;
  const bool padded = spec.crop || spec.image_size > 640;  // Tiny and Small are resized to a square instead
  // Python's arithmetic: the difference and the division in double, the product truncated by int().
  const double mx = std::max(width, height), mn = std::min(width, height);
  const double ratio = 1.0 - (mx - mn) / mx;
  c.valid = (padded ? int(double(n * n) * ratio) : n * n) + tiles * m * m;
  return c;
}

int placeholder_count(const PageViews& views) {
  return placeholder_count(views.global_size, views.has_tiles() ? views.tile_size : 0, views.grid);
}

float normalized_pixel(uint8_t value) { return float(value) / 127.5f - 1.0f; }

void normalize_to_chw(const Image& view, float* out) {
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = normalized_pixel(uint8_t(v));
  const size_t plane = size_t(view.width) * size_t(view.height);
  const uint8_t* px = view.rgb.data();
  for (size_t i = 0; i < plane; ++i, px += 3) {
    out[i] = lut[px[0]];
    out[plane + i] = lut[px[1]];
    out[2 * plane + i] = lut[px[2]];
  }
}

}  // namespace dsocr
