#include "server/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <ctime>
#include <list>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/document.h"
#include "io/pdf.h"
#include "server/api_error.h"
#include "server/ocr_format.h"
#include "server/openai_format.h"
#include "server/web_page.h"
#include "text/stream_filter.h"

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace dsocr::server {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(20);

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ uint64_t(Clock::now().time_since_epoch().count()));
  return fmt::format("{}{:016x}", prefix, rng());
}

std::string strip_grounding(const std::string& text) {
  GroundingStreamFilter f;
  return f.push(text) + f.flush();
}

// The socket of a request's connection, found by its two addresses (cpp-httplib does not hand it to
// handlers), to notice a client that has gone while its request is computing.
class ConnectionWatch {
 public:
  explicit ConnectionWatch(const httplib::Request& req) {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return;
    while (dirent* e = readdir(dir)) {
      const int fd = std::atoi(e->d_name);
      if (fd <= 2 || fd == dirfd(dir)) continue;
      struct stat st {};
      if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
      if (matches(fd, req)) {
        fd_ = fd;
        break;
      }
    }
    closedir(dir);
  }

  // The peer closed or reset the connection (a request pipelined behind this one is not that).
  bool gone() const {
    if (fd_ < 0) return false;
    pollfd p{fd_, short(POLLIN | POLLRDHUP), 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    if (p.revents & POLLIN) {
      char c;
      const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
      return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
  }

 private:
  static bool same(const sockaddr_storage& a, const std::string& host, int port) {
    char buf[INET6_ADDRSTRLEN] = {};
    int p = -1;
    if (a.ss_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
      inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
      p = ntohs(v4->sin_port);
    } else if (a.ss_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
      inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
      p = ntohs(v6->sin6_port);
    } else {
      return false;
    }
    return p == port && host == buf;
  }
  static bool matches(int fd, const httplib::Request& req) {
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) return false;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) return false;
    return same(local, req.local_addr, req.local_port) && same(peer, req.remote_addr, req.remote_port);
  }
  int fd_ = -1;
};

json parse_json_body(const httplib::Request& req) {
  if (req.body.empty()) bad_request("", "empty request body: expected a JSON object");
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    // nlohmann's message names the byte offset: "parse error at line 1, column 9: ..."
    std::string what = e.what();
    const auto colon = what.find("parse error");
    bad_request("", "malformed JSON: " + (colon == std::string::npos ? what : what.substr(colon)));
  }
}

Image decode_page_image(const std::string& bytes, int index, const std::string& field) {
  try {
    return decode_image_page(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), index, field);
  } catch (const Error& e) {
    bad_request(field, e.what());
  }
}

// The endpoint label of a request in /metrics: known paths only, so that random paths cannot grow
// the counters without bound.
std::string endpoint_label(const std::string& path) {
  for (const char* known : {"/v1/chat/completions", "/v1/ocr", "/v1/models", "/metrics", "/health", "/"})
    if (path == known) return path;
  return "other";
}

const char* page_result_name(RequestStatus s) {
  return s == RequestStatus::Ok ? "ok" : s == RequestStatus::Cancelled ? "cancelled" : "failed";
}

}  // namespace

class OcrServer::Impl {
 public:
  explicit Impl(ServerOptions o) : o_(std::move(o)), created_(std::time(nullptr)) { setup(); }

  int bind() {
    errno = 0;
    const int port = o_.port == 0 ? http_.bind_to_any_port(o_.host) : (http_.bind_to_port(o_.host, o_.port) ? o_.port : -1);
    if (port <= 0)
      fail("{}:{}: cannot listen ({})", o_.host, o_.port, errno == 0 ? "address unusable" : std::strerror(errno));
    bound_ = true;
    return port;
  }

