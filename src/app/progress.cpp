#include "app/progress.h"

#include <cstdio>
#include <string>

#include <fmt/format.h>

namespace dsocr::app {

std::string duration(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", int(s) / 60, int(s) % 60);
  return fmt::format("{}h{:02}m", int(s) / 3600, (int(s) / 60) % 60);
}

namespace {

class Progress : public BatchObserver {
 public:
  explicit Progress(ProgressStyle style) : style_(style) {}

  void on_start(int documents, int pages) override {
    total_pages_ = pages;
    start_ = std::chrono::steady_clock::now();
    if (style_ == ProgressStyle::Lines) fmt::print(stderr, "dsocr: {} document(s), {} page(s)\n", documents, pages);
    draw();
  }
  void on_document(const InputDocument& doc, int pages) override {
    current_ = doc.name;
    if (style_ == ProgressStyle::Lines) fmt::print(stderr, "dsocr: {} ({} page(s))\n", doc.path, pages);
    draw();
  }
  void on_page_progress(const InputDocument& doc, int page, int pieces) override {
    // A real page takes minutes on a CPU: keep the bar alive, at most four redraws a second.
    const auto now = std::chrono::steady_clock::now();
    if (style_ != ProgressStyle::Bar || now - last_draw_ < std::chrono::milliseconds(250)) return;
    page_note_ = fmt::format(" (page {}: {} tokens)", page, pieces);
    draw();
  }
  void on_page_done(const InputDocument& doc, int page, const OcrResult& r) override {
    page_note_.clear();
    ++done_;
    tokens_ += int64_t(r.tokens.size());
    decode_seconds_ += r.timings.decode;
    if (style_ == ProgressStyle::Lines)
      fmt::print(stderr, "dsocr: {} page {}: {} tokens, {}, {:.1f}s ({:.1f} tok/s)\n", doc.path, page, r.tokens.size(),
                 stop_reason_name(r.stop), r.timings.total(),
                 r.timings.decode > 0 ? double(r.tokens.size()) / r.timings.decode : 0.0);
    draw();
  }
  void on_skipped(const InputDocument& doc, const std::string& why) override {
    if (style_ != ProgressStyle::Quiet) message(fmt::format("skipped {}: {}", doc.path, why));
  }
  void on_failure(const std::string& what, const std::string& reason) override {
    // The reason usually names the file already; avoid saying it twice.
    message(reason.rfind(what, 0) == 0 ? fmt::format("failed: {}", reason) : fmt::format("failed: {}: {}", what, reason));
  }
  void on_info(const std::string& what, const std::string& text) override {
    if (style_ != ProgressStyle::Quiet) message(fmt::format("{}: {}", what, text));
  }
  void on_warning(const std::string& what, const std::string& text) override {
    if (style_ != ProgressStyle::Quiet) message(fmt::format("warning: {}: {}", what, text));
  }
  ~Progress() override {
    if (style_ == ProgressStyle::Bar && drawn_) std::fputc('\n', stderr);
  }

 private:
  void message(const std::string& line) {
    if (style_ == ProgressStyle::Bar && drawn_) std::fputs("\r\033[K", stderr);
    fmt::print(stderr, "dsocr: {}\n", line);
    drawn_ = false;
    draw();
  }
  void draw() {
    if (style_ != ProgressStyle::Bar) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int width = 24;
    const int filled = total_pages_ > 0 ? width * done_ / total_pages_ : 0;
    std::string bar = std::string(size_t(filled), '#') + std::string(size_t(width - filled), '-');
    std::string eta = done_ > 0 && total_pages_ > done_ ? duration(elapsed / done_ * (total_pages_ - done_)) : "-";
    const double tps = decode_seconds_ > 0 ? double(tokens_) / decode_seconds_ : 0.0;
    fmt::print(stderr, "\r\033[K[{}] {}/{} pages | {:.1f} tok/s | ETA {} | {}{}", bar, done_, total_pages_, tps, eta,
               current_, page_note_);
    std::fflush(stderr);
    drawn_ = true;
    last_draw_ = std::chrono::steady_clock::now();
  }

  ProgressStyle style_;
  int total_pages_ = 0, done_ = 0;
  int64_t tokens_ = 0;
  double decode_seconds_ = 0;
  std::string current_, page_note_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

std::unique_ptr<BatchObserver> make_progress(ProgressStyle style) { return std::make_unique<Progress>(style); }

void print_summary(const BatchSummary& s) {
  fmt::print(stderr,
             "dsocr: {} document(s): {} done, {} skipped, {} failed; {} page(s) done{}, {} failed, {} truncated; "
             "{} tokens in {}{}\n",
             s.documents, s.documents_done, s.documents_skipped, s.documents_failed, s.pages_done,
             s.pages_reused ? fmt::format(" ({} more kept from before)", s.pages_reused) : std::string(), s.pages_failed,
             s.pages_truncated, s.generated_tokens, duration(s.seconds), s.cancelled ? " (interrupted)" : "");
}

}  // namespace dsocr::app
