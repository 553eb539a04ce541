#include "engine/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/files.h"

namespace fs = std::filesystem;

namespace dsocr {

std::string dump_json(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

namespace {
// Differences of two JSON values, nested objects compared key by key ("generation.max_tokens: 6 -> 7").
void differences(const json& before, const json& now, const std::string& prefix, std::string& out) {
  auto note = [&](const std::string& key, const std::string& a, const std::string& b) {
    if (!out.empty()) out += "; ";
    out += key + ": " + a + " -> " + b;
  };
  if (!before.is_object() || !now.is_object()) {
    if (before != now) note(prefix, dump_json(before), dump_json(now));
    return;
  }
  auto key_of = [&](const std::string& k) { return prefix.empty() ? k : prefix + "." + k; };
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (!before.contains(it.key())) note(key_of(it.key()), "(none)", dump_json(it.value()));
    else differences(before[it.key()], it.value(), key_of(it.key()), out);
  }
  for (auto it = before.begin(); it != before.end(); ++it)
    if (!now.contains(it.key())) note(key_of(it.key()), dump_json(it.value()), "(none)");
}
}  // namespace

std::string identity_difference(const json& before, const json& now) {
  std::string out;
  differences(before, now, "", out);
  return out;
}

bool Journal::read(const std::string& path, json* identity, std::map<int, json>* pages) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string line;
  if (!std::getline(in, line)) return false;
  try {
    const json head = json::parse(line);
    if (!head.contains("identity")) return false;
    *identity = head["identity"];
  } catch (const std::exception&) {
    return false;
  }
  pages->clear();
  while (std::getline(in, line)) {
    try {
      json page = json::parse(line);
      if (page.contains("page") && page["page"].is_number_integer()) (*pages)[page["page"].get<int>()] = std::move(page);
    } catch (const std::exception&) {
      break;  // a torn last line
    }
  }
  return true;
}

namespace {

[[noreturn]] void write_failed(const std::string& path) {
  const int err = errno;
  if (err == ENOSPC || err == EDQUOT || err == EROFS || err == EIO)
    throw OutputError(fmt::format("{}: cannot write: {}", path, std::strerror(err)));
  fail("{}: cannot write: {}", path, std::strerror(err));
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      write_failed(path);
    }
    bytes.remove_prefix(size_t(n));
  }
}

}  // namespace

Journal::Journal(std::string path, const json& identity) : path_(std::move(path)) {
  json old_identity;
  std::map<int, json> old_pages;
  const bool existed = read(path_, &old_identity, &old_pages);
  const bool reuse = existed && old_identity == identity;
  if (existed && !reuse) replaced_because_ = identity_difference(old_identity, identity);
  std::error_code ec;
  fs::create_directories(fs::path(path_).parent_path(), ec);
  if (reuse) {
    pages_ = std::move(old_pages);
    // Rewrite it without a torn tail, then append from there.
    std::string text = dump_json(json{{"identity", identity}}) + "\n";
    for (const auto& [n, p] : pages_) text += dump_json(p) + "\n";
    write_file_atomic(path_, text);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  } else {
    write_file_atomic(path_, dump_json(json{{"identity", identity}}) + "\n");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (fd_ < 0) write_failed(path_);
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::record(const json& page) {
  if (fd_ < 0) fail("{}: journal is closed", path_);
  write_all(fd_, dump_json(page) + "\n", path_);
  if (::fdatasync(fd_) != 0 && errno != EINVAL) write_failed(path_);
  pages_[page.at("page").get<int>()] = page;
}

void Journal::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::remove(path_.c_str());
}

}  // namespace dsocr
