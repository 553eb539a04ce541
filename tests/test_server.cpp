// dsocr serve over loopback HTTP: the golden greedy text through /v1/chat/completions (whole and
// streamed), 16 concurrent requests equal to each alone, /v1/ocr on a PDF equal to the document
// tool's page records, and the abuse cases (401, 400s, 413, 429, clients that disconnect or stop
// reading, shutdown with a drain) on a stand-in recognizer whose pages finish when the test says.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/document.h"
#include "engine/engine.h"
#include "io/files.h"
#include "io/pdf.h"
#include "io/pdf_writer.h"
#include "io/safetensors.h"
#include "server/request_parsing.h"
#include "server/server.h"
#include "text/prompt.h"
#include "golden_data.h"

using namespace dsocr;
using namespace dsocr::server;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kData = DSOCR_TEST_DATA;

std::string image_bytes(const std::string& name) { return read_file_text(kData + "/images/" + name); }
std::string data_url(const std::string& bytes, const char* type = "image/png") {
  return std::string("data:") + type + ";base64," + encode_base64(bytes);
}

EngineOptions engine_options(int max_sequences) {
  EngineOptions o;
  o.model_dir = DSOCR_TEST_MODEL;
  o.threads = 2;
  o.vision_threads = 0;
  o.max_sequences = max_sequences;
  o.kv_memory = int64_t(64) << 20;
  return o;
}

json chat_body(const std::string& image, const std::string& mode, int max_tokens, const std::string& text = "",
               bool stream = false) {
  json content = json::array({{{"type", "image_url"}, {"image_url", {{"url", data_url(image_bytes(image))}}}}});
  if (!text.empty()) content.push_back({{"type", "text"}, {"text", text}});
  return {{"model", "whatever"},
          {"messages", json::array({{{"role", "user"}, {"content", content}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"mode", mode},
          {"ngram_size", 0},
          {"stream", stream}};
}

// A server on a free loopback port, answering on its own thread.
class RunningServer {
 public:
  RunningServer(PageRecognizer& recognizer, ServerOptions o = {}) : server_(adjust(o)) {
    port_ = server_.bind();
    server_.attach(recognizer, "tiny-test");
    thread_ = std::thread([this] { server_.serve(); });
  }
  ~RunningServer() { stop(0ms); }
  void stop(std::chrono::milliseconds drain) {
    if (!thread_.joinable()) return;
    server_.shutdown(drain);
    thread_.join();
  }
  int port() const { return port_; }
  OcrServer& server() { return server_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    return c;
  }

 private:
  static ServerOptions adjust(ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    return o;
  }
  OcrServer server_;
  int port_ = 0;
  std::thread thread_;
};

// Data events of an SSE body, without the "data: " prefix.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
  return out;
}

// Pages that finish only when the test releases them (with `text`), or when cancelled.
class StandIn : public PageRecognizer {
 public:
  std::shared_ptr<PageJob> submit(Image, OcrRequest request, TextCallback on_text) override {
    auto job = std::make_shared<PageJob>(++next_);
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(job);
    callbacks_.push_back(std::move(on_text));
    job->on_cancel([this, j = job.get()] {
      ++cancelled_;
      OcrResult r;
      r.status = RequestStatus::Cancelled;
      r.stop = StopReason::Cancelled;
      j->finish(r);
    });
    return job;
  }
  size_t submitted() {
    std::lock_guard<std::mutex> lock(mutex_);
    return jobs_.size();
  }
  // Streams `pieces` pieces of `piece` to the page's callback (stops when it says so), then finishes;
  // returns how many pieces the callback took.
  int release(size_t i, const std::string& piece = "hello", int pieces = 1) {
    std::shared_ptr<PageJob> job;
    TextCallback cb;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job = jobs_.at(i);
      cb = callbacks_.at(i);
    }
    OcrResult r;
    for (int k = 0; k < pieces && !job->cancel_requested(); ++k) {
      if (k > 0) std::this_thread::sleep_for(2ms);  // about as a page generates: not faster than a socket drains
      r.text += piece;
      r.tokens.push_back(k);
      if (cb && !cb(piece)) break;
    }
    r.stop = StopReason::Eos;
    r.prompt_tokens = 10;
    job->finish(r);
    return int(r.tokens.size());
  }
  int cancelled() const { return cancelled_.load(); }

 private:
  std::mutex mutex_;
  std::vector<std::shared_ptr<PageJob>> jobs_;
  std::vector<TextCallback> callbacks_;
  std::atomic<uint64_t> next_{0};
  std::atomic<int> cancelled_{0};
};

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string error_message(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("message", "") : "(no error object: " + body + ")";
}

// A raw connection: for clients that vanish or stop reading.
int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void send_request(int fd, const std::string& path, const std::string& body) {
  const std::string req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), ssize_t(req.size()));
}

}  // namespace

