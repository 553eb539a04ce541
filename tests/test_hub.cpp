// dsocr pull against a fake hub on 127.0.0.1: listing, selective download, resume with Range,
// checksum failures, HTTP errors, an unreachable endpoint; plus SHA-256 and model location.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"
#include "io/checkpoint.h"
#include "io/hub.h"
#include "io/model_files.h"
#include "io/model_locator.h"

namespace dsocr {
namespace {
namespace fs = std::filesystem;

// ---- a minimal HTTP/1.1 server -------------------------------------------------------------
// (cpp-httplib is not header-only in Debian's package, and the tests do not link its library.)

struct HttpRequest {
  std::string method, path;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t drop_after = -1;  // announce the whole body, send only this many bytes, then hang up
};

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n, size -= static_cast<size_t>(n);
  }
  return true;
}

// Serves one connection at a time on 127.0.0.1:<ephemeral>, closing each after one response.
class TestServer {
 public:
  explicit TestServer(std::function<HttpResponse(const HttpRequest&)> handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 16) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("test server: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      if (auto request = read_request(fd)) respond(fd, handler_(*request));
      ::close(fd);
    }
  }

  static std::optional<HttpRequest> read_request(int fd) {
    std::string raw;
    char chunk[4096];
    while (raw.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0 || raw.size() > 65536) return std::nullopt;
      raw.append(chunk, static_cast<size_t>(n));
    }
    HttpRequest request;
    size_t line_end = raw.find("\r\n");
    const std::string request_line = raw.substr(0, line_end);
    const size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
    request.method = request_line.substr(0, sp1);
    request.path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    for (size_t pos = line_end + 2; (line_end = raw.find("\r\n", pos)) != pos; pos = line_end + 2) {
      const std::string line = raw.substr(pos, line_end - pos);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      request.headers[lowercase(line.substr(0, colon))] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    return request;
  }

  static void respond(int fd, const HttpResponse& response) {
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " Test\r\n";
    for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
    head += "Content-Length: " + std::to_string(response.body.size()) + "\r\nConnection: close\r\n\r\n";
    const size_t body_bytes = response.drop_after >= 0 ? static_cast<size_t>(response.drop_after) : response.body.size();
    if (send_all(fd, head.data(), head.size())) send_all(fd, response.body.data(), body_bytes);
  }

  std::function<HttpResponse(const HttpRequest&)> handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---- a fake hub serving the tiny model ---------------------------------------------------------

constexpr const char* kRepo = "test-org/tiny-ocr";
constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kWeights = "model-00001-of-000001.safetensors";

struct RepoFile {
  std::string content;
  bool lfs = false;
  std::string sha256{};
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);  // follows symlinks
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The tiny model's files plus repository clutter dsocr must not download.
const std::map<std::string, RepoFile>& repo_files() {
  static const std::map<std::string, RepoFile> files = [] {
    std::map<std::string, RepoFile> f;
    for (const char* name : {"config.json", "tokenizer_config.json", "model.safetensors.index.json"}) {
      f[name] = {read_file(model_file(DSOCR_TEST_MODEL, name))};
    }
    for (const char* name : {kWeights, "tokenizer.json"}) {
      const std::string content = read_file(model_file(DSOCR_TEST_MODEL, name));
      f[name] = {content, true, sha256_hex(content)};
    }
    f["modeling_deepseekocr.py"] = {"import torch\n"};
    f["README.md"] = {"# tiny\n"};
    f[".gitattributes"] = {"*.safetensors filter=lfs\n"};
    return f;
  }();
  return files;
}

class FakeHub {
 public:
  // Knobs for failure cases.
  std::string drop_first_request_of;  // the first download of this file hangs up halfway
  std::string corrupt;                // serve this file with one byte changed
  std::string deny;                   // answer 401 for this file
  bool ignore_range = false;          // answer Range requests with the whole file (200)

  FakeHub() : server_([this](const HttpRequest& r) { return handle(r); }) {}

  std::string url() const { return server_.url(); }

  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::vector<HttpRequest> requests_for(const std::string& file) const {
    std::vector<HttpRequest> out;
    for (const auto& r : requests()) {
      if (r.path.size() >= file.size() && r.path.compare(r.path.size() - file.size(), file.size(), file) == 0) out.push_back(r);
    }
    return out;
  }

