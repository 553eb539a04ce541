// Fuzz target: arbitrary bytes into the image decoder. Rejection must be a dsocr::Error, never a
// crash, hang, leak or oversized allocation; an accepted image must be consistent.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dsocr::Image image = dsocr::decode_image(data, size, "fuzz-input");
    if (image.width <= 0 || image.height <= 0 || image.width > dsocr::kMaxImageSide ||
        image.height > dsocr::kMaxImageSide ||
        image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
      std::abort();
  } catch (const dsocr::Error&) {
  }
  return 0;
}
