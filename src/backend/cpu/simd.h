// A small portable vector layer for the CPU kernels: one type `V` of `kW` float lanes with the few
// operations the kernels use, for AVX-512 (16 lanes), AVX2+FMA (8), SSE4.1 (4, the x86-64-v2
// baseline: no FMA, so a * b + c is rounded twice), NEON (4) or plain C++ (1). The
// target is whatever this translation unit is compiled for: the kernel files are compiled once per
// instruction set and picked at run time (backend/cpu/dispatch.h), so one binary runs at full speed on
// every x86-64 and arm64 CPU.
//
// Every reduction has a fixed pairing order (lane i + lane i + kW/2, then kW/4, ...), so a kernel's result
// depends only on its inputs, never on how work was split (batch invariance, backend/backend.h).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE4_1__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports its own _mm512_undefined_ps() pass-through operands as uninitialised once these
// intrinsics are inlined (GCC bug 105593); the report is located in the header, so silence it there.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace dsocr::cpu::simd {

// The constants below are plain constexpr (internal linkage), not inline: an inline variable is one
// symbol shared across translation units, and each kernel variant defines its own value.

inline float bf16_widen(uint16_t v) {
  const uint32_t bits = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

#if defined(__AVX512F__)
// ---- AVX-512 --------------------------------------------------------------------------------------------
constexpr int kW = 16;
constexpr int kRegisters = 32;
constexpr const char* kIsaName = "avx512";
struct V {
  __m512 v;
};
inline V zero() { return {_mm512_setzero_ps()}; }
inline V set1(float x) { return {_mm512_set1_ps(x)}; }
inline V load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline V load(const uint16_t* p) {  // bf16 widened exactly: bf16 is the top half of a float32
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
inline __mmask16 first_n(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
inline V load_n(const float* p, int n) { return {_mm512_maskz_loadu_ps(first_n(n), p)}; }  // lanes >= n are 0
inline void store(float* p, V x) { _mm512_storeu_ps(p, x.v); }
inline void store_n(float* p, V x, int n) { _mm512_mask_storeu_ps(p, first_n(n), x.v); }
inline V add(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V sub(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline V mul(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline V div(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
inline V fma(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }   // a * b + c
inline V fnma(V a, V b, V c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; } // c - a * b
inline V max(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
inline V min(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
inline V abs(V a) { return {_mm512_abs_ps(a.v)}; }
inline V round_nearest(V a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline V scale2(V a, V n) { return {_mm512_scalef_ps(a.v, n.v)}; }  // a * 2^n, n integral
inline V copy_sign(V magnitude, V sign) {
  return {_mm512_or_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), magnitude.v), _mm512_and_ps(sign.v, _mm512_set1_ps(-0.0f)))};
}
inline float reduce_add(V x) {
  const __m256 t = _mm256_add_ps(_mm512_castps512_ps256(x.v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x.v), 1)));
  const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}
inline float reduce_max(V x) { return _mm512_reduce_max_ps(x.v); }
inline void keep_in_register(V& x) { asm("" : "+v"(x.v)); }
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

#elif defined(__AVX2__) && defined(__FMA__)
// ---- AVX2 + FMA ---------------------------------------------------------------------------------------------
constexpr int kW = 8;
constexpr int kRegisters = 16;
constexpr const char* kIsaName = "avx2";
struct V {
  __m256 v;
};
inline V zero() { return {_mm256_setzero_ps()}; }
inline V set1(float x) { return {_mm256_set1_ps(x)}; }
inline V load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline V load(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
}
inline __m256i first_n(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}
inline V load_n(const float* p, int n) { return {_mm256_maskload_ps(p, first_n(n))}; }
inline void store(float* p, V x) { _mm256_storeu_ps(p, x.v); }
inline void store_n(float* p, V x, int n) { _mm256_maskstore_ps(p, first_n(n), x.v); }
inline V add(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
inline V sub(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline V mul(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline V div(V a, V b) { return {_mm256_div_ps(a.v, b.v)}; }
inline V fma(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline V fnma(V a, V b, V c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
inline V max(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
inline V min(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
inline V abs(V a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline V round_nearest(V a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// a * 2^n for integral n in [-252, 254], in two steps so that neither factor leaves the normal range.
inline V scale2(V a, V n) {
  const __m256i k = _mm256_cvtps_epi32(n.v);
  const __m256i half = _mm256_srai_epi32(k, 1);
  auto pow2 = [](__m256i e) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23)); };
  return {_mm256_mul_ps(_mm256_mul_ps(a.v, pow2(half)), pow2(_mm256_sub_epi32(k, half)))};
}
inline V copy_sign(V magnitude, V sign) {
  return {_mm256_or_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), magnitude.v), _mm256_and_ps(sign.v, _mm256_set1_ps(-0.0f)))};
}
inline float reduce_add(V x) {
  const __m128 u = _mm_add_ps(_mm256_castps256_ps128(x.v), _mm256_extractf128_ps(x.v, 1));
  const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}
inline float reduce_max(V x) {
  const __m128 u = _mm_max_ps(_mm256_castps256_ps128(x.v), _mm256_extractf128_ps(x.v, 1));
  const __m128 w = _mm_max_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_max_ss(w, _mm_movehdup_ps(w)));
}
inline void keep_in_register(V& x) { asm("" : "+x"(x.v)); }
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

#elif defined(__SSE4_1__)
// ---- SSE4.1 (x86-64-v2 baseline) -------------------------------------------------------------------------------
constexpr int kW = 4;
constexpr int kRegisters = 16;
constexpr const char* kIsaName = "sse4";
struct V {
  __m128 v;
};
inline V zero() { return {_mm_setzero_ps()}; }
inline V set1(float x) { return {_mm_set1_ps(x)}; }
inline V load(const float* p) { return {_mm_loadu_ps(p)}; }
inline V load(const uint16_t* p) {
  const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return {_mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(h), 16))};
}
inline V load_n(const float* p, int n) {
  if (n >= 4) return load(p);
  float t[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; ++i) t[i] = p[i];
  return {_mm_loadu_ps(t)};
}
inline void store(float* p, V x) { _mm_storeu_ps(p, x.v); }
inline void store_n(float* p, V x, int n) {
  if (n >= 4) return store(p, x);
  float t[4];
  _mm_storeu_ps(t, x.v);
  for (int i = 0; i < n; ++i) p[i] = t[i];
}
inline V add(V a, V b) { return {_mm_add_ps(a.v, b.v)}; }
inline V sub(V a, V b) { return {_mm_sub_ps(a.v, b.v)}; }
inline V mul(V a, V b) { return {_mm_mul_ps(a.v, b.v)}; }
inline V div(V a, V b) { return {_mm_div_ps(a.v, b.v)}; }
inline V fma(V a, V b, V c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }
inline V fnma(V a, V b, V c) { return {_mm_sub_ps(c.v, _mm_mul_ps(a.v, b.v))}; }
inline V max(V a, V b) { return {_mm_max_ps(a.v, b.v)}; }
inline V min(V a, V b) { return {_mm_min_ps(a.v, b.v)}; }
inline V abs(V a) { return {_mm_andnot_ps(_mm_set1_ps(-0.0f), a.v)}; }
inline V round_nearest(V a) { return {_mm_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline V scale2(V a, V n) {
  const __m128i k = _mm_cvtps_epi32(n.v);
  const __m128i half = _mm_srai_epi32(k, 1);
  auto pow2 = [](__m128i e) { return _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(e, _mm_set1_epi32(127)), 23)); };
  return {_mm_mul_ps(_mm_mul_ps(a.v, pow2(half)), pow2(_mm_sub_epi32(k, half)))};
}
inline V copy_sign(V magnitude, V sign) {
  return {_mm_or_ps(_mm_andnot_ps(_mm_set1_ps(-0.0f), magnitude.v), _mm_and_ps(sign.v, _mm_set1_ps(-0.0f)))};
}
inline float reduce_add(V x) {
  const __m128 w = _mm_add_ps(x.v, _mm_movehl_ps(x.v, x.v));  // lane i + lane i + 2
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}
inline float reduce_max(V x) {
  const __m128 w = _mm_max_ps(x.v, _mm_movehl_ps(x.v, x.v));
  return _mm_cvtss_f32(_mm_max_ss(w, _mm_movehdup_ps(w)));
}
inline void keep_in_register(V& x) { asm("" : "+x"(x.v)); }
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

#elif defined(__ARM_NEON) && defined(__aarch64__)
// ---- NEON (arm64) ------------------------------------------------------------------------------------------------
constexpr int kW = 4;
constexpr int kRegisters = 32;
constexpr const char* kIsaName = "neon";
struct V {
  float32x4_t v;
};
inline V zero() { return {vdupq_n_f32(0.0f)}; }
inline V set1(float x) { return {vdupq_n_f32(x)}; }
inline V load(const float* p) { return {vld1q_f32(p)}; }
inline V load(const uint16_t* p) { return {vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))}; }
inline V load_n(const float* p, int n) {
  float t[4] = {0, 0, 0, 0};
  for (int i = 0; i < n && i < 4; ++i) t[i] = p[i];
  return {vld1q_f32(t)};
}
inline void store(float* p, V x) { vst1q_f32(p, x.v); }
inline void store_n(float* p, V x, int n) {
  float t[4];
  vst1q_f32(t, x.v);
  for (int i = 0; i < n && i < 4; ++i) p[i] = t[i];
}
inline V add(V a, V b) { return {vaddq_f32(a.v, b.v)}; }
inline V sub(V a, V b) { return {vsubq_f32(a.v, b.v)}; }
inline V mul(V a, V b) { return {vmulq_f32(a.v, b.v)}; }
inline V div(V a, V b) { return {vdivq_f32(a.v, b.v)}; }
inline V fma(V a, V b, V c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
inline V fnma(V a, V b, V c) { return {vfmsq_f32(c.v, a.v, b.v)}; }
inline V max(V a, V b) { return {vmaxq_f32(a.v, b.v)}; }
inline V min(V a, V b) { return {vminq_f32(a.v, b.v)}; }
inline V abs(V a) { return {vabsq_f32(a.v)}; }
inline V round_nearest(V a) { return {vrndnq_f32(a.v)}; }
inline V scale2(V a, V n) {
  const int32x4_t k = vcvtnq_s32_f32(n.v);
  const int32x4_t half = vshrq_n_s32(k, 1);
  auto pow2 = [](int32x4_t e) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e, vdupq_n_s32(127)), 23)); };
  return {vmulq_f32(vmulq_f32(a.v, pow2(half)), pow2(vsubq_s32(k, half)))};
}
inline V copy_sign(V magnitude, V sign) { return {vbslq_f32(vdupq_n_u32(0x80000000u), sign.v, magnitude.v)}; }
inline float reduce_add(V x) {
  const float32x2_t u = vadd_f32(vget_low_f32(x.v), vget_high_f32(x.v));  // lane i + lane i + 2
  return vget_lane_f32(u, 0) + vget_lane_f32(u, 1);
}
inline float reduce_max(V x) { return vmaxvq_f32(x.v); }
inline void keep_in_register(V& x) { asm("" : "+w"(x.v)); }
inline void prefetch(const void* p) { __builtin_prefetch(p); }

