// The language model against the golden LM data (golden README §F): the document image's prompt in Base
// and Gundam-6 modes, with the golden vision features in place of the <image> rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "lm/decoder.h"
#include "lm/sampling.h"

using namespace dsocr;

namespace {

constexpr float kLogitTol = 5e-4f;         // logits up to ~60, float32 noise ~2e-5 (README §T)
constexpr float kActivationTol = 1e-4f;    // hidden states, router probabilities (README §T)
constexpr int kGreedySteps = 24;

template <typename T>
std::vector<T> values(const TensorView& t) {
  std::vector<T> out(size_t(t.numel()));
  std::memcpy(out.data(), t.data, t.nbytes);
  return out;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The internals of the last `rows` rows of a step, from the decoder's observer: arrays row-major,
// [layers][rows][hidden] for the residuals, [moe layers][rows][...] for the router.
struct LastRowsProbe : TensorObserver {
  int rows = 8;
  std::vector<float> residual_after_layer, router_probs, router_topk_weights, final_norm_hidden, logits;
  std::vector<int32_t> router_topk_ids;

  template <typename T>
  void keep_tail(const T* data, std::span<const int64_t> shape, std::vector<T>& into) const {
    const int64_t n = shape[0], width = shape[1], keep = std::min<int64_t>(rows, n);
    into.insert(into.end(), data + (n - keep) * width, data + n * width);
  }
  static bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
  }
  void on_tensor(std::string_view name, const float* data, std::span<const int64_t> shape) override {
    if (name.starts_with("lm.layer") && ends_with(name, ".out")) keep_tail(data, shape, residual_after_layer);
    else if (ends_with(name, ".router_probs")) keep_tail(data, shape, router_probs);
    else if (ends_with(name, ".topk_weights")) keep_tail(data, shape, router_topk_weights);
    else if (name == "lm.final_norm") keep_tail(data, shape, final_norm_hidden);
    else if (name == "lm.logits") keep_tail(data, shape, logits);
  }
  void on_ids(std::string_view name, const int32_t* data, std::span<const int64_t> shape) override {
    if (ends_with(name, ".topk_ids")) keep_tail(data, shape, router_topk_ids);
  }
};

// The tiny model and decoder are shared by all tests of this file (loading is the slow part).
class DecoderGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ckpt_ = new Checkpoint(DSOCR_TEST_MODEL);
    pool_ = new ThreadPool(2);
    backend_ = new CpuBackend(*pool_);
    decoder_ = new Decoder(*ckpt_, *backend_);
  }
  static void TearDownTestSuite() {
    delete decoder_;
    delete backend_;
    delete pool_;
    delete ckpt_;
  }

  struct Case {
    std::unique_ptr<SafetensorsFile> golden;
    std::vector<int32_t> ids;
    std::vector<float> embeddings;  // [S, hidden]
    int seq() const { return int(ids.size()); }
  };

  // embed_tokens rows with the <image> rows replaced, in order, by the golden vision features.
  static Case load(const std::string& mode) {
    Case c;
    c.golden = std::make_unique<SafetensorsFile>(std::string(DSOCR_TEST_DATA) + "/lm/doc_" + mode + ".safetensors");
    c.ids = values<int32_t>(c.golden->get("input_ids"));
    SafetensorsFile features(std::string(DSOCR_TEST_DATA) + "/encoder/features.safetensors");
    const std::vector<float> image = values<float>(features.get("doc." + mode));
    const int64_t hidden = decoder_->config().hidden;
    c.embeddings.resize(c.ids.size() * size_t(hidden));
    decoder_->embed(c.ids, c.embeddings.data());
    size_t next = 0;
    for (size_t i = 0; i < c.ids.size(); ++i)
      if (c.ids[i] == ckpt_->config().image_token_id) {
        if ((next + 1) * size_t(hidden) > image.size()) break;  // the count check below fails
        std::copy_n(image.data() + next * size_t(hidden), hidden, c.embeddings.data() + i * size_t(hidden));
        ++next;
      }
    EXPECT_EQ(next * size_t(hidden), image.size()) << "every feature row replaces one <image> id";
    return c;
  }

  std::vector<float> embed_one(int32_t id) const {
    std::vector<float> e(size_t(decoder_->config().hidden));
    decoder_->embed(std::span<const int32_t>(&id, 1), e.data());
    return e;
  }

  void check_prefill(const std::string& mode);
  void check_greedy(const std::string& mode);

  static Checkpoint* ckpt_;
  static ThreadPool* pool_;
  static CpuBackend* backend_;
  static Decoder* decoder_;
};

