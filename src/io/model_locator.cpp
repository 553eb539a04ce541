#include "io/model_locator.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace dsocr {
namespace fs = std::filesystem;
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string checked_dir(const std::string& dir, const char* source) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: model directory does not exist (from {})", dir, source);
  return dir;
}

}  // namespace

std::string cache_dir() {
  // The XDG base directory spec says relative values are invalid and must be ignored.
  const std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty() && fs::path(xdg).is_absolute()) return (fs::path(xdg) / "dsocr").string();
  const std::string home = env_or_empty("HOME");
  if (home.empty()) fail("cannot locate the cache directory: neither XDG_CACHE_HOME nor HOME is set");
  return (fs::path(home) / ".cache" / "dsocr").string();
}

std::string cached_model_dir(const std::string& cache, const std::string& repo) {
  return (fs::path(cache) / "models" / repo).string();
}

std::string resolve_model_dir(const std::string& cli_value) {
  if (!cli_value.empty()) return checked_dir(cli_value, "--model");
  const std::string from_env = env_or_empty("DSOCR_MODEL");
  if (!from_env.empty()) return checked_dir(from_env, "DSOCR_MODEL");

  std::string cached;
  try {
    cached = cached_model_dir(cache_dir(), kDefaultModelRepo);
  } catch (const Error&) {
    fail("no model given: pass --model DIR or set DSOCR_MODEL (the download cache is unavailable: "
         "HOME is not set)");
  }
  // `dsocr pull` writes config.json last, so its presence means a completed download.
  std::error_code ec;
  if (fs::is_regular_file(fs::path(cached) / "config.json", ec)) return cached;
  fail("no model found: run `dsocr pull` to download {} into {}, or pass --model DIR, or set DSOCR_MODEL",
       kDefaultModelRepo, cached);
}

}  // namespace dsocr
