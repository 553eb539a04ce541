// The DeepEncoder against the Backend: SAM + compressor -> CLIP -> concat -> linear projector
// (spec §3-4), and the page's feature sequence that replaces the <image> placeholders (spec §5.5).
// Position tables of every mode's view sizes are built at load; forward calls keep no state, so one
// encoder may run on several backends' threads only if each call uses its own backend workspace
// (one encoder per backend).
#pragma once
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "vision/clip.h"
#include "vision/preprocess.h"
#include "vision/sam.h"

namespace dsocr {

class VisionEncoder {
 public:
  VisionEncoder(const Checkpoint& ckpt, Backend& backend);

  int n_embed() const { return n_embed_; }
  Backend& backend() { return backend_; }

  // Projector outputs of a batch of same-size views (normalised CHW pixels, size x size each, backend
  // memory) into out: [batch, n*n, n_embed] with n = features_per_side(size), token t = y*n + x.
  // Observer: the SAM and CLIP intermediates and "projector.out".
  void encode_views(const float* pixels_chw, int batch, int size, float* out, TensorObserver* observer = nullptr);

  // The page's feature sequence (spec §5.5) from per-view projector outputs in backend memory:
  // global [n*n, dim]; tiles [grid.cols*grid.rows, m*m, dim] (null without tiles). Writes
  // [(rows*m)*(cols*m+1) + n*(n+1) + 1, dim] to out.
  void layout_page(const float* global, int n, const float* tiles, int m, TileGrid grid, float* out);

  // ---- host conveniences (tools, tests, benchmarks) ----
  std::vector<float> encode_views(const float* pixels_chw_host, int batch, int size, TensorObserver* observer = nullptr);
  // The whole feature sequence of a page: [placeholder_count(views), n_embed]; the tiles run as one batch.
  std::vector<float> encode_page(const PageViews& views, TensorObserver* observer = nullptr);

  SamEncoder& sam() { return sam_; }
  ClipEncoder& clip() { return clip_; }

 private:
  Backend& backend_;
  SamEncoder sam_;
  ClipEncoder clip_;
  Weight projector_;
  const float* projector_b_ = nullptr;
  const float* image_newline_ = nullptr;
  const float* view_separator_ = nullptr;
  int n_embed_ = 0;
};

// Where each row of a page's feature sequence comes from (spec §5.5): tiles stitched row-major with
// image_newline after each stitched row, then the global view's rows each followed by image_newline,
// then view_seperator. `row` indexes the tile outputs ([tiles, m*m]) or the global output ([n*n]).
struct LayoutRow {
  enum Source : uint8_t { Tile, Global, Newline, Separator } source;
  int32_t row;
};
std::vector<LayoutRow> page_feature_layout(int n, int m, TileGrid grid, bool has_tiles);

// The layout on host arrays (for tests and tools). tiles may be null (no tiles).
std::vector<float> layout_page_features(const float* global, int n, const float* tiles, int m, TileGrid grid,
                                        const float* newline, const float* separator, int dim);

// The views' normalised pixels, one after another ([views, 3, size, size], host).
std::vector<float> normalise_views(const std::vector<const Image*>& views, int size);

}  // namespace dsocr
