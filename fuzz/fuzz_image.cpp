// Fuzz target: arbitrary bytes into the image decoder and its page API. Rejection must be a
// dsocr::Error, never a crash, hang, leak or oversized allocation; an accepted image must be
// consistent.
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/image.h"

namespace {

void check(const dsocr::Image& image) {
  if (image.width <= 0 || image.height <= 0 || image.width > dsocr::kMaxImageSide ||
      image.height > dsocr::kMaxImageSide || image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    check(dsocr::decode_image(data, size, "fuzz-input"));
  } catch (const dsocr::Error&) {
  }
  try {  // later pages (multi-page TIFF); a few at most, so one input stays fast
    const int pages = dsocr::image_page_count(data, size, "fuzz-input");
    if (pages < 1) std::abort();
    for (int page = 1; page < std::min(pages, 4); ++page) {
      try {
        check(dsocr::decode_image_page(data, size, page, "fuzz-input"));
      } catch (const dsocr::Error&) {
      }
    }
  } catch (const dsocr::Error&) {
  }
  return 0;
}
