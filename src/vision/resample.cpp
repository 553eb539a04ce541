#include "vision/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"

// Bit-exactness with Pillow needs the same double roundings as its C code: no fused multiply-add
// contraction of the kernel polynomial or the filter positions (GCC contracts by default in gnu++
// mode and -march=native has FMA).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace dsocr {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow: 8 bits result, 2 bits headroom for overshoot
constexpr double kBicubicSupport = 2.0;

// Pillow's bicubic_filter (Keys cubic, a = -0.5), same operation order.
double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Fixed-point filter weights of one axis: output pixel i reads `count[i]` inputs starting at
// `first[i]` with weights `weights[i * taps ...]` (Pillow's precompute_coeffs +
// normalize_coeffs_8bpc).
struct AxisWeights {
  int taps = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

AxisWeights compute_axis_weights(int in_size, int out_size) {
  // Pillow computes the scale from float box coordinates; sizes are far below 2^24, so exact.
  const double scale = double(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  const double inv_filter_scale = 1.0 / filter_scale;

  AxisWeights axis;
  axis.taps = int(std::ceil(support)) * 2 + 1;
  axis.first.resize(size_t(out_size));
  axis.count.resize(size_t(out_size));
  axis.weights.assign(size_t(out_size) * size_t(axis.taps), 0);
  std::vector<double> k(size_t(axis.taps));

  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    int lo = int(center - support + 0.5);  // truncation toward zero, as in C
    if (lo < 0) lo = 0;
    int hi = int(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;

    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      k[size_t(x)] = bicubic_kernel((double(x + lo) - center + 0.5) * inv_filter_scale);
      sum += k[size_t(x)];
    }
    int32_t* w = &axis.weights[size_t(i) * size_t(axis.taps)];
    for (int x = 0; x < n; ++x) {
      const double v = sum != 0.0 ? k[size_t(x)] / sum : k[size_t(x)];
      // Round half away from zero, then truncate: Pillow's normalize_coeffs_8bpc.
      w[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    axis.first[size_t(i)] = lo;
    axis.count[size_t(i)] = n;
  }
  return axis;
}

inline uint8_t clip8(int32_t accumulator) {
  const int32_t v = accumulator >> kPrecisionBits;  // arithmetic shift = floor, like Pillow's table
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Horizontal pass over input rows [first_row, first_row + rows).
void resample_horizontal(const Image& in, int first_row, int rows, const AxisWeights& axis, int out_width,
                         std::vector<uint8_t>& out) {
  out.resize(size_t(rows) * size_t(out_width) * 3);
  const size_t in_stride = size_t(in.width) * 3;
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.rgb.data() + size_t(first_row + y) * in_stride;
    uint8_t* dst = out.data() + size_t(y) * size_t(out_width) * 3;
    for (int x = 0; x < out_width; ++x) {
      const int32_t* w = &axis.weights[size_t(x) * size_t(axis.taps)];
      const uint8_t* p = src + size_t(axis.first[size_t(x)]) * 3;
      int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
      for (int t = 0, n = axis.count[size_t(x)]; t < n; ++t, p += 3) {
        r += p[0] * w[t];
        g += p[1] * w[t];
        b += p[2] * w[t];
      }
      dst[3 * x + 0] = clip8(r);
      dst[3 * x + 1] = clip8(g);
      dst[3 * x + 2] = clip8(b);
    }
  }
}

// Vertical pass; `src` holds rows starting at input row `row_offset`.
void resample_vertical(const uint8_t* src, int width, int row_offset, const AxisWeights& axis, int out_height,
                       uint8_t* out) {
  const size_t stride = size_t(width) * 3;
  std::vector<int32_t> acc(stride);
  for (int y = 0; y < out_height; ++y) {
    const int32_t* w = &axis.weights[size_t(y) * size_t(axis.taps)];
    const uint8_t* rows = src + size_t(axis.first[size_t(y)] - row_offset) * stride;
    std::fill(acc.begin(), acc.end(), int32_t(1) << (kPrecisionBits - 1));
    for (int t = 0, n = axis.count[size_t(y)]; t < n; ++t) {
      const uint8_t* row = rows + size_t(t) * stride;
      const int32_t wt = w[t];
      for (size_t i = 0; i < stride; ++i) acc[i] += row[i] * wt;  // exact integer sums: order-free
    }
    uint8_t* dst = out + size_t(y) * stride;
    for (size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
}

}  // namespace

Image resize_bicubic(const Image& image, int width, int height) {
  if (width < 1 || height < 1 || image.width < 1 || image.height < 1)
    fail("resize: invalid size {}x{} -> {}x{}", image.width, image.height, width, height);
  if (width == image.width && height == image.height) return image;

  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  const AxisWeights vertical = compute_axis_weights(image.height, height);

  // Like Pillow, the horizontal pass only covers the input rows the vertical pass reads.
  const int first_row = vertical.first.front();
  const int last_row = vertical.first.back() + vertical.count.back();

  Image out{width, height, {}};
  out.rgb.resize(size_t(width) * size_t(height) * 3);
  if (!need_horizontal) {
    resample_vertical(image.rgb.data(), width, 0, vertical, height, out.rgb.data());
    return out;
  }
  const AxisWeights horizontal = compute_axis_weights(image.width, width);
  if (!need_vertical) {
    resample_horizontal(image, 0, height, horizontal, width, out.rgb);
    return out;
  }
  std::vector<uint8_t> temp;
  resample_horizontal(image, first_row, last_row - first_row, horizontal, width, temp);
  resample_vertical(temp.data(), width, first_row, vertical, height, out.rgb.data());
  return out;
}

}  // namespace dsocr
