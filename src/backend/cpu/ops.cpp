#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/gemm.h"

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

void gelu_erf(ThreadPool& pool, float* x, int64_t n) {
  pool.parallel_for(size_t(n), [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
  }, 4096);
}

void quick_gelu(ThreadPool& pool, float* x, int64_t n) {
  pool.parallel_for(size_t(n), [&](size_t a, size_t b) {
    for (size_t i = a; i < b; ++i) x[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
  }, 4096);
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

void attention_head(ThreadPool& pool, const AttentionArgs& a) {
  constexpr int64_t kBlock = 256;
  const int64_t block = std::min(a.tq, kBlock);
  std::vector<float> scores(size_t(block * a.tk));
  for (int64_t q0 = 0; q0 < a.tq; q0 += block) {
    const int64_t nq = std::min(block, a.tq - q0);
    // Keys this block can see (causal: up to the last query's position).
    const int64_t nk = a.causal ? std::min(a.tk, a.q_offset + q0 + nq) : a.tk;
    float* s = scores.data();
    sgemm(pool, true, nq, nk, a.dim, a.scale, a.q + q0 * a.ldq, a.ldq, a.k, a.ldk, 0.0f, s, nk);
    pool.parallel_for(size_t(nq), [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        float* row = s + int64_t(r) * nk;
        const int64_t qi = q0 + int64_t(r);
        if (a.bias) {
          const float* rh = a.bias->rel_h + qi * a.bias->key_h;
          const float* rw = a.bias->rel_w + qi * a.bias->key_w;
          for (int64_t ky = 0, j = 0; ky < a.bias->key_h; ++ky)
            for (int64_t kx = 0; kx < a.bias->key_w; ++kx, ++j) row[j] += rh[ky] + rw[kx];
        }
        if (a.causal)
          for (int64_t j = a.q_offset + qi + 1; j < nk; ++j) row[j] = -std::numeric_limits<float>::infinity();
        softmax_rows(row, 1, nk);
      }
    }, 8);
    sgemm(pool, false, nq, a.dim, nk, 1.0f, s, nk, a.v, a.ldv, 0.0f, a.out + q0 * a.ldo, a.ldo);
  }
}

}  // namespace dsocr::cpu
