// Kernels of the CUDA backend: simple and obviously correct first (one thread per element, one block
// per row, one warp per attention row and head); speed comes with issue 10's fast version.
#include "backend/cuda/kernels.h"

#include <cuda_bf16.h>

#include <cmath>

namespace dsocr::cuda::kernels {

namespace {

// ---- device helpers ------------------------------------------------------------------------------

__device__ __forceinline__ float bf16_bits_to_float(uint16_t v) { return __uint_as_float(uint32_t(v) << 16); }
// Round to nearest even, as the host's f32_to_bf16 and torch do.
__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }
__device__ __forceinline__ float load_kv(const float* p) { return *p; }
__device__ __forceinline__ float load_kv(const uint16_t* p) { return bf16_bits_to_float(*p); }
__device__ __forceinline__ void store_kv(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_kv(uint16_t* p, float v) { *p = float_to_bf16_bits(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of kThreads threads; every thread gets the total.
__device__ float block_sum(float v) {
  __shared__ float partial[kThreads / 32];
  __shared__ float total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < kThreads / 32 ? partial[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const float result = total;
  __syncthreads();  // partial/total are reused by the next call
  return result;
}

// ---- kernels: copies ----------------------------------------------------------------------------------

// One block row per output row; threads stride over the columns.
__global__ void embed_kernel(const uint16_t* table, int64_t dim, const int32_t* ids, const float* const* features,
                             float* out) {
  const int64_t r = blockIdx.x;
  const int32_t id = ids[r];
  float* dst = out + r * dim;
  if (id >= 0) {
    const uint16_t* src = table + int64_t(id) * dim;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = bf16_bits_to_float(src[c]);
  } else {
    const float* src = features[r];
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = src[c];
  }
}

__global__ void gather_rows_kernel(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index,
                                   int64_t cols) {
  const int64_t r = blockIdx.x;
  const float* s = src + int64_t(index[r]) * ld_src;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[r * ld_dst + c] = s[c];
}

__global__ void copy_row_list_kernel(float* dst, const float* const* rows, int64_t cols) {
  const int64_t r = blockIdx.x;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[r * cols + c] = rows[r][c];
}

// ---- kernels: normalisation and element-wise --------------------------------------------------------

__global__ void rms_norm_kernel(const float* x, int64_t dim, const float* w, float eps, float* y) {
  const float* xr = x + int64_t(blockIdx.x) * dim;
  float* yr = y + int64_t(blockIdx.x) * dim;
  float ss = 0;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) ss += xr[c] * xr[c];
  const float inv = rsqrtf(block_sum(ss) / float(dim) + eps);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) yr[c] = xr[c] * inv * w[c];
}

// Two passes (mean, then the squared deviations) rather than E[x^2] - E[x]^2, which cancels.
__global__ void layer_norm_kernel(const float* x, int64_t dim, const float* gamma, const float* beta, float eps,
                                  float* y) {
  const float* xr = x + int64_t(blockIdx.x) * dim;
  float* yr = y + int64_t(blockIdx.x) * dim;
  float s = 0;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) s += xr[c];
  const float mean = block_sum(s) / float(dim);
  float v = 0;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) v += (xr[c] - mean) * (xr[c] - mean);
  const float inv = rsqrtf(block_sum(v) / float(dim) + eps);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
    yr[c] = (xr[c] - mean) * inv * gamma[c] + (beta ? beta[c] : 0.0f);
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] += x[i];
}

__global__ void add_broadcast_kernel(float* y, int64_t rows, const float* x, int64_t period, int64_t dim) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * dim) return;
  const int64_t r = i / dim, c = i % dim;
  y[i] += x[(r % period) * dim + c];
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

__global__ void silu_mul_kernel(float* gate, const float* up, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) gate[i] = silu(gate[i]) * up[i];
}

// The MoE intermediate: silu(gate) * up, rounded to bf16 as the operand of the down product.
__global__ void silu_mul_to_bf16_kernel(const float* gate, const float* up, int64_t n, uint16_t* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = float_to_bf16_bits(silu(gate[i]) * up[i]);
}

