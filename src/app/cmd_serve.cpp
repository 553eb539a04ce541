// dsocr serve: the OCR server (src/server/server.h) on the engine. The port is bound before the
// model loads (a port in use fails at once; /health says "loading" meanwhile). SIGINT/SIGTERM:
// stop accepting, finish the requests in flight within --drain-seconds, cancel the rest, exit 0.
#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/signals.h"
#include "engine/engine.h"
#include "io/model_locator.h"
#include "server/server.h"

namespace dsocr::app {

namespace {

struct ServeArgs {
  std::string model, host = "127.0.0.1", api_key, allow_files, device = "cpu";
  int port = 8080, parallel = 0, max_queue = 16, threads = 0;
  int max_body_mb = 64, read_timeout = 30, write_timeout = 30;
  double drain_seconds = 30, kv_memory_gb = 0;
  bool kv_f32 = false, quiet = false;
};

int run_serve(const ServeArgs& a, SignalWatcher& signals) {
  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1" && a.api_key.empty() && !std::getenv("DSOCR_API_KEY"))
    fmt::print(stderr, "dsocr: warning: listening on {} without an API key (--api-key or $DSOCR_API_KEY)\n", a.host);
  EngineOptions eo;
  eo.model_dir = resolve_model_dir(a.model);
  eo.threads = a.threads;
  eo.kv_precision = a.kv_f32 ? KvPrecision::F32 : KvPrecision::BF16;
  eo.device = a.device;
  eo.kv_memory = int64_t(a.kv_memory_gb * double(int64_t(1) << 30));
  int parallel = a.parallel;
  if (parallel <= 0) {
    const Checkpoint probe(eo.model_dir);
    parallel = default_parallel(eo, probe);
  }
  eo.max_sequences = parallel;

  server::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.api_key = a.api_key;
  if (so.api_key.empty())
    if (const char* env = std::getenv("DSOCR_API_KEY")) so.api_key = env;
  so.parallel = parallel;
  so.max_queue = a.max_queue;
  so.max_body_bytes = size_t(a.max_body_mb) << 20;
  so.allow_files = a.allow_files;
  so.read_timeout_s = a.read_timeout;
  so.write_timeout_s = a.write_timeout;
  so.log = !a.quiet;

  signals.set_graceful();
  server::OcrServer http(so);
  const int port = http.bind();
  fmt::print(stderr, "dsocr: listening on http://{}:{} (loading the model)\n", a.host, port);
  std::thread serving([&] { http.serve(); });
  struct Join {
    std::thread& t;
    server::OcrServer& s;
    ~Join() {
      if (t.joinable()) {
        s.shutdown(std::chrono::milliseconds(0));
        t.join();
      }
    }
  } join{serving, http};

  Engine engine(eo);
  http.attach(engine, engine.checkpoint().config().name, [&engine] { return engine.stats(); });
  fmt::print(stderr, "dsocr: ready: {}; {} pages at once, queue {}\n", engine.describe(), parallel, a.max_queue);
  while (!signals.interrupted().load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  fmt::print(stderr, "dsocr: stopping: {} requests in flight, up to {}s to finish\n", http.in_flight(), a.drain_seconds);
  http.shutdown(std::chrono::milliseconds(int64_t(a.drain_seconds * 1000)));
  serving.join();
  fmt::print(stderr, "dsocr: stopped\n");
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, SignalWatcher& signals) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve",
                                 "An OpenAI-compatible OCR server: POST /v1/chat/completions (image_url parts as data: URLs,\n"
                                 "stream: true for SSE), POST /v1/ocr (Mistral OCR format: images and PDFs, NDJSON streaming),\n"
                                 "GET /v1/models, /health, /metrics (Prometheus) and / (a page to try it). Concurrent\n"
                                 "requests share the engine's batch.");
  cmd->add_option("-m,--model", a->model, "Model directory (default: $DSOCR_MODEL, then the dsocr cache; see `dsocr pull`)");
  cmd->add_option("--host", a->host, "Address to listen on (default 127.0.0.1: this machine only)")->default_str("127.0.0.1");
  cmd->add_option("--port", a->port, "TCP port (0: any free one, printed on stderr)")->default_str("8080")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", a->api_key,
                  "Require `Authorization: Bearer KEY` on every endpoint but /health (default: $DSOCR_API_KEY)");
  cmd->add_option("-p,--parallel", a->parallel, "Pages computed at once (default: what the KV cache memory holds, at most 16)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--max-queue", a->max_queue, "Requests waiting beyond those computing; more get 429 with Retry-After")
      ->default_str("16")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--max-body-mb", a->max_body_mb, "Largest request body in MiB (larger: 413)")->default_str("64")->check(CLI::Range(1, 4096));
  cmd->add_option("--allow-files", a->allow_files, "Let requests name files under DIR as file:// URLs (default: refused)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--read-timeout", a->read_timeout, "Seconds a client may take to send a request")->default_str("30")->check(CLI::Range(1, 3600));
  cmd->add_option("--write-timeout", a->write_timeout, "Seconds a client may leave an answer unread before it is cancelled")
      ->default_str("30")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--drain-seconds", a->drain_seconds, "On SIGTERM/SIGINT: how long requests in flight may take to finish")
      ->default_str("30")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--kv-memory", a->kv_memory_gb, "GiB for the attention cache (default: 30% of available memory, at most 8)")
      ->check(CLI::Range(0.01, 1024.0));
  cmd->add_option("--device", a->device,
                  "cpu, or cuda: the model on GPU 0 (a build with the CUDA backend; not yet measured on a GPU)")
      ->default_str("cpu")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--kv-f32", a->kv_f32, "Keep the attention cache in float32");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
  cmd->add_flag("-q,--quiet", a->quiet, "No line per request on stderr");
  cmd->callback([a, &signals] {
    const int rc = run_serve(*a, signals);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace dsocr::app
