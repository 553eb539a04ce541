// How a batch shows its progress: a one-line bar on a terminal, plain log lines otherwise, or
// nothing. Failures and warnings always go to stderr, one line each.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "engine/document.h"

namespace dsocr::app {

enum class ProgressStyle { Bar, Lines, Quiet };

std::unique_ptr<BatchObserver> make_progress(ProgressStyle style);

// "42s", "3m05s", "2h10m".
std::string duration(double seconds);

// The closing summary (stderr).
void print_summary(const BatchSummary& summary);

}  // namespace dsocr::app