__global__ void gelu_erf_kernel(float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

__global__ void quick_gelu_kernel(float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

// ---- kernels: products ------------------------------------------------------------------------------

// The bf16 operand of a product: A [rows, cols] (stride lda) rounded to a dense bf16 matrix.
__global__ void to_bf16_kernel(const float* a, int64_t lda, int64_t rows, int64_t cols, uint16_t* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t r = i / cols, c = i % cols;
  out[i] = float_to_bf16_bits(a[r * lda + c]);
}

// Rows index[g] of x, rounded to bf16: the grouped (expert-major) input of the expert products.
__global__ void gather_to_bf16_kernel(const float* x, const int32_t* index, int64_t rows, int64_t cols, uint16_t* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t g = i / cols, c = i % cols;
  out[i] = float_to_bf16_bits(x[int64_t(index[g]) * cols + c]);
}

__global__ void add_bias_kernel(float* c, int64_t ldc, int64_t m, int64_t n, const float* bias) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < m * n) c[(i / n) * ldc + i % n] += bias[i % n];
}

// im2col for a channels-last input: column (ci * k + ky) * k + kx of output pixel (b, oy, ox), which
// is the folded [out, in, kh, kw] weight's column order; zero outside the image.
__global__ void im2col_kernel(const float* x, int height, int width, int cin, int k, int stride, int pad, int oh,
                              int ow, int64_t total, uint16_t* cols) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t K = int64_t(cin) * k * k;
  const int64_t pixel = i / K, col = i % K;
  const int ci = int(col / (k * k)), ky = int(col / k % k), kx = int(col % k);
  const int64_t b = pixel / (int64_t(oh) * ow);
  const int oy = int(pixel / ow % oh), ox = int(pixel % ow);
  const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
  float v = 0.0f;
  if (iy >= 0 && ix >= 0 && iy < height && ix < width) v = x[((b * height + iy) * width + ix) * cin + ci];
  cols[i] = float_to_bf16_bits(v);
}

__global__ void chw_to_hwc_kernel(const float* chw, int batch, int channels, int size, float* hwc) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t plane = int64_t(size) * size;
  if (i >= int64_t(batch) * channels * plane) return;
  const int64_t b = i / (channels * plane), c = i / plane % channels, p = i % plane;
  hwc[(b * plane + p) * channels + c] = chw[i];
}

// ---- kernels: decoder attention ----------------------------------------------------------------------

// One thread per (row, head, pair j): NeoX pairs (j, j + half).
__global__ void rope_kernel(float* x, int64_t rows, int64_t ld, int heads, int half, const int32_t* positions,
                            const float* cos, const float* sin) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * heads * half) return;
  const int64_t r = i / (int64_t(heads) * half);
  const int h = int(i / half % heads), j = int(i % half);
  const float c = cos[int64_t(positions[r]) * half + j], s = sin[int64_t(positions[r]) * half + j];
  float* v = x + r * ld + int64_t(h) * 2 * half;
  const float a = v[j], b = v[j + half];
  v[j] = a * c - b * s;
  v[j + half] = b * c + a * s;
}

template <typename T>
__global__ void kv_write_kernel(T* K, T* V, int64_t width, const float* k, const float* v, int64_t rows, int64_t ld,
                                const int32_t* slots) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * width) return;
  const int64_t r = i / width, c = i % width;
  const int64_t dst = int64_t(slots[r]) * width + c;
  store_kv(K + dst, k[r * ld + c]);
  store_kv(V + dst, v[r * ld + c]);
}

// Head dims up to 32 * kMaxLanes: each lane holds elements lane, lane + 32, ... of q and of the sum.

// Online softmax state of one warp: running max, sum of weights, weighted values.
struct OnlineSoftmax {
  float m = -INFINITY, l = 0.0f;
  float acc[kMaxLanes] = {};
  // Adds a key with score s and value row v (this lane's elements).
  template <typename T>
  __device__ __forceinline__ void add(float s, const T* v, int lane, int hd) {
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float w = expf(s - m_new);
    l = l * corr + w;
#pragma unroll
    for (int i = 0; i < kMaxLanes; ++i) {
      const int e = lane + 32 * i;
      if (e < hd) acc[i] = acc[i] * corr + w * load_kv(v + e);
    }
    m = m_new;
  }
  __device__ __forceinline__ void store(float* out, int lane, int hd) const {
#pragma unroll
    for (int i = 0; i < kMaxLanes; ++i) {
      const int e = lane + 32 * i;
      if (e < hd) out[e] = acc[i] / l;
    }
  }
};

