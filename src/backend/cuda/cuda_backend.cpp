// The CUDA backend's host side: memory, metadata uploads, cuBLAS products and the kernel launches
// (kernels.cu). Ordinary C++ for the host compiler; see cuda_backend.h for what it promises.
#include "backend/cuda/cuda_backend.h"

#include "backend/expert_routing.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <vector>

#include "backend/cuda/kernels.h"
#include "core/dtype.h"
#include "core/error.h"

namespace dsocr {

namespace kernels = cuda::kernels;
using kernels::blocks_for;
using kernels::kMaxLanes;
using kernels::kThreads;
using kernels::kVitWarps;
using kernels::VitArgs;

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA: {}: {}", what, cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS: {}: status {}", what, int(s));
}
// A launch reports a bad configuration at once and a fault only later; both surface here or at the
// next synchronising call (to_host), named by the op that launched.
void check_launch(const char* what) { check(cudaGetLastError(), what); }

// ---- memory ------------------------------------------------------------------------------------------

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
  return p;
}

// A device allocation freed with its owner.
struct DeviceMemory {
  void* ptr = nullptr;
  DeviceMemory() = default;
  explicit DeviceMemory(size_t bytes) : ptr(device_alloc(bytes)) {}
  DeviceMemory(DeviceMemory&& o) noexcept : ptr(o.ptr) { o.ptr = nullptr; }
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    std::swap(ptr, o.ptr);
    return *this;
  }
  ~DeviceMemory() {
    if (ptr) cudaFree(ptr);
  }
};

// A device array that keeps its allocation and grows when a step needs more (routing tables).
template <typename T>
struct DeviceArray {
  DeviceMemory mem;
  size_t capacity = 0;
  T* data() const { return static_cast<T*>(mem.ptr); }
  void upload(const std::vector<T>& host, cudaStream_t stream) {
    if (host.size() > capacity) {
      mem = DeviceMemory(host.size() * sizeof(T));
      capacity = host.size();
    }
    if (!host.empty())
      check(cudaMemcpyAsync(mem.ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream), "upload");
  }
};

class DeviceBuffer : public Buffer {
 public:
  explicit DeviceBuffer(size_t n) : mem_(n * sizeof(float)), size_(n) {}
  float* data() override { return static_cast<float*>(mem_.ptr); }
  size_t size() const override { return size_; }

 private:
  DeviceMemory mem_;
  size_t size_;
};

class DeviceKvStorage : public KvStorage {
 public:
  explicit DeviceKvStorage(const KvLayout& layout) : KvStorage(layout) {
    if (layout.dtype != DType::F32 && layout.dtype != DType::BF16)
      fail("KV cache: dtype {} is not supported (F32 or BF16)", dtype_name(layout.dtype));
    if (layout.layers < 1 || layout.blocks < 1 || layout.block_size < 1 || layout.width < 1)
      fail("KV cache: {} layers x {} blocks x {} tokens x {} is not a valid layout", layout.layers, layout.blocks,
           layout.block_size, layout.width);
    keys_ = DeviceMemory(layer_bytes() * size_t(layout.layers));
    values_ = DeviceMemory(layer_bytes() * size_t(layout.layers));
  }
  size_t layer_bytes() const {
    return size_t(layout_.blocks) * size_t(layout_.block_size) * size_t(layout_.width) * dtype_size(layout_.dtype);
  }
  void* keys(int layer) const { return static_cast<uint8_t*>(keys_.ptr) + size_t(layer) * layer_bytes(); }
  void* values(int layer) const { return static_cast<uint8_t*>(values_.ptr) + size_t(layer) * layer_bytes(); }

 private:
  DeviceMemory keys_, values_;
};

class DeviceWorkspace : public Workspace {
 public:
  ~DeviceWorkspace() override { release_all(); }

 protected:
  void* allocate(size_t bytes) override { return device_alloc(bytes); }
  // cudaFree waits for the device, so kernels still reading an overflow block finish first.
  void release(void* p) override { cudaFree(p); }
};