#else
// ---- plain C++ -------------------------------------------------------------------------------------------------
constexpr int kW = 1;
constexpr int kRegisters = 16;
constexpr const char* kIsaName = "scalar";
struct V {
  float v;
};
inline V zero() { return {0.0f}; }
inline V set1(float x) { return {x}; }
inline V load(const float* p) { return {*p}; }
inline V load(const uint16_t* p) { return {bf16_widen(*p)}; }
inline V load_n(const float* p, int n) { return {n > 0 ? *p : 0.0f}; }
inline void store(float* p, V x) { *p = x.v; }
inline void store_n(float* p, V x, int n) {
  if (n > 0) *p = x.v;
}
inline V add(V a, V b) { return {a.v + b.v}; }
inline V sub(V a, V b) { return {a.v - b.v}; }
inline V mul(V a, V b) { return {a.v * b.v}; }
inline V div(V a, V b) { return {a.v / b.v}; }
inline V fma(V a, V b, V c) { return {a.v * b.v + c.v}; }  // not std::fma: a library call without hardware FMA
inline V fnma(V a, V b, V c) { return {c.v - a.v * b.v}; }
inline V max(V a, V b) { return {a.v > b.v ? a.v : b.v}; }
inline V min(V a, V b) { return {a.v < b.v ? a.v : b.v}; }
inline V abs(V a) { return {std::fabs(a.v)}; }
inline V round_nearest(V a) { return {std::nearbyint(a.v)}; }
inline V scale2(V a, V n) { return {std::ldexp(a.v, int(n.v))}; }
inline V copy_sign(V magnitude, V sign) { return {std::copysign(magnitude.v, sign.v)}; }
inline float reduce_add(V x) { return x.v; }
inline float reduce_max(V x) { return x.v; }
inline void keep_in_register(V&) {}
inline void prefetch(const void* p) { __builtin_prefetch(p); }
#endif