template <typename T>
__device__ __forceinline__ float warp_dot(const float* q, const T* k, int lane, int hd) {
  float d = 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxLanes; ++i) {
    const int e = lane + 32 * i;
    if (e < hd) d += q[i] * load_kv(k + e);
  }
  return warp_sum(d);
}

// One warp per (row, head): walks the row's keys 0 .. position through its block table, one key at
// a time (simple and exact; a split over the context for long pages comes with the fast version).
template <typename T>
__global__ void paged_attention_kernel(const float* q, int64_t ldq, const T* K, const T* V, int block_size,
                                       int64_t width, const int32_t* row_pos, const int32_t* row_table,
                                       const int32_t* tables, int64_t rows, int heads, int hd, float scale, float* out,
                                       int64_t ldo) {
  const int64_t pair = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (pair >= rows * heads) return;  // uniform per warp: the shuffles below see a whole warp
  const int64_t r = pair / heads;
  const int h = int(pair % heads);
  float qv[kMaxLanes];
#pragma unroll
  for (int i = 0; i < kMaxLanes; ++i) {
    const int e = lane + 32 * i;
    qv[i] = e < hd ? q[r * ldq + int64_t(h) * hd + e] : 0.0f;
  }
  const int32_t* table = tables + row_table[r];
  OnlineSoftmax sm;
  for (int key = 0; key <= row_pos[r]; ++key) {
    const int64_t slot = int64_t(table[key / block_size]) * block_size + key % block_size;
    const int64_t off = slot * width + int64_t(h) * hd;
    const float s = warp_dot(qv, K + off, lane, hd) * scale;
    sm.add(s, V + off, lane, hd);
  }
  sm.store(out + r * ldo + int64_t(h) * hd, lane, hd);
}

// In-place softmax of each router row; one thread per row (experts are few).
__global__ void softmax_rows_kernel(float* x, int64_t rows, int n) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float* row = x + r * n;
  float mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = fmaxf(mx, row[i]);
  if (mx == -INFINITY) {  // as the CPU: a row of -inf routes with zero weights
    for (int i = 0; i < n; ++i) row[i] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += row[i] = expf(row[i] - mx);
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) row[i] *= inv;
}

// x[r] += sum over j of weight[g] * y[g] for g = order[r, j] (ascending expert id), then the shared row.
__global__ void moe_combine_kernel(const float* y, const int32_t* order, const float* weight, int top_k,
                                   int64_t shared_begin, float* x, int64_t dim) {
  const int64_t r = blockIdx.x;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float sum = 0.0f;
    for (int j = 0; j < top_k; ++j) {
      const int32_t g = order[r * top_k + j];
      sum += weight[g] * y[int64_t(g) * dim + c];
    }
    if (shared_begin >= 0) sum += y[(shared_begin + r) * dim + c];
    x[r * dim + c] += sum;
  }
}

// ---- kernels: vision attention ------------------------------------------------------------------------

// Flash-style ViT attention: one warp per (image, query, head) keeps an online softmax over the keys,
// so no tokens x tokens matrix exists. The decomposed rel-pos bias of the query is its rel_gh + rel_gw
// dot products with the tables, computed once into shared memory, then added per key by its row and
// column. Windowed: the keys are the query's window, padded keys read pad (the projection of zero).

