// The CUDA backend (built only when a CUDA toolkit is found: DSOCR_HAVE_CUDA). This header is plain
// C++ (no CUDA headers), so host code and tests include it from g++.
//
// CudaBackend implements every op of backend/backend.h on one NVIDIA GPU:
// - weights are uploaded once, by weight(), as bf16 in device memory (an F32 or F16 checkpoint
//   tensor is rounded to bf16 on the way); products run on cuBLAS with bf16 operands (activations
//   are rounded to bf16 per call) and float32 accumulation, never TF32;
// - constants, buffers, the workspace and the KV storage are device memory;
// - host metadata arrays (ids, slots, positions, block tables, row lists) are copied over per call;
// - everything runs in order on one stream; to_host waits for it.
// This first version keeps the kernels simple and obviously correct (one warp per attention row and
// head, experts one GEMM each); speed comes later (issue 10). It is not batch invariant: cuBLAS
// picks its algorithm by shape.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace dsocr {

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device = 0);  // throws Error when the device cannot be used
  ~CudaBackend() override;

  std::string name() const override;
  bool is_batch_invariant() const override { return false; }

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
  struct State;  // CUDA handles, owned allocations, the routing (cuda_backend.cpp)
  std::unique_ptr<State> s_;
};

// A CUDA backend on device 0, or nullptr with the reason in *why_not (no driver, no device, or the
// device failed to initialise). Never throws.
std::unique_ptr<Backend> make_cuda_backend(std::string* why_not);

namespace cuda {

// Number of usable CUDA devices (0 when there is no driver or no GPU; never throws).
int device_count();
std::string device_name(int device);

// C[M, N] = A[M, K] (float32, host) x W^T with W [N, K] bf16 (host, e.g. the mapped checkpoint),
// computed on the device with cuBLAS (bf16 x bf16 products are not used: A stays float32 and W
// is widened on the device, so the result matches the CPU's float32 path). Throws Error on failure.
void linear_bf16(const float* A, int64_t M, const uint16_t* W, int64_t N, int64_t K, const float* bias, float* C);

}  // namespace cuda
}  // namespace dsocr
