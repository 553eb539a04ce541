#include "backend/cpu/cpu_backend.h"

#include "backend/expert_routing.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/paged_attention.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/vit_attention.h"
#include "core/error.h"

namespace dsocr {

namespace {

constexpr int64_t kFeatureBlock = 64;  // output features per piece of a multi-weight pass

class HostBuffer : public Buffer {
 public:
  explicit HostBuffer(size_t n) : data_(new float[n]), size_(n) {}
  float* data() override { return data_.get(); }
  size_t size() const override { return size_; }

 private:
  std::unique_ptr<float[]> data_;  // uninitialised: pages are committed as they are written
  size_t size_;
};

class HostKvStorage : public KvStorage {
 public:
  explicit HostKvStorage(const KvLayout& layout) : KvStorage(layout) {
    if (layout.dtype != DType::F32 && layout.dtype != DType::BF16)
      fail("KV cache: dtype {} is not supported (F32 or BF16)", dtype_name(layout.dtype));
    if (layout.layers < 1 || layout.blocks < 1 || layout.block_size < 1 || layout.width < 1)
      fail("KV cache: {} layers x {} blocks x {} tokens x {} is not a valid layout", layout.layers, layout.blocks,
           layout.block_size, layout.width);
    // new[] without (): the OS commits pages only as tokens arrive.
    keys_.reset(new uint8_t[layer_bytes() * size_t(layout.layers)]);
    values_.reset(new uint8_t[layer_bytes() * size_t(layout.layers)]);
  }
  size_t layer_bytes() const {
    return size_t(layout_.blocks) * size_t(layout_.block_size) * size_t(layout_.width) * dtype_size(layout_.dtype);
  }
  uint8_t* keys(int layer) { return keys_.get() + size_t(layer) * layer_bytes(); }
  uint8_t* values(int layer) { return values_.get() + size_t(layer) * layer_bytes(); }
  const uint8_t* keys(int layer) const { return keys_.get() + size_t(layer) * layer_bytes(); }
  const uint8_t* values(int layer) const { return values_.get() + size_t(layer) * layer_bytes(); }

 private:
  std::unique_ptr<uint8_t[]> keys_, values_;
};

}  // namespace

class CpuBackend::HostWorkspace : public Workspace {
 public:
  ~HostWorkspace() override { release_all(); }

 protected:
  void* allocate(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void release(void* p) override { std::free(p); }
};

// The shared host routing (backend/expert_routing.h) plus expert_mlp's work list. Vectors keep their
// capacity from step to step.
class CpuBackend::Routing : public HostExpertRouting {
 public:
  std::vector<int64_t> offsets;         // expert_mlp: start of each expert's intermediate block
  struct Piece {
    int expert, matrix;  // matrix: 0 gate, 1 up, 2 down
    int64_t n0, n1;
  };
  std::vector<Piece> pieces;
};

CpuBackend::CpuBackend(ThreadPool& pool, CpuBackendOptions options)
    : pool_(pool), options_(options), workspace_(std::make_unique<HostWorkspace>()),
      routing_(std::make_unique<Routing>()) {}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::name() const {
  return fmt::format("cpu ({}, {} threads{})", cpu::linear_isa(), pool_.size(),
                     options_.fast_gemm ? fmt::format(", {} sgemm, not batch invariant", cpu::gemm_backend_name()) : "");
}

Weight CpuBackend::weight(const TensorView& t) { return Weight::of(t); }

const float* CpuBackend::constant(std::span<const float> values) {
  constants_.emplace_back(values.begin(), values.end());
  return constants_.back().data();
}

std::unique_ptr<Buffer> CpuBackend::buffer(size_t floats) { return std::make_unique<HostBuffer>(std::max<size_t>(floats, 1)); }

Workspace& CpuBackend::workspace() { return *workspace_; }

std::unique_ptr<KvStorage> CpuBackend::kv_storage(const KvLayout& layout) { return std::make_unique<HostKvStorage>(layout); }

void CpuBackend::to_host(float* host, const float* src, size_t n) {
  if (host != src) std::memcpy(host, src, n * sizeof(float));
}
void CpuBackend::from_host(float* dst, const float* host, size_t n) {
  if (dst != host) std::memcpy(dst, host, n * sizeof(float));
}
void CpuBackend::copy(float* dst, const float* src, size_t n) {
  if (dst != src) std::memcpy(dst, src, n * sizeof(float));
}

void CpuBackend::embed(const Weight& table, const int32_t* ids, const float* const* features, int64_t rows, float* out) {
  const int64_t dim = table.cols;
  for (int64_t r = 0; r < rows; ++r) {
    if (ids[r] >= table.rows) fail("token id {} at row {} is outside the vocabulary [0, {})", ids[r], r, table.rows);
    if (ids[r] < 0 && (!features || !features[r])) fail("row {} has no token id and no feature row", r);
  }
  const size_t row_bytes = size_t(dim) * dtype_size(table.dtype);
  pool_.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* dst = out + int64_t(r) * dim;
      if (ids[r] < 0)
        std::memcpy(dst, features[r], size_t(dim) * sizeof(float));
      else
        to_f32(table.dtype, static_cast<const uint8_t*>(table.data) + size_t(ids[r]) * row_bytes, dst, size_t(dim));
    }
  }, 16);
}

