// The DeepEncoder on the CPU: SAM + compressor -> CLIP -> concat -> linear projector (spec §3-4),
// and the page's feature sequence that replaces the <image> placeholders (spec §5.5).
#pragma once
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "vision/clip.h"
#include "vision/preprocess.h"
#include "vision/sam.h"

namespace dsocr {

class VisionEncoder {
 public:
  VisionEncoder(const Checkpoint& ckpt, ThreadPool& pool);

  int n_embed() const { return n_embed_; }

  // Projector outputs of a batch of same-size views (normalised CHW pixels, size x size each):
  // [batch, n*n, n_embed] with n = features_per_side(size), token t = y*n + x.
  std::vector<float> encode_views(const float* pixels_chw, int batch, int size);

  // The whole feature sequence of a page: tiles stitched row-major with image_newline after each
  // stitched row, then the global view's rows each followed by image_newline, then view_seperator.
  // [placeholder_count(views), n_embed]. The tiles run as one batch.
  std::vector<float> encode_page(const PageViews& views);

  // Intermediates of subsequent encode_views calls are passed to `sink` (empty: none).
  void set_intermediate_sink(IntermediateSink sink) { sink_ = std::move(sink); }

  SamEncoder& sam() { return sam_; }
  ClipEncoder& clip() { return clip_; }

 private:
  ThreadPool& pool_;
  SamEncoder sam_;
  ClipEncoder clip_;
  cpu::Weight projector_;
  std::vector<float> projector_b_, image_newline_, view_separator_;
  int n_embed_ = 0;
  IntermediateSink sink_;
};

// Spec §5.5 layout. global: [n*n, dim]; tiles: [grid.cols*grid.rows, m*m, dim] (null when the page
// has no tiles). Returns [(rows*m)*(cols*m+1) + n*(n+1) + 1, dim].
std::vector<float> layout_page_features(const float* global, int n, const float* tiles, int m, TileGrid grid,
                                        const float* newline, const float* separator, int dim);

}  // namespace dsocr
