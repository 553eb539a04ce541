#include "vision/encoder.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace dsocr {

VisionEncoder::VisionEncoder(const Checkpoint& ckpt, ThreadPool& pool)
    : pool_(pool), sam_(ckpt, pool), clip_(ckpt, pool) {
  const ModelConfig& c = ckpt.config();
  // The official code hard-codes these couplings; a config that breaks them cannot run.
  if (clip_.width() != sam_.out_channels())
    fail("{}: CLIP width {} differs from the SAM output channels {}", ckpt.dir(), clip_.width(), sam_.out_channels());
  if (c.projector.input_dim != clip_.width() + sam_.out_channels())
    fail("{}: projector input_dim {} is not CLIP width + SAM channels = {}", ckpt.dir(), c.projector.input_dim,
         clip_.width() + sam_.out_channels());
  if (c.projector.n_embed != c.lm.hidden)
    fail("{}: projector n_embed {} differs from the LM hidden size {}", ckpt.dir(), c.projector.n_embed, c.lm.hidden);
  n_embed_ = c.projector.n_embed;
  projector_ = cpu::Weight::of(ckpt.tensor("model.projector.layers.weight"));
  projector_b_ = ckpt.tensor("model.projector.layers.bias").to_f32();
  image_newline_ = ckpt.tensor("model.image_newline").to_f32();
  view_separator_ = ckpt.tensor("model.view_seperator").to_f32();
}

std::vector<float> VisionEncoder::encode_views(const float* pixels_chw, int batch, int size) {
  const IntermediateSink* sink = sink_ ? &sink_ : nullptr;
  const std::vector<float> sam = sam_.forward(pixels_chw, batch, size, sink);
  const int n = sam_.output_grid(size);
  const std::vector<float> clip = clip_.forward(sam.data(), batch, n, sink);

  // Per token: [CLIP output without CLS | SAM output] -> projector.
  const int cw = clip_.width(), sc = sam_.out_channels(), in = cw + sc;
  const int64_t tokens = int64_t(batch) * n * n;
  std::vector<float> fused(size_t(tokens * in));
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < n * n; ++t) {
      float* dst = fused.data() + (int64_t(b) * n * n + t) * in;
      std::memcpy(dst, clip.data() + (int64_t(b) * (1 + n * n) + 1 + t) * cw, size_t(cw) * sizeof(float));
      std::memcpy(dst + cw, sam.data() + (int64_t(b) * n * n + t) * sc, size_t(sc) * sizeof(float));
    }
  }
  std::vector<float> out(size_t(tokens * n_embed_));
  cpu::linear(pool_, fused.data(), tokens, projector_, projector_b_.data(), out.data());
  if (sink) (*sink)("projector.out", out.data(), {batch, int64_t(n) * n, n_embed_});
  return out;
}

std::vector<float> VisionEncoder::encode_page(const PageViews& views) {
  auto normalise = [](const std::vector<const Image*>& images, int size) {
    const size_t plane = size_t(3) * size * size;
    std::vector<float> pixels(plane * images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      if (images[i]->width != size || images[i]->height != size)
        fail("vision encoder: view {}x{} is not {}x{}", images[i]->width, images[i]->height, size, size);
      normalize_to_chw(*images[i], pixels.data() + i * plane);
    }
    return pixels;
  };

  const int gsize = views.global_size;
  const std::vector<float> global = encode_views(normalise({&views.global}, gsize).data(), 1, gsize);
  const int n = sam_.output_grid(gsize);

  std::vector<float> tiles;
  int m = 0;
  if (views.has_tiles()) {
    if (int(views.tiles.size()) != views.grid.cols * views.grid.rows)
      fail("vision encoder: {} tiles for a {}x{} grid", views.tiles.size(), views.grid.cols, views.grid.rows);
    std::vector<const Image*> ptrs;
    for (const Image& t : views.tiles) ptrs.push_back(&t);
    tiles = encode_views(normalise(ptrs, views.tile_size).data(), int(ptrs.size()), views.tile_size);
    m = sam_.output_grid(views.tile_size);
  }
  return layout_page_features(global.data(), n, views.has_tiles() ? tiles.data() : nullptr, m, views.grid,
                              image_newline_.data(), view_separator_.data(), n_embed_);
}

std::vector<float> layout_page_features(const float* global, int n, const float* tiles, int m, TileGrid grid,
                                        const float* newline, const float* separator, int dim) {
  const int64_t tile_rows = tiles ? int64_t(grid.rows) * m : 0, tile_cols = tiles ? int64_t(grid.cols) * m : 0;
  const int64_t count = tile_rows * (tile_cols + 1) + int64_t(n) * (n + 1) + 1;
  std::vector<float> out(size_t(count * dim));
  float* dst = out.data();
  auto put = [&](const float* row) {
    std::memcpy(dst, row, size_t(dim) * sizeof(float));
    dst += dim;
  };
  // Tiles stitched into one (rows*m) x (cols*m) grid: stitched row y is row y % m of the tiles in grid row y / m.
  for (int64_t y = 0; y < tile_rows; ++y) {
    for (int64_t x = 0; x < tile_cols; ++x) {
      const int64_t tile = (y / m) * grid.cols + x / m;
      put(tiles + ((tile * m + y % m) * m + x % m) * dim);
    }
    put(newline);
  }
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) put(global + (int64_t(y) * n + x) * dim);
    put(newline);
  }
  put(separator);
  return out;
}

}  // namespace dsocr
