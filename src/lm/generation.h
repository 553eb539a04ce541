// Generation settings of one page (spec §6.4) and why a page's generation ended. The loop itself is
// the engine's (engine/engine.h): prompt prefill, then token by token with the no-repeat n-gram
// guard, until EOS, the token limit or the context limit.
#pragma once
#include "lm/ngram.h"
#include "lm/sampling.h"

namespace dsocr {

enum class StopReason { Eos, MaxTokens, ContextFull, Cancelled };
const char* stop_reason_name(StopReason reason);  // "eos", "max_tokens", "context_full", "cancelled"

struct GenerationOptions {
  int max_new_tokens = 0;   // 0: as many as the context allows
  int context_limit = 0;    // 0: the model's max_position_embeddings (8192)
  NgramGuardConfig ngram;   // the image driver's 30/90 by default; PDF pages use 20/50
  SamplingConfig sampling;  // greedy by default
  bool ignore_eos = false;  // benchmarks: EOS is a token like any other, pages run to the limit
};

}  // namespace dsocr
