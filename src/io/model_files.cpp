#include "io/model_files.h"

#include <filesystem>
#include <fstream>
#include <system_error>

namespace dsocr {

std::string resolve_link_file(const std::string& path) {
  namespace fs = std::filesystem;
  constexpr std::uintmax_t kMaxLinkFileSize = 4096;
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec || size == 0 || size >= kMaxLinkFileSize) return path;

  std::ifstream in(path, std::ios::binary);
  std::string content(static_cast<size_t>(size), '\0');
  if (!in.read(content.data(), static_cast<std::streamsize>(size))) return path;
  if (content.front() == '{') return path;

  const auto first = content.find_first_not_of(" \t\r\n");
  const auto last = content.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) return path;
  const std::string target = content.substr(first, last - first + 1);
  if (target.find_first_of("\r\n") != std::string::npos) return path;  // not a single path
  const fs::path target_path(target);
  if (target_path.is_absolute()) return path;

  const fs::path resolved = fs::path(path).parent_path() / target_path;
  if (!fs::is_regular_file(resolved, ec)) return path;
  return resolved.lexically_normal().string();
}

std::string model_file(const std::string& dir, const std::string& name) {
  return resolve_link_file((std::filesystem::path(dir) / name).string());
}

}  // namespace dsocr