Checkpoint* DecoderGolden::ckpt_ = nullptr;
ThreadPool* DecoderGolden::pool_ = nullptr;
CpuBackend* DecoderGolden::backend_ = nullptr;
Decoder* DecoderGolden::decoder_ = nullptr;

void DecoderGolden::check_prefill(const std::string& mode) {
  SCOPED_TRACE(mode);
  Case c = load(mode);
  const LmConfig& cfg = decoder_->config();
  const int64_t hidden = cfg.hidden, vocab = cfg.vocab_size;
  KvCache cache = decoder_->make_cache(c.seq());
  LastRowsProbe probe;  // the last 8 positions, like the golden tensors
  StepBatch batch;
  batch.begin_sequence(0, cache.block_table(), cache.block_size());
  for (int r = 0; r < c.seq(); ++r) {
    batch.add_feature(c.embeddings.data() + r * hidden);
    if (r >= c.seq() - 8) batch.want_logits();
  }
  std::vector<float> logits8(size_t(8 * vocab));
  decoder_->forward(batch, cache.storage(), logits8.data(), &probe);
  cache.commit(c.seq());
  const std::vector<float> last(logits8.end() - vocab, logits8.end());
  EXPECT_EQ(cache.size(), c.seq());
  EXPECT_EQ(probe.logits, logits8);

  const auto residual = values<float>(c.golden->get("residual_after_layer_last8"));
  ASSERT_EQ(residual.size(), probe.residual_after_layer.size());
  for (int l = 0; l < cfg.layers; ++l)
    EXPECT_LT(max_abs_diff(residual.data() + l * 8 * hidden, probe.residual_after_layer.data() + l * 8 * hidden,
                           size_t(8 * hidden)),
              kActivationTol)
        << "residual after layer " << l;

  const auto probs = values<float>(c.golden->get("router_probs_last8"));
  ASSERT_EQ(probs.size(), probe.router_probs.size());
  EXPECT_LT(max_abs_diff(probs.data(), probe.router_probs.data(), probs.size()), kActivationTol);
  EXPECT_EQ(values<int32_t>(c.golden->get("router_topk_ids_last8")), probe.router_topk_ids);
  const auto weights = values<float>(c.golden->get("router_topk_weights_last8"));
  ASSERT_EQ(weights.size(), probe.router_topk_weights.size());
  EXPECT_LT(max_abs_diff(weights.data(), probe.router_topk_weights.data(), weights.size()), kActivationTol);

  const auto final_hidden = values<float>(c.golden->get("final_norm_hidden_last8"));
  ASSERT_EQ(final_hidden.size(), probe.final_norm_hidden.size());
  EXPECT_LT(max_abs_diff(final_hidden.data(), probe.final_norm_hidden.data(), final_hidden.size()), kActivationTol);

  const auto last_row = values<float>(c.golden->get("prefill_logits_last_row"));
  ASSERT_EQ(last_row.size(), size_t(vocab));
  EXPECT_LT(max_abs_diff(last_row.data(), last.data(), last.size()), kLogitTol);
  EXPECT_EQ(std::vector<float>(probe.logits.end() - vocab, probe.logits.end()), last) << "probe row 7 = last logits";

  const TensorView head = c.golden->get("prefill_logits_last8_head");  // [8, 8192]
  const auto head_values = values<float>(head);
  const int64_t cols = head.dim(1);
  for (int r = 0; r < 8; ++r)
    EXPECT_LT(max_abs_diff(head_values.data() + r * cols, probe.logits.data() + r * vocab, size_t(cols)), kLogitTol)
        << "row " << r;
}