void CpuBackend::gather_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index,
                             int64_t rows, int64_t cols) {
  pool_.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r)
      std::memcpy(dst + int64_t(r) * ld_dst, src + int64_t(index[r]) * ld_src, size_t(cols) * sizeof(float));
  }, 64);
}

void CpuBackend::copy_row_list(float* dst, const float* const* rows, int64_t n, int64_t cols) {
  pool_.parallel_for(size_t(n), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) std::memcpy(dst + int64_t(r) * cols, rows[r], size_t(cols) * sizeof(float));
  }, 64);
}

void CpuBackend::copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows, int64_t cols) {
  pool_.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r)
      std::memcpy(dst + int64_t(r) * ld_dst, src + int64_t(r) * ld_src, size_t(cols) * sizeof(float));
  }, 64);
}

void CpuBackend::rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) {
  cpu::rms_norm(pool_, x, rows, dim, weight, eps, y);
}

void CpuBackend::layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                            float* y) {
  cpu::layer_norm(pool_, x, rows, dim, gamma, beta, eps, y);
}

void CpuBackend::add(float* y, const float* x, int64_t n) { cpu::add_inplace(pool_, y, x, n); }

void CpuBackend::add_broadcast(float* y, int64_t rows, const float* x, int64_t period, int64_t dim) {
  pool_.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* yr = y + int64_t(r) * dim;
      const float* xr = x + (int64_t(r) % period) * dim;
      for (int64_t i = 0; i < dim; ++i) yr[i] += xr[i];
    }
  }, 16);
}

void CpuBackend::silu_mul(float* gate, const float* up, int64_t n) { cpu::silu_mul(pool_, gate, n, up, n, 1, n); }
void CpuBackend::gelu_erf(float* x, int64_t n) { cpu::gelu_erf(pool_, x, n); }
void CpuBackend::quick_gelu(float* x, int64_t n) { cpu::quick_gelu(pool_, x, n); }

void CpuBackend::linear(const float* A, int64_t M, const Weight& W, const float* bias, float* C, bool accumulate,
                        int64_t lda, int64_t ldc) {
  if (options_.fast_gemm)
    cpu::linear_sgemm(pool_, A, M, W, bias, C, accumulate, lda, ldc);
  else
    cpu::linear(pool_, A, M, W, bias, C, accumulate, lda, ldc);
}

void CpuBackend::linear_multi(const float* A, int64_t M, std::span<const Weight> W, std::span<float* const> C) {
  if (W.size() != C.size()) fail("linear_multi: {} weights but {} outputs", W.size(), C.size());
  if (options_.fast_gemm && M > 8) {
    for (size_t i = 0; i < W.size(); ++i) linear(A, M, W[i], nullptr, C[i]);
    return;
  }
  // One pass over blocks of output features of every weight: one thread-pool round instead of one
  // per weight (decode runs q, k and v, or gate and up, as short weight streams).
  struct Piece {
    size_t weight;
    int64_t n0, n1;
  };
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  for (size_t i = 0; i < W.size(); ++i)
    for (int64_t n = 0; n < W[i].rows; n += kFeatureBlock) pieces.push_back({i, n, std::min(W[i].rows, n + kFeatureBlock)});
  const std::vector<Piece>& work = pieces;
  pool_.parallel_for(work.size(), [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      const Piece& pc = work[p];
      const Weight& w = W[pc.weight];
      // Nested in the pool: runs on this thread.
      cpu::linear(pool_, A, M, w.row_slice(pc.n0, pc.n1 - pc.n0), nullptr, C[pc.weight] + pc.n0, false, w.cols, w.rows);
    }
  });
}

void CpuBackend::conv2d(const float* x, int batch, int height, int width, const Weight& W, const float* bias,
                        ConvGeometry geom, float* out) {
  cpu::conv2d_nhwc(pool_, x, batch, height, width, W, bias, geom, out, options_.fast_gemm);
}

