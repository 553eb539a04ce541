// Where the model lives: --model DIR, else $DSOCR_MODEL, else the copy `dsocr pull` put in the cache.
#pragma once
#include <string>

namespace dsocr {

inline constexpr const char* kDefaultModelRepo = "deepseek-ai/DeepSeek-OCR";

// The dsocr cache directory: $XDG_CACHE_HOME/dsocr, else ~/.cache/dsocr. Throws Error when
// neither XDG_CACHE_HOME (absolute) nor HOME is set.
std::string cache_dir();

// Where `dsocr pull` stores hub repository `repo` ("owner/name") under cache directory `cache`:
// <cache>/models/owner/name.
std::string cached_model_dir(const std::string& cache, const std::string& repo);

// The model directory to use: `cli_value` (from --model) when not empty, else $DSOCR_MODEL, else
// the cached copy of kDefaultModelRepo. Throws Error saying how to get a model when none is found.
std::string resolve_model_dir(const std::string& cli_value);

}  // namespace dsocr