// 24 greedy steps with the cache; every few steps a full recompute without cache must give the same logits.
void DecoderGolden::check_greedy(const std::string& mode) {
  SCOPED_TRACE(mode);
  Case c = load(mode);
  const int64_t hidden = decoder_->config().hidden, vocab = decoder_->config().vocab_size;
  const auto golden_tokens = values<int32_t>(c.golden->get("greedy_tokens_cached"));
  const auto golden_margins = values<float>(c.golden->get("greedy_margins_cached"));
  ASSERT_EQ(golden_tokens, values<int32_t>(c.golden->get("greedy_tokens_nocache")));

  KvCache cache = decoder_->make_cache(c.seq() + kGreedySteps);
  std::vector<float> logits(static_cast<size_t>(vocab)), recomputed(static_cast<size_t>(vocab));
  decoder_->forward(c.embeddings.data(), c.seq(), cache, logits.data());
  std::vector<int32_t> tokens;
  std::vector<float> sequence = c.embeddings;  // for the no-cache recomputes
  for (int step = 0; step < kGreedySteps; ++step) {
    if (step == 1 || step == 5 || step == kGreedySteps - 1) {
      KvCache fresh = decoder_->make_cache(int(sequence.size() / size_t(hidden)));
      decoder_->forward(sequence.data(), int(sequence.size() / size_t(hidden)), fresh, recomputed.data());
      EXPECT_LT(max_abs_diff(logits.data(), recomputed.data(), logits.size()), kLogitTol) << "step " << step;
    }
    const TopTwo top = top_two(logits);
    EXPECT_EQ(top.id, argmax(logits));
    EXPECT_NEAR(top.margin(), golden_margins[size_t(step)], kLogitTol) << "step " << step;
    tokens.push_back(top.id);
    const std::vector<float> e = embed_one(top.id);
    sequence.insert(sequence.end(), e.begin(), e.end());
    if (step + 1 < kGreedySteps) decoder_->forward(e.data(), 1, cache, logits.data());
  }
  EXPECT_EQ(tokens, golden_tokens);
  EXPECT_EQ(cache.size(), c.seq() + kGreedySteps - 1);
}

TEST_F(DecoderGolden, PrefillBase) { check_prefill("base"); }
TEST_F(DecoderGolden, PrefillGundam6) { check_prefill("gundam6"); }
TEST_F(DecoderGolden, GreedyBase) { check_greedy("base"); }
TEST_F(DecoderGolden, GreedyGundam6) { check_greedy("gundam6"); }

// Prefill in uneven chunks (the later chunks attend to cached keys) equals one pass; all_logits rows equal
// the last-row logits of the corresponding prefixes.
TEST_F(DecoderGolden, ChunkedPrefillEqualsOnePass) {
  Case c = load("base");
  const int64_t hidden = decoder_->config().hidden, vocab = decoder_->config().vocab_size;
  KvCache whole = decoder_->make_cache(c.seq());
  std::vector<float> expected(static_cast<size_t>(vocab));
  decoder_->forward(c.embeddings.data(), c.seq(), whole, expected.data());

  KvCache chunked = decoder_->make_cache(c.seq());
  const int split[] = {0, 100, 101, 275, c.seq()};
  std::vector<float> all;
  for (int i = 0; i + 1 < 5; ++i) {
    const int n = split[i + 1] - split[i];
    all.assign(size_t(n * vocab), 0.0f);
    decoder_->forward(c.embeddings.data() + split[i] * hidden, n, chunked, nullptr, all.data());
  }
  EXPECT_EQ(chunked.size(), c.seq());
  EXPECT_LT(max_abs_diff(all.data() + (all.size() - size_t(vocab)), expected.data(), size_t(vocab)), kLogitTol);

  // Row 0 of the last chunk predicts from the prefix of length 276.
  KvCache prefix = decoder_->make_cache(276);
  std::vector<float> prefix_logits(static_cast<size_t>(vocab));
  decoder_->forward(c.embeddings.data(), 276, prefix, prefix_logits.data());
  EXPECT_LT(max_abs_diff(all.data(), prefix_logits.data(), size_t(vocab)), kLogitTol);
}

