#include "io/synth_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "io/model_files.h"

namespace fs = std::filesystem;

namespace dsocr {

namespace {

// How a tensor is initialised: value = mean + std * (uniform with unit variance). Mirrors the
// golden generator's scales (README §A.3) so activations stay O(1) through the full-size model.
struct Init {
  float mean = 0, std = 0;
};

Init init_for(const TensorSpec& t) {
  const std::string& n = t.name;
  auto ends = [&](const char* s) { return n.size() >= std::strlen(s) && n.compare(n.size() - std::strlen(s), std::string::npos, s) == 0; };
  auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
  const bool is_norm = has("norm") || has("neck.1.") || has("neck.3.") || has("layer_norm") || has("pre_layrnorm");
  if (is_norm && ends(".weight")) return {1.0f, 0.1f};
  if (ends(".bias")) return {0.0f, 0.02f};
  if (has("rel_pos_")) return {0.0f, 0.15f};
  if (ends("pos_embed") || has("position_embedding")) return {0.0f, 0.5f};
  if (has("class_embedding") || has("image_newline") || has("view_seperator") || has("embed_tokens")) return {0.0f, 1.0f};
  if (has(".mlp.gate.weight")) return {0.0f, 0.25f};
  int64_t fan_in = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) fan_in *= t.shape[i];
  const bool out_proj = has("attn.proj") || has("lin2") || has("fc2") || has("out_proj") || has("o_proj") || has("down_proj");
  const float g = out_proj ? 0.5f : 1.0f;
  if (has("lm_head")) return {0.0f, 0.25f / std::sqrt(float(fan_in))};
  return {0.0f, g / std::sqrt(float(fan_in))};
}

// splitmix64: fast, seedable per chunk so that threads produce the same bytes regardless of count.
inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform values with the init's mean and variance, written as bf16 (truncated: the low bits of a
// random value carry no meaning). 16 independent xorshift64 lanes so the loop vectorises: the
// writer must keep up with the disk.
void fill_bf16(uint16_t* dst, size_t n, Init init, uint64_t seed) {
  constexpr size_t kLanes = 16;
  uint64_t state[kLanes];
  for (auto& s : state) s = splitmix(seed) | 1;
  const float scale = init.std * 1.7320508f / 32768.0f;  // uniform on [-sqrt3, sqrt3] has unit variance
  auto value = [&](uint64_t x, int k) {
    const float f = init.mean + scale * float(int(uint16_t(x >> (16 * k))) - 32768);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return uint16_t(bits >> 16);
  };
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    for (size_t l = 0; l < kLanes; ++l) {
      uint64_t x = state[l];
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      state[l] = x;
      for (int k = 0; k < 4; ++k) dst[i + size_t(k) * kLanes + l] = value(x, k);
    }
  }
  for (uint64_t x = splitmix(seed); i < n; ++i) dst[i] = value(x, int(i % 4));
}

}  // namespace