// Rows grouped by expert, as the CPU backend orders them: expert e's rows ascending, e = 0 ..
// experts-1, then the shared pseudo-expert with every row. Host arrays (the contract's top_ids and
// top_weights, and the bookkeeping expert_mlp loops over) with device copies for the kernels.
class CudaRouting : public HostExpertRouting {
 public:
  std::vector<float> probs;  // softmax of the logits, copied back for the top-k
  DeviceArray<int32_t> d_grouped_row, d_combine_order;
  DeviceArray<float> d_grouped_weight;
};

}  // namespace

struct CudaBackend::State {
  int device = 0;
  std::string device_name;
  int cc_major = 0, cc_minor = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  std::deque<DeviceMemory> owned;  // weights and constants, for the backend's lifetime
  std::unique_ptr<DeviceWorkspace> workspace = std::make_unique<DeviceWorkspace>();
  CudaRouting routing;

  ~State() {
    if (stream) cudaStreamSynchronize(stream);
    workspace.reset();
    owned.clear();
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  // Host metadata copied to workspace memory for one op (the caller holds a WorkspaceScope), in
  // stream order, so the previous user of that workspace memory has finished. From pageable memory
  // CUDA copies the host array to a staging buffer before cudaMemcpyAsync returns, so the caller's
  // array may go away at once (a pinned staging ring would make these copies truly asynchronous).
  template <typename T>
  T* upload(const T* host, size_t n) {
    T* d = static_cast<T*>(workspace->bytes(std::max<size_t>(n, 1) * sizeof(T)));
    if (n) check(cudaMemcpyAsync(d, host, n * sizeof(T), cudaMemcpyHostToDevice, stream), "upload");
    return d;
  }
  uint16_t* bf16(size_t n) { return static_cast<uint16_t*>(workspace->bytes(n * sizeof(uint16_t))); }

  // C[M, W.rows] (stride ldc) = A W^T (+ C when accumulate): A a dense bf16 [M, W.cols] device matrix,
  // W a bf16 device weight, float32 accumulation (CUBLAS_COMPUTE_32F: no TF32 anywhere).
  // Row-major C = A W^T is column-major C^T = W A^T, with W's rows read as columns of length K.
  void gemm(const uint16_t* A, int64_t M, const Weight& W, float* C, int64_t ldc, bool accumulate) {
    if (M == 0 || W.rows == 0) return;
    if (W.dtype != DType::BF16)
      fail("CUDA backend: weight of dtype {} (weights must come from weight())", dtype_name(W.dtype));
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(W.rows), int(M), int(W.cols), &alpha, W.data, CUDA_R_16BF,
                       int(W.cols), A, CUDA_R_16BF, int(W.cols), &beta, C, CUDA_R_32F, int(ldc), CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT),
          "gemm bf16");
  }
  uint16_t* to_bf16(const float* A, int64_t lda, int64_t M, int64_t K) {
    uint16_t* a = bf16(size_t(M * K));
    if (M * K > 0) {
      kernels::to_bf16({blocks_for(M * K), kThreads, 0, stream}, A, lda, M, K, a);
      check_launch("to_bf16");
    }
    return a;
  }
};

