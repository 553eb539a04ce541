#include "text/stream_filter.h"

#include <algorithm>

namespace dsocr {

namespace {
constexpr std::string_view kOpen = "<|ref|>";
constexpr std::string_view kClose = "<|/det|>";
}  // namespace

std::string GroundingStreamFilter::push(std::string_view piece) {
  pending_.append(piece);
  std::string out;
  for (;;) {
    if (drop_newline_ && !pending_.empty()) {
      if (pending_.front() == '\n') pending_.erase(0, 1);
      drop_newline_ = false;
    }
    const size_t open = pending_.find(kOpen);
    if (open == std::string::npos) {
      // Keep a tail that could still grow into "<|ref|>".
      size_t keep = 0;
      for (size_t k = std::min(kOpen.size() - 1, pending_.size()); k > 0; --k) {
        if (pending_.compare(pending_.size() - k, k, kOpen.substr(0, k)) == 0) {
          keep = k;
          break;
        }
      }
      out.append(pending_, 0, pending_.size() - keep);
      pending_.erase(0, pending_.size() - keep);
      return out;
    }
    out.append(pending_, 0, open);
    const size_t close = pending_.find(kClose, open + kOpen.size());
    if (close == std::string::npos) {
      pending_.erase(0, open);  // hold the span until it closes
      return out;
    }
    pending_.erase(0, close + kClose.size());
    drop_newline_ = true;
  }
}

std::string GroundingStreamFilter::flush() {
  std::string rest;
  if (pending_.find(kOpen) != 0) rest = pending_;  // an unfinished span is dropped
  pending_.clear();
  drop_newline_ = false;
  return rest;
}

}  // namespace dsocr
