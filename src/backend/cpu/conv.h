// 2-D convolution on channels-last (NHWC) float32 activations, as im2col + GEMM against a PyTorch
// conv weight [out, in, kh, kw] used in place (cpu::Weight folds it to [out, in*kh*kw]).
#pragma once
#include <cstdint>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"

namespace dsocr::cpu {

struct ConvGeometry {
  int kernel = 1, stride = 1, pad = 0;
  int out_size(int in) const { return (in + 2 * pad - kernel) / stride + 1; }
};

// x: [batch, height, width, in] with in * kernel^2 == W.cols; out: [batch, out_h, out_w, W.rows]
// (zero padding; optional bias). The patch matrix is built in bounded row chunks.
void conv2d_nhwc(ThreadPool& pool, const float* x, int batch, int height, int width, const Weight& W, const float* bias,
                 ConvGeometry geom, float* out);

}  // namespace dsocr::cpu