  void attach(PageRecognizer& r, std::string model_name, std::function<EngineStats()> stats) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_ = std::move(stats);
    model_name_ = model_name.empty() ? "deepseek-ocr" : std::move(model_name);
    recognizer_ = &r;
  }

  void serve() {
    if (!bound_) bind();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (draining_) return;
      serving_ = true;
    }
    http_.listen_after_bind();
    std::unique_lock<std::mutex> lock(mutex_);
    listen_returned_ = true;
    drained_cv_.wait(lock, [&] { return admitted_ == 0; });
  }

  void shutdown(std::chrono::milliseconds drain) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (draining_) return;
      draining_ = true;
    }
    // The listening socket closes; workers finish their connections. serve() may be between its
    // check of draining_ and the start of listening, when stop() does nothing yet: try until it took.
    for (int i = 0; i < 200; ++i) {  // up to 2 s
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!serving_ || listen_returned_) break;
      }
      if (http_.is_running()) {
        http_.stop();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (!drained_cv_.wait_for(lock, drain, [&] { return admitted_ == 0; })) {
      drain_expired_ = true;
      for (const auto& job : jobs_) job->cancel();
    }
  }

  int in_flight() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return admitted_;
  }
  const ServerMetrics& metrics() const { return metrics_; }

 private:
  // An admitted request: holds its place in the queue until destroyed.
  class Slot {
   public:
    explicit Slot(Impl& impl) : impl_(impl) {}
    ~Slot() { impl_.release(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    Impl& impl_;
  };

  std::shared_ptr<Slot> admit() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_) throw ApiError(503, "the server is shutting down");
    if (!recognizer_) throw ApiError(503, "the model is still loading");
    if (admitted_ >= o_.parallel + o_.max_queue) {
      metrics_.rejected();
      throw ApiError(429, fmt::format("the server is busy ({} requests in flight, queue full): retry later", admitted_),
                     "", "rate_limit_error");
    }
    ++admitted_;
    return std::make_shared<Slot>(*this);
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    --admitted_;
    drained_cv_.notify_all();
  }

  // Submits a page; the job is cancelled by shutdown() past the drain time.
  std::shared_ptr<PageJob> submit(Image page, const OcrRequest& request, TextCallback on_text) {
    std::shared_ptr<PageJob> job = recognizer_->submit(std::move(page), request, std::move(on_text));
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.insert(job);
    if (draining_ && drain_expired_) job->cancel();
    return job;
  }
  void forget(const std::shared_ptr<PageJob>& job) {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.erase(job);
  }

  // A text callback that times the first piece and counts the pieces (about one per token).
  TextCallback counting_callback(Clock::time_point start, std::function<bool(std::string_view)> then = {}) {
    auto first = std::make_shared<std::atomic<bool>>(true);
    return [this, start, first, then = std::move(then)](std::string_view piece) {
      if (first->exchange(false)) metrics_.first_token(seconds_since(start));
      metrics_.tokens_generated(1);
      return then ? then(piece) : true;
    };
  }

  std::string model_name() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return model_name_;
  }

  void record_page(const OcrResult& r) { metrics_.page_done(page_result_name(r.status), r.prompt_tokens, int(r.tokens.size())); }

  void setup();
  void respond_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status();
    if (e.status() == 429) res.set_header("Retry-After", std::to_string(o_.retry_after_s));
    if (e.status() == 401) res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(error_body(e), "application/json");
  }
  // Runs a handler: ApiErrors become their answers; the request is counted unless `streaming`
  // takes over (the stream counts itself when it ends).
  template <typename Fn>
  void guarded(const std::string& endpoint, const httplib::Request& req, httplib::Response& res, Fn&& fn) {
    const auto start = Clock::now();
    bool counted_by_stream = false;
    try {
      counted_by_stream = fn(start);
    } catch (const ApiError& e) {
      respond_error(res, e);
    } catch (const std::bad_alloc&) {
      respond_error(res, ApiError(500, "out of memory"));
    } catch (const std::exception& e) {
      respond_error(res, ApiError(500, e.what()));
    }
    if (!counted_by_stream) metrics_.request_done(endpoint, res.status < 0 ? 200 : res.status, seconds_since(start));
  }

  bool chat(const httplib::Request& req, httplib::Response& res, Clock::time_point start);
  bool ocr(const httplib::Request& req, httplib::Response& res, Clock::time_point start);

  ServerOptions o_;
  int64_t created_;
  httplib::Server http_;
  ServerMetrics metrics_;
  bool bound_ = false;

  mutable std::mutex mutex_;
  std::condition_variable drained_cv_;
  PageRecognizer* recognizer_ = nullptr;
  std::string model_name_ = "deepseek-ocr";  // set by attach()
  std::function<EngineStats()> stats_;
  int admitted_ = 0;
  bool draining_ = false, drain_expired_ = false;
  bool serving_ = false, listen_returned_ = false;
  std::set<std::shared_ptr<PageJob>> jobs_;

  friend class OcrServer;
};

