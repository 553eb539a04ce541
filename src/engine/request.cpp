#include "engine/request.h"

namespace dsocr {

const char* request_status_name(RequestStatus status) {
  switch (status) {
    case RequestStatus::Ok: return "ok";
    case RequestStatus::Cancelled: return "cancelled";
    case RequestStatus::BadInput: return "bad_input";
    case RequestStatus::EngineError: return "engine_error";
  }
  return "?";
}

bool PageJob::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

OcrResult PageJob::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  done_cv_.wait(lock, [&] { return done_; });
  return result_;
}

bool PageJob::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return done_cv_.wait_for(lock, timeout, [&] { return done_; });
}

void PageJob::cancel() {
  if (cancelled_.exchange(true)) return;
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn = on_cancel_;
  }
  if (fn) fn();
}

void PageJob::finish(OcrResult result) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_) return;
    result_ = std::move(result);
    done_ = true;
    on_cancel_ = nullptr;
  }
  done_cv_.notify_all();
}

void PageJob::on_cancel(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_cancel_ = std::move(fn);
}

OcrResult PageRecognizer::run(const Image& page, const OcrRequest& request, TextCallback on_text) {
  return submit(page, request, std::move(on_text))->wait();
}

}  // namespace dsocr