CudaBackend::CudaBackend(int device) : s_(std::make_unique<State>()) {
  if (cuda::device_count() <= device) fail("CUDA: device {} not found", device);
  s_->device = device;
  check(cudaSetDevice(device), "cudaSetDevice");
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  s_->device_name = p.name;
  s_->cc_major = p.major, s_->cc_minor = p.minor;
  check(cudaStreamCreateWithFlags(&s_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cublasCreate(&s_->blas), "cublasCreate");
  check(cublasSetStream(s_->blas, s_->stream), "cublasSetStream");
  // Default math: bf16 tensor-core products with float32 accumulation. TF32 would need
  // CUBLAS_TF32_TENSOR_OP_MATH or CUBLAS_COMPUTE_32F_FAST_TF32, neither of which is used, and the
  // outputs are float32, so no reduced-precision reductions apply.
  check(cublasSetMathMode(s_->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::name() const {
  return fmt::format("cuda ({}, sm_{}{}, bf16 operands, not batch invariant)", s_->device_name, s_->cc_major,
                     s_->cc_minor);
}

Weight CudaBackend::weight(const TensorView& t) {
  Weight w = Weight::of(t);  // validates the dtype and folds the trailing dims
  const size_t n = size_t(w.rows * w.cols);
  std::vector<uint16_t> host(n);
  if (t.dtype == DType::BF16) {
    std::memcpy(host.data(), t.data, n * sizeof(uint16_t));
  } else {
    std::vector<float> wide = t.to_f32();
    for (size_t i = 0; i < n; ++i) host[i] = f32_to_bf16(wide[i]);
  }
  s_->owned.emplace_back(n * sizeof(uint16_t));
  void* d = s_->owned.back().ptr;
  // On the backend's stream, not cudaMemcpy's legacy stream: the stream is non-blocking, so only
  // stream order guarantees the ops see the whole weight.
  check(cudaMemcpyAsync(d, host.data(), n * sizeof(uint16_t), cudaMemcpyHostToDevice, s_->stream), "upload weight");
  check(cudaStreamSynchronize(s_->stream), "upload weight");
  w.dtype = DType::BF16;
  w.data = d;
  return w;
}

const float* CudaBackend::constant(std::span<const float> values) {
  s_->owned.emplace_back(values.size() * sizeof(float));
  void* d = s_->owned.back().ptr;
  if (!values.empty())
    check(cudaMemcpyAsync(d, values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice, s_->stream),
          "upload constant");
  return static_cast<const float*>(d);
}

std::unique_ptr<Buffer> CudaBackend::buffer(size_t floats) {
  return std::make_unique<DeviceBuffer>(std::max<size_t>(floats, 1));
}

Workspace& CudaBackend::workspace() { return *s_->workspace; }

std::unique_ptr<KvStorage> CudaBackend::kv_storage(const KvLayout& layout) {
  return std::make_unique<DeviceKvStorage>(layout);
}

void CudaBackend::to_host(float* host, const float* src, size_t n) {
  if (n) check(cudaMemcpyAsync(host, src, n * sizeof(float), cudaMemcpyDeviceToHost, s_->stream), "to_host");
  check(cudaStreamSynchronize(s_->stream), "to_host (an earlier op may have failed)");
}
void CudaBackend::from_host(float* dst, const float* host, size_t n) {
  if (n) check(cudaMemcpyAsync(dst, host, n * sizeof(float), cudaMemcpyHostToDevice, s_->stream), "from_host");
}
void CudaBackend::copy(float* dst, const float* src, size_t n) {
  if (n && dst != src)
    check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, s_->stream), "copy");
}

// ---- embedding, copies -------------------------------------------------------------------------------

void CudaBackend::embed(const Weight& table, const int32_t* ids, const float* const* features, int64_t rows,
                        float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    if (ids[r] >= table.rows) fail("token id {} at row {} is outside the vocabulary [0, {})", ids[r], r, table.rows);
    if (ids[r] < 0 && (!features || !features[r])) fail("row {} has no token id and no feature row", r);
  }
  if (rows == 0) return;
  if (table.dtype != DType::BF16)
    fail("CUDA backend: embedding table of dtype {} (use weight())", dtype_name(table.dtype));
  WorkspaceScope scope(*s_->workspace);
  const int32_t* d_ids = s_->upload(ids, size_t(rows));
  std::vector<const float*> feats(size_t(rows), nullptr);
  if (features) std::copy_n(features, rows, feats.begin());
  const float* const* d_feats = s_->upload(feats.data(), feats.size());
  kernels::embed({unsigned(rows), kThreads, 0, s_->stream}, static_cast<const uint16_t*>(table.data), table.cols, d_ids,
                 d_feats, out);
  check_launch("embed");
}

void CudaBackend::gather_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index,
                              int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  WorkspaceScope scope(*s_->workspace);
  const int32_t* d_index = s_->upload(index, size_t(rows));
  kernels::gather_rows({unsigned(rows), kThreads, 0, s_->stream}, dst, ld_dst, src, ld_src, d_index, cols);
  check_launch("gather_rows");
}