void OcrServer::Impl::setup() {
  const int threads = o_.parallel + o_.max_queue + 8;  // every admitted request holds one, plus room to answer 429s
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // cpp-httplib's default also sets SO_REUSEPORT, which lets a second server bind the same port and
  // silently take half the connections: address reuse only (a restart right after a stop).
  http_.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http_.set_read_timeout(o_.read_timeout_s, 0);
  http_.set_write_timeout(o_.write_timeout_s, 0);
  http_.set_keep_alive_timeout(o_.keep_alive_s);
  http_.set_payload_max_length(o_.max_body_bytes);

  if (o_.log)
    http_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      fmt::print(stderr, "dsocr: {} {} {} {}\n", req.remote_addr, req.method, req.path, res.status);
    });
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // The web page holds no data and sends the key typed into it with each request, so a browser can
    // open it; everything else needs the key.
    const bool open = req.path == "/health" || (req.path == "/" && req.method == "GET");
    if (o_.api_key.empty() || open) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string expected = "Bearer " + o_.api_key;
    // Compared in constant time over the expected length.
    unsigned diff = auth.size() != expected.size();
    for (size_t i = 0; i < expected.size(); ++i) diff |= unsigned(uint8_t(i < auth.size() ? auth[i] : 0) ^ uint8_t(expected[i]));
    if (diff == 0) return httplib::Server::HandlerResponse::Unhandled;
    respond_error(res, ApiError(401, auth.empty() ? "missing API key: send Authorization: Bearer KEY" : "invalid API key", "",
                                "authentication_error"));
    metrics_.request_done(endpoint_label(req.path), 401, 0);
    return httplib::Server::HandlerResponse::Handled;
  });
  // cpp-httplib's own refusals (413 body too large, 400 unreadable request or multipart, 404) get
  // an error object too.
  http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message;
    switch (res.status) {
      case 413: message = fmt::format("request body too large (limit {} MiB: --max-body-mb)", o_.max_body_bytes >> 20); break;
      case 404: message = fmt::format("no such endpoint: {} {}", req.method, req.path); break;
      case 400: message = "malformed request (unreadable headers, body or multipart data)"; break;
      default: message = fmt::format("HTTP {}", res.status);
    }
    res.set_content(error_body(ApiError(res.status, message)), "application/json");
    if (res.status == 413 || res.status == 400) metrics_.request_done(endpoint_label(req.path), res.status, 0);
  });
  http_.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    respond_error(res, ApiError(500, what));
  });

  http_.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    const char* status = draining_ ? "draining" : recognizer_ ? "ok" : "loading";
    res.status = recognizer_ && !draining_ ? 200 : 503;
    res.set_content(dump({{"status", status}}), "application/json");
  });
  http_.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    guarded("/v1/models", req, res, [&](Clock::time_point) {
      res.set_content(dump(models_list(model_name(), created_)), "application/json");
      return false;
    });
  });
  http_.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    MetricsGauges g;
    std::function<EngineStats()> stats;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      g.in_flight = admitted_;
      stats = stats_;
    }
    if (stats) {
      const EngineStats s = stats();
      g.queued = s.queued + s.prepared + s.encoded + s.waiting;
      g.kv_blocks_used = s.kv_blocks_used;
      g.kv_blocks_total = s.kv_blocks_total;
    } else {
      g.queued = std::max(0, g.in_flight - o_.parallel);
    }
    res.set_content(metrics_.render(g), "text/plain; version=0.0.4");
  });
  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = web_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    guarded("/v1/chat/completions", req, res, [&](Clock::time_point start) { return chat(req, res, start); });
  });
  http_.Post("/v1/ocr", [this](const httplib::Request& req, httplib::Response& res) {
    guarded("/v1/ocr", req, res, [&](Clock::time_point start) { return ocr(req, res, start); });
  });
}

