// Errors answered to a client: an HTTP status and an OpenAI-style error object
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": null}}
// which the OpenAI SDKs (and Mistral's, which reads the same "message") show to their users.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsocr::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string param = {}, std::string type = {})
      : Error(std::move(message)), status_(status), param_(std::move(param)), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  // "invalid_request_error" for 4xx, "server_error" for 5xx, unless given.
  std::string type() const;

 private:
  int status_;
  std::string param_, type_;
};

// A 400 naming the field: bad_request("max_tokens", "must be a positive integer").
[[noreturn]] void bad_request(const std::string& param, const std::string& message);

nlohmann::json error_json(const ApiError& e);
std::string error_body(const ApiError& e);  // error_json(e).dump()

}  // namespace dsocr::server
