#include "io/hub.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"

namespace dsocr {
namespace fs = std::filesystem;
namespace {

constexpr long kConnectTimeoutSeconds = 20;
constexpr long kApiTimeoutSeconds = 120;
constexpr long kStallSeconds = 60;           // a transfer below 1 byte/s for this long is dropped
constexpr size_t kMaxApiResponseBytes = 64u << 20;
constexpr size_t kMaxErrorBodyBytes = 4096;  // what we keep of an error page to quote from
constexpr long kDownloadBufferBytes = 512 * 1024;

const char* const kModelFileNames[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                       "special_tokens_map.json", "model.safetensors.index.json"};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trimmed_endpoint(std::string endpoint) {
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (endpoint.empty()) fail("hub endpoint is empty");
  return endpoint;
}

// Percent-encodes everything but RFC 3986 unreserved characters (and '/' when keep_slash), as the
// hub's clients do for revisions ("refs/pr/1" becomes one path segment) and file names.
std::string url_escape(std::string_view text, bool keep_slash) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// "https://host:port" of a URL, for messages about reachability.
std::string url_origin(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  return url.substr(0, url.find('/', scheme_end + 3));
}

void validate_repo_id(const std::string& repo) {
  const bool bad_char = std::any_of(repo.begin(), repo.end(), [](unsigned char c) {
    return !(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/');
  });
  if (repo.empty() || bad_char || repo.front() == '/' || repo.back() == '/' ||
      repo.find("..") != std::string::npos || std::count(repo.begin(), repo.end(), '/') > 1) {
    fail("'{}': not a hub repository name (expected owner/name, e.g. {})", repo, "deepseek-ai/DeepSeek-OCR");
  }
}

// The server names the files we create, so only plain top-level names are accepted.
bool is_safe_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string describe_http_status(long status) {
  switch (status) {
    case 401: return "HTTP 401 unauthorized (a private or gated repository needs HF_TOKEN set to a token with access)";
    case 403: return "HTTP 403 forbidden (accept the model's terms on the hub and set HF_TOKEN)";
    case 404: return "HTTP 404 not found";
    case 429: return "HTTP 429 too many requests (wait a little and run dsocr pull again)";
    default: break;
  }
  if (status >= 500) return fmt::format("HTTP {} server error (try again later)", status);
  return fmt::format("HTTP {}", status);
}

// The hub answers errors with {"error": "..."}; quoting it helps ("Repository not found", "Revision
// not found", gated-access explanations).
std::string server_error_note(const std::string& body) {
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("error") || !json["error"].is_string()) return "";
  std::string text = json["error"].get<std::string>();
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text.empty() ? "" : ": " + text;
}

void ensure_curl_initialized() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) fail("cannot initialize libcurl: {}", curl_easy_strerror(rc));
}

bool is_unreachable(CURLcode code) {
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
         code == CURLE_COULDNT_CONNECT;
}

// Failures after which the same request, resumed, may well succeed.
bool is_interruption(CURLcode code) {
  return code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
         code == CURLE_GOT_NOTHING || code == CURLE_OPERATION_TIMEDOUT || code == CURLE_HTTP2 ||
         code == CURLE_HTTP2_STREAM;
}

struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

int64_t file_size_or(const fs::path& path, int64_t missing) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? missing : static_cast<int64_t>(size);
}

// One libcurl handle for a whole pull, so that requests to the hub reuse the connection.
class HubClient {
 public:
  explicit HubClient(const PullOptions& options) : endpoint_(trimmed_endpoint(options.endpoint)) {
    ensure_curl_initialized();
    curl_.reset(curl_easy_init());
    if (!curl_) fail("cannot initialize libcurl");
    if (!options.token.empty()) {
      const std::string auth = "Authorization: Bearer " + options.token;
      headers_.reset(curl_slist_append(nullptr, auth.c_str()));
      if (!headers_) fail("cannot initialize libcurl headers");
    }
  }

  const std::string& endpoint() const { return endpoint_; }

