#include "lm/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace dsocr {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Eos: return "eos";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::ContextFull: return "context_full";
    case StopReason::Cancelled: return "cancelled";
  }
  return "?";
}

GenerationResult generate(Decoder& decoder, const float* prompt_embeddings, int prompt_tokens,
                          const GenerationOptions& options, const std::function<bool(int32_t)>& on_token) {
  using clock = std::chrono::steady_clock;
  const LmConfig& cfg = decoder.config();
  const int context = options.context_limit > 0 ? std::min(options.context_limit, cfg.max_position_embeddings)
                                                : cfg.max_position_embeddings;
  if (prompt_tokens <= 0) fail("generate: empty prompt");
  if (prompt_tokens >= context)
    fail("the prompt has {} tokens (image placeholders included) but the context holds {}; use a mode with fewer "
         "vision tokens (e.g. --mode base, or fewer --max-tiles)",
         prompt_tokens, context);
  // Every generated token takes one position; the last one needs no cache slot.
  int budget = context - prompt_tokens;
  const bool limited = options.max_new_tokens > 0 && options.max_new_tokens < budget;
  if (limited) budget = options.max_new_tokens;

  NgramGuard guard(options.ngram);
  Sampler sampler(options.sampling);
  KvCache cache = decoder.make_cache(std::min(context, prompt_tokens + budget), options.kv_precision);
  std::vector<float> logits(size_t(cfg.vocab_size));
  std::vector<float> embedding(size_t(cfg.hidden));

  GenerationResult r;
  r.prompt_tokens = prompt_tokens;
  auto t0 = clock::now();
  decoder.forward(prompt_embeddings, prompt_tokens, cache, logits.data());
  auto t1 = clock::now();
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  r.stop = limited ? StopReason::MaxTokens : StopReason::ContextFull;
  for (int step = 0; step < budget; ++step) {
    if (options.ngram.enabled) guard.apply(r.tokens, logits.data(), cfg.vocab_size);
    const int32_t next = sampler.next(logits);
    if (next == cfg.eos_token_id) {
      r.stop = StopReason::Eos;
      break;
    }
    r.tokens.push_back(next);
    if (on_token && !on_token(next)) {
      r.stop = StopReason::Cancelled;
      break;
    }
    if (step + 1 == budget) break;
    decoder.embed(std::span<const int32_t>(&next, 1), embedding.data());
    decoder.forward(embedding.data(), 1, cache, logits.data());
  }
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace dsocr
