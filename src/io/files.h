// Whole-file reads and atomic writes (a temporary file next to the target, renamed over it when
// complete, so that an interrupted run never leaves a half-written output behind).
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace dsocr {

std::string read_file_text(const std::string& path);  // throws Error naming the path

// A file written next to its destination (a unique temporary name) and renamed over it on
// commit(); removed if destroyed without commit(). For writers that stream through a FILE*.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the parent directories
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  FILE* get() const { return file_; }
  const std::string& path() const { return path_; }
  void write(std::string_view bytes);  // throws on a short write (disk full)
  void commit();                       // flush, close, rename; throws on failure

 private:
  std::string path_, temp_path_;
  FILE* file_ = nullptr;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view content);  // creates parent directories

}  // namespace dsocr