// The issue's golden case: tiny model, greedy, guard off, 24 tokens: the content is the golden
// tokens decoded, whole and streamed, with finish_reason "length" and the token counts.
TEST(Server, GoldenTextThroughChatCompletions) {
  Engine engine(engine_options(2));
  RunningServer s(engine);
  auto client = s.client();
  for (const auto& [mode, golden] : {std::pair{"base", "base"}, std::pair{"gundam", "gundam6"}}) {
    SCOPED_TRACE(mode);
    const std::string expected = engine.tokenizer().decode(golden_greedy_tokens(golden));
    // No text part: the prompt is the markdown task's, as the golden run's.
    auto res = client.Post("/v1/chat/completions", chat_body("doc.png", mode, 24).dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json j = json::parse(res->body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "whatever");
    EXPECT_EQ(j["choices"][0]["message"]["content"], expected);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 24);
    if (std::string(mode) == "base") {
      EXPECT_EQ(j["usage"]["prompt_tokens"], 283);  // golden lm/doc_base.json seq_len
    }

    if (std::string(mode) != "base") continue;  // the rest once: Gundam pages take longer
    // The same text with an explicit prompt: "<image>\n" goes in front.
    auto res2 = client.Post("/v1/chat/completions",
                            chat_body("doc.png", mode, 24, "<|grounding|>Convert the document to markdown.").dump(), "application/json");
    ASSERT_TRUE(res2);
    EXPECT_EQ(json::parse(res2->body)["choices"][0]["message"]["content"], expected);

    auto streamed = client.Post("/v1/chat/completions", chat_body("doc.png", mode, 24, "", true).dump(), "application/json");
    ASSERT_TRUE(streamed);
    ASSERT_EQ(streamed->status, 200);
    EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
    const std::vector<std::string> events = sse_events(streamed->body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    for (size_t i = 0; i + 2 < events.size(); ++i) {
      const json c = json::parse(events[i]);
      EXPECT_EQ(c["object"], "chat.completion.chunk");
      EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
      text += c["choices"][0]["delta"].value("content", "");
    }
    EXPECT_EQ(text, expected);
    const json last = json::parse(events[events.size() - 2]);
    EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(last["usage"]["completion_tokens"], 24);
  }
  // A prompt that does not fit the context is the request's error, named.
  std::string words;
  for (int i = 0; i < 9000; ++i) words += " word";
  auto too_long = client.Post("/v1/chat/completions", chat_body("small.png", "tiny", 5, words).dump(), "application/json");
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 400);
  EXPECT_NE(error_message(too_long->body).find("but the context holds 8192"), std::string::npos) << too_long->body;
  // /v1/models lists the model; the engine's batch saw every request.
  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "tiny-test");
  EXPECT_EQ(s.server().in_flight(), 0);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
}

