// dsocr serve: the HTTP server (cpp-httplib) in front of a PageRecognizer (the engine), so that
// concurrent requests share the engine's batch.
//
// Endpoints: POST /v1/chat/completions (openai_format.h; stream: true answers Server-Sent Events
// ending with `data: [DONE]`), POST /v1/ocr (ocr_format.h; NDJSON when streaming), GET /v1/models,
// GET /health (200 once a recognizer is attached and until shutdown, 503 otherwise), GET /metrics
// (metrics.h), GET / (the web page, web_page.h). With an API key every endpoint but /health and the
// page itself needs `Authorization: Bearer KEY` (401 otherwise); the page sends the key it is given.
//
// Load and abuse: requests that run the model are admitted while fewer than parallel + max_queue
// are in flight; more get 429 with Retry-After. Bodies over max_body_bytes get 413; malformed JSON,
// multipart, base64, documents and options get 400, all with OpenAI-style error objects
// (api_error.h). Read and write timeouts bound slow clients. A client that disconnects (or stops
// reading until the write timeout) cancels its pages, which frees their KV blocks. shutdown() stops
// accepting connections, lets what is in flight finish, cancels what is left after the drain time,
// and then serve() returns.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "engine/request.h"
#include "server/metrics.h"

namespace dsocr::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (bind() says which)
  std::string api_key;             // "": no authentication
  int parallel = 1;                // pages the recognizer computes at once (and per /v1/ocr request)
  int max_queue = 16;              // requests admitted beyond `parallel`; more are refused with 429
  size_t max_body_bytes = size_t(64) << 20;
  std::string allow_files;         // folder whose files file:// URLs may name; "": none
  int read_timeout_s = 30, write_timeout_s = 30, keep_alive_s = 5;
  int retry_after_s = 1;           // the Retry-After of a 429
  bool log = false;                // one line per request on stderr
};

class OcrServer {
 public:
  explicit OcrServer(ServerOptions options);
  ~OcrServer();
  OcrServer(const OcrServer&) = delete;
  OcrServer& operator=(const OcrServer&) = delete;

  // Binds the listening socket; returns the port. Throws Error naming host:port when it cannot.
  int bind();
  // Starts answering OCR requests with `recognizer` (until then they get 503 and /health says
  // "loading"); /v1/models lists `model_name`. `stats`, when given, adds the engine's queue and KV
  // blocks to /metrics.
  void attach(PageRecognizer& recognizer, std::string model_name, std::function<EngineStats()> stats = {});
  // Answers requests on a pool of threads; returns after shutdown() once every connection is done.
  void serve();
  // Callable from any thread, once: refuses new connections and requests (503), waits up to
  // `drain` for the requests in flight, then cancels their pages.
  void shutdown(std::chrono::milliseconds drain);

  int in_flight() const;
  const ServerMetrics& metrics() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsocr::server
