// Float32 resampling with PyTorch F.interpolate semantics (align_corners=False), used to fit the
// vision towers' learned position tables to other grid sizes (spec §12.2).
#pragma once

namespace dsocr::cpu {

// F.interpolate(mode='bicubic', antialias=True) of an HWC image (channels innermost): Keys cubic
// with a = -0.5, support scaled by the ratio when downsampling, weights normalised to sum 1 (also
// when upsampling); separable, width pass first. dst is out_h x out_w x channels.
void resize_bicubic_antialias(const float* src, int in_h, int in_w, int channels, int out_h, int out_w, float* dst);

// F.interpolate(mode='linear') along the first axis of a [in_len, channels] table:
// source position (i + 0.5) * in/out - 0.5, clamped at 0. dst is [out_len, channels].
void resize_linear(const float* src, int in_len, int channels, int out_len, float* dst);

}  // namespace dsocr::cpu
