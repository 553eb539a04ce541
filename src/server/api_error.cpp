#include "server/api_error.h"

namespace dsocr::server {

std::string ApiError::type() const {
  if (!type_.empty()) return type_;
  return status_ >= 500 ? "server_error" : "invalid_request_error";
}

void bad_request(const std::string& param, const std::string& message) {
  throw ApiError(400, param.empty() ? message : param + ": " + message, param);
}

nlohmann::json error_json(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()}, {"type", e.type()}, {"param", nullptr}, {"code", e.status()}};
  if (!e.param().empty()) err["param"] = e.param();
  return {{"error", err}};
}

std::string error_body(const ApiError& e) { return error_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace dsocr::server