// Prompts longer than the MLP pass size (2048 rows) run their MLPs in several passes; the result must
// not depend on it: compare with the same prompt prefilled in two chunks that each fit one pass.
TEST_F(DecoderGolden, LongPromptEqualsTwoChunks) {
  const int64_t hidden = decoder_->config().hidden, vocab = decoder_->config().vocab_size;
  const int n = 2200;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[size_t(i)] = int32_t((int64_t(i) * 7919 + 13) % 120000);
  std::vector<float> x(size_t(n * hidden));
  decoder_->embed(ids, x.data());

  std::vector<float> whole(static_cast<size_t>(vocab)), chunked(static_cast<size_t>(vocab));
  KvCache a = decoder_->make_cache(n);
  decoder_->forward(x.data(), n, a, whole.data());
  KvCache b = decoder_->make_cache(n);
  decoder_->forward(x.data(), 1100, b, nullptr);
  decoder_->forward(x.data() + 1100 * hidden, n - 1100, b, chunked.data());
  EXPECT_LT(max_abs_diff(whole.data(), chunked.data(), size_t(vocab)), kLogitTol);
}

// A bf16 cache rounds K and V (relative error <= 2^-9); the logits move a little, the first tokens not.
TEST_F(DecoderGolden, Bf16CacheStaysClose) {
  Case c = load("base");
  const int64_t vocab = decoder_->config().vocab_size;
  KvCache cache = decoder_->make_cache(c.seq() + 4, KvPrecision::BF16);
  EXPECT_EQ(cache.reserved_bytes(), size_t(2 * 3 * (c.seq() + 4) * 64 * 2));
  std::vector<float> logits(static_cast<size_t>(vocab));
  decoder_->forward(c.embeddings.data(), c.seq(), cache, logits.data());
  const auto golden = values<float>(c.golden->get("prefill_logits_last_row"));
  const float diff = max_abs_diff(golden.data(), logits.data(), size_t(vocab));
  EXPECT_GT(diff, 0.0f) << "bf16 rounding must show";
  EXPECT_LT(diff, 0.1f);  // logits up to ~46; bf16 K/V move them by ~1.3e-2 here
  EXPECT_EQ(argmax(logits), values<int32_t>(c.golden->get("greedy_tokens_cached"))[0]);
}

TEST_F(DecoderGolden, RejectsWhatDoesNotFit) {
  const int64_t hidden = decoder_->config().hidden;
  std::vector<float> x(size_t(4 * hidden), 0.5f);
  KvCache cache = decoder_->make_cache(3);
  EXPECT_THROW(decoder_->forward(x.data(), 4, cache, nullptr), Error);
  EXPECT_EQ(cache.size(), 0);
  decoder_->forward(x.data(), 3, cache, nullptr);
  EXPECT_EQ(cache.size(), 3);
  EXPECT_THROW(decoder_->forward(x.data(), 1, cache, nullptr), Error);
  EXPECT_THROW(decoder_->forward(x.data(), 0, cache, nullptr), Error);
  cache.truncate(1);
  EXPECT_EQ(cache.size(), 1);
  EXPECT_THROW(cache.truncate(2), Error);
  EXPECT_THROW(decoder_->make_cache(0), Error);
  EXPECT_THROW(decoder_->make_cache(decoder_->config().max_position_embeddings + 1), Error);

  const int32_t bad[] = {0, decoder_->config().vocab_size};
  EXPECT_THROW(decoder_->embed(bad, x.data()), Error);
  const int32_t negative[] = {-1};
  EXPECT_THROW(decoder_->embed(negative, x.data()), Error);
}

