#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#if DSOCR_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif
#include "core/error.h"
#include "text/prompt.h"

namespace dsocr {

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return int64_t(4) << 30;  // not Linux: assume 4 GiB
}

// SAM patch tokens of a view: its cost in a vision batch.
int view_cost(int size) { return (size / 16) * (size / 16); }

int page_cost(const PageViews& v) {
  return view_cost(v.global_size) + int(v.tiles.size()) * (v.tile_size ? view_cost(v.tile_size) : 0);
}

}  // namespace

int64_t default_kv_memory(int64_t full_context_bytes) {
  const int64_t bytes = std::min<int64_t>(available_memory_bytes() * 3 / 10, int64_t(8) << 30);
  return std::max(bytes, full_context_bytes);
}

// One page inside the engine.
struct Engine::Request {
  uint64_t id = 0;
  std::shared_ptr<PageJob> job;
  Image page;
  OcrRequest request;
  TextCallback on_text;

  // Prepared.
  PageViews views;
  std::vector<int32_t> ids;            // prompt, with image placeholders
  std::vector<int32_t> feature_row;    // per prompt position: its feature row, or -1
  std::unique_ptr<Buffer> features;    // [image tokens, hidden], the vision stage's output

  // Generation.
  SequenceState seq;
  std::unique_ptr<NgramGuard> guard;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDecoder> stream;
  std::vector<int32_t> output;
  int budget = 0;          // most tokens it may generate
  bool limited = false;    // the budget is max_new_tokens, not the context
  OcrResult result;
  Clock::time_point submitted, admitted, first_token;
};

