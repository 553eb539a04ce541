#include "server/request_parsing.h"

#include <array>
#include <cmath>
#include <filesystem>
#include <limits>

#include "io/files.h"
#include "lm/ngram.h"
#include "lm/sampling.h"
#include "server/api_error.h"
#include "vision/preprocess.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace dsocr::server {

namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::array<int8_t, 256> base64_values() {
  std::array<int8_t, 256> v;
  v.fill(-1);
  for (size_t i = 0; i < kAlphabet.size(); ++i) v[uint8_t(kAlphabet[i])] = int8_t(i);
  v[uint8_t('-')] = 62;
  v[uint8_t('_')] = 63;
  return v;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) fail("truncated %-escape");
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) fail("bad %-escape");
    out += char(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// An integer field within [lo, hi]; JSON numbers only (a float with no fraction is accepted).
int64_t get_int(const json& body, const char* name, int64_t lo, int64_t hi, const std::string& where = {}) {
  const json& v = body.at(name);
  const std::string param = where.empty() ? name : where + "." + name;
  int64_t n = 0;
  if (v.is_number_integer()) {
    n = v.is_number_unsigned() ? (v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
                                      ? std::numeric_limits<int64_t>::max()
                                      : int64_t(v.get<uint64_t>()))
                               : v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e15) {
    n = int64_t(v.get<double>());
  } else {
    bad_request(param, "must be an integer");
  }
  if (n < lo || n > hi) bad_request(param, fmt::format("{} is out of range {}..{}", n, lo, hi));
  return n;
}

double get_number(const json& body, const char* name, double lo, double hi) {
  const json& v = body.at(name);
  if (!v.is_number()) bad_request(name, "must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) bad_request(name, fmt::format("{} is out of range {}..{}", x, lo, hi));
  return x;
}

}  // namespace

bool has_field(const json& object, const char* name) { return object.contains(name) && !object.at(name).is_null(); }

std::string url_field(const json& object, const std::string& key, const std::string& where) {
  const json& u = object.contains(key) ? object[key] : json();
  if (u.is_string()) return u.get<std::string>();
  if (u.is_object() && u.contains("url") && u["url"].is_string()) return u["url"].get<std::string>();
  bad_request(where + "." + key, "expected a data: URL, as \"" + key + "\": {\"url\": \"data:...\"}");
}

std::string decode_base64(std::string_view text) {
  static const std::array<int8_t, 256> values = base64_values();
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int8_t v = values[uint8_t(c)];
    if (v < 0 || padding > 0) fail("invalid base64 (character '{}')", c == '\0' ? std::string("\\0") : std::string(1, c));
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  // 2 or 4 leftover bits are the padding of a 2- or 1-byte tail; 6 means a lone character.
  if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0) fail("invalid base64 (truncated)");
  if (padding > 2) fail("invalid base64 (too much padding)");
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string load_url(std::string_view url, const std::string& allow_files, const std::string& field) {
  if (url.rfind("data:", 0) == 0) {
    const size_t comma = url.find(',');
    if (comma == std::string_view::npos) bad_request(field, "data URL without ',' before its data");
    const std::string_view meta = url.substr(5, comma - 5), data = url.substr(comma + 1);
    const bool base64 = meta.size() >= 7 && meta.substr(meta.size() - 7) == ";base64";
    try {
      return base64 ? decode_base64(data) : percent_decode(data);
    } catch (const Error& e) {
      bad_request(field, fmt::format("data URL: {}", e.what()));
    }
  }
  if (url.rfind("file://", 0) == 0) {
    if (allow_files.empty()) bad_request(field, "file:// URLs are refused (the server was started without --allow-files)");
    std::string path;
    try {
      path = percent_decode(url.substr(7));
    } catch (const Error& e) {
      bad_request(field, fmt::format("file URL: {}", e.what()));
    }
    std::error_code ec;
    const fs::path real = fs::canonical(path, ec);
    const fs::path root = fs::canonical(allow_files, ec);
    bool inside = !real.empty() && !root.empty();
    if (inside) {
      auto ri = real.begin();
      for (auto di = root.begin(); di != root.end(); ++ri, ++di)
        if (ri == real.end() || *ri != *di) {
          inside = false;
          break;
        }
    }
    if (!inside) bad_request(field, fmt::format("{}: not a file under the allowed folder", path));
    if (!fs::is_regular_file(real, ec)) bad_request(field, fmt::format("{}: not a regular file", path));
    try {
      return read_file_text(real.string());
    } catch (const Error& e) {
      bad_request(field, e.what());
    }
  }
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)
    bad_request(field, "remote URLs are not fetched: send the document as a data: URL (base64)");
  bad_request(field, "expected a data: URL (or file:// with --allow-files)");
}