 private:
  static HttpResponse json_response(int status, const nlohmann::json& json) {
    return {status, {{"Content-Type", "application/json"}}, json.dump()};
  }

  HttpResponse handle(const HttpRequest& request) {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    const std::string repo_api = std::string("/api/models/") + kRepo + "/";
    const std::string resolve = std::string("/") + kRepo + "/resolve/" + kCommit + "/";
    const std::string& path = request.path;
    if (path.rfind("/api/models/", 0) == 0 && path.rfind(repo_api, 0) != 0) {
      return json_response(404, {{"error", "Repository not found"}});
    }
    if (path == repo_api + "revision/main" || path == repo_api + "revision/" + kCommit) {
      nlohmann::json siblings = nlohmann::json::array();
      for (const auto& [name, file] : repo_files()) siblings.push_back({{"rfilename", name}});
      return json_response(200, {{"id", kRepo}, {"sha", kCommit}, {"siblings", siblings}});
    }
    if (path.rfind(repo_api + "revision/", 0) == 0) return json_response(404, {{"error", "Revision Not Found"}});
    if (path == repo_api + "tree/" + kCommit) {
      nlohmann::json tree = nlohmann::json::array();
      tree.push_back({{"type", "directory"}, {"path", "assets"}, {"oid", "1111"}, {"size", 0}});
      for (const auto& [name, file] : repo_files()) {
        nlohmann::json entry = {{"type", "file"}, {"path", name}, {"oid", "2222"}, {"size", file.content.size()}};
        if (file.lfs) entry["lfs"] = {{"oid", file.sha256}, {"size", file.content.size()}, {"pointerSize", 134}};
        tree.push_back(entry);
      }
      return json_response(200, tree);
    }
    if (path.rfind(resolve, 0) == 0) {
      const std::string name = path.substr(resolve.size());
      const auto it = repo_files().find(name);
      if (it == repo_files().end()) return json_response(404, {{"error", "Entry not found"}});
      if (name == deny) return json_response(401, {{"error", "Access to this model is restricted"}});
      // LFS files live on a CDN, reached through a redirect, as on the real hub.
      if (it->second.lfs) return {302, {{"Location", "/cdn/" + name}}, ""};
      return serve_file(name, request);
    }
    if (path.rfind("/cdn/", 0) == 0 && repo_files().count(path.substr(5))) return serve_file(path.substr(5), request);
    return {404, {}, "not found"};
  }

  HttpResponse serve_file(const std::string& name, const HttpRequest& request) {
    std::string content = repo_files().at(name).content;
    if (name == corrupt) content[content.size() / 3] ^= 0x5a;
    const std::string range = request.header("range");
    if (!range.empty() && !ignore_range) {
      const int64_t start = std::stoll(range.substr(range.find('=') + 1));
      if (start >= static_cast<int64_t>(content.size())) return {416, {}, ""};
      const std::string content_range =
          "bytes " + std::to_string(start) + "-" + std::to_string(content.size() - 1) + "/" + std::to_string(content.size());
      return {206, {{"Content-Range", content_range}}, content.substr(start)};
    }
    HttpResponse response{200, {}, content};
    if (name == drop_first_request_of && !dropped_once_) {
      dropped_once_ = true;
      response.drop_after = static_cast<int64_t>(content.size() / 2);
    }
    return response;
  }

  mutable std::mutex mutex_;
  std::vector<HttpRequest> requests_;
  bool dropped_once_ = false;  // touched only by the server thread
  TestServer server_;          // last: its thread calls handle() on the members above
};

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("dsocr_hub_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  PullOptions options_for(const FakeHub& hub) const {
    PullOptions options;
    options.endpoint = hub.url() + "/";  // a trailing slash, as users write it, must not matter
    options.retries = 0;
    options.retry_delay = std::chrono::milliseconds(0);
    return options;
  }
  std::string model_dir() const { return (dir_ / "models" / kRepo).string(); }

  fs::path dir_;
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool has_part_files(const fs::path& dir) {
  if (!fs::exists(dir)) return false;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".part") return true;
  }
  return false;
}

// ---- SHA-256 ----------------------------------------------------------------------------------

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, UpdatesInPiecesMatchOneShot) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  for (size_t piece : {1, 3, 55, 63, 64, 65, 200}) {
    Sha256 hasher;
    for (size_t pos = 0; pos < data.size(); pos += piece) hasher.update(std::string_view(data).substr(pos, piece));
    EXPECT_EQ(hasher.finish_hex(), sha256_hex(data)) << "piece " << piece;
  }
}

