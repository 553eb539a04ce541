#include "backend/cpu/kernel_ns.h"

#include "backend/cpu/vit_attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "backend/cpu/simd.h"
#include "core/error.h"

namespace dsocr::cpu::DSOCR_KERNEL_NS {

namespace {

using namespace simd;

constexpr int kValueChunk = 256;  // keys per pass of P v (the value rows stay in L2)

// Query rows of one micro-kernel call, and vectors per key panel / value column chunk: as many
// accumulators as the registers hold (R * NV accumulators + NV loaded vectors + one broadcast).
constexpr int kPanelVecs = simd::kRegisters >= 32 ? 4 : 3;
constexpr int kTileRows = simd::kRegisters >= 32 ? 6 : 3;
constexpr int kPanel = kPanelVecs * kW;  // keys per packed panel of transposed keys

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Keys transposed into contiguous panels of kPanel keys: panel p holds [dim][kPanel] with
// element (c, jj) = k[p*kPanel + jj][c]; keys past tk are zero. Contiguous panels avoid the
// cache-set conflicts of a [dim, tk] layout whose row stride is a power of two.
int64_t packed_keys_size(int tk, int dim) { return round_up(tk, kPanel) * dim; }

template <typename KeyRow>
void pack_keys(int tk, int dim, KeyRow key_row, float* panels) {
  for (int p = 0; p * kPanel < tk; ++p) {
    float* panel = panels + int64_t(p) * dim * kPanel;
    const int n = std::min(kPanel, tk - p * kPanel);
    for (int jj = 0; jj < n; ++jj) {
      const float* k = key_row(p * kPanel + jj);
      for (int c = 0; c < dim; ++c) panel[c * kPanel + jj] = k[c];
    }
    for (int c = 0; c < dim; ++c) std::fill(panel + c * kPanel + n, panel + (c + 1) * kPanel, 0.0f);
  }
}

// One head's attention for a block of queries against all keys.
struct HeadBlock {
  const float* q;  int64_t ldq;  // nq unscaled query rows
  const float* kt;               // packed keys (pack_keys)
  const float* v;  int64_t ldv;  // [tk, dim]
  float* out;      int64_t ldo;  // [nq, dim]
  int nq = 0, tk = 0, dim = 0;
  float scale = 1.0f;
  // Optional relative-position bias: query i, key (ky, kx) gets rel_h[i*key_h + ky] + rel_w[i*key_w + kx],
  // with tk == key_h * key_w.
  const float* rel_h = nullptr;
  const float* rel_w = nullptr;
  int key_h = 0, key_w = 0;
};

// s[r, 0 : kW*NV] = sum_c q[r, c] kt[c, 0 : kW*NV] for R query rows (flat, fully unrolled
// accumulators: GCC keeps them in registers only when every index is a compile-time constant).
template <int R, int NV>
void qk_tile(const float* q, int64_t ldq, const float* kt, int64_t ldk, int dim, float* s, int64_t lds) {
  V acc[R * NV];
#pragma GCC unroll 32
  for (int i = 0; i < R * NV; ++i) acc[i] = zero();
  for (int c = 0; c < dim; ++c) {
    V k[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) k[v] = load(kt + c * ldk + kW * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V qb = set1(q[r * ldq + c]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r * NV + v] = fma(qb, k[v], acc[r * NV + v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(s + r * lds + kW * v, acc[r * NV + v]);
}

// out[r, 0 : cols] (+)= sum_j p[r, j] v[j, 0 : cols] over tk keys for R rows, cols <= kW*DV; the
// first chunk of keys starts from zero, later ones accumulate; after the last the rows are scaled by inv.
template <int R, int DV>
void pv_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, int tk, int cols, bool first, const float* inv,
             float* out, int64_t ldo) {
  V acc[R * DV];
#pragma GCC unroll 32
  for (int i = 0; i < R * DV; ++i) acc[i] = zero();
  const int last = cols - kW * (DV - 1);  // lanes of the last vector
  for (int j = 0; j < tk; ++j) {
    V vv[DV];
#pragma GCC unroll 4
    for (int d = 0; d < DV; ++d) vv[d] = d + 1 < DV || last == kW ? load(v + j * ldv + kW * d) : load_n(v + j * ldv + kW * d, last);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V pb = set1(p[r * ldp + j]);
#pragma GCC unroll 4
      for (int d = 0; d < DV; ++d) acc[r * DV + d] = fma(pb, vv[d], acc[r * DV + d]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const V sc = set1(inv ? inv[r] : 1.0f);
#pragma GCC unroll 4
    for (int d = 0; d < DV; ++d) {
      const int n = d + 1 < DV ? kW : last;
      float* o = out + r * ldo + kW * d;
      V sum = acc[r * DV + d];
      if (!first) sum = add(sum, n == kW ? load(o) : load_n(o, n));
      if (n == kW) store(o, mul(sum, sc));
      else store_n(o, mul(sum, sc), n);
    }
  }
}

// The tile for `nv` (1..kPanelVecs) vectors, chosen at run time.
template <int R, int NV = 1>
void qk_rows(int nv, const float* q, int64_t ldq, const float* kt, int64_t ldk, int dim, float* s, int64_t lds) {
  if constexpr (NV < kPanelVecs) {
    if (nv <= NV) return qk_tile<R, NV>(q, ldq, kt, ldk, dim, s, lds);
    return qk_rows<R, NV + 1>(nv, q, ldq, kt, ldk, dim, s, lds);
  } else {
    return qk_tile<R, NV>(q, ldq, kt, ldk, dim, s, lds);
  }
}

template <int R, int DV = 1>
void pv_rows(int dv, const float* p, int64_t ldp, const float* v, int64_t ldv, int tk, int cols, bool first,
             const float* inv, float* out, int64_t ldo) {
  if constexpr (DV < kPanelVecs) {
    if (dv <= DV) return pv_tile<R, DV>(p, ldp, v, ldv, tk, cols, first, inv, out, ldo);
    return pv_rows<R, DV + 1>(dv, p, ldp, v, ldv, tk, cols, first, inv, out, ldo);
  } else {
    return pv_tile<R, DV>(p, ldp, v, ldv, tk, cols, first, inv, out, ldo);
  }
}

using QkRowsFn = void (*)(int, const float*, int64_t, const float*, int64_t, int, float*, int64_t);
using PvRowsFn = void (*)(int, const float*, int64_t, const float*, int64_t, int, int, bool, const float*, float*,
                          int64_t);
template <size_t... I>
constexpr std::array<QkRowsFn, sizeof...(I)> qk_table(std::index_sequence<I...>) {
  return {qk_rows<int(I) + 1>...};
}
template <size_t... I>
constexpr std::array<PvRowsFn, sizeof...(I)> pv_table(std::index_sequence<I...>) {
  return {pv_rows<int(I) + 1>...};
}
constexpr auto kQkRows = qk_table(std::make_index_sequence<kTileRows>{});
constexpr auto kPvRows = pv_table(std::make_index_sequence<kTileRows>{});

// Scales a score row, adds the relative-position bias, exponentiates it (max subtracted) in place
// and returns 1 / sum. Tails go through partial vectors: every score gets the same formula.
float softmax_row(float* row, int tk, float scale, const float* rel_h, int key_h, const float* rel_w, int key_w) {
  const V vscale = set1(scale);
  V vmax = set1(-std::numeric_limits<float>::infinity());
  auto scale_span = [&](float* seg, int n, const float* bias_w, float bias_h) {
    for (int k = 0; k < n; k += kW) {
      const int m = std::min(kW, n - k);
      V x = mul(vscale, load_n(seg + k, m));
      if (bias_w) x = add(x, add(set1(bias_h), load_n(bias_w + k, m)));
      store_n(seg + k, x, m);
      // Lanes past m must not raise the max.
      vmax = max(vmax, m == kW ? x : load_n_fill(seg + k, m, -std::numeric_limits<float>::infinity()));
    }
  };
  if (rel_h) {
    for (int ky = 0; ky < key_h; ++ky) scale_span(row + ky * key_w, key_w, rel_w, rel_h[ky]);
  } else {
    scale_span(row, tk, nullptr, 0.0f);
  }
  const V mx = set1(reduce_max(vmax));
  V vsum = zero();
  for (int j = 0; j < tk; j += kW) {
    const int m = std::min(kW, tk - j);
    const V e = exp(sub(load_n(row + j, m), mx));
    store_n(row + j, e, m);
    vsum = add(vsum, m == kW ? e : load_n(row + j, m));
  }
  return 1.0f / reduce_add(vsum);
}

// scores: [nq, lds] scratch with lds >= round_up(tk, kPanel); inv: [nq] scratch.
void attend(const HeadBlock& b, float* scores, int64_t lds, float* inv) {
  for (int p = 0; p * kPanel < b.tk; ++p) {
    const int nv = int(std::min<int64_t>(kPanel, round_up(b.tk - p * kPanel, kW)) / kW);
    const float* panel = b.kt + int64_t(p) * b.dim * kPanel;
    for (int i0 = 0; i0 < b.nq; i0 += kTileRows) {
      const int rows = std::min(kTileRows, b.nq - i0);
      kQkRows[size_t(rows - 1)](nv, b.q + i0 * b.ldq, b.ldq, panel, kPanel, b.dim, scores + i0 * lds + p * kPanel, lds);
    }
  }
  for (int i = 0; i < b.nq; ++i)
    inv[i] = softmax_row(scores + i * lds, b.tk, b.scale, b.rel_h ? b.rel_h + int64_t(i) * b.key_h : nullptr, b.key_h,
                         b.rel_w ? b.rel_w + int64_t(i) * b.key_w : nullptr, b.key_w);
  constexpr int kCols = kPanelVecs * kW;  // value columns per pass
  for (int c0 = 0; c0 < b.dim; c0 += kCols) {
    const int cols = std::min(kCols, b.dim - c0);
    const int dv = (cols + kW - 1) / kW;
    for (int j0 = 0; j0 < b.tk; j0 += kValueChunk) {
      const int nk = std::min(kValueChunk, b.tk - j0);
      const bool first = j0 == 0, last = j0 + nk == b.tk;
      for (int i0 = 0; i0 < b.nq; i0 += kTileRows) {
        const int rows = std::min(kTileRows, b.nq - i0);
        kPvRows[size_t(rows - 1)](dv, scores + i0 * lds + j0, lds, b.v + int64_t(j0) * b.ldv + c0, b.ldv, nk, cols, first,
                                  last ? inv + i0 : nullptr, b.out + i0 * b.ldo + c0, b.ldo);
      }
    }
  }
}

// A relative-position table [2n-1, dim] transposed and reversed: rev[c * (2n-1) + m] = table[2n-2-m][c].
// The bias of a query at y over keys 0..n-1 then reads the contiguous range m = n-1-y .. 2n-2-y.
std::vector<float> reverse_transpose(const float* table, int n, int dim) {
  const int len = 2 * n - 1;
  std::vector<float> rev(int64_t(len) * dim);
  for (int m = 0; m < len; ++m)
    for (int c = 0; c < dim; ++c) rev[int64_t(c) * len + m] = table[int64_t(len - 1 - m) * dim + c];
  return rev;
}

struct ReversedTables {
  std::vector<float> h, w;  // reverse_transpose of RelPosTables::h (grid_h) and ::w (grid_w)
};

constexpr int kBiasGroup = 8;  // queries whose bias rows are computed together (independent FMA chains)

// out[g][0..n) = sum_c q_g[c] rev[c*(2n-1) + first_g + 0..n) for the queries of one group.
void bias_rows(const float* const* q, const int* first, int count, const float* rev, int n, int dim, float* const* out) {
  const int len = 2 * n - 1;
  for (int k0 = 0; k0 < n; k0 += kW) {
    const int m = std::min(kW, n - k0);
    V acc[kBiasGroup];
    for (int g = 0; g < kBiasGroup; ++g) acc[g] = zero();
    for (int c = 0; c < dim; ++c) {
      const float* row = rev + int64_t(c) * len + k0;
      for (int g = 0; g < count; ++g) acc[g] = fma(set1(q[g][c]), load_n(row + first[g], m), acc[g]);
    }
    for (int g = 0; g < count; ++g) store_n(out[g] + k0, acc[g], m);
  }
}

// Relative-position bias of nq queries (unscaled rows of q) at grid positions pos(i) = {y, x}:
// bias_h[i, ky] = q_i · h[y - ky + grid_h - 1], bias_w[i, kx] = q_i · w[x - kx + grid_w - 1].
template <typename PosFn>
void rel_pos_bias(const float* q, int64_t ldq, int nq, int dim, const ReversedTables& rel, int grid_h, int grid_w,
                  PosFn pos, float* bias_h, float* bias_w) {
  for (int i0 = 0; i0 < nq; i0 += kBiasGroup) {
    const int count = std::min(kBiasGroup, nq - i0);
    const float* rows[kBiasGroup];
    int first_h[kBiasGroup], first_w[kBiasGroup];
    float* out_h[kBiasGroup];
    float* out_w[kBiasGroup];
    for (int g = 0; g < count; ++g) {
      const auto [y, x] = pos(i0 + g);
      rows[g] = q + (i0 + g) * ldq;
      first_h[g] = grid_h - 1 - y;
      first_w[g] = grid_w - 1 - x;
      out_h[g] = bias_h + int64_t(i0 + g) * grid_h;
      out_w[g] = bias_w + int64_t(i0 + g) * grid_w;
    }
    bias_rows(rows, first_h, count, rel.h.data(), grid_h, dim, out_h);
    bias_rows(rows, first_w, count, rel.w.data(), grid_w, dim, out_w);
  }
}

// Query rows per block so that one block's scores stay around 512 KiB (inside L2).
int query_block_rows(int64_t lds) {
  const int64_t rows = (int64_t(1) << 17) / lds / kTileRows * kTileRows;
  return int(std::clamp<int64_t>(rows, kTileRows, 32 * kTileRows));
}

}  // namespace

void attention_global(ThreadPool& pool, AttentionShape shape, const float* qkv, int batch, int tokens, float* out,
                      const RelPosTables* rel, int grid_h, int grid_w) {
  const int heads = shape.heads, dim = shape.dim;
  if (rel && int64_t(grid_h) * grid_w != tokens) fail("attention: {} tokens do not form a {}x{} grid", tokens, grid_h, grid_w);
  const int64_t width = int64_t(heads) * dim, ld = 3 * width;
  const int64_t lds = round_up(tokens, kPanel);
  const int block = query_block_rows(lds);
  // Enough tasks to keep every thread busy; a task packs its head's keys and values once.
  const int chunks = int(std::clamp<int64_t>((4 * pool.size() + int64_t(batch) * heads - 1) / (int64_t(batch) * heads),
                                             1, std::max(1, tokens / 64)));
  const float scale = 1.0f / std::sqrt(float(dim));
  ReversedTables reversed;
  if (rel) reversed = {reverse_transpose(rel->h, grid_h, dim), reverse_transpose(rel->w, grid_w, dim)};

  pool.parallel_for(size_t(int64_t(batch) * heads * chunks), [&](size_t t0, size_t t1) {
    std::vector<float> kt(packed_keys_size(tokens, dim)), v(int64_t(tokens) * dim), scores(block * lds), inv(block);
    std::vector<float> bias_h(rel ? block * grid_h : 0), bias_w(rel ? block * grid_w : 0);
    int64_t packed = -1;  // (image, head) whose keys and values are packed
    for (size_t t = t0; t < t1; ++t) {
      const int64_t image_head = int64_t(t) / chunks;
      const int b = int(image_head / heads), h = int(image_head % heads), chunk = int(int64_t(t) % chunks);
      const float* base = qkv + int64_t(b) * tokens * ld;
      if (packed != image_head) {
        pack_keys(tokens, dim, [&](int j) { return base + j * ld + width + h * dim; }, kt.data());
        for (int j = 0; j < tokens; ++j) std::copy_n(base + j * ld + 2 * width + h * dim, dim, v.data() + int64_t(j) * dim);
        packed = image_head;
      }
      const int q_begin = int(int64_t(tokens) * chunk / chunks), q_end = int(int64_t(tokens) * (chunk + 1) / chunks);
      for (int i0 = q_begin; i0 < q_end; i0 += block) {
        HeadBlock hb;
        hb.q = base + i0 * ld + h * dim;
        hb.ldq = ld;
        hb.kt = kt.data();
        hb.v = v.data();
        hb.ldv = dim;
        hb.out = out + (int64_t(b) * tokens + i0) * width + h * dim;
        hb.ldo = width;
        hb.nq = std::min(block, q_end - i0);
        hb.tk = tokens;
        hb.dim = dim;
        hb.scale = scale;
        if (rel) {
          rel_pos_bias(hb.q, ld, hb.nq, dim, reversed, grid_h, grid_w,
                       [&](int i) { return std::pair<int, int>{(i0 + i) / grid_w, (i0 + i) % grid_w}; },
                       bias_h.data(), bias_w.data());
          hb.rel_h = bias_h.data();
          hb.rel_w = bias_w.data();
          hb.key_h = grid_h;
          hb.key_w = grid_w;
        }
        attend(hb, scores.data(), lds, inv.data());
      }
    }
  });
}

void attention_windowed(ThreadPool& pool, AttentionShape shape, const float* qkv, int batch, int grid, int window,
                        const float* pad_qkv, float* out, const RelPosTables* rel) {
  const int heads = shape.heads, dim = shape.dim;
  const int64_t width = int64_t(heads) * dim, ld = 3 * width;
  const int per_side = (grid + window - 1) / window;
  const int wt = window * window;
  const int64_t lds = round_up(wt, kPanel);
  const float scale = 1.0f / std::sqrt(float(dim));
  ReversedTables reversed;
  if (rel) reversed = {reverse_transpose(rel->h, window, dim), reverse_transpose(rel->w, window, dim)};

  pool.parallel_for(size_t(int64_t(batch) * per_side * per_side * heads), [&](size_t t0, size_t t1) {
    std::vector<float> q(wt * dim), kt(packed_keys_size(wt, dim)), v(wt * dim), o(wt * dim);
    std::vector<float> scores(wt * lds), inv(wt);
    std::vector<float> bias_h(wt * window), bias_w(wt * window);
    std::vector<const float*> src(wt);           // qkv row of each window position (real or padding)
    std::vector<int64_t> rows(wt);               // output token of each real query
    std::vector<std::pair<int, int>> where(wt);  // its (y, x) inside the window
    for (size_t t = t0; t < t1; ++t) {
      const int h = int(t % size_t(heads));
      const int64_t win = int64_t(t) / heads;
      const int b = int(win / (per_side * per_side));
      const int wy = int(win / per_side % per_side), wx = int(win % per_side);
      int nq = 0;
      for (int ly = 0; ly < window; ++ly) {
        for (int lx = 0; lx < window; ++lx) {
          const int gy = wy * window + ly, gx = wx * window + lx, j = ly * window + lx;
          const bool real = gy < grid && gx < grid;
          const int64_t token = (int64_t(b) * grid + gy) * grid + gx;
          src[j] = real ? qkv + token * ld : pad_qkv;
          std::copy_n(src[j] + 2 * width + h * dim, dim, v.data() + j * dim);
          if (real) {
            std::copy_n(src[j] + h * dim, dim, q.data() + nq * dim);
            rows[nq] = token;
            where[nq] = {ly, lx};
            ++nq;
          }
        }
      }
      pack_keys(wt, dim, [&](int j) { return src[j] + width + h * dim; }, kt.data());
      HeadBlock hb;
      hb.q = q.data();
      hb.ldq = dim;
      hb.kt = kt.data();
      hb.v = v.data();
      hb.ldv = dim;
      hb.out = o.data();
      hb.ldo = dim;
      hb.nq = nq;
      hb.tk = wt;
      hb.dim = dim;
      hb.scale = scale;
      if (rel) {
        rel_pos_bias(q.data(), dim, nq, dim, reversed, window, window, [&](int i) { return where[i]; }, bias_h.data(),
                     bias_w.data());
        hb.rel_h = bias_h.data();
        hb.rel_w = bias_w.data();
        hb.key_h = window;
        hb.key_w = window;
      }
      attend(hb, scores.data(), lds, inv.data());
      for (int i = 0; i < nq; ++i) std::copy_n(o.data() + i * dim, dim, out + rows[i] * width + h * dim);
    }
  });
}

}  // namespace dsocr::cpu::DSOCR_KERNEL_NS