template <bool Windowed>
__global__ void vit_attention_kernel(VitArgs a) {
  extern __shared__ float bias_smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t pair = int64_t(blockIdx.x) * kVitWarps + warp;
  if (pair >= int64_t(a.batch) * a.tokens * a.heads) return;  // uniform per warp
  const int h = int(pair % a.heads);
  const int64_t t = pair / a.heads % a.tokens, b = pair / a.heads / a.tokens;
  const int64_t width = int64_t(a.heads) * a.hd, stride = 3 * width;
  const float* qrow = a.qkv + (b * a.tokens + t) * stride + int64_t(h) * a.hd;
  float qv[kMaxLanes];
#pragma unroll
  for (int i = 0; i < kMaxLanes; ++i) {
    const int e = lane + 32 * i;
    qv[i] = e < a.hd ? qrow[e] : 0.0f;
  }
  // The query's place in the rel-pos grid, and (windowed) its window's corner.
  int qy = 0, qx = 0, wy = 0, wx = 0, keys = a.tokens;
  if (Windowed) {
    const int y = int(t / a.grid), x = int(t % a.grid);
    wy = y / a.window * a.window, wx = x / a.window * a.window;
    qy = y - wy, qx = x - wx;
    keys = a.window * a.window;
  } else if (a.rel_h) {
    qy = int(t / a.rel_gw), qx = int(t % a.rel_gw);
  }
  float* bh = bias_smem + warp * (a.rel_gh + a.rel_gw);
  float* bw = bh + a.rel_gh;
  if (a.rel_h) {
    for (int ky = 0; ky < a.rel_gh; ++ky) {
      const float d = warp_dot(qv, a.rel_h + int64_t(qy - ky + a.rel_gh - 1) * a.hd, lane, a.hd);
      if (lane == 0) bh[ky] = d;
    }
    for (int kx = 0; kx < a.rel_gw; ++kx) {
      const float d = warp_dot(qv, a.rel_w + int64_t(qx - kx + a.rel_gw - 1) * a.hd, lane, a.hd);
      if (lane == 0) bw[kx] = d;
    }
    __syncwarp();
  }
  OnlineSoftmax sm;
  for (int i = 0; i < keys; ++i) {
    const float* krow;
    int ky, kx;
    if (Windowed) {
      ky = i / a.window, kx = i % a.window;
      const int gy = wy + ky, gx = wx + kx;
      krow = gy < a.grid && gx < a.grid ? a.qkv + ((b * a.grid + gy) * a.grid + gx) * stride : a.pad;
    } else {
      ky = a.rel_h ? i / a.rel_gw : 0, kx = a.rel_h ? i % a.rel_gw : 0;
      krow = a.qkv + (b * a.tokens + i) * stride;
    }
    float s = warp_dot(qv, krow + width + int64_t(h) * a.hd, lane, a.hd) * a.scale;
    if (a.rel_h) s += bh[ky] + bw[kx];
    sm.add(s, krow + 2 * width + int64_t(h) * a.hd, lane, a.hd);
  }
  sm.store(a.out + (b * a.tokens + t) * width + int64_t(h) * a.hd, lane, a.hd);
}

// The smoke test's widening of a bf16 weight (cuda::linear_bf16).
__global__ void widen_bf16_kernel(const uint16_t* src, float* dst, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = bf16_bits_to_float(src[i]);
}

}  // namespace

void widen_bf16(const Launch& l, const uint16_t* src, float* dst, int64_t n) {
  widen_bf16_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(src, dst, n);
}

void embed(const Launch& l, const uint16_t* table, int64_t dim, const int32_t* ids, const float* const* features,
           float* out) {
  embed_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(table, dim, ids, features, out);
}

void gather_rows(const Launch& l, float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index,
                 int64_t cols) {
  gather_rows_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(dst, ld_dst, src, ld_src, index, cols);
}

void copy_row_list(const Launch& l, float* dst, const float* const* rows, int64_t cols) {
  copy_row_list_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(dst, rows, cols);
}

void rms_norm(const Launch& l, const float* x, int64_t dim, const float* w, float eps, float* y) {
  rms_norm_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, dim, w, eps, y);
}

void layer_norm(const Launch& l, const float* x, int64_t dim, const float* gamma, const float* beta, float eps,
                float* y) {
  layer_norm_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, dim, gamma, beta, eps, y);
}

void add(const Launch& l, float* y, const float* x, int64_t n) {
  add_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(y, x, n);
}

void add_broadcast(const Launch& l, float* y, int64_t rows, const float* x, int64_t period, int64_t dim) {
  add_broadcast_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(y, rows, x, period, dim);
}

void silu_mul(const Launch& l, float* gate, const float* up, int64_t n) {
  silu_mul_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(gate, up, n);
}