// ---- /v1/chat/completions ---------------------------------------------------------------------------------

bool OcrServer::Impl::chat(const httplib::Request& req, httplib::Response& res, Clock::time_point start) {
  std::shared_ptr<Slot> slot = admit();  // first: refusing must stay cheap when the queue is full
  const ChatRequest c = parse_chat_request(parse_json_body(req), o_.allow_files);
  Image image = decode_page_image(c.image_bytes, 0, "messages: image_url");
  const ChatIds ids{random_id("chatcmpl-"), c.model.empty() ? model_name() : c.model, int64_t(std::time(nullptr))};
  auto watch = std::make_shared<ConnectionWatch>(req);

  if (!c.stream) {
    std::shared_ptr<PageJob> job = submit(std::move(image), c.ocr, counting_callback(start));
    while (!job->wait_for(std::chrono::milliseconds(50)))
      if (watch->gone()) job->cancel();
    forget(job);
    const OcrResult r = job->wait();
    record_page(r);
    switch (r.status) {
      case RequestStatus::Ok: break;
      case RequestStatus::BadInput: throw ApiError(400, r.error, "messages");
      case RequestStatus::EngineError: throw ApiError(500, r.error);
      case RequestStatus::Cancelled:
        if (watch->gone()) {  // nobody to answer
          res.status = 499;
          return false;
        }
        throw ApiError(503, "cancelled: the server is shutting down");
    }
    const std::string content = c.skip_special_tokens ? strip_grounding(r.text) : r.text;
    res.set_content(dump(chat_completion(ids, content, r.stop, r.prompt_tokens, int(r.tokens.size()))), "application/json");
    return false;
  }

  // Streaming: the engine's thread appends text; the connection's thread sends it as SSE chunks.
  struct Stream {
    std::mutex mutex;
    std::string pending;
  };
  auto stream = std::make_shared<Stream>();
  auto stop = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<PageJob> job = submit(std::move(image), c.ocr, counting_callback(start, [stream, stop](std::string_view piece) {
    std::lock_guard<std::mutex> lock(stream->mutex);
    stream->pending.append(piece);
    return !stop->load();
  }));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, skip = c.skip_special_tokens, include_usage = c.include_usage, ids, job, stream, stop, watch, slot,
       start](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& j) {
          const std::string event = "data: " + dump(j) + "\n\n";
          return sink.write(event.data(), event.size());
        };
        auto abandon = [&] {
          stop->store(true);
          job->cancel();
          job->wait();
          forget(job);
          record_page(job->wait());
          metrics_.request_done("/v1/chat/completions", 499, seconds_since(start));
          return false;
        };
        GroundingStreamFilter filter;
        if (!send(chat_chunk_role(ids))) return abandon();
        for (;;) {
          const bool finished = job->wait_for(kPoll);
          std::string piece;
          {
            std::lock_guard<std::mutex> lock(stream->mutex);
            piece.swap(stream->pending);
          }
          if (skip) piece = filter.push(piece);
          if (finished && skip) piece += filter.flush();
          if (!piece.empty() && !send(chat_chunk_content(ids, piece))) return abandon();
          if (finished) break;
          if (watch->gone()) return abandon();
        }
        forget(job);
        const OcrResult r = job->wait();
        record_page(r);
        int status = 200;
        if (r.status == RequestStatus::Ok) {
          send(chat_chunk_finish(ids, r.stop, r.prompt_tokens, int(r.tokens.size())));
          if (include_usage) send(chat_chunk_usage(ids, r.prompt_tokens, int(r.tokens.size())));
        } else {
          const ApiError e = r.status == RequestStatus::BadInput ? ApiError(400, r.error, "messages")
                             : r.status == RequestStatus::Cancelled ? ApiError(503, "cancelled: the server is shutting down")
                                                                   : ApiError(500, r.error);
          send(error_json(e));
          status = e.status();
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        metrics_.request_done("/v1/chat/completions", status, seconds_since(start));
        return true;
      },
      // A connection that failed before the stream began still cancels its page.
      [this, job, stop](bool) {
        if (!job->done()) {
          stop->store(true);
          job->cancel();
        }
        forget(job);
      });
  return true;
}