void CpuBackend::chw_to_hwc(const float* chw, int batch, int channels, int size, float* hwc) {
  const int64_t plane = int64_t(size) * size;
  pool_.parallel_for(size_t(batch) * size_t(size), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const int64_t b = int64_t(r) / size, y = int64_t(r) % size;
      for (int64_t x = 0; x < size; ++x)
        for (int c = 0; c < channels; ++c)
          hwc[((b * size + y) * size + x) * channels + c] = chw[(b * channels + c) * plane + y * size + x];
    }
  }, 16);
}

void CpuBackend::rope(float* x, int64_t rows, int64_t ld, int heads, int head_dim, const int32_t* positions,
                      const float* cos, const float* sin) {
  const int half = head_dim / 2;
  pool_.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* c = cos + int64_t(positions[r]) * half;
      const float* s = sin + int64_t(positions[r]) * half;
      for (int head = 0; head < heads; ++head) {
        float* v = x + int64_t(r) * ld + int64_t(head) * head_dim;
        for (int j = 0; j < half; ++j) {
          const float a = v[j], b = v[j + half];
          v[j] = a * c[j] - b * s[j];
          v[j + half] = b * c[j] + a * s[j];
        }
      }
    }
  }, 16);
}

void CpuBackend::kv_write(KvStorage& kv, int layer, const float* k, const float* v, int64_t rows, int64_t ld,
                          const int32_t* slots) {
  auto& store = static_cast<HostKvStorage&>(kv);
  const KvLayout& L = store.layout();
  const int64_t slots_total = int64_t(L.blocks) * L.block_size;
  for (int64_t r = 0; r < rows; ++r)
    if (slots[r] < 0 || slots[r] >= slots_total) fail("KV cache: slot {} of row {} is outside [0, {})", slots[r], r, slots_total);
  const size_t esize = dtype_size(L.dtype);
  uint8_t* K = store.keys(layer);
  uint8_t* V = store.values(layer);
  pool_.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const size_t off = size_t(slots[r]) * size_t(L.width) * esize;
      const float* kr = k + int64_t(r) * ld;
      const float* vr = v + int64_t(r) * ld;
      if (L.dtype == DType::F32) {
        std::memcpy(K + off, kr, size_t(L.width) * 4);
        std::memcpy(V + off, vr, size_t(L.width) * 4);
      } else {
        uint16_t* kd = reinterpret_cast<uint16_t*>(K + off);
        uint16_t* vd = reinterpret_cast<uint16_t*>(V + off);
        for (int64_t i = 0; i < L.width; ++i) {
          kd[i] = f32_to_bf16(kr[i]);
          vd[i] = f32_to_bf16(vr[i]);
        }
      }
    }
  }, 16);
}

void CpuBackend::paged_attention(const float* q, int64_t ldq, const KvStorage& kv, int layer, const AttentionBatch& batch,
                                 int heads, int head_dim, float scale, float* out, int64_t ldo) {
  const auto& store = static_cast<const HostKvStorage&>(kv);
  const KvLayout& L = store.layout();
  if (int64_t(heads) * head_dim != L.width)
    fail("attention: {} heads x {} do not match the KV rows of {}", heads, head_dim, L.width);
  const cpu::PagedKv pk{store.keys(layer), store.values(layer), L.dtype, L.block_size, L.width};
  WorkspaceScope scope(*workspace_);
  float* scratch = workspace_->floats(cpu::paged_attention_scratch_floats(batch, heads, head_dim, pool_.size()));
  cpu::paged_attention(pool_, q, ldq, pk, batch, heads, head_dim, scale, out, ldo, scratch);
}

const ExpertRouting& CpuBackend::route_experts(float* logits, int64_t rows, const RouterConfig& config) {
  cpu::softmax_rows(logits, rows, config.experts);
  routing_->assign(logits, rows, config);
  return *routing_;
}