// Batch invariance seen through HTTP: 16 requests at once (different images, modes, tasks, lengths)
// each return exactly what they return alone.
TEST(Server, SixteenConcurrentRequestsEqualEachAlone) {
  const char* images[] = {"doc.png", "small.png", "wide.png", "tall.png", "square.png"};
  const char* modes[] = {"tiny", "small", "base", "tiny"};
  const char* texts[] = {"", "Free OCR.", "<image>\nDescribe this image in detail.", "<|grounding|>OCR this image."};
  std::vector<json> bodies;
  for (int i = 0; i < 16; ++i) {
    json b = chat_body(images[i % 5], modes[i % 4], 6 + (i * 5) % 14, texts[(i / 4) % 4]);
    if (i % 3 == 0) b["ngram_size"] = 3, b["ngram_window"] = 20;
    bodies.push_back(b);
  }
  Engine engine(engine_options(8));
  ServerOptions so;
  so.parallel = 8;
  so.max_queue = 16;
  RunningServer s(engine, so);
  std::vector<std::string> alone;
  {
    auto client = s.client();
    for (const json& b : bodies) {  // one at a time: each request alone in the batch
      auto res = client.Post("/v1/chat/completions", b.dump(), "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      alone.push_back(json::parse(res->body)["choices"][0]["message"]["content"]);
    }
  }
  std::vector<std::future<std::string>> together;
  for (size_t i = 0; i < bodies.size(); ++i)
    together.push_back(std::async(std::launch::async, [&, i] {
      auto client = s.client();
      const bool stream = i % 2 == 1;  // half of them streamed
      json b = bodies[i];
      b["stream"] = stream;
      auto res = client.Post("/v1/chat/completions", b.dump(), "application/json");
      if (!res || res->status != 200) return std::string("HTTP error ") + (res ? res->body : "no answer");
      if (!stream) return json::parse(res->body)["choices"][0]["message"]["content"].get<std::string>();
      std::string text;
      for (const std::string& e : sse_events(res->body))
        if (e != "[DONE]") text += json::parse(e).value("/choices/0/delta/content"_json_pointer, std::string());
      return text;
    }));
  for (size_t i = 0; i < together.size(); ++i) EXPECT_EQ(together[i].get(), alone[i]) << "request " << i;
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  EXPECT_GT(engine.stats().pages_done, 16u);
}

// /v1/ocr: a two-page PDF as multipart and as a JSON data URL; each page equals the document tool's
// record of the same page (engine/document.h); NDJSON gives one line per page and a summary.
TEST(Server, OcrEndpointPdfPagesEqualTheDocumentRecords) {
  if (!pdf_supported()) GTEST_SKIP() << "built without PDF support";
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dsocr_server_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string pdf_path = (dir / "two.pdf").string();
  {
    ImagePdfWriter w(pdf_path, 90, 144);
    w.add_page(load_image(kData + "/images/doc.png"));
    w.add_page(load_image(kData + "/images/wide.png"));
    w.finish();
  }
  const std::string pdf_bytes = read_file_text(pdf_path);
  Engine engine(engine_options(4));
  ServerOptions so;
  so.parallel = 2;
  RunningServer s(engine, so);
  auto client = s.client();

  // What the document tool records for these pages (PDF guard 20/50, 144 dpi).
  OcrRequest request;
  request.mode = Mode::Tiny;
  request.prompt = task_prompt(Task::Free);
  request.generation.max_new_tokens = 12;
  request.generation.ngram = *BatchOptions().pdf_ngram;
  const PdfDocument pdf(pdf_path);
  std::vector<json> expected;
  for (int p = 1; p <= 2; ++p) {
    const Image page = pdf.render_page(p - 1, 144);
    const OcrResult r = engine.run(page, request);
    const PageRecord rec = page_record(r, page.width, page.height, true, p, [](const ImageRegion& g) { return g.link; });
    expected.push_back({{"markdown", rec.json["markdown"]}, {"raw", rec.json["raw"]}, {"width", page.width}, {"height", page.height}});
  }

  httplib::MultipartFormDataItems form = {{"file", pdf_bytes, "two.pdf", "application/pdf"},
                                          {"task", "free", "", ""},
                                          {"mode", "tiny", "", ""},
                                          {"max_tokens", "12", "", ""}};
  auto res = client.Post("/v1/ocr", form);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  ASSERT_EQ(j["pages"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const json& p = j["pages"][i];
    EXPECT_EQ(p["index"], i);
    EXPECT_EQ(p["markdown"], expected[size_t(i)]["markdown"]);
    EXPECT_EQ(p["raw"], expected[size_t(i)]["raw"]);
    EXPECT_EQ(p["dimensions"]["width"], expected[size_t(i)]["width"]);
    EXPECT_EQ(p["dimensions"]["dpi"], 144);
    EXPECT_EQ(p["stop_reason"], "max_tokens");
    EXPECT_EQ(p["truncated"], true);
  }
  EXPECT_EQ(j["usage_info"]["pages_processed"], 2);
  EXPECT_EQ(j["usage_info"]["doc_size_bytes"], pdf_bytes.size());

  // JSON with a data URL, Mistral's 0-based page list, streamed as NDJSON.
  json body = {{"model", "mistral-ocr-latest"},
               {"document", {{"type", "document_url"}, {"document_url", data_url(pdf_bytes, "application/pdf")}}},
               {"pages", {1}},
               {"task", "free"},
               {"mode", "tiny"},
               {"max_tokens", 12},
               {"stream", true}};
  auto streamed = client.Post("/v1/ocr", body.dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  std::istringstream lines(streamed->body);
  std::vector<json> got;
  for (std::string line; std::getline(lines, line);) got.push_back(json::parse(line));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["index"], 1);
  EXPECT_EQ(got[0]["markdown"], expected[1]["markdown"]);
  EXPECT_EQ(got[1]["done"], true);
  EXPECT_EQ(got[1]["usage_info"]["pages_processed"], 1);

  // A page past the end, and a document that is neither image nor PDF.
  body["pages"] = "3";
  body["stream"] = false;
  auto past = client.Post("/v1/ocr", body.dump(), "application/json");
  ASSERT_TRUE(past);
  EXPECT_EQ(past->status, 400);
  EXPECT_NE(error_message(past->body).find("page 3 is past the end (2 pages)"), std::string::npos) << past->body;
  httplib::MultipartFormDataItems junk = {{"file", "hello world", "a.txt", "text/plain"}};
  auto bad = client.Post("/v1/ocr", junk);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(error_message(bad->body).find("not an image"), std::string::npos) << bad->body;
  std::filesystem::remove_all(dir);
}

TEST(Server, BadRequestsAreErrorObjects) {
  StandIn standin;
  ServerOptions so;
  so.max_body_bytes = 1 << 20;
  so.api_key = "sekrit";
  RunningServer s(standin, so);
  auto client = s.client();
  const httplib::Headers auth = {{"Authorization", "Bearer sekrit"}};

  auto health = client.Get("/health");  // no key needed
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");

  auto no_key = client.Get("/v1/models");
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  EXPECT_NE(error_message(no_key->body).find("missing API key"), std::string::npos);
  auto wrong = client.Post("/v1/chat/completions", {{"Authorization", "Bearer nope"}}, "{}", "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(json::parse(wrong->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(client.Get("/metrics")->status, 401);
  auto page = client.Get("/");  // the page opens in a browser; it sends the key typed into it
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("Authorization"), std::string::npos);

  auto expect_400 = [&](const std::string& body, const std::string& message) {
    auto res = client.Post("/v1/chat/completions", auth, body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body.substr(0, 200);
    EXPECT_NE(error_message(res->body).find(message), std::string::npos) << error_message(res->body);
  };
  expect_400("{\"messages\": [", "malformed JSON");
  expect_400("", "empty request body");
  expect_400("[1,2]", "must be a JSON object");
  expect_400(json{{"messages", json::array()}}.dump(), "messages: must be a non-empty array");
  json body = chat_body("doc.png", "tiny", 5);
  body["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64,iVBORw0K!!!";
  expect_400(body.dump(), "invalid base64");
  body["messages"][0]["content"][0]["image_url"]["url"] = "https://example.com/a.png";
  expect_400(body.dump(), "remote URLs are not fetched");
  body["messages"][0]["content"][0]["image_url"]["url"] = "file:///etc/passwd";
  expect_400(body.dump(), "file:// URLs are refused");
  body["messages"][0]["content"][0]["image_url"]["url"] = data_url("plain text, not an image");
  expect_400(body.dump(), "not an image");
  body["messages"][0]["content"][0]["image_url"]["url"] = data_url(image_bytes("doc.png").substr(0, 3000));
  expect_400(body.dump(), "messages: image_url");  // a truncated PNG
  body = chat_body("doc.png", "huge", 5);
  expect_400(body.dump(), "unknown mode 'huge'");
  body = chat_body("doc.png", "tiny", 5);
  body["max_tokens"] = -3;
  expect_400(body.dump(), "max_tokens: -3 is out of range");
  body["max_tokens"] = "many";
  expect_400(body.dump(), "max_tokens: must be an integer");
  body = chat_body("doc.png", "gundam", 5);
  body["max_tiles"] = 12;
  expect_400(body.dump(), "max_tiles: 12 is out of range 2..9");
  body = chat_body("doc.png", "tiny", 5, "<image> and <image>");
  expect_400(body.dump(), "<image>");
  EXPECT_EQ(standin.submitted(), 0u) << "nothing malformed reached the recognizer";

  // Over the body limit: 413 with an error object.
  const std::string big(2 << 20, 'x');
  auto too_big = client.Post("/v1/chat/completions", auth, big, "application/json");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_NE(error_message(too_big->body).find("too large"), std::string::npos);

  // A multipart body cut before its closing boundary.
  const std::string cut = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
                          "Content-Type: image/png\r\n\r\n" + image_bytes("small.png").substr(0, 500);
  auto truncated = client.Post("/v1/ocr", auth, cut, "multipart/form-data; boundary=XyZ");
  ASSERT_TRUE(truncated);
  EXPECT_EQ(truncated->status, 400);
  EXPECT_FALSE(error_message(truncated->body).empty());
  for (int i = 0; i < 3; ++i) client.Get("/random/" + std::to_string(i));  // 401s that must not add metric labels
  auto no_route = client.Get("/v2/nothing", auth);
  ASSERT_TRUE(no_route);
  EXPECT_EQ(no_route->status, 404);
  EXPECT_NE(error_message(no_route->body).find("no such endpoint"), std::string::npos);
  // The server is still there and counted all of it.
  auto metrics = client.Get("/metrics", auth);
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("dsocr_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 14"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("dsocr_requests_total{endpoint=\"/v1/chat/completions\",status=\"413\"} 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("dsocr_requests_total{endpoint=\"other\",status=\"401\"} 3"), std::string::npos);
  EXPECT_EQ(metrics->body.find("/random/"), std::string::npos);
}

// A full queue answers 429 with Retry-After; when the pages finish, requests are admitted again.
TEST(Server, FullQueueAnswers429) {
  StandIn standin;
  ServerOptions so;
  so.parallel = 1;
  so.max_queue = 2;
  RunningServer s(standin, so);
  const std::string body = chat_body("small.png", "tiny", 5).dump();
  std::vector<std::future<int>> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(std::async(std::launch::async, [&] {
      auto res = s.client().Post("/v1/chat/completions", body, "application/json");
      return res ? res->status : -1;
    }));
  ASSERT_TRUE(eventually([&] { return standin.submitted() == 3; }));
  auto client = s.client();
  auto refused = client.Post("/v1/chat/completions", body, "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_NE(error_message(refused->body).find("busy"), std::string::npos);
  EXPECT_EQ(client.Get("/health")->status, 200) << "the server still answers while full";
  auto metrics = client.Get("/metrics");
  EXPECT_NE(metrics->body.find("dsocr_queue_rejections_total 1\n"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("dsocr_requests_in_flight 3\n"), std::string::npos);
  for (size_t i = 0; i < 3; ++i) standin.release(i);
  for (auto& h : held) EXPECT_EQ(h.get(), 200);
  auto again = std::async(std::launch::async, [&] { return s.client().Post("/v1/chat/completions", body, "application/json"); });
  ASSERT_TRUE(eventually([&] { return standin.submitted() == 4; }));
  standin.release(3);
  auto res = again.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"], "hello");
}

// A client that disconnects cancels its page, waiting or streaming; one that stops reading a stream
// is cancelled after the write timeout.
TEST(Server, ClientsThatGoAwayCancelTheirPages) {
  StandIn standin;
  ServerOptions so;
  so.write_timeout_s = 1;
  so.read_timeout_s = 1;
  RunningServer s(standin, so);
  const json body = chat_body("small.png", "tiny", 5);

  {  // a client that announces a body and never sends it loses its connection after the read timeout
    const int slow = connect_to(s.port());
    const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{";
    ASSERT_EQ(::send(slow, head.data(), head.size(), MSG_NOSIGNAL), ssize_t(head.size()));
    const auto t0 = std::chrono::steady_clock::now();
    char c[512];
    const ssize_t n = recv(slow, c, sizeof c, 0);  // the 400 answer (or the close) once the read timed out
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    if (n > 0) {
      EXPECT_EQ(std::string(c, size_t(std::min<ssize_t>(n, 12))), "HTTP/1.1 400");
    }
    close(slow);
  }

  int fd = connect_to(s.port());  // waits for a whole answer, then hangs up
  ASSERT_GE(fd, 0);
  send_request(fd, "/v1/chat/completions", body.dump());
  ASSERT_TRUE(eventually([&] { return standin.submitted() == 1; }));
  close(fd);
  EXPECT_TRUE(eventually([&] { return standin.cancelled() == 1; })) << "the page of a client that hung up was not cancelled";

  json streaming = body;
  streaming["stream"] = true;
  fd = connect_to(s.port());  // reads the start of a stream, then hangs up
  send_request(fd, "/v1/chat/completions", streaming.dump());
  ASSERT_TRUE(eventually([&] { return standin.submitted() == 2; }));
  char buf[256];
  ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  EXPECT_TRUE(eventually([&] { return standin.cancelled() == 2; }));

  fd = connect_to(s.port());  // stops reading a stream that keeps coming
  send_request(fd, "/v1/chat/completions", streaming.dump());
  ASSERT_TRUE(eventually([&] { return standin.submitted() == 3; }));
  ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);
  int delivered = 0;
  std::thread producer([&] { delivered = standin.release(2, std::string(16 << 10, 'a'), 4000); });  // 64 MiB if all were read
  const auto t0 = std::chrono::steady_clock::now();
  producer.join();  // returns once the server's callback refuses more text
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  EXPECT_LT(delivered, 4000) << "the stream was never stopped";
  EXPECT_TRUE(eventually([&] { return standin.cancelled() == 3; }));
  close(fd);
  EXPECT_TRUE(eventually([&] { return s.server().in_flight() == 0; }));
  EXPECT_EQ(s.client().Get("/health")->status, 200);
}

// shutdown(): new connections are refused, the request in flight finishes within the drain time;
// past the drain time the rest is cancelled and answered 503.
TEST(Server, ShutdownDrainsThenCancels) {
  StandIn standin;
  auto s = std::make_unique<RunningServer>(standin);
  const std::string body = chat_body("small.png", "tiny", 5).dump();
  auto first = std::async(std::launch::async, [&] { return s->client().Post("/v1/chat/completions", body, "application/json"); });
  ASSERT_TRUE(eventually([&] { return standin.submitted() == 1; }));
  auto stopping = std::async(std::launch::async, [&] { s->stop(10s); });
  ASSERT_TRUE(eventually([&] { return !httplib::Client("127.0.0.1", s->port()).Get("/health"); })) << "still accepting";
  standin.release(0);
  auto res = first.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  stopping.get();

  StandIn standin2;
  RunningServer s2(standin2);
  auto stuck = std::async(std::launch::async, [&] { return s2.client().Post("/v1/chat/completions", body, "application/json"); });
  ASSERT_TRUE(eventually([&] { return standin2.submitted() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  s2.stop(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  auto cancelled = stuck.get();
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 503);
  EXPECT_NE(error_message(cancelled->body).find("shutting down"), std::string::npos);
  EXPECT_EQ(standin2.cancelled(), 1);
}

TEST(Server, Base64RoundTripsAndRefusesGarbage) {
  for (const std::string& s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"), std::string("abcd"), std::string("\0\xff\x10", 3)})
    EXPECT_EQ(decode_base64(encode_base64(s)), s);
  EXPECT_EQ(encode_base64("hello"), "aGVsbG8=");
  EXPECT_EQ(decode_base64("aGVs\nbG8"), "hello");  // unpadded, with a line break
  EXPECT_THROW(decode_base64("aGVsbG8*"), dsocr::Error);
  EXPECT_THROW(decode_base64("a"), dsocr::Error);
  EXPECT_THROW(decode_base64("aGVsbG8=x"), dsocr::Error);
  EXPECT_EQ(load_url("data:text/plain,a%20b", "", "f"), "a b");
}

namespace {

// Pages that answer at once with a fixed grounded text, streamed in a few pieces (for the web page).
class Scripted : public PageRecognizer {
 public:
  explicit Scripted(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  ~Scripted() override {
    for (auto& t : threads_) t.join();
  }
  std::shared_ptr<PageJob> submit(Image page, OcrRequest request, TextCallback on_text) override {
    auto job = std::make_shared<PageJob>(1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
      threads_.emplace_back([this, job, on_text, w = page.width, h = page.height] {
        OcrResult r;
        for (const std::string& p : pieces_) {
          std::this_thread::sleep_for(30ms);
          r.text += p;
          r.tokens.push_back(1);
          if (on_text) on_text(p);
        }
        r.prompt_tokens = 100;
        r.page_width = w;
        r.page_height = h;
        job->finish(r);
      });
    }
    return job;
  }
  std::vector<OcrRequest> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  std::vector<std::string> pieces_;
  std::mutex mutex_;
  std::vector<OcrRequest> requests_;
  std::vector<std::thread> threads_;
};

bool have(const std::string& command) { return std::system(("command -v " + command + " >/dev/null 2>&1").c_str()) == 0; }

}  // namespace

// skip_special_tokens: true removes the grounding spans, whole and streamed (split across pieces).
TEST(Server, SkipSpecialTokensRemovesGroundingSpans) {
  Scripted model({"<|ref|>title<|/ref|><|det|>[[1, 2, ", "3, 4]]<|/det|>\n# Hello\n\n<|ref|>text", "<|/ref|><|det|>[[5, 6, 7, 8]]<|/det|>\nWorld"});
  RunningServer s(model);
  json body = chat_body("small.png", "tiny", 5);
  body["skip_special_tokens"] = true;
  auto res = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"], "# Hello\n\nWorld");
  body["stream"] = true;
  auto streamed = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(streamed);
  std::string text;
  for (const std::string& e : sse_events(streamed->body))
    if (e != "[DONE]") text += json::parse(e).value("/choices/0/delta/content"_json_pointer, std::string());
  EXPECT_EQ(text, "# Hello\n\nWorld");
  body["skip_special_tokens"] = false;
  body["stream"] = false;
  res = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
  EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"],
            "<|ref|>title<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\n# Hello\n\n<|ref|>text<|/ref|><|det|>[[5, 6, 7, 8]]<|/det|>\nWorld");
}

// /v1/ocr: an `image` region becomes a crop with its id in the markdown, its corners in page pixels
// and, when asked, its JPEG as a data URL.
TEST(Server, OcrEndpointCropsImageRegions) {
  Scripted model({"<|ref|>image<|/ref|><|det|>[[0, 0, 499, 999]]<|/det|>\n", "<|ref|>text<|/ref|><|det|>[[500, 0, 999, 999]]<|/det|>\nHi"});
  RunningServer s(model);
  httplib::MultipartFormDataItems form = {{"file", image_bytes("wide.png"), "wide.png", "image/png"},
                                          {"include_image_base64", "true", "", ""}};
  auto res = s.client().Post("/v1/ocr", form);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json page = json::parse(res->body)["pages"][0];
  const Image wide = load_image(kData + "/images/wide.png");
  EXPECT_EQ(page["markdown"], "![](img-0.jpeg)\n\n\nHi");  // an image page: no blank-line collapse (official)
  ASSERT_EQ(page["images"].size(), 1u);
  const json& im = page["images"][0];
  EXPECT_EQ(im["id"], "img-0.jpeg");
  EXPECT_EQ(im["top_left_x"], 0);
  EXPECT_EQ(im["bottom_right_x"], int(499.0 / 999 * wide.width));
  EXPECT_EQ(im["bottom_right_y"], wide.height);
  const std::string url = im["image_base64"];
  ASSERT_EQ(url.rfind("data:image/jpeg;base64,", 0), 0u);
  const std::string jpeg = decode_base64(url.substr(23));
  const Image crop_back = decode_image(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), "crop");
  EXPECT_EQ(crop_back.width, int(499.0 / 999 * wide.width));
  EXPECT_EQ(crop_back.height, wide.height);
  EXPECT_EQ(page["dimensions"]["width"], wide.width);
  EXPECT_TRUE(page["dimensions"]["dpi"].is_null());
  ASSERT_EQ(page["blocks"].size(), 2u);
  EXPECT_EQ(page["blocks"][1]["label"], "text");
  EXPECT_EQ(page["blocks"][1]["boxes"][0][0], int(500.0 / 999 * wide.width));
}

// file:// URLs: read under --allow-files only (after resolving links and ".."), refused elsewhere.
TEST(Server, FileUrlsOnlyUnderTheAllowedFolder) {
  Scripted model({"ok"});
  ServerOptions so;
  so.allow_files = kData + "/images";
  RunningServer s(model, so);
  auto ask = [&](const std::string& url) {
    json body = chat_body("small.png", "tiny", 5);
    body["messages"][0]["content"][0]["image_url"]["url"] = url;
    return s.client().Post("/v1/chat/completions", body.dump(), "application/json");
  };
  auto inside = ask("file://" + kData + "/images/small.png");
  ASSERT_TRUE(inside);
  EXPECT_EQ(inside->status, 200) << inside->body;
  for (const std::string& outside : {kData + "/images/../tiny_config_resolved.json", std::string("/etc/passwd"),
                                     kData + "/images/no-such.png"}) {
    auto res = ask("file://" + outside);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << outside;
    EXPECT_NE(error_message(res->body).find("not a file under the allowed folder"), std::string::npos) << res->body;
  }
  EXPECT_EQ(model.requests().size(), 1u);
}

// GET / in headless Chromium (driven by puppeteer-core, installed from npm into the build's testdata
// on first use): upload an image with the file input, the streamed text appears, the markdown is
// rendered, the boxes are drawn on the page; the screenshot is left as server_web_page.png in the
// test's working directory.
TEST(Server, WebPageInHeadlessChromium) {
  if (!have("chromium") || !have("node") || !have("npm")) GTEST_SKIP() << "needs chromium, node and npm";
  const std::string npm_dir = std::filesystem::path(DSOCR_TEST_MODEL).parent_path().string() + "/npm-puppeteer";
  if (!std::filesystem::exists(npm_dir + "/node_modules/puppeteer-core") &&
      std::system(("mkdir -p " + npm_dir + " && PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix " + npm_dir +
                   " --no-audit --no-fund --silent puppeteer-core@22 >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "npm install puppeteer-core failed (no registry?)";
  Scripted model({"<|ref|>title<|/ref|><|det|>[[100, 80, 900, 160]]<|/det|>\n# Hello ", "dsocr\n\n",
                  "<|ref|>text<|/ref|><|det|>[[100, 200, 900, 400], [100, 420, 500, 500]]<|/det|>\nSome **bold** text."});
  RunningServer s(model);
  const std::string dir = std::filesystem::temp_directory_path() / ("dsocr_web_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string shot = (std::filesystem::current_path() / "server_web_page.png").string();
  {
    std::ofstream js(dir + "/drive.js");
    js << R"JS(
const puppeteer = require(process.argv[2] + "/node_modules/puppeteer-core");
const [url, image, shot, pdf] = process.argv.slice(3);
(async () => {
  const browser = await puppeteer.launch({executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]});
  const page = await browser.newPage();
  await page.setViewport({width: 1200, height: 900});
  await page.goto(url);
  await page.select("#mode", "base");
  await page.select("#task", "ocr");
  await page.type("#max_tokens", "24");
  await (await page.$("#file")).uploadFile(image);
  await page.waitForSelector("body[data-done]", {timeout: 30000});
  const out = await page.evaluate(() => ({raw: document.getElementById("raw").textContent,
    markdown: document.getElementById("markdown").innerHTML, boxes: document.body.dataset.boxes,
    canvases: document.querySelectorAll("#pages canvas").length, status: document.getElementById("status").textContent}));
  await page.screenshot({path: shot, fullPage: true});
  if (pdf) {  // a PDF goes through /v1/ocr as NDJSON; each page comes with its image and pixel boxes
    await page.evaluate(() => { delete document.body.dataset.done; });
    await (await page.$("#file")).uploadFile(pdf);
    await page.waitForSelector("body[data-done]", {timeout: 30000});
    out.pdf = await page.evaluate(() => ({boxes: document.body.dataset.boxes,
      canvases: document.querySelectorAll("#pages canvas").length, status: document.getElementById("status").textContent}));
  }
  console.log(JSON.stringify(out));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
)JS";
  }
  std::string pdf;
  if (pdf_supported()) {
    pdf = dir + "/two.pdf";
    ImagePdfWriter w(pdf, 90, 144);
    w.add_page(load_image(kData + "/images/small.png"));
    w.add_page(load_image(kData + "/images/square.png"));
    w.finish();
  }
  const std::string cmd = "node " + dir + "/drive.js " + npm_dir + " http://127.0.0.1:" + std::to_string(s.port()) + "/ " +
                          kData + "/images/doc.png " + shot + " " + pdf + " > " + dir + "/out.json 2>" + dir + "/err.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file_text(dir + "/err.txt");
  const json out = json::parse(read_file_text(dir + "/out.json"));
  EXPECT_EQ(out["raw"], "<|ref|>title<|/ref|><|det|>[[100, 80, 900, 160]]<|/det|>\n# Hello dsocr\n\n"
                        "<|ref|>text<|/ref|><|det|>[[100, 200, 900, 400], [100, 420, 500, 500]]<|/det|>\nSome **bold** text.");
  EXPECT_NE(out["markdown"].get<std::string>().find("<h1>Hello dsocr</h1>"), std::string::npos) << out["markdown"];
  EXPECT_NE(out["markdown"].get<std::string>().find("<b>bold</b>"), std::string::npos);
  EXPECT_EQ(out["boxes"], "3");
  EXPECT_EQ(out["canvases"], 1);
  EXPECT_NE(out["status"].get<std::string>().find("3 boxes"), std::string::npos) << out["status"];
  if (!pdf.empty()) {
    EXPECT_EQ(out["pdf"]["canvases"], 2);
    EXPECT_EQ(out["pdf"]["boxes"], "6");
    EXPECT_NE(out["pdf"]["status"].get<std::string>().find("2 page(s), 6 boxes"), std::string::npos) << out["pdf"];
    ASSERT_EQ(model.requests().size(), 3u);
    EXPECT_EQ(model.requests()[1].generation.max_new_tokens, 24);
    EXPECT_EQ(model.requests()[1].generation.ngram.ngram_size, 20) << "PDF pages get the PDF guard";
  }
  ASSERT_GE(model.requests().size(), 1u);
  EXPECT_EQ(model.requests()[0].mode, Mode::Base);
  EXPECT_EQ(model.requests()[0].generation.max_new_tokens, 24);
  EXPECT_EQ(model.requests()[0].prompt, "<image>\n<|grounding|>OCR this image.");
  EXPECT_GT(std::filesystem::file_size(shot), 10000u);
  std::cout << "screenshot: " << shot << "\n";
  std::filesystem::remove_all(dir);
}
