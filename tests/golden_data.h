// Golden data shared by the tests that need it (DSOCR_TEST_DATA: the slices of ../shared/golden
// copied into tests/data).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace dsocr {

// The official code's greedy tokens (with its KV cache) for the document page in `mode`
// (lm/doc_<mode>.safetensors).
inline std::vector<int32_t> golden_greedy_tokens(const std::string& mode) {
  SafetensorsFile f(std::string(DSOCR_TEST_DATA) + "/lm/doc_" + mode + ".safetensors");
  const TensorView t = f.get("greedy_tokens_cached");
  std::vector<int32_t> out(size_t(t.numel()));
  std::memcpy(out.data(), t.data, t.nbytes);
  return out;
}

}  // namespace dsocr