SynthResult write_synthetic_checkpoint(const SynthOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.out_dir.empty()) fail("synth-checkpoint: --out is required");
  std::string config_text;
  std::string tokenizer = opt.tokenizer;
  if (opt.like.empty()) {
    config_text = official_config_json();
  } else if (fs::is_directory(opt.like)) {
    config_text = read_file_text((fs::path(opt.like) / "config.json").string());
    if (tokenizer.empty()) tokenizer = resolve_link_file((fs::path(opt.like) / "tokenizer.json").string());
  } else {
    config_text = read_file_text(opt.like);
  }
  const ModelConfig config = parse_model_config(config_text, opt.like.empty() ? "official config" : opt.like);
  if (tokenizer.empty()) fail("synth-checkpoint: give --tokenizer FILE (or --like a model directory that has one)");
  if (!fs::is_regular_file(tokenizer)) fail("{}: tokenizer file not found", tokenizer);

  const fs::path dir(opt.out_dir);
  fs::create_directories(dir);
  const std::vector<TensorSpec> layout = checkpoint_layout(config);

  // Header: the reference writer's order (dtype descending, then name), compact JSON, space padded.
  struct Placed {
    const TensorSpec* spec;
    DType dtype;
    uint64_t begin, end;
  };
  std::vector<Placed> placed;
  for (const auto& t : layout) placed.push_back({&t, t.name == kPositionIdsName ? DType::I64 : DType::BF16, 0, 0});
  std::stable_sort(placed.begin(), placed.end(), [](const Placed& a, const Placed& b) {
    if (a.dtype != b.dtype) return a.dtype == DType::I64;
    return a.spec->name < b.spec->name;
  });
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  nlohmann::ordered_json weight_map;
  uint64_t offset = 0;
  const std::string shard = "model-00001-of-000001.safetensors";
  for (auto& p : placed) {
    int64_t n = 1;
    for (int64_t d : p.spec->shape) n *= d;
    p.begin = offset;
    p.end = offset + uint64_t(n) * dtype_size(p.dtype);
    offset = p.end;
    header[p.spec->name] = {{"dtype", std::string(dtype_name(p.dtype))}, {"shape", p.spec->shape},
                            {"data_offsets", {p.begin, p.end}}};
  }
  std::string htext = header.dump();
  htext.append((8 - htext.size() % 8) % 8, ' ');
  const uint64_t data_start = 8 + htext.size();
  const uint64_t file_size = data_start + offset;

  const fs::path weights = dir / shard;
  const std::string tmp = weights.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", tmp, std::strerror(errno));
  auto pwrite_all = [&](const void* buf, size_t n, uint64_t at) {
    const char* p = static_cast<const char*>(buf);
    while (n > 0) {
      ssize_t w = ::pwrite(fd, p, n, off_t(at));
      if (w <= 0) fail("{}: write failed: {}", tmp, std::strerror(errno));
      p += w;
      n -= size_t(w);
      at += uint64_t(w);
    }
  };
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(htext.size()) >> (8 * i));
  pwrite_all(len, 8, 0);
  pwrite_all(htext.data(), htext.size(), 8);
  if (::ftruncate(fd, off_t(file_size)) != 0) fail("{}: cannot size the file: {}", tmp, std::strerror(errno));

  // position_ids = arange (always written: it is tiny).
  for (const auto& p : placed) {
    if (p.dtype != DType::I64) continue;
    std::vector<int64_t> ids(size_t((p.end - p.begin) / 8));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t(i);
    pwrite_all(ids.data(), ids.size() * 8, data_start + p.begin);
  }

  if (!opt.sparse) {
    // Work items: 4 MiB chunks of every bf16 tensor, generated and written by all threads.
    struct Chunk {
      const Placed* p;
      uint64_t begin, end;  // byte range within the tensor
    };
    std::vector<Chunk> chunks;
    constexpr uint64_t kChunk = 4ull << 20;
    for (const auto& p : placed) {
      if (p.dtype != DType::BF16) continue;
      for (uint64_t b = 0; b < p.end - p.begin; b += kChunk) chunks.push_back({&p, b, std::min(p.end - p.begin, b + kChunk)});
    }
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> done{0};
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex error_mutex;
    const int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    auto work = [&] {
      std::vector<uint16_t> buf(kChunk / 2);
      try {
        for (size_t i; !failed && (i = next++) < chunks.size();) {
          const Chunk& c = chunks[i];
          const size_t n = size_t(c.end - c.begin) / 2;
          uint64_t seed = opt.seed * 0x100000001b3ull ^ std::hash<std::string>{}(c.p->spec->name) ^ (c.begin * 0x9e37ull);
          fill_bf16(buf.data(), n, init_for(*c.p->spec), seed);
          pwrite_all(buf.data(), n * 2, data_start + c.p->begin + c.begin);
          done += n * 2;
        }
      } catch (const Error& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        failed = true;
        error = e.what();
      }
    };
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back(work);
    std::atomic<bool> finished{false};
    std::thread reporter;
    if (opt.progress) {
      reporter = std::thread([&] {
        while (!finished) {
          opt.progress(done, offset);
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
      });
    }
    work();
    for (auto& t : pool) t.join();
    finished = true;
    if (reporter.joinable()) {
      reporter.join();
      opt.progress(done, offset);
    }
    if (failed) {
      ::close(fd);
      fail("{}", error);
    }
  }
  if (::close(fd) != 0) fail("{}: close failed: {}", tmp, std::strerror(errno));
  fs::rename(tmp, weights);

  for (const auto& p : placed) weight_map[p.spec->name] = shard;
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", offset}};
  index["weight_map"] = weight_map;
  write_file_atomic((dir / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  write_file_atomic((dir / "config.json").string(), config_text);
  if (fs::absolute(tokenizer) != fs::absolute(dir / "tokenizer.json"))
    fs::copy_file(tokenizer, dir / "tokenizer.json", fs::copy_options::overwrite_existing);

  SynthResult r;
  r.bytes = file_size;
  r.tensors = int(placed.size());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace dsocr
