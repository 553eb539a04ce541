#include "engine/ocr_engine.h"

#include <chrono>
#include <cstring>

#include "core/error.h"
#include "text/prompt.h"

namespace dsocr {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

OcrEngine::OcrEngine(const Options& options)
    : pool_(std::make_unique<ThreadPool>(options.threads)),
      backend_(std::make_unique<CpuBackend>(*pool_)),
      checkpoint_(std::make_unique<Checkpoint>(options.model_dir)),
      tokenizer_(std::make_unique<Tokenizer>(Tokenizer::from_file(checkpoint_->tokenizer_path()))),
      encoder_(std::make_unique<VisionEncoder>(*checkpoint_, *backend_)),
      decoder_(std::make_unique<Decoder>(*checkpoint_, *backend_)) {}

OcrEngine::~OcrEngine() = default;

std::vector<float> OcrEngine::prompt_embeddings(const std::vector<int32_t>& ids, const std::vector<float>& features) {
  const int64_t hidden = decoder_->config().hidden;
  const int32_t image_id = checkpoint_->config().image_token_id;
  std::vector<float> emb(ids.size() * size_t(hidden));
  decoder_->embed(ids, emb.data());
  const size_t available = features.size() / size_t(hidden);
  size_t next = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != image_id) continue;
    if (next >= available) fail("prompt has more image placeholders than the {} vision features", available);
    std::memcpy(emb.data() + i * size_t(hidden), features.data() + next * size_t(hidden), size_t(hidden) * 4);
    ++next;
  }
  if (next != available) fail("prompt has {} image placeholders but the page gave {} vision features", next, available);
  return emb;
}

OcrResult OcrEngine::run(const Image& page, const OcrRequest& request,
                         const std::function<bool(std::string_view)>& on_text) {
  using clock = std::chrono::steady_clock;
  OcrResult r;
  r.page_width = page.width;
  r.page_height = page.height;

  auto t = clock::now();
  const PageViews views = make_views(page, request.mode, request.max_tiles);
  r.grid = views.grid;
  r.image_tokens = placeholder_count(views);
  const std::vector<int32_t> ids = build_prompt_ids(*tokenizer_, request.prompt, r.image_tokens,
                                                    decoder_->config().bos_token_id,
                                                    checkpoint_->config().image_token_id);
  r.prompt_tokens = int(ids.size());
  r.timings.preprocess = seconds_since(t);

  t = clock::now();
  const std::vector<float> features = encoder_->encode_page(views);
  r.timings.encode = seconds_since(t);

  const std::vector<float> embeddings = prompt_embeddings(ids, features);
  StreamDecoder stream(*tokenizer_);
  auto on_token = [&](int32_t id) {
    std::string piece = stream.push(id);
    r.text += piece;
    if (on_text && !piece.empty()) return on_text(piece);
    return true;
  };
  GenerationResult g = generate(*decoder_, embeddings.data(), int(ids.size()), request.generation, on_token);
  std::string rest = stream.flush();
  r.text += rest;
  if (on_text && !rest.empty()) on_text(rest);
  r.tokens = std::move(g.tokens);
  r.stop = g.stop;
  r.timings.prefill = g.prefill_seconds;
  r.timings.decode = g.decode_seconds;
  return r;
}

}  // namespace dsocr
