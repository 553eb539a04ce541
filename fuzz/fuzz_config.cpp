// libFuzzer target: a model's config.json and its checkpoint layout. The input is config.json text,
// optionally followed by a NUL byte and a safetensors header (8-byte length + JSON, no tensor data:
// the file is taken to be long enough for any offsets). It goes through parse_model_config (and so
// validate), checkpoint_layout and check_layout against the header's tensors. Rejection must be a
// dsocr::Error; nothing may crash, hang or allocate without bound, and an accepted config must give
// a layout whose every shape is positive and inside what a safetensors header can declare.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/safetensors.h"

namespace {

// validate() allows up to 256 layers x 512 experts (~400k tensors, tens of MB of names); one fuzz
// run stops at this many so that each input stays fast. The bound itself is tested in
// tests/test_config_validate.cpp.
constexpr int64_t kMaxFuzzLayoutTensors = 20000;

int64_t layout_tensor_count(const dsocr::ModelConfig& c) {
  // SAM: patch embedding, position table, 14 per block, neck + compressor; CLIP: embeddings,
  // position ids, pre-norm, 12 per layer; projector, newline, separator; LM: embeddings, final
  // norm, lm_head, 6 per layer plus a dense MLP or router + experts (+ shared experts).
  int64_t n = 3 + 14 * int64_t(c.sam.layers) + 8 + 6 + 12 * int64_t(c.clip.layers) + 4 + 3;
  for (int i = 0; i < c.lm.layers; ++i)
    n += 6 + (c.lm.is_moe_layer(i) ? 1 + 3 * int64_t(c.lm.n_routed_experts) + (c.lm.n_shared_experts > 0 ? 3 : 0) : 3);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // memchr and std::string need a non-null pointer even for no bytes; an empty input is an empty config.
  const auto* nul = size > 0 ? static_cast<const uint8_t*>(std::memchr(data, 0, size)) : nullptr;
  const std::string config_text =
      size > 0 ? std::string(reinterpret_cast<const char*>(data), nul ? size_t(nul - data) : size) : std::string();
  try {
    const dsocr::ModelConfig config = dsocr::parse_model_config(config_text, "fuzz/config.json");
    if (layout_tensor_count(config) > kMaxFuzzLayoutTensors) return 0;
    const std::vector<dsocr::TensorSpec> layout = dsocr::checkpoint_layout(config);
    if (int64_t(layout.size()) != layout_tensor_count(config)) std::abort();
    for (const dsocr::TensorSpec& t : layout) {
      int64_t elements = 1;
      for (int64_t d : t.shape) {
        if (d <= 0 || elements > (int64_t(1) << 48) / d) std::abort();
        elements *= d;
      }
    }
    if (!nul) return 0;
    const size_t header_bytes = size - size_t(nul - data) - 1;
    const dsocr::SafetensorsHeader header =
        dsocr::parse_safetensors_header(nul + 1, header_bytes, uint64_t(1) << 56, "fuzz.safetensors");
    std::map<std::string, dsocr::TensorLocation> tensors;
    for (const auto& [name, entry] : header.tensors) tensors[name] = {&entry, "fuzz.safetensors"};
    dsocr::check_layout(config, tensors, "fuzz");
  } catch (const dsocr::Error&) {
  }
  return 0;
}
