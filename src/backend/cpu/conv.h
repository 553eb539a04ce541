// 2-D convolution on channels-last (NHWC) float32 activations, as im2col + GEMM against a PyTorch
// conv weight [out, in, kh, kw] used in place (cpu::Weight folds it to [out, in*kh*kw]).
#pragma once
#include <cstdint>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"

namespace dsocr::cpu {

using dsocr::ConvGeometry;

// x: [batch, height, width, in] with in * kernel^2 == W.cols; out: [batch, out_h, out_w, W.rows]
// (zero padding; optional bias). The patch matrix is built in bounded row chunks.
// fast_gemm: the products through linear_sgemm (not batch invariant).
void conv2d_nhwc(ThreadPool& pool, const float* x, int batch, int height, int width, const Weight& W, const float* bias,
                 ConvGeometry geom, float* out, bool fast_gemm = false);

}  // namespace dsocr::cpu