Engine::Engine(const EngineOptions& options) : options_(options) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  int threads = options_.threads > 0 ? options_.threads : cores;
  if (options_.vision_threads < 0) options_.vision_threads = threads >= 8 ? threads / 4 : 0;
  options_.vision_threads = std::min(options_.vision_threads, threads - 1);
  options_.threads = threads;
  if (options_.lookahead < 0) options_.lookahead = options_.max_sequences;
  if (options_.max_sequences < 1) fail("engine: --parallel must be at least 1, got {}", options_.max_sequences);
  if (options_.token_budget < 16) fail("engine: the token budget must be at least 16, got {}", options_.token_budget);
  if (options_.vision_budget < 1) fail("engine: the vision budget must be positive, got {}", options_.vision_budget);

  if (options_.device == "cuda") {
#if DSOCR_HAVE_CUDA
    std::string why_not;
    model_backend_ = make_cuda_backend(&why_not);
    if (!model_backend_) fail("--device cuda: {}", why_not);
#else
    fail("--device cuda: this dsocr was built without the CUDA backend (no CUDA toolkit at build time)");
#endif
    options_.vision_threads = 0;  // one stream, driven by the model's thread
  } else if (options_.device != "cpu") {
    fail("--device {}: not a device (cpu or cuda)", options_.device);
  }
  model_pool_ = std::make_unique<ThreadPool>(threads - options_.vision_threads);
  if (!model_backend_)
    model_backend_ = std::make_unique<CpuBackend>(*model_pool_, CpuBackendOptions{options_.fast_gemm});
  if (options_.vision_threads > 0) {
    vision_pool_ = std::make_unique<ThreadPool>(options_.vision_threads);
    vision_backend_ = std::make_unique<CpuBackend>(*vision_pool_, CpuBackendOptions{options_.fast_gemm});
  }
  checkpoint_ = std::make_unique<Checkpoint>(options_.model_dir);
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_file(checkpoint_->tokenizer_path()));
  decoder_ = std::make_unique<Decoder>(*checkpoint_, *model_backend_);
  if (vision_backend_)
    vision_side_encoder_ = std::make_unique<VisionEncoder>(*checkpoint_, *vision_backend_);
  else
    model_side_encoder_ = std::make_unique<VisionEncoder>(*checkpoint_, *model_backend_);

  // The paged KV cache: as many blocks as the memory allows.
  const LmConfig& lm = decoder_->config();
  const KvLayout one_block{lm.layers, 1, options_.block_size, int64_t(lm.heads) * lm.head_dim, kv_dtype(options_.kv_precision)};
  const int64_t block_bytes = int64_t(one_block.bytes());
  const int64_t full_context = int64_t(KvBlockPool::blocks_for(lm.max_position_embeddings, options_.block_size)) * block_bytes;
  if (options_.kv_memory <= 0) options_.kv_memory = default_kv_memory(full_context);
  const int64_t blocks = options_.kv_memory / block_bytes;
  if (blocks < 1 || blocks > (int64_t(1) << 30))
    fail("engine: --kv-memory {} bytes holds {} blocks of {} bytes", options_.kv_memory, blocks, block_bytes);
  KvLayout layout = one_block;
  layout.blocks = int(blocks);
  kv_ = model_backend_->kv_storage(layout);
  blocks_ = std::make_unique<KvBlockPool>(int(blocks), options_.block_size);
  scheduler_ = std::make_unique<Scheduler>(SchedulerConfig{options_.max_sequences, options_.token_budget}, *blocks_);
  logits_ = model_backend_->buffer(size_t(options_.max_sequences) * size_t(lm.vocab_size));
  model_backend_->workspace().reserve(decoder_->workspace_bytes(options_.token_budget));
  stats_.kv_blocks_total = int(blocks);

  threads_.emplace_back([this] { prepare_loop(); });
  if (vision_backend_) threads_.emplace_back([this] { vision_loop(); });
  threads_.emplace_back([this] { model_loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_all();
  for (std::thread& t : threads_) t.join();
  // Whatever did not finish ends as cancelled.
  OcrResult cancelled;
  cancelled.status = RequestStatus::Cancelled;
  cancelled.stop = StopReason::Cancelled;
  for (auto* q : {&queued_, &prepared_, &encoded_})
    for (const RequestPtr& r : *q) r->job->finish(cancelled);
  for (auto& [seq, r] : active_) r->job->finish(cancelled);
}

void Engine::wake_all() {
  prepare_cv_.notify_all();
  vision_cv_.notify_all();
  model_cv_.notify_all();
}

std::string Engine::describe() const {
  return fmt::format("{}{}; {} pages at once, {} tokens per step, KV cache {:.2f} GiB ({} blocks of {} tokens, {})",
                     model_backend_->name(),
                     vision_backend_ ? fmt::format(" + vision {}", vision_backend_->name()) : std::string(" (vision between steps)"),
                     options_.max_sequences, options_.token_budget, double(options_.kv_memory) / double(1 << 30),
                     blocks_->total(), options_.block_size, options_.kv_precision == KvPrecision::F32 ? "f32" : "bf16");
}

std::shared_ptr<PageJob> Engine::submit(Image page, OcrRequest request, TextCallback on_text) {
  auto r = std::make_shared<Request>();
  r->page = std::move(page);
  r->request = std::move(request);
  r->on_text = std::move(on_text);
  r->submitted = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    r->id = next_id_++;
    r->job = std::make_shared<PageJob>(r->id);
    if (stop_) {
      OcrResult res;
      res.status = RequestStatus::EngineError;
      res.error = "the engine is shutting down";
      r->job->finish(res);
      return r->job;
    }
    queued_.push_back(r);
    ++stats_.queued;
  }
  // Cancelling wakes the threads that may hold the page; each drops it at its next look.
  r->job->on_cancel([this] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancel_pending_ = true;
    }
    wake_all();
  });
  prepare_cv_.notify_one();
  return r->job;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  EngineStats s = stats_;
  s.queued = int(queued_.size());
  s.prepared = int(prepared_.size());
  s.encoded = int(encoded_.size());
  return s;
}

// ---- prepare: views and prompt ids ---------------------------------------------------------------

