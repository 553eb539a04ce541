// The seam between the model and the hardware. The model files (lm/decoder, vision/sam, vision/clip,
// vision/encoder) are written once against this interface; a backend (backend/cpu now, backend/cuda
// next) owns the weights, long-lived buffers, the KV storage and a workspace, and runs the ops.
//
// Every pointer an op takes or returns lives in the backend's memory (host memory for the CPU backend,
// device memory for a GPU); model code never dereferences them, except through to_host/from_host.
// Small metadata arrays (token ids, positions, KV slots, block tables) are host arrays; a GPU backend
// copies them over itself.
//
// Batch invariance: every op computes each output row from that row's inputs only (and, for
// attention, its own sequence's keys), in an order that does not depend on how many rows the call
// has, where the row sits in it, or how many threads run it. A page therefore gets the same bits
// alone or in any batch. An implementation that cannot promise this says so in is_batch_invariant().
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "io/safetensors.h"

namespace dsocr {

// A weight matrix in PyTorch Linear layout (rows = output features, cols = input features) in a
// backend's memory; a conv weight [out, in, kh, kw] is folded to [out, in*kh*kw].
struct Weight {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;

  static Weight of(const TensorView& t);  // a view of t's bytes; any rank >= 1, trailing dims folded
  Weight row_slice(int64_t begin, int64_t count) const;  // rows [begin, begin + count)
  size_t nbytes() const { return size_t(rows * cols) * dtype_size(dtype); }
};

// Named intermediate tensors for tests and debugging ("lm.layer3.residual", "sam.block0", ...).
// Model code reports a tensor only when an observer is given to the call; data is on the host.
class TensorObserver {
 public:
  virtual ~TensorObserver() = default;
  virtual void on_tensor(std::string_view name, const float* data, std::span<const int64_t> shape) = 0;
  virtual void on_ids(std::string_view name, const int32_t* data, std::span<const int64_t> shape) {}
};

// Scratch memory for one step, handed out by bumping a pointer through one block that the backend
// allocates up front (reserve). It is a stack: WorkspaceScope releases what was taken since it began.
// A request beyond the block is served from an overflow allocation and counted (overflows()); when
// the outermost scope ends the block grows to the high-water mark, so the hot path allocates nothing
// once the largest step has been seen (or reserved).
class Workspace {
 public:
  virtual ~Workspace() = default;
  float* floats(size_t n) { return static_cast<float*>(bytes(n * sizeof(float))); }
  int32_t* ints(size_t n) { return static_cast<int32_t*>(bytes(n * sizeof(int32_t))); }
  void* bytes(size_t n);
  void reserve(size_t bytes);  // make the block at least this large (only while nothing is taken)
  size_t capacity() const { return capacity_; }
  size_t high_water() const { return high_water_; }
  size_t overflows() const { return overflows_; }

  struct Mark {
    size_t used, overflow_count;
  };
  Mark mark() const { return {used_, overflow_.size()}; }
  void release_to(Mark m);

 protected:
  virtual void* allocate(size_t bytes) = 0;  // backend memory, 64-byte aligned
  virtual void release(void* p) = 0;
  void release_all();  // for the destructor of the derived class

 private:
  void* block_ = nullptr;
  size_t capacity_ = 0, used_ = 0, high_water_ = 0, overflows_ = 0;
  std::vector<void*> overflow_;
};

class WorkspaceScope {
 public:
  explicit WorkspaceScope(Workspace& ws) : ws_(ws), mark_(ws.mark()) {}
  ~WorkspaceScope() { ws_.release_to(mark_); }
  WorkspaceScope(const WorkspaceScope&) = delete;
  WorkspaceScope& operator=(const WorkspaceScope&) = delete;

 private:
  Workspace& ws_;
  Workspace::Mark mark_;
};

// Float storage that outlives a step (a page's vision features), in backend memory.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual float* data() = 0;
  virtual size_t size() const = 0;  // floats
};

// Paged attention cache storage: for every layer, `blocks` blocks of `block_size` token rows of
// keys and of values, each row `width` (= kv heads x head_dim) elements of `dtype` (F32 or BF16).
// Slot s = block * block_size + offset addresses one token row. Which blocks belong to which sequence
// is host-side bookkeeping (engine/kv_blocks.h).
struct KvLayout {
  int layers = 0, blocks = 0, block_size = 16;
  int64_t width = 0;
  DType dtype = DType::BF16;
  size_t bytes() const { return 2 * size_t(layers) * size_t(blocks) * size_t(block_size) * size_t(width) * dtype_size(dtype); }
};

