#include "backend/cpu/vec_math.h"

#include <cmath>

namespace dsocr::cpu {

namespace {

// Applies f16 (16 lanes, AVX-512) or f1 (one value) to every element, in pool-sized chunks.
template <typename Vec, typename Scalar>
void map_inplace(ThreadPool& pool, float* x, int64_t n, Vec f16, Scalar f1) {
  pool.parallel_for(size_t(n), [&](size_t a, size_t b) {
    size_t i = a;
#if defined(__AVX512F__)
    for (; i + 16 <= b; i += 16) _mm512_storeu_ps(x + i, f16(_mm512_loadu_ps(x + i)));
    if (i < b) {
      const __mmask16 m = __mmask16((1u << (b - i)) - 1);
      _mm512_mask_storeu_ps(x + i, m, f16(_mm512_maskz_loadu_ps(m, x + i)));
      i = b;
    }
#endif
    for (; i < b; ++i) x[i] = f1(x[i]);
  }, 4096);
  (void)f16;
}

}  // namespace

void gelu_erf(ThreadPool& pool, float* x, int64_t n) {
  map_inplace(
      pool, x, n,
#if defined(__AVX512F__)
      [](__m512 v) {
        const __m512 e = erf_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)));
        return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)), _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
      },
#else
      0,
#endif
      [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); });
}

void quick_gelu(ThreadPool& pool, float* x, int64_t n) {
  map_inplace(
      pool, x, n,
#if defined(__AVX512F__)
      [](__m512 v) {
        const __m512 e = exp_ps(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f)));
        return _mm512_div_ps(v, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
      },
#else
      0,
#endif
      [](float v) { return v / (1.0f + std::exp(-1.702f * v)); });
}

}  // namespace dsocr::cpu