// ---- /v1/ocr ----------------------------------------------------------------------------------------------

bool OcrServer::Impl::ocr(const httplib::Request& req, httplib::Response& res, Clock::time_point start) {
  std::shared_ptr<Slot> slot = admit();  // first: refusing must stay cheap when the queue is full
  std::string upload;
  json options = json::object();
  const bool multipart = req.is_multipart_form_data();
  if (multipart) {
    for (const auto& [name, part] : req.files) {
      if (name == "file") upload = part.content;
      else options[name] = form_value(part.content);
    }
    if (!req.has_file("file")) bad_request("file", "missing: send the document as the multipart field `file`");
  } else {
    options = parse_json_body(req);
  }
  auto r = std::make_shared<OcrApiRequest>(parse_ocr_request(options, multipart ? &upload : nullptr, o_.allow_files));
  const std::string field = multipart ? "file" : "document";

  // The document's pages, checked before anything is admitted.
  std::shared_ptr<PdfDocument> pdf;
  int page_count = 1;
  try {
    if (r->is_pdf) {
      pdf = std::make_shared<PdfDocument>(reinterpret_cast<const uint8_t*>(r->document.data()), r->document.size(), field);
      page_count = pdf->page_count();
    } else {
      page_count = image_page_count(reinterpret_cast<const uint8_t*>(r->document.data()), r->document.size(), field);
    }
  } catch (const Error& e) {
    bad_request(field, e.what());
  }
  const bool paged = r->is_pdf || page_count > 1;
  if (r->pages.empty())
    for (int p = 1; p <= page_count; ++p) r->pages.push_back(p);
  if (r->pages.back() > page_count)
    bad_request("pages", fmt::format("page {} is past the end ({} page{})", r->pages.back(), page_count, page_count == 1 ? "" : "s"));
  if (!paged) decode_page_image(r->document, 0, field);  // a broken image is the request's error, not a failed page
  auto watch = std::make_shared<ConnectionWatch>(req);
  const std::string model = r->model.empty() ? model_name() : r->model;

  // Runs the pages, `parallel` at a time, handing each to `emit` as it finishes (in the order they
  // finish). Returns false when the client went away or the pages were cancelled.
  struct Totals {
    int pages = 0, prompt_tokens = 0, completion_tokens = 0;
    bool single_bad_input = false;
    std::string error;
  };
  auto run = [this, r, pdf, paged, watch, start](Totals& totals, const std::function<bool(json)>& emit) -> bool {
    struct InFlight {
      int page;
      Image image;
      std::shared_ptr<PageJob> job;
    };
    std::list<InFlight> flying;
    size_t next = 0;
    OcrRequest request = r->ocr;
    if (paged && r->is_pdf) request.generation.ngram = r->pdf_ngram;
    auto cancel_all = [&] {
      for (InFlight& f : flying) {
        f.job->cancel();
        record_page(f.job->wait());
        forget(f.job);
      }
      return false;
    };
    while (next < r->pages.size() || !flying.empty()) {
      while (next < r->pages.size() && int(flying.size()) < std::max(1, o_.parallel)) {
        const int page = r->pages[next++];
        Image image;
        try {
          image = pdf ? pdf->render_page(page - 1, r->dpi)
                      : decode_image_page(reinterpret_cast<const uint8_t*>(r->document.data()), r->document.size(), page - 1, "file");
        } catch (const std::exception& e) {
          metrics_.page_done("failed", 0, 0);
          if (!emit(ocr_failed_page_json(page - 1, e.what()))) return cancel_all();
          continue;
        }
        auto job = submit(image, request, counting_callback(start));
        flying.push_back({page, std::move(image), std::move(job)});
      }
      if (flying.empty()) break;
      flying.front().job->wait_for(kPoll);
      for (auto it = flying.begin(); it != flying.end();) {
        if (!it->job->done()) {
          ++it;
          continue;
        }
        const OcrResult res = it->job->wait();
        forget(it->job);
        record_page(res);
        json page_json;
        if (res.status == RequestStatus::Ok) {
          ++totals.pages;
          totals.prompt_tokens += res.prompt_tokens;
          totals.completion_tokens += int(res.tokens.size());
          const int page = it->page;
          const PageRecord rec = page_record(res, it->image.width, it->image.height, paged, page,
                                             [&](const ImageRegion& region) { return ocr_image_id(paged, page, region.index); });
          page_json = ocr_page_json(rec, it->image, page - 1, r->is_pdf ? r->dpi : 0, r->include_image_base64,
                                    r->include_page_image);
        } else if (res.status == RequestStatus::Cancelled) {
          it = flying.erase(it);
          return cancel_all();
        } else {
          if (!paged && res.status == RequestStatus::BadInput) totals.single_bad_input = true, totals.error = res.error;
          page_json = ocr_failed_page_json(it->page - 1, res.error);
        }
        it = flying.erase(it);
        if (!emit(std::move(page_json))) return cancel_all();
      }
      if (watch->gone()) return cancel_all();
    }
    return true;
  };

  if (!r->stream) {
    Totals totals;
    std::vector<json> pages;
    const bool complete = run(totals, [&](json page) {
      pages.push_back(std::move(page));
      return true;
    });
    if (!complete) {
      if (watch->gone()) {
        res.status = 499;
        return false;
      }
      throw ApiError(503, "cancelled: the server is shutting down");
    }
    if (totals.single_bad_input) throw ApiError(400, totals.error, field);
    std::sort(pages.begin(), pages.end(), [](const json& a, const json& b) { return a["index"] < b["index"]; });
    json out = {{"pages", pages}, {"model", model}, {"document_annotation", nullptr},
                {"usage_info", ocr_usage(totals.pages, r->document.size(), totals.prompt_tokens, totals.completion_tokens)}};
    res.set_content(dump(out), "application/json");
    return false;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "application/x-ndjson", [this, r, run, slot, model, start](size_t, httplib::DataSink& sink) {
        Totals totals;
        const bool complete = run(totals, [&](json page) {
          const std::string line = dump(page) + "\n";
          return sink.write(line.data(), line.size());
        });
        if (!complete) {
          metrics_.request_done("/v1/ocr", 499, seconds_since(start));
          return false;
        }
        const std::string last =
            dump({{"done", true}, {"model", model},
                  {"usage_info", ocr_usage(totals.pages, r->document.size(), totals.prompt_tokens, totals.completion_tokens)}}) +
            "\n";
        sink.write(last.data(), last.size());
        sink.done();
        metrics_.request_done("/v1/ocr", 200, seconds_since(start));
        return true;
      });
  return true;
}

// ---- the facade -------------------------------------------------------------------------------------------

OcrServer::OcrServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
OcrServer::~OcrServer() = default;
int OcrServer::bind() { return impl_->bind(); }
void OcrServer::attach(PageRecognizer& recognizer, std::string model_name, std::function<EngineStats()> stats) {
  impl_->attach(recognizer, std::move(model_name), std::move(stats));
}
void OcrServer::serve() { impl_->serve(); }
void OcrServer::shutdown(std::chrono::milliseconds drain) { impl_->shutdown(drain); }
int OcrServer::in_flight() const { return impl_->in_flight(); }
const ServerMetrics& OcrServer::metrics() const { return impl_->metrics(); }

}  // namespace dsocr::server
