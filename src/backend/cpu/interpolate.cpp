#include "backend/cpu/interpolate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace dsocr::cpu {

namespace {

// Keys cubic convolution kernel with a = -0.5 (PyTorch HelperInterpCubic::aa_filter).
float cubic_aa_filter(float x) {
  constexpr float a = -0.5f;
  x = std::fabs(x);
  if (x < 1.0f) return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
  if (x < 2.0f) return ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
  return 0.0f;
}

// Output i of one axis reads inputs [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

// PyTorch _compute_indices_min_size_weights_aa, in float like the reference.
std::vector<Taps> antialias_taps(int in_size, int out_size) {
  const float scale = float(in_size) / float(out_size);
  const float support = scale >= 1.0f ? 2.0f * scale : 2.0f;
  const float inv_scale = scale >= 1.0f ? 1.0f / scale : 1.0f;
  std::vector<Taps> taps(static_cast<size_t>(out_size));
  for (int i = 0; i < out_size; ++i) {
    const float center = scale * (float(i) + 0.5f);
    const int xmin = std::max(int(center - support + 0.5f), 0);
    const int xmax = std::min(int(center + support + 0.5f), in_size);
    Taps& t = taps[size_t(i)];
    t.first = xmin;
    float total = 0.0f;
    for (int j = xmin; j < xmax; ++j) {
      t.weights.push_back(cubic_aa_filter((float(j) - center + 0.5f) * inv_scale));
      total += t.weights.back();
    }
    if (total != 0.0f)
      for (float& w : t.weights) w /= total;
  }
  return taps;
}

// Resamples axis of length in -> out; `stride` floats separate consecutive positions along the axis,
// each position holding `inner` contiguous values; `outer` independent lines of the axis are
// `in * stride` (source) and `out * stride` (destination) apart.
void resample_axis(const float* src, float* dst, int outer, int in, int out, int stride, int inner,
                   const std::vector<Taps>& taps) {
  for (int o = 0; o < outer; ++o) {
    const float* s = src + size_t(o) * size_t(in) * size_t(stride);
    float* d = dst + size_t(o) * size_t(out) * size_t(stride);
    for (int i = 0; i < out; ++i) {
      const Taps& t = taps[size_t(i)];
      float* di = d + size_t(i) * size_t(stride);
      for (int c = 0; c < inner; ++c) {
        float acc = s[size_t(t.first) * size_t(stride) + size_t(c)] * t.weights[0];
        for (size_t j = 1; j < t.weights.size(); ++j) acc += s[(size_t(t.first) + j) * size_t(stride) + size_t(c)] * t.weights[j];
        di[c] = acc;
      }
    }
  }
}

}  // namespace

void resize_bicubic_antialias(const float* src, int in_h, int in_w, int channels, int out_h, int out_w, float* dst) {
  // Width first (the contiguous axis in PyTorch's NCHW), then height; an unchanged axis is copied.
  std::vector<float> tmp(size_t(in_h) * size_t(out_w) * size_t(channels));
  if (in_w == out_w)
    std::memcpy(tmp.data(), src, tmp.size() * sizeof(float));
  else
    resample_axis(src, tmp.data(), in_h, in_w, out_w, channels, channels, antialias_taps(in_w, out_w));
  if (in_h == out_h)
    std::memcpy(dst, tmp.data(), tmp.size() * sizeof(float));
  else
    resample_axis(tmp.data(), dst, 1, in_h, out_h, out_w * channels, out_w * channels, antialias_taps(in_h, out_h));
}

void resize_linear(const float* src, int in_len, int channels, int out_len, float* dst) {
  const float scale = float(in_len) / float(out_len);
  for (int i = 0; i < out_len; ++i) {
    const float pos = std::max(scale * (float(i) + 0.5f) - 0.5f, 0.0f);
    const int i0 = std::min(int(pos), in_len - 1);
    const int i1 = i0 + (i0 < in_len - 1 ? 1 : 0);
    const float l1 = std::min(std::max(pos - float(i0), 0.0f), 1.0f), l0 = 1.0f - l1;
    const float* a = src + size_t(i0) * size_t(channels);
    const float* b = src + size_t(i1) * size_t(channels);
    float* d = dst + size_t(i) * size_t(channels);
    for (int c = 0; c < channels; ++c) d[c] = l0 * a[c] + l1 * b[c];
  }
}

}  // namespace dsocr::cpu