void silu_mul_to_bf16(const Launch& l, const float* gate, const float* up, int64_t n, uint16_t* out) {
  silu_mul_to_bf16_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(gate, up, n, out);
}

void gelu_erf(const Launch& l, float* x, int64_t n) { gelu_erf_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, n); }

void quick_gelu(const Launch& l, float* x, int64_t n) {
  quick_gelu_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, n);
}

void to_bf16(const Launch& l, const float* a, int64_t lda, int64_t rows, int64_t cols, uint16_t* out) {
  to_bf16_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(a, lda, rows, cols, out);
}

void gather_to_bf16(const Launch& l, const float* x, const int32_t* index, int64_t rows, int64_t cols, uint16_t* out) {
  gather_to_bf16_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, index, rows, cols, out);
}

void add_bias(const Launch& l, float* c, int64_t ldc, int64_t m, int64_t n, const float* bias) {
  add_bias_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(c, ldc, m, n, bias);
}

void im2col(const Launch& l, const float* x, int height, int width, int cin, int k, int stride, int pad, int oh, int ow,
            int64_t total, uint16_t* cols) {
  im2col_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, height, width, cin, k, stride, pad, oh, ow, total, cols);
}

void chw_to_hwc(const Launch& l, const float* chw, int batch, int channels, int size, float* hwc) {
  chw_to_hwc_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(chw, batch, channels, size, hwc);
}

void rope(const Launch& l, float* x, int64_t rows, int64_t ld, int heads, int half, const int32_t* positions,
          const float* cos, const float* sin) {
  rope_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, rows, ld, heads, half, positions, cos, sin);
}

void kv_write(const Launch& l, float* K, float* V, int64_t width, const float* k, const float* v, int64_t rows,
              int64_t ld, const int32_t* slots) {
  kv_write_kernel<float><<<l.grid, l.threads, l.smem, l.stream>>>(K, V, width, k, v, rows, ld, slots);
}

void kv_write(const Launch& l, uint16_t* K, uint16_t* V, int64_t width, const float* k, const float* v, int64_t rows,
              int64_t ld, const int32_t* slots) {
  kv_write_kernel<uint16_t><<<l.grid, l.threads, l.smem, l.stream>>>(K, V, width, k, v, rows, ld, slots);
}

void paged_attention(const Launch& l, const float* q, int64_t ldq, const float* K, const float* V, int block_size,
                     int64_t width, const int32_t* row_pos, const int32_t* row_table, const int32_t* tables,
                     int64_t rows, int heads, int hd, float scale, float* out, int64_t ldo) {
  paged_attention_kernel<float><<<l.grid, l.threads, l.smem, l.stream>>>(
      q, ldq, K, V, block_size, width, row_pos, row_table, tables, rows, heads, hd, scale, out, ldo);
}

void paged_attention(const Launch& l, const float* q, int64_t ldq, const uint16_t* K, const uint16_t* V, int block_size,
                     int64_t width, const int32_t* row_pos, const int32_t* row_table, const int32_t* tables,
                     int64_t rows, int heads, int hd, float scale, float* out, int64_t ldo) {
  paged_attention_kernel<uint16_t><<<l.grid, l.threads, l.smem, l.stream>>>(
      q, ldq, K, V, block_size, width, row_pos, row_table, tables, rows, heads, hd, scale, out, ldo);
}

void softmax_rows(const Launch& l, float* x, int64_t rows, int n) {
  softmax_rows_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(x, rows, n);
}

void moe_combine(const Launch& l, const float* y, const int32_t* order, const float* weight, int top_k,
                 int64_t shared_begin, float* x, int64_t dim) {
  moe_combine_kernel<<<l.grid, l.threads, l.smem, l.stream>>>(y, order, weight, top_k, shared_begin, x, dim);
}

void vit_attention(const Launch& l, bool windowed, const VitArgs& a) {
  if (windowed)
    vit_attention_kernel<true><<<l.grid, l.threads, l.smem, l.stream>>>(a);
  else
    vit_attention_kernel<false><<<l.grid, l.threads, l.smem, l.stream>>>(a);
}

}  // namespace dsocr::cuda::kernels
