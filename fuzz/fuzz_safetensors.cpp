// libFuzzer target: the safetensors header parser must reject any malformed input with an Error,
// never crash or allocate without bound.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dsocr::parse_safetensors_header(data, size, size, "fuzz.safetensors");
  } catch (const dsocr::Error&) {
  }
  return 0;
}