void CudaBackend::copy_row_list(float* dst, const float* const* rows, int64_t n, int64_t cols) {
  if (n == 0 || cols == 0) return;
  WorkspaceScope scope(*s_->workspace);
  const float* const* d_rows = s_->upload(rows, size_t(n));
  kernels::copy_row_list({unsigned(n), kThreads, 0, s_->stream}, dst, d_rows, cols);
  check_launch("copy_row_list");
}

void CudaBackend::copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  check(cudaMemcpy2DAsync(dst, size_t(ld_dst) * sizeof(float), src, size_t(ld_src) * sizeof(float),
                          size_t(cols) * sizeof(float), size_t(rows), cudaMemcpyDeviceToDevice, s_->stream),
        "copy_rows");
}

// ---- element-wise and normalisation ------------------------------------------------------------------

void CudaBackend::rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) {
  if (rows == 0) return;
  kernels::rms_norm({unsigned(rows), kThreads, 0, s_->stream}, x, dim, weight, eps, y);
  check_launch("rms_norm");
}

void CudaBackend::layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta,
                             float eps, float* y) {
  if (rows == 0) return;
  kernels::layer_norm({unsigned(rows), kThreads, 0, s_->stream}, x, dim, gamma, beta, eps, y);
  check_launch("layer_norm");
}

void CudaBackend::add(float* y, const float* x, int64_t n) {
  if (n == 0) return;
  kernels::add({blocks_for(n), kThreads, 0, s_->stream}, y, x, n);
  check_launch("add");
}

void CudaBackend::add_broadcast(float* y, int64_t rows, const float* x, int64_t period, int64_t dim) {
  if (rows * dim == 0) return;
  kernels::add_broadcast({blocks_for(rows * dim), kThreads, 0, s_->stream}, y, rows, x, period, dim);
  check_launch("add_broadcast");
}

void CudaBackend::silu_mul(float* gate, const float* up, int64_t n) {
  if (n == 0) return;
  kernels::silu_mul({blocks_for(n), kThreads, 0, s_->stream}, gate, up, n);
  check_launch("silu_mul");
}

void CudaBackend::gelu_erf(float* x, int64_t n) {
  if (n == 0) return;
  kernels::gelu_erf({blocks_for(n), kThreads, 0, s_->stream}, x, n);
  check_launch("gelu_erf");
}

void CudaBackend::quick_gelu(float* x, int64_t n) {
  if (n == 0) return;
  kernels::quick_gelu({blocks_for(n), kThreads, 0, s_->stream}, x, n);
  check_launch("quick_gelu");
}

// ---- products ----------------------------------------------------------------------------------------

void CudaBackend::linear(const float* A, int64_t M, const Weight& W, const float* bias, float* C, bool accumulate,
                         int64_t lda, int64_t ldc) {
  if (M == 0 || W.rows == 0) return;
  if (lda == 0) lda = W.cols;
  if (ldc == 0) ldc = W.rows;
  WorkspaceScope scope(*s_->workspace);
  const uint16_t* a = s_->to_bf16(A, lda, M, W.cols);
  s_->gemm(a, M, W, C, ldc, accumulate);
  if (bias) {
    kernels::add_bias({blocks_for(M * W.rows), kThreads, 0, s_->stream}, C, ldc, M, W.rows, bias);
    check_launch("linear bias");
  }
}

void CudaBackend::linear_multi(const float* A, int64_t M, std::span<const Weight> W, std::span<float* const> C) {
  if (W.size() != C.size()) fail("linear_multi: {} weights but {} outputs", W.size(), C.size());
  if (M == 0 || W.empty()) return;
  for (const Weight& w : W)
    if (w.cols != W[0].cols) fail("linear_multi: weights of {} and {} inputs", W[0].cols, w.cols);
  // The bf16 input once, then one product per weight.
  WorkspaceScope scope(*s_->workspace);
  const uint16_t* a = s_->to_bf16(A, W[0].cols, M, W[0].cols);
  for (size_t i = 0; i < W.size(); ++i) s_->gemm(a, M, W[i], C[i], W[i].rows, false);
}