TEST(Sha256, FilePrefix) {
  const std::string& weights = repo_files().at(kWeights).content;
  const std::string path = model_file(DSOCR_TEST_MODEL, kWeights);
  EXPECT_EQ(sha256_file_hex(path), sha256_hex(weights));
  EXPECT_EQ(sha256_file_hex(path, 1000), sha256_hex(std::string_view(weights).substr(0, 1000)));
  EXPECT_NE(error_of([] { sha256_file_hex("/nonexistent/file"); }).find("/nonexistent/file: cannot open"),
            std::string::npos);
}

// ---- helpers ----------------------------------------------------------------------------------

TEST(Hub, ModelFileSelection) {
  for (const char* name : {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "model.safetensors.index.json", "model-00001-of-000001.safetensors"}) {
    EXPECT_TRUE(is_model_file(name)) << name;
  }
  for (const char* name : {"modeling_deepseekocr.py", "README.md", ".gitattributes", "assets/fig1.png",
                           "sub/model.safetensors", "config.json.bak"}) {
    EXPECT_FALSE(is_model_file(name)) << name;
  }
}

TEST(Hub, FormatBytes) {
  EXPECT_EQ(format_bytes(17), "17 B");
  EXPECT_EQ(format_bytes(1500), "1.50 kB");
  EXPECT_EQ(format_bytes(36654672), "36.7 MB");
  EXPECT_EQ(format_bytes(6'672'001'234), "6.67 GB");
}

// ---- pulling from the fake hub ----------------------------------------------------------------

TEST_F(HubTest, PullsOnlyModelFilesVerifiedAndSkipsThemNextTime) {
  FakeHub hub;
  std::vector<std::string> order;
  PullOptions options = options_for(hub);
  options.on_progress = [&](const PullProgress& p) {
    if (p.stage == PullProgress::Stage::kDone) order.push_back(p.file.path);
  };
  const PullResult result = pull_model(kRepo, model_dir(), options);

  EXPECT_EQ(result.listing.commit, kCommit);
  EXPECT_EQ(result.downloaded, 5);
  EXPECT_EQ(result.up_to_date, 0);
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order.back(), "config.json");  // last, so that its presence marks a complete download
  int64_t total = 0;
  for (const auto& [name, file] : repo_files()) {
    const fs::path local = fs::path(model_dir()) / name;
    if (is_model_file(name)) {
      EXPECT_EQ(read_file(local.string()), file.content) << name;
      total += static_cast<int64_t>(file.content.size());
    } else {
      EXPECT_FALSE(fs::exists(local)) << name;
      EXPECT_TRUE(hub.requests_for(name).empty()) << name;
    }
  }
  EXPECT_EQ(result.bytes_downloaded, total);
  EXPECT_FALSE(has_part_files(model_dir()));
  for (const auto& request : hub.requests()) {  // every file came from the pinned commit
    if (request.path.find("/resolve/") != std::string::npos) {
      EXPECT_NE(request.path.find(kCommit), std::string::npos) << request.path;
    }
  }
  const Checkpoint checkpoint(model_dir());
  EXPECT_TRUE(checkpoint.has(kPositionIdsName));

  const size_t requests_before = hub.requests().size();
  const PullResult again = pull_model(kRepo, model_dir(), options);
  EXPECT_EQ(again.downloaded, 0);
  EXPECT_EQ(again.up_to_date, 5);
  EXPECT_EQ(again.bytes_downloaded, 0);
  EXPECT_EQ(hub.requests().size(), requests_before + 2);  // only the two API calls
}

TEST_F(HubTest, DroppedConnectionLeavesPartThatTheNextPullResumesWithRange) {
  FakeHub hub;
  hub.drop_first_request_of = kWeights;
  const std::string& weights = repo_files().at(kWeights).content;
  const fs::path part = fs::path(model_dir()) / (std::string(kWeights) + ".part");

  const std::string error = error_of([&] { pull_model(kRepo, model_dir(), options_for(hub)); });
  EXPECT_NE(error.find(std::string(kWeights) + ": download interrupted after"), std::string::npos) << error;
  EXPECT_NE(error.find("run dsocr pull again to resume"), std::string::npos) << error;
  ASSERT_TRUE(fs::exists(part));
  EXPECT_EQ(fs::file_size(part), weights.size() / 2);
  EXPECT_FALSE(fs::exists(fs::path(model_dir()) / kWeights));
  EXPECT_FALSE(fs::exists(fs::path(model_dir()) / "config.json"));

  const PullResult result = pull_model(kRepo, model_dir(), options_for(hub));
  const auto weight_requests = hub.requests_for(kWeights);
  ASSERT_FALSE(weight_requests.empty());
  EXPECT_EQ(weight_requests.back().header("range"), "bytes=" + std::to_string(weights.size() / 2) + "-");
  EXPECT_EQ(read_file(model_dir() + "/" + kWeights), weights);
  EXPECT_FALSE(fs::exists(part));
  EXPECT_LT(result.bytes_downloaded, static_cast<int64_t>(weights.size()) + 15'000'000);  // half the weights + the rest
  EXPECT_NO_THROW(Checkpoint{model_dir()});
}

TEST_F(HubTest, RetriesADroppedConnectionWithinOnePull) {
  FakeHub hub;
  hub.drop_first_request_of = kWeights;
  PullOptions options = options_for(hub);
  options.retries = 2;
  int retries_seen = 0;
  options.on_progress = [&](const PullProgress& p) { retries_seen += p.stage == PullProgress::Stage::kRetrying; };
  pull_model(kRepo, model_dir(), options);
  EXPECT_EQ(retries_seen, 1);
  const auto& weights = repo_files().at(kWeights).content;
  EXPECT_EQ(hub.requests_for(kWeights).back().header("range"), "bytes=" + std::to_string(weights.size() / 2) + "-");
  EXPECT_EQ(read_file(model_dir() + "/" + kWeights), weights);
}

TEST_F(HubTest, ServerIgnoringRangeRestartsFromZero) {
  FakeHub hub;
  hub.ignore_range = true;
  const std::string& weights = repo_files().at(kWeights).content;
  fs::create_directories(model_dir());
  std::ofstream(model_dir() + "/" + kWeights + ".part", std::ios::binary) << weights.substr(0, 1000);
  const PullResult result = pull_model(kRepo, model_dir(), options_for(hub));
  EXPECT_EQ(hub.requests_for(kWeights).back().header("range"), "bytes=1000-");
  EXPECT_EQ(read_file(model_dir() + "/" + kWeights), weights);
  EXPECT_EQ(result.downloaded, 5);
}

TEST_F(HubTest, StalePartFromAnotherVersionIsReplaced) {
  FakeHub hub;
  const std::string& weights = repo_files().at(kWeights).content;
  fs::create_directories(model_dir());
  std::ofstream(model_dir() + "/" + kWeights + ".part", std::ios::binary) << std::string(1000, 'x');
  pull_model(kRepo, model_dir(), options_for(hub));
  const auto requests = hub.requests_for(kWeights);
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests.front().header("range"), "bytes=1000-");
  EXPECT_EQ(requests.back().header("range"), "");  // the mismatch led to a clean download
  EXPECT_EQ(read_file(model_dir() + "/" + kWeights), weights);
}

