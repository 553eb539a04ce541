// One exception type for every failure that reaches the user: a one-line message that names the
// file (or other subject) and the problem. Callers add context as the error travels up.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace dsocr {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}
};

// Writing an output failed in a way no other document can avoid (disk full, read-only file system,
// I/O error): a batch stops at once instead of failing every remaining document the same way.
class OutputError : public Error {
 public:
  using Error::Error;
};

// fail("{}: header length {} exceeds file size {}", path, n, size)
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Runs fn(); any Error it throws is rethrown with "context: " in front.
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace dsocr