void CudaBackend::conv2d(const float* x, int batch, int height, int width, const Weight& W, const float* bias,
                         ConvGeometry geom, float* out) {
  const int k = geom.kernel;
  if (W.cols % (int64_t(k) * k) != 0) fail("conv2d: weight of {} columns is not channels x {}x{}", W.cols, k, k);
  const int cin = int(W.cols / (int64_t(k) * k));
  const int oh = geom.out_size(height), ow = geom.out_size(width);
  const int64_t pixels = int64_t(batch) * oh * ow;
  if (pixels <= 0) return;
  // im2col into a bf16 matrix [pixels, cin * k * k], then one product: simple; an implicit GEMM
  // that never writes the columns comes with the fast version.
  WorkspaceScope scope(*s_->workspace);
  const int64_t total = pixels * W.cols;
  uint16_t* cols = s_->bf16(size_t(total));
  kernels::im2col({blocks_for(total), kThreads, 0, s_->stream}, x, height, width, cin, k, geom.stride, geom.pad, oh, ow,
                  total, cols);
  check_launch("conv2d im2col");
  s_->gemm(cols, pixels, W, out, W.rows, false);
  if (bias) {
    kernels::add_bias({blocks_for(pixels * W.rows), kThreads, 0, s_->stream}, out, W.rows, pixels, W.rows, bias);
    check_launch("conv2d bias");
  }
}

void CudaBackend::chw_to_hwc(const float* chw, int batch, int channels, int size, float* hwc) {
  const int64_t n = int64_t(batch) * channels * size * size;
  if (n == 0) return;
  kernels::chw_to_hwc({blocks_for(n), kThreads, 0, s_->stream}, chw, batch, channels, size, hwc);
  check_launch("chw_to_hwc");
}

// ---- decoder attention -------------------------------------------------------------------------------

void CudaBackend::rope(float* x, int64_t rows, int64_t ld, int heads, int head_dim, const int32_t* positions,
                       const float* cos, const float* sin) {
  const int half = head_dim / 2;
  const int64_t n = rows * heads * half;
  if (n == 0) return;
  WorkspaceScope scope(*s_->workspace);
  const int32_t* d_pos = s_->upload(positions, size_t(rows));
  kernels::rope({blocks_for(n), kThreads, 0, s_->stream}, x, rows, ld, heads, half, d_pos, cos, sin);
  check_launch("rope");
}

void CudaBackend::kv_write(KvStorage& kv, int layer, const float* k, const float* v, int64_t rows, int64_t ld,
                           const int32_t* slots) {
  auto& store = static_cast<DeviceKvStorage&>(kv);
  const KvLayout& L = store.layout();
  const int64_t slots_total = int64_t(L.blocks) * L.block_size;
  for (int64_t r = 0; r < rows; ++r)
    if (slots[r] < 0 || slots[r] >= slots_total)
      fail("KV cache: slot {} of row {} is outside [0, {})", slots[r], r, slots_total);
  if (layer < 0 || layer >= L.layers) fail("KV cache: layer {} of {}", layer, L.layers);
  if (rows == 0) return;
  WorkspaceScope scope(*s_->workspace);
  const int32_t* d_slots = s_->upload(slots, size_t(rows));
  const int64_t n = rows * L.width;
  if (L.dtype == DType::F32)
    kernels::kv_write({blocks_for(n), kThreads, 0, s_->stream}, static_cast<float*>(store.keys(layer)),
                      static_cast<float*>(store.values(layer)), L.width, k, v, rows, ld, d_slots);
  else
    kernels::kv_write({blocks_for(n), kThreads, 0, s_->stream}, static_cast<uint16_t*>(store.keys(layer)),
                      static_cast<uint16_t*>(store.values(layer)), L.width, k, v, rows, ld, d_slots);
  check_launch("kv_write");
}

