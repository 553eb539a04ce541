#include "backend/cpu/conv.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace dsocr::cpu {

void conv2d_nhwc(ThreadPool& pool, const float* x, int batch, int height, int width, const Weight& W, const float* bias,
                 ConvGeometry geom, float* out, bool fast_gemm) {
  const auto product = fast_gemm ? linear_sgemm : linear;
  const int k = geom.kernel;
  const int64_t k2 = int64_t(k) * k;
  if (W.cols % k2 != 0) fail("conv weight [{}, {}] does not fit a {}x{} kernel", W.rows, W.cols, k, k);
  const int channels = int(W.cols / k2);
  const int oh = geom.out_size(height), ow = geom.out_size(width);
  const int64_t rows = int64_t(batch) * oh * ow;

  // A 1x1 convolution without stride is a plain linear layer on the pixels.
  if (k == 1 && geom.stride == 1 && geom.pad == 0) {
    product(pool, x, rows, W, bias, out, false, 0, 0);
    return;
  }

  // Patch row of output pixel (b, oy, ox): column c * k^2 + ky * k + kx, matching the weight layout.
  const int64_t cols = W.cols;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(rows, (int64_t(8) << 20) / cols));
  std::vector<float> patches(size_t(chunk * cols));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    pool.parallel_for(size_t(nr), [&](size_t a, size_t b) {
      for (int64_t r = int64_t(a); r < int64_t(b); ++r) {
        const int64_t pix = r0 + r;
        const int bi = int(pix / (int64_t(oh) * ow));
        const int oy = int(pix / ow % oh), ox = int(pix % ow);
        float* row = patches.data() + r * cols;
        for (int ky = 0; ky < k; ++ky) {
          const int iy = oy * geom.stride - geom.pad + ky;
          for (int kx = 0; kx < k; ++kx) {
            const int ix = ox * geom.stride - geom.pad + kx;
            float* dst = row + ky * k + kx;
            if (iy < 0 || iy >= height || ix < 0 || ix >= width) {
              for (int c = 0; c < channels; ++c) dst[c * k2] = 0.0f;
              continue;
            }
            const float* src = x + ((int64_t(bi) * height + iy) * width + ix) * channels;
            for (int c = 0; c < channels; ++c) dst[c * k2] = src[c];
          }
        }
      }
    }, 16);
    product(pool, patches.data(), nr, W, bias, out + r0 * W.rows, false, 0, 0);
  }
}

}  // namespace dsocr::cpu
