// libFuzzer target: the grounding parser and post-processing take any model output (truncated,
// malformed, adversarial) without throwing or crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "text/grounding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  dsocr::parse_grounding(raw);
  dsocr::postprocess(raw, 1191, 1684, dsocr::PostprocessOptions::image());
  dsocr::postprocess(raw, 7, 3, dsocr::PostprocessOptions::pdf_page(2));
  dsocr::postprocess(raw, 1, 1, dsocr::PostprocessOptions::eval());
  return 0;
}