void CudaBackend::paged_attention(const float* q, int64_t ldq, const KvStorage& kv, int layer,
                                  const AttentionBatch& batch, int heads, int head_dim, float scale, float* out,
                                  int64_t ldo) {
  const auto& store = static_cast<const DeviceKvStorage&>(kv);
  const KvLayout& L = store.layout();
  if (int64_t(heads) * head_dim != L.width)
    fail("attention: {} heads x {} do not match the KV rows of {}", heads, head_dim, L.width);
  if (head_dim > 32 * kMaxLanes) fail("CUDA attention: head dim {} above {}", head_dim, 32 * kMaxLanes);
  const int64_t rows = batch.row_begin[batch.sequences];
  if (rows == 0) return;
  // Per row: its position and where its sequence's block table starts in one flat table array. A
  // sequence's table covers the positions up to its last row.
  std::vector<int32_t> row_pos(static_cast<size_t>(rows)), row_table(static_cast<size_t>(rows)), tables;
  for (int s = 0; s < batch.sequences; ++s) {
    const int32_t begin = batch.row_begin[s], end = batch.row_begin[s + 1];
    if (end <= begin) continue;
    const int64_t length = int64_t(batch.first_position[s]) + (end - begin);
    const int64_t nblocks = (length + L.block_size - 1) / L.block_size;
    const int32_t offset = int32_t(tables.size());
    for (int64_t b = 0; b < nblocks; ++b) {
      const int32_t block = batch.block_tables[s][b];
      if (block < 0 || block >= L.blocks)
        fail("attention: block {} of sequence {} is outside [0, {})", block, s, L.blocks);
      tables.push_back(block);
    }
    for (int32_t r = begin; r < end; ++r) {
      row_pos[size_t(r)] = batch.first_position[s] + (r - begin);
      row_table[size_t(r)] = offset;
    }
  }
  WorkspaceScope scope(*s_->workspace);
  const int32_t* d_pos = s_->upload(row_pos.data(), row_pos.size());
  const int32_t* d_row_table = s_->upload(row_table.data(), row_table.size());
  const int32_t* d_tables = s_->upload(tables.data(), tables.size());
  const int64_t threads = rows * heads * 32;
  if (L.dtype == DType::F32)
    kernels::paged_attention({blocks_for(threads), kThreads, 0, s_->stream}, q, ldq,
                             static_cast<const float*>(store.keys(layer)),
                             static_cast<const float*>(store.values(layer)), L.block_size, L.width, d_pos, d_row_table,
                             d_tables, rows, heads, head_dim, scale, out, ldo);
  else
    kernels::paged_attention({blocks_for(threads), kThreads, 0, s_->stream}, q, ldq,
                             static_cast<const uint16_t*>(store.keys(layer)),
                             static_cast<const uint16_t*>(store.values(layer)), L.block_size, L.width, d_pos,
                             d_row_table, d_tables, rows, heads, head_dim, scale, out, ldo);
  check_launch("paged_attention");
}

// ---- mixture of experts ------------------------------------------------------------------------------

const ExpertRouting& CudaBackend::route_experts(float* logits, int64_t rows, const RouterConfig& config) {
  CudaRouting& R = s_->routing;
  const int experts = config.experts;
  if (config.top_k < 1 || config.top_k > experts) fail("router: top {} of {} experts", config.top_k, experts);
  // The softmax on the device (the contract leaves it in logits); the top-k and the grouping on the
  // host, where the contract wants top_ids/top_weights and expert_mlp wants the group sizes.
  R.probs.resize(size_t(rows * experts));
  if (rows > 0) {
    kernels::softmax_rows({blocks_for(rows), kThreads, 0, s_->stream}, logits, rows, experts);
    check_launch("route_experts softmax");
  }
  to_host(R.probs.data(), logits, R.probs.size());
  R.assign(R.probs.data(), rows, config);
  R.d_grouped_row.upload(R.grouped_row, s_->stream);
  R.d_grouped_weight.upload(R.grouped_weight, s_->stream);
  R.d_combine_order.upload(R.combine_order, s_->stream);
  return R;
}

