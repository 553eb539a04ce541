// Decoded images: 8-bit RGB, row-major HWC. (Decoder implementation: io/image.cpp.)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsocr {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3

  const uint8_t* pixel(int x, int y) const { return rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3; }
};

}  // namespace dsocr
