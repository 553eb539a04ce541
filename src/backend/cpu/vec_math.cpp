#include "backend/cpu/kernel_ns.h"

#include "backend/cpu/vec_math.h"

#include <algorithm>

#include "backend/cpu/simd.h"

namespace dsocr::cpu::DSOCR_KERNEL_NS {

using namespace simd;

namespace {

// Applies f to every element in place, in pool-sized chunks; tails through partial vectors.
template <typename F>
void map_inplace(ThreadPool& pool, float* x, int64_t n, F f) {
  pool.parallel_for(size_t(n), [&](size_t a, size_t b) {
    for (size_t i = a; i < b; i += kW) {
      const int m = int(std::min<size_t>(kW, b - i));
      if (m == kW) store(x + i, f(load(x + i)));
      else store_n(x + i, f(load_n(x + i, m)), m);
    }
  }, 4096);
}

}  // namespace

void gelu_erf(ThreadPool& pool, float* x, int64_t n) {
  map_inplace(pool, x, n, [](V v) {
    return mul(mul(v, set1(0.5f)), add(erf(mul(v, set1(0.70710678118654752f))), set1(1.0f)));
  });
}

void quick_gelu(ThreadPool& pool, float* x, int64_t n) {
  map_inplace(pool, x, n, [](V v) { return div(v, add(exp(mul(v, set1(-1.702f))), set1(1.0f))); });
}

}  // namespace dsocr::cpu::DSOCR_KERNEL_NS
