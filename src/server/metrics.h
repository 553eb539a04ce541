// The server's counters in the Prometheus text format (version 0.0.4), for GET /metrics:
//   dsocr_requests_total{endpoint,status}     answered requests by HTTP status
//   dsocr_queue_rejections_total              429s (the queue was full)
//   dsocr_requests_in_flight, dsocr_queue_depth   admitted requests; of those, waiting for a slot
//   dsocr_pages_total{result}                 pages finished ok / failed / cancelled
//   dsocr_prompt_tokens_total, dsocr_generated_tokens_total
//   dsocr_tokens_per_second                   text pieces streamed per second over the last 10 s (a piece
//                                             is a token, or the tokens that complete one character)
//   dsocr_kv_blocks_used, dsocr_kv_blocks_total (when the engine's numbers are given)
//   dsocr_time_to_first_token_seconds, dsocr_request_duration_seconds   histograms
// Thread-safe.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace dsocr::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // The _bucket (cumulative, le="+Inf" last), _sum and _count lines of `name`.
  void render(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; one more for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct MetricsGauges {
  int in_flight = 0, queued = 0;
  int kv_blocks_used = -1, kv_blocks_total = -1;  // -1: unknown (not shown)
};

class ServerMetrics {
 public:
  ServerMetrics();
  void request_done(const std::string& endpoint, int status, double seconds);
  void rejected();
  void first_token(double seconds);
  void page_done(const char* result, int prompt_tokens, int generated_tokens);
  // Counts generated tokens as they stream (for the rate); `now` is injectable for tests.
  void tokens_generated(int n, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  double tokens_per_second(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const;
  std::string render(const MetricsGauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> pages_;
  uint64_t rejections_ = 0, prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, duration_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int>> recent_;  // the last 10 s of tokens
};

}  // namespace dsocr::server
