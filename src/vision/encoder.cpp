#include "vision/encoder.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace dsocr {

namespace {

// The square view sides of every resolution mode (global views and tiles).
std::vector<int> mode_view_sizes() {
  std::vector<int> sizes;
  for (Mode m : {Mode::Tiny, Mode::Small, Mode::Base, Mode::Large, Mode::Gundam, Mode::GundamMaster}) {
    const ModeSpec spec = mode_spec(m);
    for (int s : {spec.base_size, spec.image_size})
      if (std::find(sizes.begin(), sizes.end(), s) == sizes.end()) sizes.push_back(s);
  }
  return sizes;
}

std::vector<int> sam_grids(const std::vector<int>& sizes) {
  std::vector<int> grids;
  for (int s : sizes) grids.push_back(features_per_side(s));
  return grids;
}

}  // namespace

VisionEncoder::VisionEncoder(const Checkpoint& ckpt, Backend& backend)
    : backend_(backend), sam_(ckpt, backend, mode_view_sizes()), clip_(ckpt, backend, sam_grids(mode_view_sizes())) {
  const ModelConfig& c = ckpt.config();
  // The official code hard-codes these couplings; a config that breaks them cannot run.
  if (clip_.width() != sam_.out_channels())
    fail("{}: CLIP width {} differs from the SAM output channels {}", ckpt.dir(), clip_.width(), sam_.out_channels());
  if (c.projector.input_dim != clip_.width() + sam_.out_channels())
    fail("{}: projector input_dim {} is not CLIP width + SAM channels = {}", ckpt.dir(), c.projector.input_dim,
         clip_.width() + sam_.out_channels());
  if (c.projector.n_embed != c.lm.hidden)
    fail("{}: projector n_embed {} differs from the LM hidden size {}", ckpt.dir(), c.projector.n_embed, c.lm.hidden);
  for (int s : mode_view_sizes())
    if (sam_.output_grid(s) != features_per_side(s))
      fail("{}: a {}px view gives a {}x{} SAM grid, not the {}x{} the prompt counts", ckpt.dir(), s,
           sam_.output_grid(s), sam_.output_grid(s), features_per_side(s), features_per_side(s));
  n_embed_ = c.projector.n_embed;
  projector_ = backend_.weight(ckpt.tensor("model.projector.layers.weight"));
  projector_b_ = backend_.constant(ckpt.tensor("model.projector.layers.bias"));
  image_newline_ = backend_.constant(ckpt.tensor("model.image_newline"));
  view_separator_ = backend_.constant(ckpt.tensor("model.view_seperator"));
}

void VisionEncoder::encode_views(const float* pixels_chw, int batch, int size, float* out, TensorObserver* observer) {
  Backend& be = backend_;
  Workspace& ws = be.workspace();
  WorkspaceScope scope(ws);
  const int n = sam_.output_grid(size);
  const int cw = clip_.width(), sc = sam_.out_channels(), in = cw + sc;
  const int64_t tokens = int64_t(batch) * n * n;
  float* sam = ws.floats(size_t(tokens * sc));
  sam_.forward(pixels_chw, batch, size, sam, observer);
  float* clip = ws.floats(size_t(int64_t(batch) * (1 + n * n) * cw));
  clip_.forward(sam, batch, n, clip, observer);

  // Per token: [CLIP output without CLS | SAM output] -> projector.
  float* fused = ws.floats(size_t(tokens * in));
  for (int b = 0; b < batch; ++b)
    be.copy_rows(fused + int64_t(b) * n * n * in, in, clip + (int64_t(b) * (1 + n * n) + 1) * cw, cw, int64_t(n) * n, cw);
  be.copy_rows(fused + cw, in, sam, sc, tokens, sc);
  be.linear(fused, tokens, projector_, projector_b_, out);
  observe(observer, be, "projector.out", out, {batch, int64_t(n) * n, n_embed_});
}

std::vector<LayoutRow> page_feature_layout(int n, int m, TileGrid grid, bool has_tiles) {
  const int64_t tile_rows = has_tiles ? int64_t(grid.rows) * m : 0, tile_cols = has_tiles ? int64_t(grid.cols) * m : 0;
  std::vector<LayoutRow> rows;
  rows.reserve(size_t(tile_rows * (tile_cols + 1) + int64_t(n) * (n + 1) + 1));
  // Tiles stitched into one (rows*m) x (cols*m) grid: stitched row y is row y % m of the tiles in grid row y / m.
  for (int64_t y = 0; y < tile_rows; ++y) {
    for (int64_t x = 0; x < tile_cols; ++x) {
      const int64_t tile = (y / m) * grid.cols + x / m;
      rows.push_back({LayoutRow::Tile, int32_t((tile * m + y % m) * m + x % m)});
    }
    rows.push_back({LayoutRow::Newline, 0});
  }
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) rows.push_back({LayoutRow::Global, int32_t(y * n + x)});
    rows.push_back({LayoutRow::Newline, 0});
  }
  rows.push_back({LayoutRow::Separator, 0});
  return rows;
}

