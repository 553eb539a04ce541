// The CUDA backend's kernels (kernels.cu), launched through plain functions so that the backend
// itself (cuda_backend.cpp) is ordinary C++ compiled by the host compiler. Each launcher only
// launches: the caller picks the grid and checks cudaGetLastError. Contracts are the ops' in
// backend/backend.h; the comments in kernels.cu say how each kernel does its part.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace dsocr::cuda::kernels {

constexpr int kThreads = 256;  // threads per block of the row and element-wise kernels
constexpr int kMaxLanes = 8;   // attention head dims up to 32 * kMaxLanes (8 values per lane)
constexpr int kVitWarps = 4;   // warps per block of the ViT attention kernel

inline unsigned blocks_for(int64_t n, int threads = kThreads) { return unsigned((n + threads - 1) / threads); }

struct Launch {
  unsigned grid, threads;
  size_t smem;
  cudaStream_t stream;
};

// Flash-style ViT attention (one warp per (image, query token, head), online softmax over the keys,
// never a tokens x tokens matrix); the decomposed rel-pos bias is rel_gh + rel_gw dot products per
// query kept in shared memory (kVitWarps * (rel_gh + rel_gw) floats per block).
struct VitArgs {
  const float* qkv;
  float* out;
  int batch, tokens, heads, hd;
  float scale;
  // windowed only
  int grid = 0, window = 0;
  const float* pad = nullptr;
  // rel-pos (null: none): tables for a rel_gh x rel_gw key grid
  const float* rel_h = nullptr;
  const float* rel_w = nullptr;
  int rel_gh = 0, rel_gw = 0;
};

void embed(const Launch& l, const uint16_t* table, int64_t dim, const int32_t* ids, const float* const* features,
           float* out);
void gather_rows(const Launch& l, float* dst, int64_t ld_dst, const float* src, int64_t ld_src, const int32_t* index,
                 int64_t cols);
void copy_row_list(const Launch& l, float* dst, const float* const* rows, int64_t cols);
void rms_norm(const Launch& l, const float* x, int64_t dim, const float* w, float eps, float* y);
void layer_norm(const Launch& l, const float* x, int64_t dim, const float* gamma, const float* beta, float eps,
                float* y);
void add(const Launch& l, float* y, const float* x, int64_t n);
void add_broadcast(const Launch& l, float* y, int64_t rows, const float* x, int64_t period, int64_t dim);
void silu_mul(const Launch& l, float* gate, const float* up, int64_t n);
void silu_mul_to_bf16(const Launch& l, const float* gate, const float* up, int64_t n, uint16_t* out);
void gelu_erf(const Launch& l, float* x, int64_t n);
void quick_gelu(const Launch& l, float* x, int64_t n);
void to_bf16(const Launch& l, const float* a, int64_t lda, int64_t rows, int64_t cols, uint16_t* out);
void gather_to_bf16(const Launch& l, const float* x, const int32_t* index, int64_t rows, int64_t cols, uint16_t* out);
void add_bias(const Launch& l, float* c, int64_t ldc, int64_t m, int64_t n, const float* bias);
void im2col(const Launch& l, const float* x, int height, int width, int cin, int k, int stride, int pad, int oh, int ow,
            int64_t total, uint16_t* cols);
void chw_to_hwc(const Launch& l, const float* chw, int batch, int channels, int size, float* hwc);
void rope(const Launch& l, float* x, int64_t rows, int64_t ld, int heads, int half, const int32_t* positions,
          const float* cos, const float* sin);
void kv_write(const Launch& l, float* K, float* V, int64_t width, const float* k, const float* v, int64_t rows,
              int64_t ld, const int32_t* slots);
void kv_write(const Launch& l, uint16_t* K, uint16_t* V, int64_t width, const float* k, const float* v, int64_t rows,
              int64_t ld, const int32_t* slots);
void paged_attention(const Launch& l, const float* q, int64_t ldq, const float* K, const float* V, int block_size,
                     int64_t width, const int32_t* row_pos, const int32_t* row_table, const int32_t* tables,
                     int64_t rows, int heads, int hd, float scale, float* out, int64_t ldo);
void paged_attention(const Launch& l, const float* q, int64_t ldq, const uint16_t* K, const uint16_t* V, int block_size,
                     int64_t width, const int32_t* row_pos, const int32_t* row_table, const int32_t* tables,
                     int64_t rows, int heads, int hd, float scale, float* out, int64_t ldo);
void softmax_rows(const Launch& l, float* x, int64_t rows, int n);
void moe_combine(const Launch& l, const float* y, const int32_t* order, const float* weight, int top_k,
                 int64_t shared_begin, float* x, int64_t dim);
void widen_bf16(const Launch& l, const uint16_t* src, float* dst, int64_t n);
void vit_attention(const Launch& l, bool windowed, const VitArgs& a);

}  // namespace dsocr::cuda::kernels
