// Tokenizer throughput on one core: load time, encode and decode MB/s over a ~8 MB mixed document
// (prose, code, numbers, CJK, markdown tables, grounding output).
// Usage: bench_tokenizer path/to/tokenizer.json
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of this thread: on a busy machine it is a fairer measure than wall time.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Varied snippets; a running counter is spliced into each so that numbers and some words differ.
std::string mixed_document(size_t target_bytes) {
  const std::vector<std::string> snippets = {
      "The quarterly report shows that revenue grew by {}% while operating costs didn't change much. ",
      "In 1887, the committee's findings were published; they've since been cited {} times.\n\n",
      "def compute_{}(values: list[int]) -> int:\n    total = 0\n    for v in values:\n        total += v * 2\n    return total\n\n",
      "for (int i = 0; i < {}; ++i) {{ sum += data[i] >> 2; }}  // accumulate\n",
      "| Item | Qty | Price |\n|------|-----|-------|\n| Widget {} | 12 | $3.50 |\n| Gadget | 7 | $12.00 |\n\n",
      "深度学习模型在文档识别任务中表现出色，第{}页的结果与预期一致。",
      "日本語のテキストとカタカナ、そして漢字 {} 個。",
      "한국어 문장도 포함됩니다 {}. ",
      "<|ref|>title<|/ref|><|det|>[[{}, 198, 558, 230]]<|/det|>\n# R&D QUALITY IMPROVEMENT\n",
      "$$ \\frac{{a_{}}}{{b^2}} + \\sqrt{{x}} = \\int_0^1 f(t)\\,dt $$\n",
      "Visit https://example.com/path/{}?q=tokenizer&lang=en or mail info@example.org.\n",
      "  - item {}: ✓ done 🚀 (Größe: 12,5 cm; Ελληνικά; русский текст)\n",
      "<table><tr><td>{}</td><td>value</td></tr></table>\n",
  };
  std::string doc;
  doc.reserve(target_bytes + 256);
  for (size_t counter = 0; doc.size() < target_bytes; ++counter) {
    const std::string& snippet = snippets[counter % snippets.size()];
    doc += fmt::format(fmt::runtime(snippet), counter * 7919 % 100003);
  }
  return doc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s tokenizer.json\n", argv[0]);
    return 2;
  }
  try {
    auto start = Clock::now();
    const dsocr::Tokenizer tokenizer = dsocr::Tokenizer::from_file(argv[1]);
    std::printf("load:   %.0f ms (vocab size %d)\n", seconds_since(start) * 1e3, tokenizer.vocab_size());

    const std::string doc = mixed_document(8 << 20);
    const double megabytes = double(doc.size()) / 1e6;

    start = Clock::now();
    const double cpu_start = thread_cpu_seconds();
    const std::vector<int32_t> ids = tokenizer.encode(doc);
    const double encode_cpu_s = thread_cpu_seconds() - cpu_start;
    const double encode_s = seconds_since(start);
    std::printf("encode: %.1f MB in %.3f s = %.1f MB/s wall, %.1f MB/s cpu (%zu tokens, %.2f bytes/token)\n",
                megabytes, encode_s, megabytes / encode_s, megabytes / encode_cpu_s, ids.size(),
                double(doc.size()) / double(ids.size()));

    start = Clock::now();
    const std::string text = tokenizer.decode(ids);
    const double decode_s = seconds_since(start);
    std::printf("decode: %.1f MB/s, round trip %s\n", megabytes / decode_s, text == doc ? "exact" : "DIFFERS");

    // Short prompts: the per-call cost that matters for interactive use.
    const std::string prompt = "\n<|grounding|>Convert the document to markdown.";
    constexpr int kCalls = 20000;
    start = Clock::now();
    size_t total = 0;
    for (int i = 0; i < kCalls; ++i) total += tokenizer.encode(prompt).size();
    std::printf("prompt: %.2f us per encode (%zu ids)\n", seconds_since(start) * 1e6 / kCalls, total / kCalls);
    return text == doc ? 0 : 1;
  } catch (const dsocr::Error& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
}