void CpuBackend::expert_mlp(const float* x, const ExpertRouting& routing, std::span<const ExpertMlp> experts, float* y) {
  Routing& R = *routing_;
  if (&routing != routing_.get()) fail("expert_mlp: the routing comes from another backend");
  const int slots = R.config.experts + (R.config.shared ? 1 : 0);
  if (int(experts.size()) < slots) fail("expert_mlp: {} expert MLPs for {} routes", experts.size(), slots);
  const int64_t grouped = R.grouped_rows();
  if (grouped == 0) return;
  const int64_t hidden = experts[0].gate.cols;

  WorkspaceScope scope(*workspace_);
  // Intermediate blocks of each expert, [rows of e, intermediate of e], one after the other.
  std::vector<int64_t>& offsets = R.offsets;
  offsets.assign(size_t(slots) + 1, 0);
  for (int e = 0; e < slots; ++e)
    offsets[size_t(e) + 1] = offsets[size_t(e)] + int64_t(R.expert_begin[size_t(e) + 1] - R.expert_begin[size_t(e)]) *
                                                      experts[size_t(e)].gate.rows;
  float* xg = workspace_->floats(size_t(grouped * hidden));
  float* gate = workspace_->floats(size_t(offsets.back()));
  float* up = workspace_->floats(size_t(offsets.back()));
  gather_rows(xg, hidden, x, hidden, R.grouped_row.data(), grouped, hidden);

  auto build = [&](bool down) {
    R.pieces.clear();
    for (int e = 0; e < slots; ++e) {
      if (R.expert_begin[size_t(e) + 1] == R.expert_begin[size_t(e)]) continue;
      const ExpertMlp& mlp = experts[size_t(e)];
      const int64_t n = down ? mlp.down.rows : mlp.gate.rows;
      for (int64_t n0 = 0; n0 < n; n0 += kFeatureBlock)
        for (int m = down ? 2 : 0; m < (down ? 3 : 2); ++m) R.pieces.push_back({e, m, n0, std::min(n, n0 + kFeatureBlock)});
    }
  };
  auto run = [&]() {
    pool_.parallel_for(R.pieces.size(), [&](size_t p0, size_t p1) {
      for (size_t p = p0; p < p1; ++p) {
        const Routing::Piece& pc = R.pieces[p];
        const ExpertMlp& mlp = experts[size_t(pc.expert)];
        const int64_t g0 = R.expert_begin[size_t(pc.expert)], m = R.expert_begin[size_t(pc.expert) + 1] - g0;
        const int64_t inter = mlp.gate.rows;
        const int64_t width = pc.n1 - pc.n0;
        if (pc.matrix < 2) {
          const Weight& w = pc.matrix == 0 ? mlp.gate : mlp.up;
          float* out = (pc.matrix == 0 ? gate : up) + offsets[size_t(pc.expert)];
          cpu::linear(pool_, xg + g0 * hidden, m, w.row_slice(pc.n0, width), nullptr, out + pc.n0, false, hidden, inter);
        } else {
          cpu::linear(pool_, gate + offsets[size_t(pc.expert)], m, mlp.down.row_slice(pc.n0, width), nullptr,
                      y + g0 * hidden + pc.n0, false, inter, hidden);
        }
      }
    });
  };
  build(false);
  run();
  cpu::silu_mul(pool_, gate, offsets.back(), up, offsets.back(), 1, offsets.back());
  build(true);
  run();
}

void CpuBackend::moe_combine(const float* y, const ExpertRouting& routing, float* x, int64_t dim) {
  const Routing& R = *routing_;
  if (&routing != routing_.get()) fail("moe_combine: the routing comes from another backend");
  const int top_k = R.config.top_k, experts = R.config.experts;
  pool_.parallel_for(size_t(R.rows), [&](size_t r0, size_t r1) {
    thread_local std::vector<float> sum;
    sum.resize(size_t(dim));
    for (size_t r = r0; r < r1; ++r) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int j = 0; j < top_k; ++j) {
        const int32_t g = R.combine_order[r * size_t(top_k) + size_t(j)];
        const float w = R.grouped_weight[size_t(g)];
        const float* src = y + int64_t(g) * dim;
        for (int64_t c = 0; c < dim; ++c) sum[size_t(c)] += w * src[c];
      }
      if (R.config.shared) {
        const float* src = y + int64_t(R.expert_begin[size_t(experts)] + int32_t(r)) * dim;
        for (int64_t c = 0; c < dim; ++c) sum[size_t(c)] += src[c];
      }
      float* xr = x + int64_t(r) * dim;
      for (int64_t c = 0; c < dim; ++c) xr[c] += sum[size_t(c)];
    }
  }, 4);
}

void CpuBackend::attention_global(const float* qkv, int batch, int tokens, int heads, int head_dim, float* out,
                                  const RelPos* rel, int grid_h, int grid_w) {
  const cpu::RelPosTables tables{rel ? rel->h : nullptr, rel ? rel->w : nullptr};
  cpu::attention_global(pool_, {heads, head_dim}, qkv, batch, tokens, out, rel ? &tables : nullptr, grid_h, grid_w);
}

void CpuBackend::attention_windowed(const float* qkv, int batch, int grid, int window, int heads, int head_dim,
                                    const float* pad_qkv, float* out, const RelPos* rel) {
  const cpu::RelPosTables tables{rel ? rel->h : nullptr, rel ? rel->w : nullptr};
  cpu::attention_windowed(pool_, {heads, head_dim}, qkv, batch, grid, window, pad_qkv, out, rel ? &tables : nullptr);
}

}  // namespace dsocr