void Engine::prepare_loop() {
  const LmConfig& lm = decoder_->config();
  for (;;) {
    RequestPtr r;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Bounded: no more pages prepared ahead than the lookahead.
      prepare_cv_.wait(lock, [&] {
        return stop_ || (!queued_.empty() && int(prepared_.size() + encoded_.size()) + encoding_ < options_.lookahead) ||
               (!queued_.empty() && queued_.front()->job->cancel_requested());
      });
      if (stop_) return;
      r = queued_.front();
      queued_.pop_front();
    }
    OcrResult& res = r->result;
    res.page_width = r->page.width;
    res.page_height = r->page.height;
    if (r->job->cancel_requested()) {
      complete(*r, RequestStatus::Cancelled);
      continue;
    }
    const auto t0 = Clock::now();
    try {
      const OcrRequest& q = r->request;
      r->views = make_views(r->page, q.mode, q.max_tiles);
      r->page = Image{};  // the views are all the model needs
      res.grid = r->views.grid;
      res.image_tokens = placeholder_count(r->views);
      r->ids = build_prompt_ids(*tokenizer_, q.prompt, res.image_tokens, lm.bos_token_id,
                                checkpoint_->config().image_token_id);
      res.prompt_tokens = int(r->ids.size());
      const GenerationOptions& g = q.generation;
      const int context = g.context_limit > 0 ? std::min(g.context_limit, lm.max_position_embeddings)
                                              : lm.max_position_embeddings;
      if (res.prompt_tokens >= context)
        fail("the prompt has {} tokens (image placeholders included) but the context holds {}; use a mode with fewer "
             "vision tokens (e.g. --mode base, or fewer --max-tiles)",
             res.prompt_tokens, context);
      r->budget = context - res.prompt_tokens;
      r->limited = g.max_new_tokens > 0 && g.max_new_tokens < r->budget;
      if (r->limited) r->budget = g.max_new_tokens;
      r->guard = std::make_unique<NgramGuard>(g.ngram);
      r->sampler = std::make_unique<Sampler>(g.sampling);
      r->stream = std::make_unique<StreamDecoder>(*tokenizer_);
      r->feature_row.assign(r->ids.size(), -1);
      int32_t next = 0;
      for (size_t i = 0; i < r->ids.size(); ++i)
        if (r->ids[i] == checkpoint_->config().image_token_id) r->feature_row[i] = next++;
      r->seq.prompt_tokens = res.prompt_tokens;
    } catch (const Error& e) {
      res.timings.preprocess = seconds(Clock::now() - t0);
      complete(*r, RequestStatus::BadInput, e.what());
      continue;
    } catch (const std::exception& e) {
      complete(*r, RequestStatus::EngineError, e.what());
      continue;
    }
    res.timings.preprocess = seconds(Clock::now() - t0);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      prepared_.push_back(r);
    }
    vision_cv_.notify_one();
    model_cv_.notify_one();
  }
}

// ---- vision: same-size views of several pages per batch ---------------------------------------------

std::vector<Engine::RequestPtr> Engine::take_vision_batch_locked() {
  std::vector<RequestPtr> batch;
  // Drop cancelled pages first.
  for (auto it = prepared_.begin(); it != prepared_.end();) {
    if ((*it)->job->cancel_requested()) {
      RequestPtr r = *it;
      it = prepared_.erase(it);
      r->result.stop = StopReason::Cancelled;
      r->job->finish([&] {
        OcrResult res = r->result;
        res.status = RequestStatus::Cancelled;
        return res;
      }());
      continue;
    }
    ++it;
  }
  // Enough is ahead of the model already.
  if (int(encoded_.size()) + model_pages_ >= options_.max_sequences + options_.lookahead) return batch;
  int cost = 0;
  while (!prepared_.empty()) {
    const int c = page_cost(prepared_.front()->views);
    if (!batch.empty() && cost + c > options_.vision_budget) break;
    cost += c;
    batch.push_back(prepared_.front());
    prepared_.pop_front();
  }
  encoding_ += int(batch.size());
  return batch;
}