std::string sniff_document(std::string_view b) {
  if (b.substr(0, 5) == "%PDF-") return "pdf";
  static const std::string_view magics[] = {"\x89PNG", "\xFF\xD8\xFF", "GIF8", "BM", "II*", "MM\0*"};
  for (std::string_view m : magics)
    if (b.substr(0, m.size()) == m) return "image";
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return "image";
  return "";
}

void apply_generation_options(const json& body, OcrRequest& r) {
  if (!body.is_object()) bad_request("", "the request body must be a JSON object");
  GenerationOptions& g = r.generation;
  if (has_field(body, "mode")) {
    if (!body["mode"].is_string()) bad_request("mode", "must be a string");
    try {
      r.mode = parse_mode(body["mode"].get<std::string>());
    } catch (const Error& e) {
      bad_request("mode", e.what());
    }
  }
  if (has_field(body, "max_tiles")) r.max_tiles = int(get_int(body, "max_tiles", 2, 9));
  for (const char* name : {"max_tokens", "max_completion_tokens"})
    if (has_field(body, name)) g.max_new_tokens = int(get_int(body, name, 1, 1 << 20));
  if (has_field(body, "temperature")) g.sampling.temperature = float(get_number(body, "temperature", 0, 100));
  if (has_field(body, "top_p")) {
    g.sampling.top_p = float(get_number(body, "top_p", 0, 1));
    if (g.sampling.top_p <= 0) bad_request("top_p", "must be in (0, 1]");
  }
  if (has_field(body, "seed")) g.sampling.seed = uint64_t(get_int(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  auto set_ngram = [&](const json& obj, const char* size_name, const char* window_name, const std::string& where) {
    if (has_field(obj, size_name)) {
      const int n = int(get_int(obj, size_name, 0, 1 << 16, where));
      g.ngram.enabled = n > 0;
      if (n > 0) g.ngram.ngram_size = n;
    }
    if (has_field(obj, window_name)) g.ngram.window = int(get_int(obj, window_name, 0, 1 << 20, where));
  };
  set_ngram(body, "ngram_size", "ngram_window", "");
  if (has_field(body, "vllm_xargs")) {
    const json& x = body["vllm_xargs"];
    if (!x.is_object()) bad_request("vllm_xargs", "must be an object");
    set_ngram(x, "ngram_size", "window_size", "vllm_xargs");
    if (has_field(x, "whitelist_token_ids")) {
      const json& w = x["whitelist_token_ids"];
      if (!w.is_array()) bad_request("vllm_xargs.whitelist_token_ids", "must be an array of token ids");
      g.ngram.whitelist.clear();
      for (const json& id : w) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
          bad_request("vllm_xargs.whitelist_token_ids", "must be an array of token ids");
        g.ngram.whitelist.push_back(int32_t(id.get<int64_t>()));
      }
    }
  }
  try {
    page_tile_grid(1024, 1024, r.mode, r.max_tiles);
    NgramGuard check_guard(g.ngram);
    Sampler check_sampling(g.sampling);
  } catch (const Error& e) {
    bad_request("", e.what());
  }
}

}  // namespace dsocr::server