namespace {
// Pointer to the source row of each layout row.
std::vector<const float*> layout_pointers(const std::vector<LayoutRow>& layout, const float* global, const float* tiles,
                                          const float* newline, const float* separator, int dim) {
  std::vector<const float*> ptrs(layout.size());
  for (size_t i = 0; i < layout.size(); ++i) {
    const LayoutRow& r = layout[i];
    switch (r.source) {
      case LayoutRow::Tile: ptrs[i] = tiles + int64_t(r.row) * dim; break;
      case LayoutRow::Global: ptrs[i] = global + int64_t(r.row) * dim; break;
      case LayoutRow::Newline: ptrs[i] = newline; break;
      case LayoutRow::Separator: ptrs[i] = separator; break;
    }
  }
  return ptrs;
}
}  // namespace

void VisionEncoder::layout_page(const float* global, int n, const float* tiles, int m, TileGrid grid, float* out) {
  const std::vector<LayoutRow> layout = page_feature_layout(n, m, grid, tiles != nullptr);
  const std::vector<const float*> ptrs =
      layout_pointers(layout, global, tiles, image_newline_, view_separator_, n_embed_);
  backend_.copy_row_list(out, ptrs.data(), int64_t(ptrs.size()), n_embed_);
}

std::vector<float> layout_page_features(const float* global, int n, const float* tiles, int m, TileGrid grid,
                                        const float* newline, const float* separator, int dim) {
  const std::vector<LayoutRow> layout = page_feature_layout(n, m, grid, tiles != nullptr);
  const std::vector<const float*> ptrs = layout_pointers(layout, global, tiles, newline, separator, dim);
  std::vector<float> out(ptrs.size() * size_t(dim));
  for (size_t i = 0; i < ptrs.size(); ++i) std::memcpy(out.data() + i * size_t(dim), ptrs[i], size_t(dim) * sizeof(float));
  return out;
}

std::vector<float> normalise_views(const std::vector<const Image*>& views, int size) {
  const size_t plane = size_t(3) * size * size;
  std::vector<float> pixels(plane * views.size());
  for (size_t i = 0; i < views.size(); ++i) {
    if (views[i]->width != size || views[i]->height != size)
      fail("vision encoder: view {}x{} is not {}x{}", views[i]->width, views[i]->height, size, size);
    normalize_to_chw(*views[i], pixels.data() + i * plane);
  }
  return pixels;
}

std::vector<float> VisionEncoder::encode_views(const float* pixels_chw_host, int batch, int size,
                                               TensorObserver* observer) {
  const int n = features_per_side(size);
  const size_t in = size_t(batch) * 3 * size * size, outn = size_t(batch) * n * n * size_t(n_embed_);
  std::unique_ptr<Buffer> pixels = backend_.buffer(in), out = backend_.buffer(outn);
  backend_.from_host(pixels->data(), pixels_chw_host, in);
  encode_views(pixels->data(), batch, size, out->data(), observer);
  std::vector<float> host(outn);
  backend_.to_host(host.data(), out->data(), outn);
  return host;
}

std::vector<float> VisionEncoder::encode_page(const PageViews& views, TensorObserver* observer) {
  const int gsize = views.global_size, n = features_per_side(gsize);
  const std::vector<float> gpix = normalise_views({&views.global}, gsize);
  std::unique_ptr<Buffer> gpixels = backend_.buffer(gpix.size());
  backend_.from_host(gpixels->data(), gpix.data(), gpix.size());
  std::unique_ptr<Buffer> global = backend_.buffer(size_t(n) * n * size_t(n_embed_));
  encode_views(gpixels->data(), 1, gsize, global->data(), observer);

  std::unique_ptr<Buffer> tiles;
  int m = 0;
  if (views.has_tiles()) {
    if (int(views.tiles.size()) != views.grid.cols * views.grid.rows)
      fail("vision encoder: {} tiles for a {}x{} grid", views.tiles.size(), views.grid.cols, views.grid.rows);
    std::vector<const Image*> ptrs;
    for (const Image& t : views.tiles) ptrs.push_back(&t);
    const std::vector<float> tpix = normalise_views(ptrs, views.tile_size);
    std::unique_ptr<Buffer> tpixels = backend_.buffer(tpix.size());
    backend_.from_host(tpixels->data(), tpix.data(), tpix.size());
    m = features_per_side(views.tile_size);
    tiles = backend_.buffer(ptrs.size() * size_t(m) * m * size_t(n_embed_));
    encode_views(tpixels->data(), int(ptrs.size()), views.tile_size, tiles->data(), observer);
  }
  const int count = placeholder_count(views);
  std::unique_ptr<Buffer> out = backend_.buffer(size_t(count) * size_t(n_embed_));
  layout_page(global->data(), n, tiles ? tiles->data() : nullptr, m, views.grid, out->data());
  std::vector<float> host(size_t(count) * size_t(n_embed_));
  backend_.to_host(host.data(), out->data(), host.size());
  return host;
}

}  // namespace dsocr
