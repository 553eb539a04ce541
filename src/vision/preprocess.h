// Page -> model views (spec §5): the resolution modes, Gundam tiling, PIL-exact resize/pad, the
// placeholder-token count and pixel normalisation. Bit-exact with the official Python (Pillow 9.4).
#pragma once
#include <string>
#include <vector>

#include "io/image.h"

namespace dsocr {

enum class Mode { Tiny, Small, Base, Large, Gundam, GundamMaster };

Mode parse_mode(const std::string& name);  // "tiny" "small" "base" "large" "gundam" "gundam-master"
const char* mode_name(Mode mode);

struct ModeSpec {
  int base_size;   // global view side
  int image_size;  // tile side in crop modes (= base_size otherwise)
  bool crop;       // tiles + global view
};
ModeSpec mode_spec(Mode mode);

// Pad colour of the global views: int(0.5 * 255) per channel (the normalisation mean).
inline constexpr uint8_t kPadGrey = 127;

// Only pages larger than this on some side are tiled (hard-coded 640 in both official drivers,
// also for Gundam-Master).
inline constexpr int kNoTileMaxSide = 640;

// Tile count bounds; the official drivers use min 2 and max 6 (vLLM) or 9 (HF).
inline constexpr int kMinTiles = 2;
inline constexpr int kMaxTilesLimit = 9;
inline constexpr int kDefaultMaxTiles = 6;

struct TileGrid {
  int cols = 1, rows = 1;  // [1,1] = no tiles
  bool operator==(const TileGrid&) const = default;
};

// InternVL-style grid choice of the official dynamic_preprocess: among grids with
// min_tiles <= cols*rows <= max_tiles (in CPython's candidate order) the one whose aspect ratio is
// closest to width/height; on an exact tie the later candidate wins if the page area exceeds half
// of the tiles' area.
TileGrid choose_tile_grid(int width, int height, int min_tiles, int max_tiles, int tile_size);

// The candidate grids in the official (CPython 3.x) order: by tile count, ties in set order.
std::vector<TileGrid> candidate_tile_grids(int min_tiles, int max_tiles);

// PIL ImageOps.pad(image, (size, size), color=(127,127,127)): aspect-preserving bicubic resize to
// fit, pasted centred (offsets and sizes rounded half-to-even, like Python's round()).
Image pad_to_square(const Image& image, int size, uint8_t fill = kPadGrey);

struct PageViews {
  Mode mode = Mode::Base;
  Image global;
  std::vector<Image> tiles;  // tile k at column k % grid.cols, row k / grid.cols
  TileGrid grid;
  int global_size = 0;
  int tile_size = 0;  // 0 in modes without tiles
  bool has_tiles() const { return !tiles.empty(); }
};

// The grid make_views uses for a page of this size: [1,1] (no tiles) in the non-crop modes and
// when both sides are <= 640. Validates max_tiles (2..9) in every mode.
TileGrid page_tile_grid(int width, int height, Mode mode, int max_tiles = kDefaultMaxTiles);

// max_tiles (2..9) only matters for the crop modes.
PageViews make_views(const Image& page, Mode mode, int max_tiles = kDefaultMaxTiles);

// Vision features per side of a view: ceil((S/16)/4) -> 8, 10, 16, 20 for S = 512, 640, 1024, 1280.
int features_per_side(int view_size);

// Number of <image> placeholder tokens: tiles' stitched grid with a newline per row, the global
// grid with a newline per row, one view separator (spec §5.2/§5.3), e.g. 903 for an A4 page in Gundam.
int placeholder_count(const PageViews& views);
int placeholder_count(int global_size, int tile_size, TileGrid grid);

// A page's vision tokens in a mode, counted the three ways the paper and the drivers use.
struct VisionTokenCount {
  int placeholders = 0;  // <image> tokens in the prompt: placeholder_count (73 for Tiny)
  // Feature vectors without the newline and separator ones: the paper's nominal counts (Tiny 64,
  // Small 100, Base 256, Large 400, Gundam "n x 100 + 256", Gundam-Master "n x 256 + 400"). The
  // paper's compression ratios (Table 2: text tokens / 64 or 100) divide by this.
  int raw = 0;
  // Spec §5.6, as HF infer() prints them: the padded global view counts int(N * ratio) with
  // ratio = 1 - (max(w,h) - min(w,h)) / max(w,h) (floor; the paper's Eq. 1 writes ceil); Tiny and
  // Small resize without padding and count all 64 / 100; each tile counts in full (100; 256 for
  // Gundam-Master's 1024 tiles, where HF infer() cannot run).
  int valid = 0;
  TileGrid grid;
};
VisionTokenCount vision_token_count(int width, int height, Mode mode, int max_tiles = kDefaultMaxTiles);

// u8 / 127.5 - 1 into planar CHW float (bit-identical to torchvision's (u/255 - 0.5) / 0.5).
// `out` must hold 3 * width * height floats.
void normalize_to_chw(const Image& view, float* out);
float normalized_pixel(uint8_t value);

}  // namespace dsocr
