// A synthetic document page for the benchmarks: rows of dark "words" on an off-white A4-sized page,
// deterministic, so every run and every machine encodes the same pixels.
#pragma once
#include <algorithm>
#include <cstdint>

#include "io/image.h"

namespace dsocr::bench {

inline Image synthetic_page(int width = 1191, int height = 1684, uint32_t seed = 12345) {
  Image page = make_image(width, height, 250, 250, 245);
  uint32_t state = seed;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int y = 80; y + 14 < height - 80; y += 24) {
    for (int x = 90; x < width - 90;) {
      const int word = 20 + int(next() % 90);
      for (int yy = y; yy < y + 14; ++yy)
        for (int xx = x; xx < std::min(x + word, width - 90); ++xx)
          if ((next() & 3) != 0) std::fill_n(page.pixel(xx, yy), 3, uint8_t(20 + next() % 40));
      x += word + 12;
    }
  }
  return page;
}

}  // namespace dsocr::bench
