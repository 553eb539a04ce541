#include "server/metrics.h"

#include <fmt/format.h>

namespace dsocr::server {

namespace {
constexpr auto kRateWindow = std::chrono::seconds(10);

std::string number(double v) { return fmt::format("{}", v); }
}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, number(bounds_[i]), cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, number(sum_), name, count_);
}

ServerMetrics::ServerMetrics()
    : ttft_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      duration_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}) {}

void ServerMetrics::request_done(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
  if (endpoint != "/health" && endpoint != "/metrics") duration_.observe(seconds);
}

void ServerMetrics::rejected() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejections_;
}

void ServerMetrics::first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_.observe(seconds);
}

void ServerMetrics::page_done(const char* result, int prompt_tokens, int generated_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++pages_[result];
  prompt_tokens_ += uint64_t(std::max(0, prompt_tokens));
  generated_tokens_ += uint64_t(std::max(0, generated_tokens));
}

void ServerMetrics::tokens_generated(int n, std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!recent_.empty() && now - recent_.back().first < std::chrono::milliseconds(100)) recent_.back().second += n;
  else recent_.emplace_back(now, n);
  while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
}

double ServerMetrics::tokens_per_second(std::chrono::steady_clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t n = 0;
  for (const auto& [t, k] : recent_)
    if (now - t <= kRateWindow) n += k;
  return double(n) / std::chrono::duration<double>(kRateWindow).count();
}

std::string ServerMetrics::render(const MetricsGauges& g) const {
  const double rate = tokens_per_second();
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP dsocr_requests_total Requests answered, by endpoint and HTTP status.\n# TYPE dsocr_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("dsocr_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  out += fmt::format("# HELP dsocr_queue_rejections_total Requests refused with 429 because the queue was full.\n"
                     "# TYPE dsocr_queue_rejections_total counter\ndsocr_queue_rejections_total {}\n", rejections_);
  out += fmt::format("# HELP dsocr_requests_in_flight OCR requests admitted and not yet answered.\n"
                     "# TYPE dsocr_requests_in_flight gauge\ndsocr_requests_in_flight {}\n", g.in_flight);
  out += fmt::format("# HELP dsocr_queue_depth Pages submitted to the engine and waiting for it.\n"
                     "# TYPE dsocr_queue_depth gauge\ndsocr_queue_depth {}\n", g.queued);
  out += "# HELP dsocr_pages_total Pages finished, by result.\n# TYPE dsocr_pages_total counter\n";
  for (const char* result : {"ok", "failed", "cancelled"}) {
    auto it = pages_.find(result);
    out += fmt::format("dsocr_pages_total{{result=\"{}\"}} {}\n", result, it == pages_.end() ? 0 : it->second);
  }
  out += fmt::format("# HELP dsocr_prompt_tokens_total Prompt tokens (image tokens included) of finished pages.\n"
                     "# TYPE dsocr_prompt_tokens_total counter\ndsocr_prompt_tokens_total {}\n", prompt_tokens_);
  out += fmt::format("# HELP dsocr_generated_tokens_total Tokens generated for finished pages.\n"
                     "# TYPE dsocr_generated_tokens_total counter\ndsocr_generated_tokens_total {}\n", generated_tokens_);
  out += fmt::format("# HELP dsocr_tokens_per_second Text pieces streamed per second over the last 10 seconds (one per token, "
                     "except where a character takes several).\n"
                     "# TYPE dsocr_tokens_per_second gauge\ndsocr_tokens_per_second {}\n", number(rate));
  if (g.kv_blocks_total >= 0) {
    out += fmt::format("# HELP dsocr_kv_blocks_used KV cache blocks held by pages.\n"
                       "# TYPE dsocr_kv_blocks_used gauge\ndsocr_kv_blocks_used {}\n", g.kv_blocks_used);
    out += fmt::format("# HELP dsocr_kv_blocks_total KV cache blocks in the pool.\n"
                       "# TYPE dsocr_kv_blocks_total gauge\ndsocr_kv_blocks_total {}\n", g.kv_blocks_total);
  }
  out += "# HELP dsocr_time_to_first_token_seconds From admission to the first generated text.\n"
         "# TYPE dsocr_time_to_first_token_seconds histogram\n";
  ttft_.render(out, "dsocr_time_to_first_token_seconds");
  out += "# HELP dsocr_request_duration_seconds OCR request latency, from receipt to the last byte produced.\n"
         "# TYPE dsocr_request_duration_seconds histogram\n";
  duration_.render(out, "dsocr_request_duration_seconds");
  return out;
}

}  // namespace dsocr::server