// One fused a * b + c where the CPU has FMA; a * b + c rounded twice where it has not (std::fma would
// be a slow library call there).
inline float fma_scalar(float a, float b, float c) {
#if defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// Lanes 0..n-1 from p, the others `fill` (tails that must not change a max or a min).
inline V load_n_fill(const float* p, int n, float fill) {
  float t[kW];
  for (int i = 0; i < kW; ++i) t[i] = i < n ? p[i] : fill;
  return load(t);
}

// e^x (Cephes expf polynomial, range reduction by ln 2 in two parts): ~1 ulp. Inputs below -104 give 0.
inline V exp(V x) {
  x = min(max(x, set1(-104.0f)), set1(88.72283f));
  const V n = round_nearest(mul(x, set1(1.44269504088896341f)));
  V r = fnma(n, set1(0.693359375f), x);
  r = fnma(n, set1(-2.12194440e-4f), r);
  V p = set1(1.9875691500e-4f);
  p = fma(p, r, set1(1.3981999507e-3f));
  p = fma(p, r, set1(8.3334519073e-3f));
  p = fma(p, r, set1(4.1665795894e-2f));
  p = fma(p, r, set1(1.6666665459e-1f));
  p = fma(p, r, set1(5.0000001201e-1f));
  p = fma(p, mul(r, r), r);
  p = add(p, set1(1.0f));
  return scale2(p, n);
}

// erf(x) = sign(x) (1 - poly(t) t e^{-x^2}), t = 1 / (1 + 0.3275911 |x|) (Abramowitz-Stegun 7.1.26,
// the form PyTorch's vectorised erf uses): ~1e-7 absolute.
inline V erf(V x) {
  const V ax = abs(x);
  const V t = div(set1(1.0f), fma(set1(0.3275911f), ax, set1(1.0f)));
  V p = fma(set1(1.061405429f), t, set1(-1.453152027f));
  p = fma(p, t, set1(1.421413741f));
  p = fma(p, t, set1(-0.284496736f));
  p = fma(p, t, set1(0.254829592f));
  const V e = exp(sub(zero(), mul(x, x)));
  return copy_sign(fnma(mul(p, t), e, set1(1.0f)), x);
}

// sum_i a[i] * b[i] with kW partial sums in index order, then reduce_add, then the tail in order.
template <typename T>
inline float dot(const float* a, const T* b, int64_t n) {
  V acc = zero();
  int64_t i = 0;
  for (; i + kW <= n; i += kW) acc = fma(load(a + i), load(b + i), acc);
  float s = reduce_add(acc);
  for (; i < n; ++i) {
    if constexpr (sizeof(T) == 2) s = std::fma(a[i], bf16_widen(b[i]), s);
    else s = std::fma(a[i], float(b[i]), s);
  }
  return s;
}

// y[i] += a * x[i].
template <typename T>
inline void axpy(float a, const T* x, float* y, int64_t n) {
  const V av = set1(a);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(y + i, fma(av, load(x + i), load(y + i)));
  for (; i < n; ++i) {
    if constexpr (sizeof(T) == 2) y[i] = std::fma(a, bf16_widen(x[i]), y[i]);
    else y[i] = std::fma(a, float(x[i]), y[i]);
  }
}

}  // namespace dsocr::cpu::simd
