// One page through the whole model: page image -> views (preprocess) -> vision features (DeepEncoder)
// -> prompt embeddings -> generation (MoE decoder) -> text. The engine owns the mapped checkpoint,
// the tokenizer, both model halves and the thread pool they share.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/image.h"
#include "lm/decoder.h"
#include "lm/generate.h"
#include "text/tokenizer.h"
#include "vision/encoder.h"
#include "vision/preprocess.h"

namespace dsocr {

struct OcrRequest {
  Mode mode = Mode::Gundam;
  int max_tiles = 6;  // Gundam modes: 2..9 (6 as the official vLLM drivers, 9 as HF infer())
  std::string prompt = "<image>\n<|grounding|>Convert the document to markdown.";
  GenerationOptions generation;
};

struct OcrTimings {
  double preprocess = 0, encode = 0, prefill = 0, decode = 0;
  double total() const { return preprocess + encode + prefill + decode; }
};

struct OcrResult {
  std::string text;              // decoded generated text, special tokens kept (EOS not included)
  std::vector<int32_t> tokens;   // generated ids
  StopReason stop = StopReason::Eos;
  int prompt_tokens = 0, image_tokens = 0;
  TileGrid grid;
  int page_width = 0, page_height = 0;
  OcrTimings timings;
  bool truncated() const { return stop != StopReason::Eos; }
};

// Anything that turns a page into text: the engine, or a stand-in in tests of the document tool.
class PageRecognizer {
 public:
  virtual ~PageRecognizer() = default;
  // on_text receives decoded text pieces as soon as they are complete UTF-8; it returns false to
  // cancel (the result then says StopReason::Cancelled).
  virtual OcrResult run(const Image& page, const OcrRequest& request,
                        const std::function<bool(std::string_view)>& on_text) = 0;
};

class OcrEngine : public PageRecognizer {
 public:
  struct Options {
    std::string model_dir;
    int threads = 0;  // 0: all cores
  };
  explicit OcrEngine(const Options& options);
  ~OcrEngine() override;

  OcrResult run(const Image& page, const OcrRequest& request,
                const std::function<bool(std::string_view)>& on_text = {}) override;

  // The pieces, for tools that drive the stages themselves (encode, benchmarks).
  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  VisionEncoder& encoder() { return *encoder_; }
  Decoder& decoder() { return *decoder_; }
  ThreadPool& pool() { return *pool_; }

  // Prompt embeddings for ids whose image placeholders are replaced, in order, by `features`
  // ([placeholders, hidden]); throws when the counts disagree.
  std::vector<float> prompt_embeddings(const std::vector<int32_t>& ids, const std::vector<float>& features);

 private:
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<VisionEncoder> encoder_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace dsocr
