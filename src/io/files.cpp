#include "io/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace dsocr {

namespace {
// Disk full and similar: an OutputError, which stops a batch; anything else names the file.
[[noreturn]] void output_failed(const std::string& path, const char* what, int err) {
  if (err == ENOSPC || err == EDQUOT || err == EROFS || err == EIO)
    throw OutputError(fmt::format("{}: {}: {}", path, what, std::strerror(err)));
  fail("{}: {}: {}", path, what, std::strerror(err));
}
}  // namespace

std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("{}: read error", path);
  return ss.str();
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  std::random_device random;
  for (int attempt = 0; attempt < 8 && !file_; ++attempt) {
    temp_path_ = fmt::format("{}.tmp{:08x}{:08x}", path, random(), random());
    const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      file_ = ::fdopen(fd, "wb");
      if (!file_) {
        ::close(fd);
        std::remove(temp_path_.c_str());
        break;
      }
    } else if (errno != EEXIST) {
      break;
    }
  }
  if (!file_) output_failed(path, "cannot create file", errno);
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFile::write(std::string_view bytes) {
  if (!file_) fail("{}: already closed", path_);
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) output_failed(path_, "write failed", errno);
}

void AtomicFile::commit() {
  const bool flushed = std::fflush(file_) == 0 && !std::ferror(file_);
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) output_failed(path_, "write failed", errno);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail("{}: cannot move into place: {}", path_, std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

}  // namespace dsocr