// Decode reads each weight it uses once: attention, the selected experts, router, shared expert, lm_head.
TEST_F(DecoderGolden, CountsWeightBytesOfOneDecodeStep) {
  const LmConfig& cfg = decoder_->config();
  const int64_t h = cfg.hidden, qd = int64_t(cfg.heads) * cfg.head_dim;
  std::vector<float> x(size_t(h), 0.25f);
  KvCache cache = decoder_->make_cache(2);
  const uint64_t layers_only = decoder_->forward(x.data(), 1, cache, nullptr).weight_bytes;  // no logits: no lm_head
  std::vector<float> logits(size_t(cfg.vocab_size));
  const uint64_t with_head = decoder_->forward(x.data(), 1, cache, logits.data()).weight_bytes;
  int64_t params = 0;
  for (int l = 0; l < cfg.layers; ++l) {
    params += 4 * qd * h;
    if (!cfg.is_moe_layer(l)) {
      params += 3 * int64_t(cfg.intermediate) * h;
    } else {
      params += int64_t(cfg.n_routed_experts) * h;                              // router
      params += int64_t(cfg.experts_per_token) * 3 * cfg.moe_intermediate * h;  // selected experts
      params += 3 * int64_t(cfg.shared_intermediate()) * h;
    }
  }
  EXPECT_EQ(layers_only, uint64_t(params) * 2);  // bf16
  EXPECT_EQ(with_head, uint64_t(params + cfg.vocab_size * h) * 2);
}

}  // namespace

TEST(Sampling, ArgmaxTakesLowestIdOnTiesAndSkipsNan) {
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 2, 3}), 1);
  EXPECT_EQ(argmax(std::vector<float>{nan, -5, -7}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-inf, -inf, 0}), 2);
  EXPECT_THROW(argmax(std::vector<float>{}), Error);
  EXPECT_THROW(argmax(std::vector<float>{nan, -inf}), Error);
  const TopTwo t = top_two(std::vector<float>{0.5f, 4.0f, 2.5f, 4.0f});
  EXPECT_EQ(t.id, 1);
  EXPECT_FLOAT_EQ(t.margin(), 0.0f);
  EXPECT_FLOAT_EQ(top_two(std::vector<float>{0.5f, 4.0f, 2.5f}).margin(), 1.5f);
}

TEST(Sampling, TemperatureAndTopP) {
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f, -std::numeric_limits<float>::infinity()};
  Sampler greedy({0.0f, 1.0f, 7});
  EXPECT_EQ(greedy.next(logits), 1);
  Sampler nucleus({1.0f, 0.01f, 7});  // only the most likely token survives
  for (int i = 0; i < 20; ++i) EXPECT_EQ(nucleus.next(logits), 1);

  // Frequencies follow softmax(logits / T); the banned (-inf) token never comes; a seed reproduces.
  Sampler a({1.0f, 1.0f, 42}), b({1.0f, 1.0f, 42});
  int counts[4] = {0, 0, 0, 0};
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    const int32_t x = a.next(logits);
    EXPECT_EQ(x, b.next(logits));
    ++counts[x];
  }
  EXPECT_EQ(counts[3], 0);
  const double z = 1 + std::exp(2.0) + std::exp(1.0);
  EXPECT_NEAR(counts[1] / double(draws), std::exp(2.0) / z, 0.015);
  EXPECT_NEAR(counts[0] / double(draws), 1 / z, 0.015);

  // top_p 0.8: {1 (0.665), 2 (0.245)} reach it, token 0 (0.09) is cut.
  Sampler cut({1.0f, 0.8f, 3});
  for (int i = 0; i < 2000; ++i) EXPECT_NE(cut.next(logits), 0);
  EXPECT_THROW(Sampler({1.0f, 0.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, 1.5f, 0}), Error);
}
