// Pillow-exact bicubic resize of 8-bit RGB images (Pillow 9.4 src/libImaging/Resample.c).
//
// The official preprocessing resizes with PIL's Image.resize (default BICUBIC), and the model is
// sensitive to small pixel differences, so this reproduces Pillow bit for bit: separable, the
// horizontal pass first into an 8-bit intermediate, then the vertical pass; kernel a = -0.5 with
// its support widened by the scale when downscaling; weights normalised to sum 1 in double, then
// quantised to 22-bit fixed point; each pass rounds and clips to 0..255.
#pragma once
#include "io/image.h"

namespace dsocr {

// Resizes `image` to width x height (both >= 1). Returns a copy when the size is unchanged, like
// Pillow's Image.resize.
Image resize_bicubic(const Image& image, int width, int height);

}  // namespace dsocr