void Engine::encode(std::vector<RequestPtr>& batch, VisionEncoder& encoder) {
  const auto t0 = Clock::now();
  Backend& be = encoder.backend();
  const int dim = encoder.n_embed();
  size_t views_encoded = 0;
  try {
    // Every view of every page, grouped by size: one SAM/CLIP batch per size.
    struct ViewRef {
      Request* r;
      int index;  // -1: the global view, else the tile
    };
    std::map<int, std::vector<ViewRef>> by_size;
    for (const RequestPtr& r : batch) {
      by_size[r->views.global_size].push_back({r.get(), -1});
      for (int t = 0; t < int(r->views.tiles.size()); ++t) by_size[r->views.tile_size].push_back({r.get(), t});
    }
    std::map<const Request*, const float*> global_out, tiles_out;
    std::vector<std::unique_ptr<Buffer>> outputs;
    for (auto& [size, views] : by_size) {
      std::vector<const Image*> images;
      for (const ViewRef& v : views) images.push_back(v.index < 0 ? &v.r->views.global : &v.r->views.tiles[size_t(v.index)]);
      const std::vector<float> pixels = normalise_views(images, size);
      views_encoded += images.size();
      std::unique_ptr<Buffer> in = be.buffer(pixels.size());
      be.from_host(in->data(), pixels.data(), pixels.size());
      const int n = features_per_side(size);
      outputs.push_back(be.buffer(views.size() * size_t(n) * n * size_t(dim)));
      float* out = outputs.back()->data();
      encoder.encode_views(in->data(), int(views.size()), size, out);
      // A page's tiles are consecutive in the batch; remember where its first tile / its global view is.
      for (size_t i = 0; i < views.size(); ++i) {
        const float* at = out + int64_t(i) * n * n * dim;
        if (views[i].index < 0) global_out[views[i].r] = at;
        else if (views[i].index == 0) tiles_out[views[i].r] = at;
      }
    }
    for (const RequestPtr& r : batch) {
      const PageViews& v = r->views;
      r->features = be.buffer(size_t(r->result.image_tokens) * size_t(dim));
      encoder.layout_page(global_out.at(r.get()), features_per_side(v.global_size),
                          v.has_tiles() ? tiles_out.at(r.get()) : nullptr, v.tile_size ? features_per_side(v.tile_size) : 0,
                          v.grid, r->features->data());
      r->views = PageViews{};  // pixels no longer needed
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    encoding_ -= int(batch.size());
    for (const RequestPtr& r : batch) {
      r->result.status = RequestStatus::EngineError;
      r->result.error = std::string("vision encoder: ") + e.what();
      r->job->finish(r->result);
      ++stats_.pages_failed;
    }
    batch.clear();
    return;
  }
  const double took = seconds(Clock::now() - t0);
  std::lock_guard<std::mutex> lock(mutex_);
  encoding_ -= int(batch.size());
  stats_.vision_seconds += took;
  ++stats_.vision_batches;
  stats_.vision_views += uint64_t(views_encoded);
  for (const RequestPtr& r : batch) {
    r->result.timings.encode = took;
    encoded_.push_back(r);
  }
}

void Engine::vision_loop() {
  for (;;) {
    std::vector<RequestPtr> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      vision_cv_.wait(lock, [&] {
        if (stop_) return true;
        batch = take_vision_batch_locked();
        return !batch.empty();
      });
      if (stop_) return;
    }
    encode(batch, *vision_side_encoder_);
    model_cv_.notify_one();
    prepare_cv_.notify_one();
  }
}

// ---- the language model ---------------------------------------------------------------------------------

// Model thread: a page leaves the scheduler; its blocks are free before anyone hears it finished.
void Engine::leave_scheduler(SequenceState* seq) {
  scheduler_->remove(seq);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.kv_blocks_used = blocks_->used();
}

