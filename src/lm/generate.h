// The generation loop (spec §6.4): prefill the prompt in one pass, then decode token by token with
// the no-repeat n-gram guard, until EOS, the token limit or the context limit.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "lm/decoder.h"
#include "lm/ngram.h"
#include "lm/sampling.h"

namespace dsocr {

enum class StopReason { Eos, MaxTokens, ContextFull, Cancelled };
const char* stop_reason_name(StopReason reason);  // "eos", "max_tokens", "context_full", "cancelled"

struct GenerationOptions {
  int max_new_tokens = 0;   // 0: as many as the context allows
  int context_limit = 0;    // 0: the model's max_position_embeddings (8192)
  NgramGuardConfig ngram;   // the image driver's 30/90 by default; PDF pages use 20/50
  SamplingConfig sampling;   // greedy by default
  // bf16 keys/values: half the memory and the bytes read per step (a full 8192-token context of the
  // real model is 0.47 GiB instead of 0.94); F32 reproduces a pure float32 reference exactly.
  KvPrecision kv_precision = KvPrecision::BF16;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, EOS not included
  StopReason stop = StopReason::Eos;
  int prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// on_token(id) is called for every generated id (not EOS) as soon as it is chosen; returning false
// cancels. Throws Error when the prompt alone does not fit the context.
GenerationResult generate(Decoder& decoder, const float* prompt_embeddings, int prompt_tokens,
                          const GenerationOptions& options, const std::function<bool(int32_t)>& on_token = {});

}  // namespace dsocr