class KvStorage {
 public:
  virtual ~KvStorage() = default;
  const KvLayout& layout() const { return layout_; }

 protected:
  explicit KvStorage(KvLayout layout) : layout_(layout) {}
  KvLayout layout_;
};

// The sequences of one attention call. Rows of sequence s are rows row_begin[s] .. row_begin[s+1]-1
// of the step, at consecutive positions from first_position[s]; a row at position p attends to keys
// 0 .. p of its sequence (its own row included, written by kv_write before). block_tables[s] lists
// the KV blocks of sequence s in position order.
struct AttentionBatch {
  int sequences = 0;
  const int32_t* row_begin = nullptr;       // [sequences + 1]
  const int32_t* first_position = nullptr;  // [sequences]
  const int32_t* const* block_tables = nullptr;  // [sequences] -> block ids
};

// Router settings of a MoE layer (spec §9.4).
struct RouterConfig {
  int experts = 0, top_k = 0;
  bool norm_topk_prob = false;
  float scaling = 1.0f;
  bool shared = false;  // a shared MLP sees every row with weight 1 (pseudo-expert `experts`)
};

// A SwiGLU MLP: down(silu(gate x) * up x).
struct ExpertMlp {
  Weight gate, up, down;
};

// Which rows go to which expert, made by route_experts and read by the expert ops of the same
// layer. Backend-owned and reused: valid until the next route_experts call.
class ExpertRouting {
 public:
  virtual ~ExpertRouting() = default;
  virtual int64_t grouped_rows() const = 0;  // rows of the grouped (expert-major) order
  virtual const int32_t* top_ids() const = 0;        // host [rows, top_k], by weight, descending
  virtual const float* top_weights() const = 0;      // host [rows, top_k], scaled
  virtual int experts_hit() const = 0;               // routed experts with at least one row
};

// Geometry of a square 2-D convolution on channels-last activations.
struct ConvGeometry {
  int kernel = 1, stride = 1, pad = 0;
  int out_size(int in) const { return (in + 2 * pad - kernel) / stride + 1; }
};

// Decomposed relative-position tables (SAM, spec §3.4) for a grid_h x grid_w token grid, in backend
// memory: a query at (qy, qx) and a key at (ky, kx) get q·h[qy - ky + grid_h - 1] + q·w[qx - kx + grid_w - 1].
struct RelPos {
  const float* h = nullptr;  // [2*grid_h - 1, head_dim]
  const float* w = nullptr;  // [2*grid_w - 1, head_dim]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;   // "cpu (AVX-512, 2 threads)"
  virtual bool is_batch_invariant() const = 0;

  // ---- memory --------------------------------------------------------------------------------
  // A weight for ops that take one: the CPU backend views the mapped checkpoint in place.
  virtual Weight weight(const TensorView& t) = 0;
  // A float32 copy of host values (norm weights, biases, computed tables) kept for the backend's
  // lifetime.
  virtual const float* constant(std::span<const float> values) = 0;
  const float* constant(const TensorView& t);  // widened to float32
  virtual std::unique_ptr<Buffer> buffer(size_t floats) = 0;
  virtual Workspace& workspace() = 0;
  virtual std::unique_ptr<KvStorage> kv_storage(const KvLayout& layout) = 0;
  virtual void to_host(float* host, const float* src, size_t n) = 0;
  virtual void from_host(float* dst, const float* host, size_t n) = 0;
  virtual void copy(float* dst, const float* src, size_t n) = 0;

