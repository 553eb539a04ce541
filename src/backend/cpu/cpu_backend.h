// The CPU backend: today's float32 kernels (backend/cpu/*) behind the Backend interface. Weights are
// views into the memory-mapped checkpoint; constants, buffers and the KV storage are host memory.
// One instance per thread that runs the model (it owns that thread's workspace); instances may share
// a thread pool only if they never run at the same time.
#pragma once
#include <deque>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/thread_pool.h"

namespace dsocr {

struct CpuBackendOptions {
  // oneDNN's sgemm for products of many rows (prefill, vision): its blocking depends on the shape,
  // so results are no longer batch invariant. Off by default.
  bool fast_gemm = false;
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(ThreadPool& pool, CpuBackendOptions options = {});
  ~CpuBackend() override;

  std::string name() const override;
  bool is_batch_invariant() const override { return !options_.fast_gemm; }
  ThreadPool& pool() { return pool_; }

  Weight weight(const TensorView& t) override;
  using Backend::constant;
  const float* constant(std::span<const float> values) override;
  std::unique_ptr<Buffer> buffer(size_t floats) override;
  Workspace& workspace() override;
  std::unique_ptr<KvStorage> kv_storage(const KvLayout& layout) override;
  void to_host(float* host, const float* src, size_t n) override;
  void from_host(float* dst, const float* host, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;

  void embed(const Weight& table, const int32_t* ids, const float* const* features, int64_t rows, float* out) override;
  void gather_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index, int64_t rows,
                   int64_t cols) override;
  void copy_row_list(float* dst, const float* const* rows, int64_t n, int64_t cols) override;
  void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows, int64_t cols) override;

  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) override;
  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                  float* y) override;
  void add(float* y, const float* x, int64_t n) override;
  void add_broadcast(float* y, int64_t rows, const float* x, int64_t period, int64_t dim) override;
  void silu_mul(float* gate, const float* up, int64_t n) override;
  void gelu_erf(float* x, int64_t n) override;
  void quick_gelu(float* x, int64_t n) override;

  void linear(const float* A, int64_t M, const Weight& W, const float* bias, float* C, bool accumulate = false,
              int64_t lda = 0, int64_t ldc = 0) override;
  void linear_multi(const float* A, int64_t M, std::span<const Weight> W, std::span<float* const> C) override;
  void conv2d(const float* x, int batch, int height, int width, const Weight& W, const float* bias, ConvGeometry geom,
              float* out) override;
  void chw_to_hwc(const float* chw, int batch, int channels, int size, float* hwc) override;

  void rope(float* x, int64_t rows, int64_t ld, int heads, int head_dim, const int32_t* positions, const float* cos,
            const float* sin) override;
  void kv_write(KvStorage& kv, int layer, const float* k, const float* v, int64_t rows, int64_t ld,
                const int32_t* slots) override;
  void paged_attention(const float* q, int64_t ldq, const KvStorage& kv, int layer, const AttentionBatch& batch,
                       int heads, int head_dim, float scale, float* out, int64_t ldo) override;

  const ExpertRouting& route_experts(float* logits, int64_t rows, const RouterConfig& config) override;
  void expert_mlp(const float* x, const ExpertRouting& routing, std::span<const ExpertMlp> experts, float* y) override;
  void moe_combine(const float* y, const ExpertRouting& routing, float* x, int64_t dim) override;

  void attention_global(const float* qkv, int batch, int tokens, int heads, int head_dim, float* out,
                        const RelPos* rel = nullptr, int grid_h = 0, int grid_w = 0) override;
  void attention_windowed(const float* qkv, int batch, int grid, int window, int heads, int head_dim,
                          const float* pad_qkv, float* out, const RelPos* rel = nullptr) override;

 private:
  class HostWorkspace;
  class Routing;

  ThreadPool& pool_;
  CpuBackendOptions options_;
  std::deque<std::vector<float>> constants_;  // deque: pointers stay valid as it grows
  std::unique_ptr<HostWorkspace> workspace_;
  std::unique_ptr<Routing> routing_;
};

}  // namespace dsocr