void CudaBackend::expert_mlp(const float* x, const ExpertRouting& routing, std::span<const ExpertMlp> experts,
                             float* y) {
  CudaRouting& R = s_->routing;
  if (&routing != &R) fail("expert_mlp: the routing comes from another backend");
  const int slots = R.config.experts + (R.config.shared ? 1 : 0);
  if (int(experts.size()) < slots) fail("expert_mlp: {} expert MLPs for {} routes", experts.size(), slots);
  const int64_t grouped = R.grouped_rows();
  if (grouped == 0) return;
  const int64_t hidden = experts[0].gate.cols;
  // Intermediate blocks of each expert, [rows of e, intermediate of e], one after the other.
  std::vector<int64_t> offsets(size_t(slots) + 1, 0);
  for (int e = 0; e < slots; ++e)
    offsets[size_t(e) + 1] = offsets[size_t(e)] + int64_t(R.expert_begin[size_t(e) + 1] - R.expert_begin[size_t(e)]) *
                                                      experts[size_t(e)].gate.rows;
  WorkspaceScope scope(*s_->workspace);
  uint16_t* xg = s_->bf16(size_t(grouped * hidden));
  float* gate = s_->workspace->floats(size_t(std::max<int64_t>(offsets.back(), 1)));
  float* up = s_->workspace->floats(size_t(std::max<int64_t>(offsets.back(), 1)));
  uint16_t* act = s_->bf16(size_t(std::max<int64_t>(offsets.back(), 1)));
  kernels::gather_to_bf16({blocks_for(grouped * hidden), kThreads, 0, s_->stream}, x, R.d_grouped_row.data(), grouped,
                          hidden, xg);
  check_launch("expert_mlp gather");
  // One product per expert and matrix (a grouped GEMM over all experts comes with the fast version).
  for (int e = 0; e < slots; ++e) {
    const int64_t g0 = R.expert_begin[size_t(e)], m = R.expert_begin[size_t(e) + 1] - g0;
    if (m == 0) continue;
    const ExpertMlp& mlp = experts[size_t(e)];
    s_->gemm(xg + g0 * hidden, m, mlp.gate, gate + offsets[size_t(e)], mlp.gate.rows, false);
    s_->gemm(xg + g0 * hidden, m, mlp.up, up + offsets[size_t(e)], mlp.up.rows, false);
  }
  if (offsets.back() > 0) {
    kernels::silu_mul_to_bf16({blocks_for(offsets.back()), kThreads, 0, s_->stream}, gate, up, offsets.back(), act);
    check_launch("expert_mlp silu_mul");
  }
  for (int e = 0; e < slots; ++e) {
    const int64_t g0 = R.expert_begin[size_t(e)], m = R.expert_begin[size_t(e) + 1] - g0;
    if (m == 0) continue;
    const ExpertMlp& mlp = experts[size_t(e)];
    s_->gemm(act + offsets[size_t(e)], m, mlp.down, y + g0 * hidden, hidden, false);
  }
}

void CudaBackend::moe_combine(const float* y, const ExpertRouting& routing, float* x, int64_t dim) {
  const CudaRouting& R = s_->routing;
  if (&routing != &R) fail("moe_combine: the routing comes from another backend");
  if (R.rows == 0) return;
  const int64_t shared_begin = R.config.shared ? R.expert_begin[size_t(R.config.experts)] : -1;
  kernels::moe_combine({unsigned(R.rows), kThreads, 0, s_->stream}, y, R.d_combine_order.data(),
                       R.d_grouped_weight.data(), R.config.top_k, shared_begin, x, dim);
  check_launch("moe_combine");
}

// ---- vision attention --------------------------------------------------------------------------------

namespace {

void launch_vit(bool windowed, const VitArgs& a, cudaStream_t stream, const char* what) {
  if (a.hd > 32 * kMaxLanes) fail("CUDA attention: head dim {} above {}", a.hd, 32 * kMaxLanes);
  const int64_t warps = int64_t(a.batch) * a.tokens * a.heads;
  if (warps == 0) return;
  const size_t smem = size_t(kVitWarps) * size_t(a.rel_gh + a.rel_gw) * sizeof(float);
  kernels::vit_attention({unsigned((warps + kVitWarps - 1) / kVitWarps), kVitWarps * 32, smem, stream}, windowed, a);
  check_launch(what);
}

}  // namespace