TEST_F(HubTest, ChangedCompleteFileIsDownloadedAgain) {
  FakeHub hub;
  pull_model(kRepo, model_dir(), options_for(hub));
  const std::string path = model_dir() + "/tokenizer.json";
  std::string tampered = read_file(path);
  tampered[10] ^= 1;
  std::ofstream(path, std::ios::binary) << tampered;
  const PullResult result = pull_model(kRepo, model_dir(), options_for(hub));
  EXPECT_EQ(result.downloaded, 1);
  EXPECT_EQ(result.up_to_date, 4);
  EXPECT_EQ(read_file(path), repo_files().at("tokenizer.json").content);
}

TEST_F(HubTest, ChecksumMismatchRemovesTheFile) {
  FakeHub hub;
  hub.corrupt = kWeights;
  const std::string error = error_of([&] { pull_model(kRepo, model_dir(), options_for(hub)); });
  EXPECT_NE(error.find(std::string(kWeights) + ": checksum mismatch (expected sha256 " +
                       repo_files().at(kWeights).sha256),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("the bad download was removed"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(fs::path(model_dir()) / kWeights));
  EXPECT_FALSE(has_part_files(model_dir()));
}

TEST_F(HubTest, MissingRepositoryIsAClearError) {
  FakeHub hub;
  const std::string error = error_of([&] { pull_model("nobody/missing", model_dir(), options_for(hub)); });
  EXPECT_EQ(error, "nobody/missing (revision main) at " + hub.url() + ": HTTP 404 not found: Repository not found");
  EXPECT_FALSE(fs::exists(model_dir()));

  PullOptions options = options_for(hub);
  options.revision = "v9";
  EXPECT_NE(error_of([&] { list_model_files(kRepo, options); }).find("HTTP 404 not found: Revision Not Found"),
            std::string::npos);
  EXPECT_NE(error_of([&] { list_model_files("../etc", options); }).find("not a hub repository name"),
            std::string::npos);
}

TEST_F(HubTest, UnauthorizedFileIsNamedWithAHint) {
  FakeHub hub;
  hub.deny = "tokenizer_config.json";
  const std::string error = error_of([&] { pull_model(kRepo, model_dir(), options_for(hub)); });
  EXPECT_NE(error.find("/resolve/" + std::string(kCommit) + "/tokenizer_config.json: HTTP 401 unauthorized"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("HF_TOKEN"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(fs::path(model_dir()) / "tokenizer_config.json"));
}

TEST_F(HubTest, TokenIsSentAsBearer) {
  FakeHub hub;
  PullOptions options = options_for(hub);
  options.token = "hf_secret";
  list_model_files(kRepo, options);
  for (const auto& request : hub.requests()) EXPECT_EQ(request.header("authorization"), "Bearer hf_secret");
}

TEST_F(HubTest, UnreachableEndpointSaysOffline) {
  int port = 0;
  {
    FakeHub closed;  // take an ephemeral port, then free it: nothing listens there any more
    port = std::stoi(closed.url().substr(closed.url().rfind(':') + 1));
  }
  PullOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(port);
  const std::string error = error_of([&] { pull_model(kRepo, model_dir(), options); });
  EXPECT_EQ(error, "cannot reach http://127.0.0.1:" + std::to_string(port) +
                       " (is the machine offline? set HF_ENDPOINT for a mirror)");
}

// ---- locating the model -----------------------------------------------------------------------

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(HubTest, ModelLocationOrder) {
  const std::string home = (dir_ / "home").string();
  ScopedEnv set_home("HOME", home);
  ScopedEnv no_xdg("XDG_CACHE_HOME", std::nullopt);
  ScopedEnv no_model("DSOCR_MODEL", std::nullopt);
  EXPECT_EQ(cache_dir(), home + "/.cache/dsocr");
  {
    ScopedEnv relative_xdg("XDG_CACHE_HOME", "relative/cache");  // invalid per the XDG spec: ignored
    EXPECT_EQ(cache_dir(), home + "/.cache/dsocr");
  }
  ScopedEnv xdg("XDG_CACHE_HOME", (dir_ / "xdg").string());
  EXPECT_EQ(cache_dir(), (dir_ / "xdg" / "dsocr").string());
  const std::string cached = (dir_ / "xdg" / "dsocr" / "models" / "deepseek-ai" / "DeepSeek-OCR").string();
  EXPECT_EQ(cached_model_dir(cache_dir(), kDefaultModelRepo), cached);

  const std::string error = error_of([] { resolve_model_dir(""); });
  for (const char* hint : {"dsocr pull", "--model", "DSOCR_MODEL", "deepseek-ai/DeepSeek-OCR"}) {
    EXPECT_NE(error.find(hint), std::string::npos) << error;
  }
  EXPECT_NE(error.find(cached), std::string::npos) << error;

  fs::create_directories(cached);
  std::ofstream(cached + "/config.json") << "{}";
  EXPECT_EQ(resolve_model_dir(""), cached);
  {
    ScopedEnv env_model("DSOCR_MODEL", DSOCR_TEST_MODEL);
    EXPECT_EQ(resolve_model_dir(""), DSOCR_TEST_MODEL);  // the environment beats the cache
    fs::create_directories(home);
    EXPECT_EQ(resolve_model_dir(home), home);  // --model beats the environment
  }
  EXPECT_EQ(resolve_model_dir(DSOCR_TEST_MODEL), DSOCR_TEST_MODEL);
  EXPECT_EQ(error_of([&] { resolve_model_dir((dir_ / "nope").string()); }),
            (dir_ / "nope").string() + ": model directory does not exist (from --model)");
}

}  // namespace
}  // namespace dsocr