void Engine::complete(Request& r, RequestStatus status, std::string error) {
  OcrResult& res = r.result;
  res.status = status;
  res.error = std::move(error);
  if (status == RequestStatus::Cancelled) res.stop = StopReason::Cancelled;
  res.tokens = r.output;
  res.preemptions = r.seq.preemptions;
  const auto now = Clock::now();
  if (r.first_token != Clock::time_point{}) {
    res.timings.prefill = seconds(r.first_token - r.admitted);
    res.timings.decode = seconds(now - r.first_token);
  }
  if (r.admitted != Clock::time_point{}) res.timings.queued = seconds(r.admitted - r.submitted) - res.timings.preprocess - res.timings.encode;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status == RequestStatus::Ok) ++stats_.pages_done;
    else if (status != RequestStatus::Cancelled) ++stats_.pages_failed;
  }
  r.features.reset();
  r.job->finish(res);
}

void Engine::sample(Request& r, const float* logits) {
  const int vocab = decoder_->config().vocab_size;
  // The guard and the sampler work on a host copy (a GPU backend's logits are device memory).
  thread_local std::vector<float> row;
  row.resize(size_t(vocab));
  model_backend_->to_host(row.data(), logits, size_t(vocab));
  if (r.first_token == Clock::time_point{}) r.first_token = Clock::now();
  if (r.request.generation.ngram.enabled) r.guard->apply(r.output, row.data(), vocab);
  const int32_t next = r.sampler->next(row);
  auto finish_with = [&](StopReason stop) {
    const std::string rest = r.stream->flush();
    r.result.text += rest;
    if (r.on_text && !rest.empty()) r.on_text(rest);
    r.result.stop = stop;
    leave_scheduler(&r.seq);
    complete(r, RequestStatus::Ok);
    active_.erase(&r.seq);
  };
  if (next == decoder_->config().eos_token_id && !r.request.generation.ignore_eos) return finish_with(StopReason::Eos);
  r.output.push_back(next);
  ++r.seq.output_tokens;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.generated_tokens;
  }
  const std::string piece = r.stream->push(next);
  r.result.text += piece;
  if ((r.on_text && !piece.empty() && !r.on_text(piece)) || r.job->cancel_requested()) {
    leave_scheduler(&r.seq);
    complete(r, RequestStatus::Cancelled);
    active_.erase(&r.seq);
    return;
  }
  if (int(r.output.size()) >= r.budget) finish_with(r.limited ? StopReason::MaxTokens : StopReason::ContextFull);
}

