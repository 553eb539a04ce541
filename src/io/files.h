// Whole-file reads and atomic writes (a temporary file next to the target, renamed over it when
// complete, so that an interrupted run never leaves a half-written output behind).
#pragma once
#include <string>
#include <string_view>

namespace dsocr {

std::string read_file_text(const std::string& path);  // throws Error naming the path
void write_file_atomic(const std::string& path, std::string_view content);  // creates parent directories

}  // namespace dsocr