  // GET of a JSON API document; throws naming `subject` on any failure.
  nlohmann::json get_json(const std::string& url, const std::string& subject) {
    ApiResponse sink;
    reset_for(url);
    curl_easy_setopt(curl(), CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl(), CURLOPT_TIMEOUT, kApiTimeoutSeconds);
    curl_easy_setopt(curl(), CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl(), CURLOPT_WRITEFUNCTION, &ApiResponse::on_body);
    const CURLcode code = curl_easy_perform(curl());
    if (sink.too_large) fail("{}: the hub's answer exceeds {}", subject, format_bytes(kMaxApiResponseBytes));
    if (code != CURLE_OK) fail_transfer(code, subject);
    const long status = response_status();
    if (status != 200) fail("{}: {}{}", subject, describe_http_status(status), server_error_note(sink.body));
    auto json = nlohmann::json::parse(sink.body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) fail("{}: the hub's answer is not valid JSON ({} from {})", subject, format_bytes(sink.body.size()), url);
    return json;
  }

  struct TransferResult {
    bool interrupted = false;  // the connection dropped or the server failed; a resumed request may succeed
    std::string why;           // for the message when retries run out
    int64_t received = 0;      // bytes written to the file by this request
  };

  // Appends the bytes of `url` after `resume_from` to `part` (restarting from zero when the server
  // ignores the Range request), feeding them to `hasher`. Throws on errors a retry cannot fix.
  TransferResult download(const std::string& url, const fs::path& part, int64_t resume_from, int64_t expected_size,
                          Sha256& hasher, const std::function<void(int64_t)>& on_bytes) {
    FileDescriptor file;
    file.fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (file.fd < 0) fail("{}: cannot create ({})", part.string(), std::strerror(errno));
    if (::ftruncate(file.fd, resume_from) != 0 || ::lseek(file.fd, resume_from, SEEK_SET) < 0) {
      fail("{}: cannot prepare for writing ({})", part.string(), std::strerror(errno));
    }

    Transfer transfer{.client = this, .fd = file.fd, .resume_from = resume_from, .written = resume_from,
                      .expected_size = expected_size, .hasher = &hasher, .on_bytes = &on_bytes};
    reset_for(url);
    const std::string range = fmt::format("{}-", resume_from);
    if (resume_from > 0) curl_easy_setopt(curl(), CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(curl(), CURLOPT_BUFFERSIZE, kDownloadBufferBytes);
    curl_easy_setopt(curl(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl(), CURLOPT_LOW_SPEED_TIME, kStallSeconds);
    curl_easy_setopt(curl(), CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(curl(), CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    curl_easy_setopt(curl(), CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl(), CURLOPT_WRITEFUNCTION, &Transfer::on_body);
    const CURLcode code = curl_easy_perform(curl());

    if (transfer.write_errno != 0) {
      if (transfer.write_errno == ENOSPC || transfer.write_errno == EDQUOT) {
        fail("{}: disk full after {} of {}; free some space and run dsocr pull again to resume", part.string(),
             format_bytes(transfer.written), format_bytes(expected_size));
      }
      fail("{}: cannot write ({})", part.string(), std::strerror(transfer.write_errno));
    }
    if (transfer.bad_range) fail("{}: the server answered the resume request with the wrong byte range", url);
    if (transfer.too_long) fail("{}: the server sent more than the {} the hub listed", url, format_bytes(expected_size));
    TransferResult result;
    result.received = transfer.written - (transfer.restarted ? 0 : resume_from);
    const long status = response_status();
    if (code == CURLE_OK) {
      if (status == 416) {  // our .part is not a prefix of this file: start over
        if (::ftruncate(file.fd, 0) != 0) fail("{}: cannot truncate ({})", part.string(), std::strerror(errno));
        return {true, "the server refused to resume", 0};
      }
      if (status >= 500) return {true, describe_http_status(status), 0};
      if (status != 200 && status != 206) {
        fail("{}: {}{}", url, describe_http_status(status), server_error_note(transfer.error_body));
      }
    } else {
      if (!is_interruption(code)) fail_transfer(code, url);
      result.interrupted = true;
      result.why = curl_easy_strerror(code);
    }
    // Whatever arrived is kept for the next attempt. A server may also close early without an
    // error (no Content-Length): the caller compares sizes.
    flush(file.fd, part);
    return result;
  }

 private:
  struct ApiResponse {
    std::string body;
    bool too_large = false;

    static size_t on_body(char* data, size_t, size_t n, void* user) {
      auto* response = static_cast<ApiResponse*>(user);
      if (response->body.size() + n > kMaxApiResponseBytes) return response->too_large = true, 0;
      response->body.append(data, n);
      return n;
    }
  };

  // State the libcurl callbacks of one download share.
  struct Transfer {
    HubClient* client;
    int fd;
    int64_t resume_from;
    int64_t written;  // bytes in the file
    int64_t expected_size;
    Sha256* hasher;
    const std::function<void(int64_t)>* on_bytes;
    long status = 0;
    int64_t range_start = -1;  // from Content-Range of the final response
    bool body_started = false;
    bool restarted = false;  // the server ignored Range and sent the whole file
    bool bad_range = false, too_long = false;
    int write_errno = 0;
    std::string error_body{};

    static size_t on_header(char* data, size_t, size_t n, void* user) {
      auto* t = static_cast<Transfer*>(user);
      std::string_view line(data, n);
      if (line.rfind("HTTP/", 0) == 0) t->range_start = -1;  // a new response (after a redirect)
      constexpr std::string_view kContentRange = "content-range:";
      if (line.size() > kContentRange.size() &&
          std::equal(kContentRange.begin(), kContentRange.end(), line.begin(),
                     [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
        const std::string value(line.substr(kContentRange.size()));
        long long start = -1;
        if (std::sscanf(value.c_str(), " bytes %lld-", &start) == 1) t->range_start = start;
      }
      return n;
    }

    static size_t on_body(char* data, size_t, size_t n, void* user) {
      auto* t = static_cast<Transfer*>(user);
      if (!t->body_started) {
        t->body_started = true;
        t->status = t->client->response_status();
        if (t->status == 200 && t->resume_from > 0) {  // the server ignored Range: start over
          if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) < 0) return t->write_errno = errno, 0;
          t->written = 0;
          t->restarted = true;
          *t->hasher = Sha256();
        } else if (t->status == 206 && t->range_start != t->resume_from) {
          return t->bad_range = true, 0;
        }
      }
      if (t->status != 200 && t->status != 206) {  // an error page: keep its start for the message
        t->error_body.append(data, std::min(n, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, t->error_body.size())));
        return n;
      }
      if (t->expected_size >= 0 && t->written + static_cast<int64_t>(n) > t->expected_size) return t->too_long = true, 0;
      for (size_t done = 0; done < n;) {
        const ssize_t w = ::write(t->fd, data + done, n - done);
        if (w < 0) {
          if (errno == EINTR) continue;
          return t->write_errno = errno, 0;
        }
        done += static_cast<size_t>(w);
      }
      t->hasher->update(data, n);
      t->written += static_cast<int64_t>(n);
      if (*t->on_bytes) (*t->on_bytes)(t->written);
      return n;
    }
  };

  CURL* curl() { return curl_.get(); }

  long response_status() {
    long status = 0;
    curl_easy_getinfo(curl(), CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

  void reset_for(const std::string& url) {
    curl_easy_reset(curl());  // keeps the connection cache
    error_buffer_[0] = '\0';
    curl_easy_setopt(curl(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl(), CURLOPT_ERRORBUFFER, error_buffer_);
    curl_easy_setopt(curl(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl(), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl(), CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
    curl_easy_setopt(curl(), CURLOPT_USERAGENT, "dsocr/0.1");
    // libcurl keeps a custom Authorization header off redirects to other hosts (the hub's CDN).
    if (headers_) curl_easy_setopt(curl(), CURLOPT_HTTPHEADER, headers_.get());
  }

  [[noreturn]] void fail_transfer(CURLcode code, const std::string& subject) {
    if (is_unreachable(code)) {
      char* effective = nullptr;
      curl_easy_getinfo(curl(), CURLINFO_EFFECTIVE_URL, &effective);
      fail("cannot reach {} (is the machine offline? set HF_ENDPOINT for a mirror)",
           effective ? url_origin(effective) : endpoint_);
    }
    const std::string detail = error_buffer_[0] ? std::string(error_buffer_) : curl_easy_strerror(code);
    fail("{}: {}", subject, detail);
  }

  static void flush(int fd, const fs::path& part) {
    if (::fsync(fd) != 0 && errno != EINVAL) fail("{}: cannot flush to disk ({})", part.string(), std::strerror(errno));
  }

  std::string endpoint_;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl_{nullptr, &curl_easy_cleanup};
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers_{nullptr, &curl_slist_free_all};
  char error_buffer_[CURL_ERROR_SIZE] = {};
};

std::vector<HubFile> parse_tree(const nlohmann::json& tree, const std::string& subject) {
  if (!tree.is_array()) fail("{}: unexpected answer from the hub (expected a list of files)", subject);
  std::vector<HubFile> files;
  for (const auto& entry : tree) {
    if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string()) continue;
    if (entry.value("type", "file") != "file") continue;
    HubFile file;
    file.path = entry["path"].get<std::string>();
    if (!is_model_file(file.path)) continue;
    if (!is_safe_file_name(file.path)) fail("{}: the hub listed an unsafe file name '{}'", subject, file.path);
    if (entry.contains("size") && entry["size"].is_number_unsigned()) file.size = entry["size"].get<int64_t>();
    if (entry.contains("lfs") && entry["lfs"].is_object()) {
      const auto& lfs = entry["lfs"];
      const std::string oid = lfs.value("oid", "");
      if (!is_sha256_hex(oid)) fail("{}: {} has a malformed LFS checksum '{}'", subject, file.path, oid);
      file.sha256 = oid;
      if (lfs.contains("size") && lfs["size"].is_number_unsigned()) file.size = lfs["size"].get<int64_t>();
    }
    files.push_back(std::move(file));
  }
  return files;
}

struct FileDownloader {
  HubClient& client;
  const PullOptions& options;
  const std::string& url_prefix;  // ".../{repo}/resolve/{commit}/"
  const fs::path& dest_dir;
  PullResult& result;
  int file_count;

  void report(PullProgress::Stage stage, const HubFile& file, int index, int64_t done, int64_t at_start) const {
    if (options.on_progress) options.on_progress(PullProgress{stage, file, done, at_start, index, file_count});
  }

  // A file present under its final name counts only if it matches the listing.
  bool is_complete(const fs::path& path, const HubFile& file, int index) const {
    const int64_t size = file_size_or(path, -1);
    if (size < 0 || (file.size >= 0 && size != file.size)) return false;
    if (file.sha256.empty()) return true;
    report(PullProgress::Stage::kVerifying, file, index, 0, 0);
    return sha256_file_hex(path.string()) == file.sha256;
  }

  void fetch(const HubFile& file, int index) {
    const fs::path final_path = dest_dir / file.path;
    const fs::path part = dest_dir / (file.path + ".part");
    if (is_complete(final_path, file, index)) {
      ++result.up_to_date;
      report(PullProgress::Stage::kUpToDate, file, index, file.size, file.size);
      return;
    }
    const std::string url = url_prefix + url_escape(file.path, /*keep_slash=*/true);
    bool resumed_once = false, restarted_clean = false;
    int retries_used = 0;
    int64_t at_start = 0;  // bytes on disk when the latest transfer began
    for (;;) {
      int64_t have = file_size_or(part, 0);
      if (file.size >= 0 && have > file.size) have = 0;  // not a prefix of this file
      Sha256 hasher;
      if (have > 0) {
        report(PullProgress::Stage::kVerifying, file, index, have, have);
        sha256_update_from_file(hasher, part.string(), static_cast<uint64_t>(have));
        resumed_once = true;
      }
      if (file.size < 0 || have < file.size) {
        at_start = have;
        const std::function<void(int64_t)> on_bytes = [&](int64_t done) {
          if (done < at_start) at_start = 0;  // the server ignored Range and started over
          report(PullProgress::Stage::kDownloading, file, index, done, at_start);
        };
        report(PullProgress::Stage::kDownloading, file, index, have, at_start);
        HubClient::TransferResult transfer = client.download(url, part, have, file.size, hasher, on_bytes);
        result.bytes_downloaded += transfer.received;
        const int64_t now = file_size_or(part, 0);
        if (transfer.interrupted || (file.size >= 0 && now < file.size)) {
          if (transfer.why.empty()) transfer.why = "the server closed the connection early";
          if (retries_used++ >= options.retries) {
            fail("{}: download interrupted after {} of {} ({}); run dsocr pull again to resume", file.path,
                 format_bytes(now), format_bytes(file.size), transfer.why);
          }
          report(PullProgress::Stage::kRetrying, file, index, now, at_start);
          std::this_thread::sleep_for(options.retry_delay * retries_used);
          continue;
        }
      }
      const std::string digest = hasher.finish_hex();
      if (!file.sha256.empty() && digest != file.sha256) {
        std::error_code ec;
        fs::remove(part, ec);
        // A .part left by an older revision of the file yields a wrong hash once: start afresh.
        if (resumed_once && !restarted_clean) {
          restarted_clean = true;
          resumed_once = false;
          continue;
        }
        fail("{}: checksum mismatch (expected sha256 {}, got {}); the bad download was removed", file.path,
             file.sha256, digest);
      }
      std::error_code ec;
      fs::rename(part, final_path, ec);
      if (ec) fail("{}: cannot move into place ({})", final_path.string(), ec.message());
      ++result.downloaded;
      report(PullProgress::Stage::kDone, file, index, file_size_or(final_path, 0), at_start);
      return;
    }
  }
};

void check_disk_space(const fs::path& dest_dir, const std::vector<HubFile>& files) {
  int64_t needed = 0;
  for (const HubFile& file : files) {
    if (file.size < 0 || file_size_or(dest_dir / file.path, -1) == file.size) continue;
    const int64_t have = file_size_or(dest_dir / (file.path + ".part"), 0);
    needed += std::max<int64_t>(0, file.size - have);
  }
  std::error_code ec;
  const fs::space_info space = fs::space(dest_dir, ec);
  if (!ec && static_cast<uintmax_t>(needed) > space.available) {
    fail("{}: not enough disk space: the download needs {} more, {} available", dest_dir.string(),
         format_bytes(needed), format_bytes(static_cast<int64_t>(space.available)));
  }
}

}  // namespace

bool is_model_file(const std::string& repo_path) {
  if (repo_path.find('/') != std::string::npos) return false;
  if (ends_with(repo_path, ".safetensors")) return true;
  return std::any_of(std::begin(kModelFileNames), std::end(kModelFileNames),
                     [&](const char* name) { return repo_path == name; });
}

std::string format_bytes(int64_t bytes) {
  if (bytes < 0) return "? B";
  if (bytes < 1000) return fmt::format("{} B", bytes);
  const char* const units[] = {"kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes) / 1000.0;
  int unit = 0;
  while (value >= 1000.0 && unit < 3) value /= 1000.0, ++unit;
  return fmt::format("{:.{}f} {}", value, value < 10 ? 2 : 1, units[unit]);
}

namespace {

RepoListing list_model_files_with(HubClient& client, const std::string& repo, const PullOptions& options) {
  validate_repo_id(repo);
  const std::string api = client.endpoint() + "/api/models/" + repo;
  const std::string subject = fmt::format("{} (revision {}) at {}", repo, options.revision, client.endpoint());

  // Resolve the revision to a commit first, so that every file comes from the same commit even if
  // the branch moves while we download.
  const nlohmann::json info = client.get_json(api + "/revision/" + url_escape(options.revision, false), subject);
  RepoListing listing;
  if (info.is_object() && info.contains("sha") && info["sha"].is_string()) listing.commit = info["sha"];
  const std::string pinned = listing.commit.empty() ? options.revision : listing.commit;

  listing.files = parse_tree(client.get_json(api + "/tree/" + url_escape(pinned, false), subject), subject);
  const auto has = [&](auto&& pred) { return std::any_of(listing.files.begin(), listing.files.end(), pred); };
  if (!has([](const HubFile& f) { return f.path == "config.json"; }) ||
      !has([](const HubFile& f) { return ends_with(f.path, ".safetensors"); })) {
    fail("{}: not a model dsocr can use (it needs config.json and *.safetensors weights)", subject);
  }
  // config.json last: its presence then marks a completed download (see resolve_model_dir).
  std::stable_sort(listing.files.begin(), listing.files.end(), [](const HubFile& a, const HubFile& b) {
    return (a.path == "config.json") < (b.path == "config.json");
  });
  return listing;
}

}  // namespace

RepoListing list_model_files(const std::string& repo, const PullOptions& options) {
  HubClient client(options);
  return list_model_files_with(client, repo, options);
}

PullResult pull_model(const std::string& repo, const std::string& dest_dir, const PullOptions& options) {
  HubClient client(options);
  PullResult result;
  result.listing = list_model_files_with(client, repo, options);
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) fail("{}: cannot create directory ({})", dest_dir, ec.message());
  check_disk_space(dest_dir, result.listing.files);

  const std::string revision = result.listing.commit.empty() ? options.revision : result.listing.commit;
  const std::string url_prefix = client.endpoint() + "/" + repo + "/resolve/" + url_escape(revision, false) + "/";
  const fs::path dest(dest_dir);
  FileDownloader downloader{client, options, url_prefix, dest, result,
                            static_cast<int>(result.listing.files.size())};
  for (size_t i = 0; i < result.listing.files.size(); ++i) downloader.fetch(result.listing.files[i], static_cast<int>(i));
  return result;
}

}  // namespace dsocr