  // ---- embedding, copies ----------------------------------------------------------------------
  // out[r] = row ids[r] of table widened to float32, or the float row features[r] when ids[r] < 0
  // (a vision feature spliced into the prompt). Throws on an id outside the table.
  virtual void embed(const Weight& table, const int32_t* ids, const float* const* features, int64_t rows,
                     float* out) = 0;
  // dst[r, 0:cols] = src[index[r], 0:cols] (strides ld_dst, ld_src); index is a host array.
  virtual void gather_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index,
                           int64_t rows, int64_t cols) = 0;
  // dst[r, 0:cols] = rows[r][0:cols] for a host list of row pointers into backend memory (the page
  // feature layout: rows of several views' outputs and the special embeddings).
  virtual void copy_row_list(float* dst, const float* const* rows, int64_t n, int64_t cols) = 0;
  // dst[r, 0:cols] = src[r, 0:cols] with strides (e.g. writing columns of a concatenation).
  virtual void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows, int64_t cols) = 0;

  // ---- element-wise and normalisation ---------------------------------------------------------
  virtual void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) = 0;
  virtual void layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps,
                          float* y) = 0;  // beta may be null
  virtual void add(float* y, const float* x, int64_t n) = 0;  // y += x
  // y[r] += x[r % period]: a table added to every image of a batch (period rows of dim).
  virtual void add_broadcast(float* y, int64_t rows, const float* x, int64_t period, int64_t dim) = 0;
  virtual void silu_mul(float* gate, const float* up, int64_t n) = 0;  // gate = silu(gate) * up
  virtual void gelu_erf(float* x, int64_t n) = 0;
  virtual void quick_gelu(float* x, int64_t n) = 0;  // x * sigmoid(1.702 x)

  // ---- products ----------------------------------------------------------------------------------
  // C[M, W.rows] (+)= A[M, W.cols] W^T (+ bias). lda/ldc 0: dense.
  virtual void linear(const float* A, int64_t M, const Weight& W, const float* bias, float* C, bool accumulate = false,
                      int64_t lda = 0, int64_t ldc = 0) = 0;
  // C[i] = A W[i]^T for several weights of the same input (q/k/v; gate/up) in one pass; dense strides.
  virtual void linear_multi(const float* A, int64_t M, std::span<const Weight> W, std::span<float* const> C) = 0;
  // x: [batch, height, width, W.cols / kernel^2] channels-last; out: [batch, oh, ow, W.rows]; zero padding.
  virtual void conv2d(const float* x, int batch, int height, int width, const Weight& W, const float* bias,
                      ConvGeometry geom, float* out) = 0;
  // Planar [batch, 3, size, size] pixels to channels-last [batch, size, size, 3].
  virtual void chw_to_hwc(const float* chw, int batch, int channels, int size, float* hwc) = 0;

  // ---- decoder attention -----------------------------------------------------------------------
  // Rotates rows of x (heads x head_dim each, row stride ld) in place by their positions (NeoX
  // pairs (j, j + d/2)); cos/sin: [max_positions, head_dim / 2] constants.
  virtual void rope(float* x, int64_t rows, int64_t ld, int heads, int head_dim, const int32_t* positions,
                    const float* cos, const float* sin) = 0;
  // Writes the rows' keys and values of `layer` to their slots (host array).
  virtual void kv_write(KvStorage& kv, int layer, const float* k, const float* v, int64_t rows, int64_t ld,
                        const int32_t* slots) = 0;
  // out = softmax(scale q k^T, causal within each sequence) v, per head, over the paged cache.
  virtual void paged_attention(const float* q, int64_t ldq, const KvStorage& kv, int layer, const AttentionBatch& batch,
                               int heads, int head_dim, float scale, float* out, int64_t ldo) = 0;

  // ---- mixture of experts ------------------------------------------------------------------------
  // Softmax over `logits` [rows, experts] in place (float32), the top_k probabilities (ties: lower
  // id first), renormalised when norm_topk_prob, times scaling; rows grouped by expert.
  virtual const ExpertRouting& route_experts(float* logits, int64_t rows, const RouterConfig& config) = 0;
  // y[g] = down_e(silu(gate_e h) * up_e h) for every grouped row g, h its row of x and e its expert
  // (experts[e]; the shared MLP is experts[config.experts] when the routing has one). All experts'
  // gate/up products run in one pass, then all down products.
  virtual void expert_mlp(const float* x, const ExpertRouting& routing, std::span<const ExpertMlp> experts,
                          float* y) = 0;
  // x[row] += sum over its experts, by ascending expert id, of weight * y[g], then the shared row.
  virtual void moe_combine(const float* y, const ExpertRouting& routing, float* x, int64_t dim) = 0;

  // ---- vision attention ----------------------------------------------------------------------------
  // qkv: [batch * tokens, 3 * heads * head_dim] rows [q | k | v]; out: [batch * tokens, heads * head_dim].
  // Every token attends to every token of its image; with rel, tokens form a grid_h x grid_w grid.
  virtual void attention_global(const float* qkv, int batch, int tokens, int heads, int head_dim, float* out,
                                const RelPos* rel = nullptr, int grid_h = 0, int grid_w = 0) = 0;
  // Non-overlapping window x window attention over grid x grid tokens per image, the grid
  // zero-padded to a multiple of window (padded keys/values are pad_qkv, the projection of zero).
  virtual void attention_windowed(const float* qkv, int batch, int grid, int window, int heads, int head_dim,
                                  const float* pad_qkv, float* out, const RelPos* rel = nullptr) = 0;
};

// Reports a backend tensor to the observer (copied to the host first); nothing without an observer.
void observe(TensorObserver* observer, Backend& backend, std::string_view name, const float* data,
             std::initializer_list<int64_t> shape);

}  // namespace dsocr
