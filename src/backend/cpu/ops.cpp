#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>


namespace dsocr::cpu {

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

void silu_mul(ThreadPool& pool, float* gate, int64_t ldg, const float* up, int64_t ldu, int64_t rows, int64_t dim) {
  pool.parallel_for(size_t(rows * dim), [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i) {
      const int64_t r = int64_t(i) / dim, c = int64_t(i) % dim;
      float& g = gate[r * ldg + c];
      g = g / (1.0f + std::exp(-g)) * up[r * ldu + c];
    }
  }, 4096);
}

void add_inplace(ThreadPool& pool, float* y, const float* x, int64_t n) {
  pool.parallel_for(size_t(n), [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i) y[i] += x[i];
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

}  // namespace dsocr::cpu
