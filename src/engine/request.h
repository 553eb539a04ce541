// What a caller asks of the engine for one page, what it gets back, and the handle in between.
// PageRecognizer is anything that turns pages into text asynchronously: the engine, or a stand-in
// in tests of the document tool and the server.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.h"
#include "lm/generation.h"
#include "vision/preprocess.h"

namespace dsocr {

struct OcrRequest {
  Mode mode = Mode::Gundam;
  int max_tiles = 6;  // Gundam modes: 2..9 (6 as the official vLLM drivers, 9 as HF infer())
  std::string prompt = "<image>\n<|grounding|>Convert the document to markdown.";
  GenerationOptions generation;
};

// Why a request ended without a normal result: the caller's input, or the engine.
enum class RequestStatus { Ok, Cancelled, BadInput, EngineError };
const char* request_status_name(RequestStatus status);  // "ok", "cancelled", "bad_input", "engine_error"

struct OcrTimings {
  double preprocess = 0, encode = 0, prefill = 0, decode = 0;
  double queued = 0;  // waiting for a free sequence slot or KV blocks
  double total() const { return preprocess + encode + prefill + decode; }
};

struct OcrResult {
  RequestStatus status = RequestStatus::Ok;
  std::string error;             // one line, when status is BadInput or EngineError
  std::string text;              // decoded generated text, special tokens kept (EOS not included)
  std::vector<int32_t> tokens;   // generated ids
  StopReason stop = StopReason::Eos;
  int prompt_tokens = 0, image_tokens = 0;
  TileGrid grid;
  int page_width = 0, page_height = 0;
  int preemptions = 0;           // times the page was preempted and recomputed
  OcrTimings timings;
  bool truncated() const { return stop != StopReason::Eos; }
};

// Receives decoded text pieces as soon as they are complete UTF-8, on the engine's thread (keep it
// short); returning false cancels the request.
using TextCallback = std::function<bool(std::string_view)>;

// The handle of a submitted page. Thread-safe.
class PageJob {
 public:
  explicit PageJob(uint64_t id) : id_(id) {}
  uint64_t id() const { return id_; }
  bool done() const;
  OcrResult wait();  // blocks until the result is there (a copy)
  bool wait_for(std::chrono::milliseconds timeout);
  // Asks the engine to stop the page; its result then says Cancelled (unless it had finished).
  void cancel();
  bool cancel_requested() const { return cancelled_.load(); }

  // For implementations: completes the job once (later calls are ignored) and wakes the waiters.
  void finish(OcrResult result);
  // Called (once, on the cancelling thread) when cancel() is first called.
  void on_cancel(std::function<void()> fn);

 private:
  uint64_t id_;
  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  OcrResult result_;
  std::atomic<bool> cancelled_{false};
  std::function<void()> on_cancel_;
};

class PageRecognizer {
 public:
  virtual ~PageRecognizer() = default;
  // Thread-safe; returns at once. The result comes through the job.
  virtual std::shared_ptr<PageJob> submit(Image page, OcrRequest request, TextCallback on_text = {}) = 0;
  // submit + wait.
  OcrResult run(const Image& page, const OcrRequest& request, TextCallback on_text = {});
};

}  // namespace dsocr