void Engine::step(const StepPlan& plan) {
  const int64_t hidden = decoder_->config().hidden, vocab = decoder_->config().vocab_size;
  batch_.clear();
  std::vector<Request*> logit_owner;
  for (const ScheduledWork& w : plan.work) {
    Request& r = *active_.at(w.seq);
    if (r.admitted == Clock::time_point{}) r.admitted = Clock::now();
    batch_.begin_sequence(w.first, w.seq->blocks.data(), blocks_->block_size());
    for (int p = w.first; p < w.first + w.count; ++p) {
      if (p < w.seq->prompt_tokens) {
        const int32_t row = r.feature_row[size_t(p)];
        if (row >= 0) batch_.add_feature(r.features->data() + int64_t(row) * hidden);
        else batch_.add_token(r.ids[size_t(p)]);
      } else {
        batch_.add_token(r.output[size_t(p - w.seq->prompt_tokens)]);
      }
    }
    if (w.logits) {
      batch_.want_logits();
      logit_owner.push_back(&r);
    }
  }
  uint64_t prompt_rows = 0;
  for (const ScheduledWork& w : plan.work)
    if (w.first < w.seq->prompt_tokens) prompt_rows += uint64_t(std::min(w.count, w.seq->prompt_tokens - w.first));
  const auto t0 = Clock::now();
  StepStats s;
  try {
    s = decoder_->forward(batch_, *kv_, logits_->data());
  } catch (const std::exception& e) {
    for (const ScheduledWork& w : plan.work) {
      auto it = active_.find(w.seq);
      if (it == active_.end()) continue;
      RequestPtr r = it->second;
      leave_scheduler(w.seq);
      complete(*r, RequestStatus::EngineError, std::string("language model step: ") + e.what());
      active_.erase(w.seq);
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.lm_seconds += seconds(Clock::now() - t0);
    ++stats_.steps;
    stats_.step_rows += uint64_t(batch_.rows());
    stats_.prompt_tokens += prompt_rows;
    stats_.weight_bytes += s.weight_bytes;
    stats_.experts_hit += uint64_t(s.experts_hit);
    if (batch_.rows() == batch_.sequences()) {  // every row a decode token
      ++stats_.decode_steps;
      stats_.decode_rows += uint64_t(batch_.rows());
      stats_.decode_seconds += seconds(Clock::now() - t0);
      stats_.decode_weight_bytes += s.weight_bytes;
      stats_.decode_experts_hit += uint64_t(s.experts_hit);
    }
  }
  for (const ScheduledWork& w : plan.work) w.seq->computed += w.count;
  for (size_t j = 0; j < logit_owner.size(); ++j) sample(*logit_owner[j], logits_->data() + int64_t(j) * vocab);
}

void Engine::model_loop() {
  for (;;) {
    std::vector<RequestPtr> fresh, vision_batch;
    bool check_cancel = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      auto has_work = [&] {
        return stop_ || !encoded_.empty() || cancel_pending_ || scheduler_->running() + scheduler_->waiting() > 0 ||
               (model_side_encoder_ && !prepared_.empty());
      };
      model_cv_.wait(lock, has_work);
      if (stop_) return;
      check_cancel = std::exchange(cancel_pending_, false);
      while (!encoded_.empty()) {
        fresh.push_back(encoded_.front());
        encoded_.pop_front();
      }
      model_pages_ += int(fresh.size());
      // Vision between steps: only while there are free sequence slots to fill.
      if (model_side_encoder_ && int(scheduler_->running() + scheduler_->waiting() + fresh.size()) < options_.max_sequences)
        vision_batch = take_vision_batch_locked();
    }
    if (check_cancel) {
      // Pages waiting for the prepare thread or vision are dropped there; here the model's own.
      std::vector<SequenceState*> gone;
      for (auto& [seq, r] : active_)
        if (r->job->cancel_requested()) gone.push_back(seq);
      for (SequenceState* seq : gone) {
        RequestPtr r = active_.at(seq);
        leave_scheduler(seq);
        complete(*r, RequestStatus::Cancelled);
        active_.erase(seq);
      }
      prepare_cv_.notify_one();
      vision_cv_.notify_one();
    }
    for (const RequestPtr& r : fresh) {
      if (r->job->cancel_requested()) {
        complete(*r, RequestStatus::Cancelled);
        continue;
      }
      r->seq.arrival = r->id;
      active_[&r->seq] = r;
      scheduler_->add(&r->seq);
    }
    if (!vision_batch.empty()) {
      encode(vision_batch, *model_side_encoder_);
      continue;  // the encoded pages join at the next turn
    }

    const StepPlan plan = scheduler_->schedule();
    for (SequenceState* seq : plan.exhausted) {
      RequestPtr r = active_.at(seq);
      const std::string rest = r->stream->flush();
      r->result.text += rest;
      r->result.stop = StopReason::ContextFull;
      complete(*r, RequestStatus::Ok);
      active_.erase(seq);
    }
    if (!plan.preempted.empty()) {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.preemptions += plan.preempted.size();
    }
    if (!plan.empty()) step(plan);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      model_pages_ = int(active_.size());
      stats_.running = int(scheduler_->running());
      stats_.waiting = int(scheduler_->waiting());
      stats_.kv_blocks_used = blocks_->used();
    }
    prepare_cv_.notify_one();
    vision_cv_.notify_one();
  }
}

}  // namespace dsocr