void CudaBackend::attention_global(const float* qkv, int batch, int tokens, int heads, int head_dim, float* out,
                                   const RelPos* rel, int grid_h, int grid_w) {
  VitArgs a{qkv, out, batch, tokens, heads, head_dim, 1.0f / std::sqrt(float(head_dim))};
  if (rel) {
    if (int64_t(grid_h) * grid_w != tokens) fail("attention: a {}x{} grid for {} tokens", grid_h, grid_w, tokens);
    a.rel_h = rel->h, a.rel_w = rel->w, a.rel_gh = grid_h, a.rel_gw = grid_w;
  }
  launch_vit(false, a, s_->stream, "attention_global");
}

void CudaBackend::attention_windowed(const float* qkv, int batch, int grid, int window, int heads, int head_dim,
                                     const float* pad_qkv, float* out, const RelPos* rel) {
  VitArgs a{qkv, out, batch, grid * grid, heads, head_dim, 1.0f / std::sqrt(float(head_dim))};
  a.grid = grid, a.window = window, a.pad = pad_qkv;
  if (rel) a.rel_h = rel->h, a.rel_w = rel->w, a.rel_gh = window, a.rel_gw = window;
  launch_vit(true, a, s_->stream, "attention_windowed");
}

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  try {
    if (cuda::device_count() == 0) {
      if (why_not) *why_not = "no CUDA device (no driver, or no GPU visible)";
      return nullptr;
    }
    return std::make_unique<CudaBackend>(0);
  } catch (const std::exception& e) {
    if (why_not) *why_not = e.what();
    return nullptr;
  }
}

}  // namespace dsocr

// ---- device discovery and the first smoke test (test_cuda) ---------------------------------------

namespace dsocr::cuda {

namespace {

// Device buffer freed on scope exit.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) { check(cudaMalloc(&ptr, n * sizeof(T)), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return p.name;
}

void linear_bf16(const float* A, int64_t M, const uint16_t* W, int64_t N, int64_t K, const float* bias, float* C) {
  DeviceBuffer<float> a(size_t(M * K)), w(size_t(N * K)), c(size_t(M * N));
  DeviceBuffer<uint16_t> w16(size_t(N * K));
  check(cudaMemcpy(a.ptr, A, size_t(M * K) * 4, cudaMemcpyHostToDevice), "copy A");
  check(cudaMemcpy(w16.ptr, W, size_t(N * K) * 2, cudaMemcpyHostToDevice), "copy W");
  kernels::widen_bf16({blocks_for(N * K), kThreads, 0, nullptr}, w16.ptr, w.ptr, N * K);
  check(cudaGetLastError(), "widen_bf16");
  cublasHandle_t handle;
  check(cublasCreate(&handle), "create");
  // Row-major C[M,N] = A[M,K] W^T  <=>  column-major C^T[N,M] = W[N,K]^T(col: K x N)^T ... i.e. op(W)=T on the
  // column-major view of W (K x N) and A as column-major K x M.
  const float one = 1.0f, zero = 0.0f;
  cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);  // true float32, no TF32 shortcuts
  const cublasStatus_t st = cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one, w.ptr, int(K),
                                        a.ptr, int(K), &zero, c.ptr, int(N));
  cublasDestroy(handle);
  check(st, "sgemm");
  if (bias) {
    DeviceBuffer<float> b{size_t(N)};
    check(cudaMemcpy(b.ptr, bias, size_t(N) * 4, cudaMemcpyHostToDevice), "copy bias");
    kernels::add_bias({blocks_for(M * N), kThreads, 0, nullptr}, c.ptr, N, M, N, b.ptr);
    check(cudaGetLastError(), "add_bias");
  }
  check(cudaMemcpy(C, c.ptr, size_t(M * N) * 4, cudaMemcpyDeviceToHost), "copy C");
}

}  // namespace dsocr::cuda
