#include "backend/cpu/kernel_ns.h"

#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/simd.h"

namespace dsocr::cpu::DSOCR_KERNEL_NS {

using namespace simd;

void layer_norm(ThreadPool& pool, const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta,
                float eps, float* y) {
  pool.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + int64_t(r) * dim;
      float* yr = y + int64_t(r) * dim;
      // Two passes in double for the statistics: cheap and stable; the reference is float32, and
      // its rounding differs from this by far less than the tolerances.
      double mean = 0;
      for (int64_t i = 0; i < dim; ++i) mean += xr[i];
      mean /= double(dim);
      double var = 0;
      for (int64_t i = 0; i < dim; ++i) {
        const double d = xr[i] - mean;
        var += d * d;
      }
      var /= double(dim);
      const float inv = float(1.0 / std::sqrt(var + double(eps)));
      const float m = float(mean);
      for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv * gamma[i] + (beta ? beta[i] : 0.0f);
    }
  }, 4);
}

void rms_norm(ThreadPool& pool, const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) {
  pool.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + int64_t(r) * dim;
      float* yr = y + int64_t(r) * dim;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
      const float inv = 1.0f / std::sqrt(float(ss / double(dim)) + eps);
      for (int64_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
    }
  }, 4);
}

namespace {
// gate = gate / (1 + e^-gate) * up on n contiguous values (the tail through partial vectors, so every
// element gets the same formula).
void silu_mul_span(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i < n; i += kW) {
    const int m = int(std::min<int64_t>(kW, n - i));
    const V x = m == kW ? load(g + i) : load_n(g + i, m);
    const V up = m == kW ? load(u + i) : load_n(u + i, m);
    const V s = mul(div(x, add(set1(1.0f), exp(sub(zero(), x)))), up);
    if (m == kW) store(g + i, s);
    else store_n(g + i, s, m);
  }
}
}  // namespace

void silu_mul(ThreadPool& pool, float* gate, int64_t ldg, const float* up, int64_t ldu, int64_t rows, int64_t dim) {
  if (ldg == dim && ldu == dim) {
    pool.parallel_for(size_t(rows * dim), [&](size_t a, size_t b) { silu_mul_span(gate + a, up + a, int64_t(b - a)); }, 4096);
    return;
  }
  pool.parallel_for(size_t(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) silu_mul_span(gate + int64_t(r) * ldg, up + int64_t(r) * ldu, dim);
  });
}

void add_inplace(ThreadPool& pool, float* y, const float* x, int64_t n) {
  pool.parallel_for(size_t(n), [&](size_t a, size_t b) {
    size_t i = a;
    for (; i + kW <= b; i += kW) store(y + i, add(load(y + i), load(x + i)));
    for (; i < b; ++i) y[i] += x[i];
  }, 8192);
}

void softmax_rows(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * n;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, row[i]);
    if (mx == -std::numeric_limits<float>::infinity()) {
      std::fill(row, row + n, 0.0f);
      continue;
    }
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      row[i] = std::exp(row[i] - mx);
      sum += row[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) row[i] *= inv;
  }
}

}  // namespace dsocr::cpu::DSOCR_KERNEL_NS
