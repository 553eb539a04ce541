// Op conformance: every op of the Backend interface, on every backend configuration compiled here,
// against a plain double-precision reference written from the op's contract in backend/backend.h
// (as llama.cpp's test-backend-ops does). Tolerances are per weight format: float32 weights give
// float32 rounding only; bfloat16 weights are compared with a reference that uses the same rounded
// weights, so they need no more. A backend whose products round their operands further (the CUDA
// backend's bf16 activations) says by how much in its case's Tolerance, added on top. A backend
// that says it is batch invariant must also give every row the same bits alone as inside a larger
// call.
//
// Every pointer an op gets lives in the backend's memory (device memory for a GPU): inputs go in
// through from_host, weights through weight(), tables through constant(), results come back through
// to_host. Outputs start as NaN (poisoned) unless the test checks what an op must leave alone, and
// NaN never passes a comparison.
//
// CTest runs this binary once per CPU kernel variant this machine supports ($DSOCR_ISA), so each
// instruction set's kernels are checked, not only the best one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels.h"
#include "core/dtype.h"
#include "io/safetensors.h"

#ifdef DSOCR_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

using namespace dsocr;

namespace {

// ---- backends under test --------------------------------------------------------------------------

// What a backend adds to the float32 tolerances below.
struct Tolerance {
  // Relative error (to the sum of |terms|) of a product's rounded operands: 0 for float32 operands;
  // bf16 activations and weights each round by up to 2^-9, so 2 * 2^-8 covers both.
  double operand = 0;
  // Factor on the element-wise, normalisation and attention tolerances (a GPU's expf/erff/rsqrtf
  // are within 2 ulp, a little looser than the CPU's polynomials).
  double math = 1;
};

struct BackendCase {
  std::string name;
  // The backend, or nullptr with the reason in *why_not (the case is then skipped).
  std::function<std::unique_ptr<Backend>(ThreadPool&, std::string* why_not)> make;
  Tolerance tol;
};

void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

std::vector<BackendCase> backend_cases() {
  std::vector<BackendCase> cases = {
      {"cpu", [](ThreadPool& pool, std::string*) { return std::make_unique<CpuBackend>(pool); }, {}},
      {"cpu_fast_gemm",
       [](ThreadPool& pool, std::string*) {
         return std::make_unique<CpuBackend>(pool, CpuBackendOptions{.fast_gemm = true});
       },
       {}},
  };
#ifdef DSOCR_HAVE_CUDA
  cases.push_back({"cuda", [](ThreadPool&, std::string* why_not) { return make_cuda_backend(why_not); },
                   {.operand = 2.0 / 256, .math = 4}});
#endif
  return cases;
}

// ---- data and comparison ----------------------------------------------------------------------------

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A weight in either format, with the float values the reference must use (bf16-rounded for BF16).
struct TestWeight {
  DType dtype;
  int64_t rows, cols;
  std::vector<float> f32;      // F32 data
  std::vector<uint16_t> bf16;  // BF16 data
  std::vector<double> ref;     // the values as the backend sees them

  TestWeight(DType t, int64_t r, int64_t c, uint32_t seed, float range = 0.5f) : dtype(t), rows(r), cols(c) {
    const std::vector<float> v = random_floats(size_t(r * c), seed, -range, range);
    ref.resize(v.size());
    if (t == DType::BF16) {
      bf16.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) {
        bf16[i] = f32_to_bf16(v[i]);
        ref[i] = bf16_to_f32(bf16[i]);
      }
    } else {
      f32 = v;
      for (size_t i = 0; i < v.size(); ++i) ref[i] = v[i];
    }
  }
};

// |got - want| <= atol + rtol * scale for each element, where scale is the magnitude the result was
// summed from (sum of |terms| for products, |want| for element-wise ops).
void expect_close(const float* got, const std::vector<double>& want, const std::vector<double>& scale, double rtol,
                  double atol, const std::string& what) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(double(got[i]) - want[i]);
    if (!(err <= atol + rtol * scale[i])) {
      if (++bad <= 5)
        ADD_FAILURE() << what << " [" << i << "]: got " << got[i] << " want " << want[i] << " (err " << err
                      << ", allowed " << atol + rtol * scale[i] << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.size() << " elements out of tolerance";
}

void expect_close(const float* got, const std::vector<double>& want, double rtol, double atol, const std::string& what) {
  std::vector<double> scale(want.size());
  for (size_t i = 0; i < want.size(); ++i) scale[i] = std::abs(want[i]);
  expect_close(got, want, scale, rtol, atol, what);
}

constexpr double kEps = 1.2e-7;  // float32 unit roundoff, doubled
// A sum of n float32 terms: blocked/pairwise summation stays well inside n^(1/2) * eps in practice;
// allow a generous sqrt(n) * 8 eps relative to the sum of |terms|.
double product_rtol(int64_t n) { return 8 * kEps * std::sqrt(double(n)) + 4 * kEps; }

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

class BackendOps : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    std::string why_not;
    backend_ = GetParam().make(pool_, &why_not);
    if (!backend_) GTEST_SKIP() << GetParam().name << " backend unavailable: " << why_not;
  }
  void TearDown() override { buffers_.clear(); }  // before the backend that owns their memory
  Backend& be() { return *backend_; }
  bool invariant() { return backend_->is_batch_invariant(); }
  const Tolerance& tol() const { return GetParam().tol; }
  // Tolerance of a product of n terms (see product_rtol) on this backend.
  double product_tol(int64_t n) const { return product_rtol(n) + tol().operand; }

  // Backend memory holding v (a Buffer that lives until the test ends).
  float* put(const std::vector<float>& v) {
    buffers_.push_back(be().buffer(v.size()));
    float* d = buffers_.back()->data();
    be().from_host(d, v.data(), v.size());
    return d;
  }
  // An output of n floats, poisoned with NaN: an element the op should write and does not fails.
  float* poisoned(size_t n) { return put(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())); }
  std::vector<float> get(const float* d, size_t n) {
    std::vector<float> host(n);
    be().to_host(host.data(), d, n);
    return host;
  }
  // A weight as model code gets one: through weight() (the CUDA backend uploads it).
  Weight wt(const TestWeight& w) {
    TensorView t;
    t.name = "test";
    t.dtype = w.dtype;
    t.shape = {w.rows, w.cols};
    t.data = w.dtype == DType::BF16 ? reinterpret_cast<const uint8_t*>(w.bf16.data())
                                    : reinterpret_cast<const uint8_t*>(w.f32.data());
    t.nbytes = size_t(w.rows * w.cols) * dtype_size(w.dtype);
    return be().weight(t);
  }
  const float* cst(const std::vector<float>& v) { return be().constant(std::span<const float>(v)); }

  ThreadPool pool_{2};
  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
};

double silu(double x) { return x / (1 + std::exp(-x)); }

}  // namespace

// ---- embedding and copies --------------------------------------------------------------------------

TEST_P(BackendOps, EmbedWidensRowsAndSplicesFeatures) {
  const TestWeight table(DType::BF16, 50, 24, 1);
  const std::vector<float> feat_a = random_floats(24, 2), feat_b = random_floats(24, 3);
  const std::vector<int32_t> ids = {7, -1, 0, 49, -1, 7};
  const float* features[] = {nullptr, put(feat_a), nullptr, nullptr, put(feat_b), nullptr};
  const float* feature_host[] = {nullptr, feat_a.data(), nullptr, nullptr, feat_b.data(), nullptr};
  const Weight w = wt(table);
  float* d_out = poisoned(ids.size() * 24);
  be().embed(w, ids.data(), features, int64_t(ids.size()), d_out);
  const std::vector<float> out = get(d_out, ids.size() * 24);
  for (size_t r = 0; r < ids.size(); ++r)
    for (int c = 0; c < 24; ++c) {
      const double want = ids[r] >= 0 ? table.ref[size_t(ids[r]) * 24 + size_t(c)] : feature_host[r][c];
      ASSERT_EQ(out[r * 24 + size_t(c)], float(want)) << "row " << r << " col " << c;
    }
  const int32_t bad[] = {50};
  const float* none[] = {nullptr};
  EXPECT_THROW(be().embed(w, bad, none, 1, d_out), std::exception);
}

TEST_P(BackendOps, GatherAndCopyRows) {
  const int64_t cols = 13, ld_src = 17, ld_dst = 19;
  const std::vector<float> src = random_floats(size_t(9 * ld_src), 4);
  const float* d_src = put(src);
  const std::vector<int32_t> index = {8, 0, 3, 3, 5};
  const std::vector<float> fill(static_cast<size_t>(5 * ld_dst), -7.0f);
  float* d_dst = put(fill);
  be().gather_rows(d_dst, ld_dst, d_src, ld_src, index.data(), 5, cols);
  std::vector<float> dst = get(d_dst, fill.size());
  for (int r = 0; r < 5; ++r)
    for (int64_t c = 0; c < ld_dst; ++c)
      ASSERT_EQ(dst[size_t(r * ld_dst + c)], c < cols ? src[size_t(index[size_t(r)] * ld_src + c)] : -7.0f);

  const int64_t listed_rows[] = {2, 0, 8};
  const float* rows[] = {d_src + 2 * ld_src, d_src, d_src + 8 * ld_src};
  float* d_listed = poisoned(size_t(3 * cols));
  be().copy_row_list(d_listed, rows, 3, cols);
  const std::vector<float> listed = get(d_listed, size_t(3 * cols));
  for (int r = 0; r < 3; ++r)
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(listed[size_t(r * cols + c)], src[size_t(listed_rows[r] * ld_src + c)]);

  d_dst = put(fill);
  be().copy_rows(d_dst + 2, ld_dst, d_src + 1, ld_src, 4, 11);
  dst = get(d_dst, fill.size());
  for (int r = 0; r < 5; ++r)
    for (int64_t c = 0; c < ld_dst; ++c) {
      const bool inside = r < 4 && c >= 2 && c < 13;
      ASSERT_EQ(dst[size_t(r * ld_dst + c)], inside ? src[size_t(r * ld_src + c - 1)] : -7.0f) << r << "," << c;
    }
}

// ---- normalisation and element-wise ----------------------------------------------------------------

TEST_P(BackendOps, RmsNormAndLayerNorm) {
  for (int64_t dim : {1, 7, 64, 1280}) {
    const int64_t rows = 5;
    const std::vector<float> x = random_floats(size_t(rows * dim), 5, -3, 3);
    const std::vector<float> w = random_floats(size_t(dim), 6), b = random_floats(size_t(dim), 7);
    std::vector<double> rms(x.size()), ln(x.size()), ln_nobeta(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0, mean = 0;
      for (int64_t c = 0; c < dim; ++c) ss += double(x[size_t(r * dim + c)]) * x[size_t(r * dim + c)], mean += x[size_t(r * dim + c)];
      mean /= double(dim);
      double var = 0;
      for (int64_t c = 0; c < dim; ++c) var += (x[size_t(r * dim + c)] - mean) * (x[size_t(r * dim + c)] - mean);
      var /= double(dim);
      for (int64_t c = 0; c < dim; ++c) {
        const size_t i = size_t(r * dim + c);
        rms[i] = x[i] / std::sqrt(ss / double(dim) + 1e-6) * w[size_t(c)];
        ln_nobeta[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * w[size_t(c)];
        ln[i] = ln_nobeta[i] + b[size_t(c)];
      }
    }
    const std::string d = " dim " + std::to_string(dim);
    const float *dx = put(x), *dw = cst(w), *db = cst(b);
    const double m = tol().math;
    float* y = poisoned(x.size());
    be().rms_norm(dx, rows, dim, dw, 1e-6f, y);
    expect_close(get(y, x.size()).data(), rms, m * 16 * kEps, m * 1e-6, "rms_norm" + d);
    y = poisoned(x.size());
    be().layer_norm(dx, rows, dim, dw, db, 1e-5f, y);
    expect_close(get(y, x.size()).data(), ln, m * 64 * kEps, m * 4e-6, "layer_norm" + d);
    y = poisoned(x.size());
    be().layer_norm(dx, rows, dim, dw, nullptr, 1e-5f, y);
    expect_close(get(y, x.size()).data(), ln_nobeta, m * 64 * kEps, m * 4e-6, "layer_norm without beta" + d);
  }
}

TEST_P(BackendOps, ElementWise) {
  const int64_t n = 1000 + 13;  // not a multiple of any vector width
  const std::vector<float> x = random_floats(size_t(n), 8, -6, 6), u = random_floats(size_t(n), 9, -2, 2);
  std::vector<double> want(static_cast<size_t>(n));
  const float* du = put(u);
  const double m = tol().math;

  float* dy = put(x);
  be().add(dy, du, n);
  std::vector<float> y = get(dy, size_t(n));
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[size_t(i)], x[size_t(i)] + u[size_t(i)]);

  dy = put(x);
  be().silu_mul(dy, du, n);
  for (int64_t i = 0; i < n; ++i) want[size_t(i)] = silu(x[size_t(i)]) * u[size_t(i)];
  expect_close(get(dy, size_t(n)).data(), want, m * 16 * kEps, m * 1e-7, "silu_mul");

  dy = put(x);
  be().gelu_erf(dy, n);
  std::vector<double> gelu_scale(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    want[size_t(i)] = 0.5 * x[size_t(i)] * (1 + std::erf(x[size_t(i)] / std::sqrt(2.0)));
    // For x << 0, 1 + erf(x) cancels in float32 (in PyTorch's kernel too): the error scales with |x|.
    gelu_scale[size_t(i)] = 16 * std::abs(want[size_t(i)]) + 4 * std::abs(x[size_t(i)]);
  }
  expect_close(get(dy, size_t(n)).data(), want, gelu_scale, m * kEps, m * 1e-7, "gelu_erf");

  dy = put(x);
  be().quick_gelu(dy, n);
  for (int64_t i = 0; i < n; ++i) want[size_t(i)] = x[size_t(i)] / (1 + std::exp(-1.702 * x[size_t(i)]));
  expect_close(get(dy, size_t(n)).data(), want, m * 16 * kEps, m * 1e-7, "quick_gelu");

  const int64_t rows = 7, period = 3, dim = 21;
  const std::vector<float> table = random_floats(size_t(period * dim), 10);
  dy = put(std::vector<float>(x.begin(), x.begin() + rows * dim));
  be().add_broadcast(dy, rows, put(table), period, dim);
  y = get(dy, size_t(rows * dim));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < dim; ++c)
      ASSERT_EQ(y[size_t(r * dim + c)], x[size_t(r * dim + c)] + table[size_t((r % period) * dim + c)]);
}

// ---- products ----------------------------------------------------------------------------------------

namespace {

// Reference C = A W^T (+ bias) (+ C0), and the sum of |terms| of every element.
void reference_linear(const std::vector<float>& A, int64_t M, int64_t lda, const TestWeight& W, const float* bias,
                      const std::vector<float>* C0, int64_t ldc, std::vector<double>& want, std::vector<double>& scale) {
  want.assign(size_t(M * W.rows), 0);
  scale.assign(want.size(), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < W.rows; ++n) {
      double s = bias ? bias[n] : 0, a = bias ? std::abs(bias[n]) : 0;
      if (C0) s += (*C0)[size_t(m * ldc + n)], a += std::abs((*C0)[size_t(m * ldc + n)]);
      for (int64_t k = 0; k < W.cols; ++k) {
        const double t = double(A[size_t(m * lda + k)]) * W.ref[size_t(n * W.cols + k)];
        s += t;
        a += std::abs(t);
      }
      want[size_t(m * W.rows + n)] = s;
      scale[size_t(m * W.rows + n)] = a;
    }
}

std::vector<float> dense_rows(const std::vector<float>& C, int64_t M, int64_t N, int64_t ldc) {
  std::vector<float> out(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m) std::copy_n(C.data() + m * ldc, N, out.data() + m * N);
  return out;
}

}  // namespace

TEST_P(BackendOps, LinearEveryWeightFormatShapeAndStride) {
  struct Shape {
    int64_t M, N, K;
  };
  for (DType dt : {DType::F32, DType::BF16})
    for (Shape s : {Shape{1, 1, 1}, Shape{1, 40, 33}, Shape{3, 17, 64}, Shape{16, 24, 96}, Shape{37, 70, 130},
                    Shape{64, 128, 256}}) {
      const std::string what = std::string(dtype_name(dt)) + " M" + std::to_string(s.M) + " N" + std::to_string(s.N) +
                               " K" + std::to_string(s.K);
      const TestWeight W(dt, s.N, s.K, uint32_t(11 + s.M + s.N));
      const std::vector<float> bias = random_floats(size_t(s.N), 12);
      const int64_t lda = s.K + 5, ldc = s.N + 3;
      const std::vector<float> A = random_floats(size_t(s.M * lda), 13, -2, 2);
      std::vector<double> want, scale;
      const double rtol = product_tol(s.K);
      const Weight w = wt(W);
      const float* d_bias = cst(bias);

      // dense, with bias
      std::vector<float> dense_a(static_cast<size_t>(s.M * s.K));
      for (int64_t m = 0; m < s.M; ++m) std::copy_n(A.data() + m * lda, s.K, dense_a.data() + m * s.K);
      const float* d_dense_a = put(dense_a);
      float* d_C = poisoned(size_t(s.M * s.N));
      be().linear(d_dense_a, s.M, w, d_bias, d_C);
      const std::vector<float> C = get(d_C, size_t(s.M * s.N));
      reference_linear(dense_a, s.M, s.K, W, bias.data(), nullptr, s.N, want, scale);
      expect_close(C.data(), want, scale, rtol, 1e-7, what + " bias");

      // strided, accumulating into what is there, no bias
      std::vector<float> C0 = random_floats(size_t(s.M * ldc), 14);
      float* d_Cs = put(C0);
      be().linear(put(A), s.M, w, nullptr, d_Cs, true, lda, ldc);
      const std::vector<float> Cs = get(d_Cs, C0.size());
      reference_linear(A, s.M, lda, W, nullptr, &C0, ldc, want, scale);
      expect_close(dense_rows(Cs, s.M, s.N, ldc).data(), want, scale, rtol, 1e-7, what + " accumulate strided");
      for (int64_t m = 0; m < s.M; ++m)  // the gap between rows is untouched
        for (int64_t n = s.N; n < ldc; ++n) ASSERT_EQ(Cs[size_t(m * ldc + n)], C0[size_t(m * ldc + n)]) << what;

      // batch invariance: each row alone gives the bits it got in the batch
      if (invariant())
        for (int64_t m : {int64_t(0), s.M / 2, s.M - 1}) {
          float* d_one = poisoned(size_t(s.N));
          be().linear(d_dense_a + m * s.K, 1, w, d_bias, d_one);
          const std::vector<float> one = get(d_one, size_t(s.N));
          EXPECT_TRUE(same_bits(one.data(), C.data() + m * s.N, size_t(s.N))) << what << ": row " << m << " alone differs";
        }
    }
}

TEST_P(BackendOps, LinearMultiEqualsSeparateProducts) {
  for (int64_t M : {1, 5, 33}) {
    const int64_t K = 80;
    const TestWeight a(DType::BF16, 48, K, 20), b(DType::BF16, 48, K, 21), c(DType::BF16, 16, K, 22);
    const std::vector<float> A = random_floats(size_t(M * K), 23);
    const float* d_A = put(A);
    const Weight ws[] = {wt(a), wt(b), wt(c)};
    float* outs[] = {poisoned(size_t(M * 48)), poisoned(size_t(M * 48)), poisoned(size_t(M * 16))};
    be().linear_multi(d_A, M, ws, outs);
    const TestWeight* tw[] = {&a, &b, &c};
    for (int i = 0; i < 3; ++i) {
      std::vector<double> want, scale;
      reference_linear(A, M, K, *tw[i], nullptr, nullptr, 0, want, scale);
      const std::vector<float> got = get(outs[i], size_t(M * tw[i]->rows));
      expect_close(got.data(), want, scale, product_tol(K), 1e-7, "linear_multi output " + std::to_string(i));
      if (invariant()) {
        float* d_single = poisoned(got.size());
        be().linear(d_A, M, ws[i], nullptr, d_single);
        EXPECT_TRUE(same_bits(get(d_single, got.size()).data(), got.data(), got.size()))
            << "linear_multi " << i << " != linear, M " << M;
      }
    }
  }
}

TEST_P(BackendOps, Conv2dChannelsLastAndChwToHwc) {
  struct Case {
    int batch, size, cin, cout;
    ConvGeometry g;
  };
  for (const Case& cs : {Case{1, 9, 3, 8, {3, 2, 1}}, Case{2, 32, 3, 5, {16, 16, 0}}, Case{1, 6, 7, 4, {1, 1, 0}}}) {
    const int k = cs.g.kernel, o = cs.g.out_size(cs.size);
    const TestWeight W(DType::BF16, cs.cout, int64_t(cs.cin) * k * k, 30);
    const std::vector<float> bias = random_floats(size_t(cs.cout), 31);
    const std::vector<float> x = random_floats(size_t(cs.batch) * cs.size * cs.size * cs.cin, 32);
    std::vector<double> want(static_cast<size_t>(cs.batch) * o * o * cs.cout), scale(want.size());
    for (int b = 0; b < cs.batch; ++b)
      for (int oy = 0; oy < o; ++oy)
        for (int ox = 0; ox < o; ++ox)
          for (int co = 0; co < cs.cout; ++co) {
            double s = bias[size_t(co)], a = std::abs(bias[size_t(co)]);
            for (int ci = 0; ci < cs.cin; ++ci)
              for (int ky = 0; ky < k; ++ky)
                for (int kx = 0; kx < k; ++kx) {
                  const int iy = oy * cs.g.stride - cs.g.pad + ky, ix = ox * cs.g.stride - cs.g.pad + kx;
                  if (iy < 0 || ix < 0 || iy >= cs.size || ix >= cs.size) continue;
                  const double t = double(x[((size_t(b) * cs.size + iy) * cs.size + ix) * cs.cin + ci]) *
                                   W.ref[size_t(co) * W.cols + (size_t(ci) * k + ky) * k + kx];
                  s += t, a += std::abs(t);
                }
            const size_t i = ((size_t(b) * o + oy) * o + ox) * cs.cout + co;
            want[i] = s, scale[i] = a;
          }
    float* d_out = poisoned(want.size());
    be().conv2d(put(x), cs.batch, cs.size, cs.size, wt(W), cst(bias), cs.g, d_out);
    expect_close(get(d_out, want.size()).data(), want, scale, product_tol(W.cols), 1e-7, "conv2d k" + std::to_string(k));
  }

  const int batch = 2, channels = 3, size = 5;
  const std::vector<float> chw = random_floats(size_t(batch * channels * size * size), 33);
  float* d_hwc = poisoned(chw.size());
  be().chw_to_hwc(put(chw), batch, channels, size, d_hwc);
  const std::vector<float> hwc = get(d_hwc, chw.size());
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < channels; ++c)
      for (int p = 0; p < size * size; ++p)
        ASSERT_EQ(hwc[(size_t(b) * size * size + p) * channels + c], chw[(size_t(b) * channels + c) * size * size + p]);
}

// ---- decoder attention --------------------------------------------------------------------------------

TEST_P(BackendOps, RopeRotatesNeoxPairsAtEachRowsPosition) {
  const int heads = 3, hd = 8, half = hd / 2, max_pos = 64;
  std::vector<float> cos(static_cast<size_t>(max_pos * half)), sin(cos.size());
  for (int p = 0; p < max_pos; ++p)
    for (int j = 0; j < half; ++j) {
      const double theta = p / std::pow(10000.0, 2.0 * j / hd);
      cos[size_t(p * half + j)] = float(std::cos(theta));
      sin[size_t(p * half + j)] = float(std::sin(theta));
    }
  const int64_t rows = 4, ld = heads * hd + 6;
  const std::vector<float> x0 = random_floats(size_t(rows * ld), 40);
  const std::vector<int32_t> pos = {0, 63, 5, 5};
  float* d_x = put(x0);
  be().rope(d_x, rows, ld, heads, hd, pos.data(), cst(cos), cst(sin));
  const std::vector<float> x = get(d_x, x0.size());
  const double near = 4e-7 * tol().math;
  for (int64_t r = 0; r < rows; ++r) {
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < half; ++j) {
        const size_t i1 = size_t(r * ld + h * hd + j), i2 = i1 + half;
        const double c = cos[size_t(pos[size_t(r)] * half + j)], s = sin[size_t(pos[size_t(r)] * half + j)];
        EXPECT_NEAR(x[i1], x0[i1] * c - x0[i2] * s, near) << r << "," << h << "," << j;
        EXPECT_NEAR(x[i2], x0[i2] * c + x0[i1] * s, near) << r << "," << h << "," << j;
      }
    for (int64_t c = heads * hd; c < ld; ++c) ASSERT_EQ(x[size_t(r * ld + c)], x0[size_t(r * ld + c)]);
  }
}

TEST_P(BackendOps, PagedAttentionOverShuffledBlocks) {
  // Head dims: 16 (less than one register slab), 132 (whole slabs and a tail that is not a vector).
  for (const auto& [kv_dtype, hd] : {std::pair{DType::F32, 16}, std::pair{DType::BF16, 16}, std::pair{DType::BF16, 132}}) {
    SCOPED_TRACE(std::string("KV ") + std::string(dtype_name(kv_dtype)) + ", head dim " + std::to_string(hd));
    const int heads = 2, layers = 2, layer = 1, bs = 4;
    const int64_t width = heads * hd;
    const KvLayout layout{layers, 200, bs, width, kv_dtype};
    std::unique_ptr<KvStorage> kv = be().kv_storage(layout);
    // Three sequences: a prefill of 7 rows from position 0, one decode row at position 300 (more
    // than one 256-key chunk), and a chunk of 3 rows starting at position 10.
    struct Seq {
      int first, rows;
    };
    const std::vector<Seq> seqs = {{0, 7}, {300, 1}, {10, 3}};
    std::mt19937 rng(41);
    std::vector<int32_t> free_blocks(static_cast<size_t>(layout.blocks));
    std::iota(free_blocks.begin(), free_blocks.end(), 0);
    std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
    std::vector<std::vector<int32_t>> tables;
    std::vector<std::vector<float>> keys, values;  // per sequence, every position
    size_t next_block = 0;
    for (const Seq& s : seqs) {
      const int length = s.first + s.rows;
      std::vector<int32_t> table;
      for (int b = 0; b < (length + bs - 1) / bs; ++b) table.push_back(free_blocks[next_block++]);
      keys.push_back(random_floats(size_t(length * width), uint32_t(42 + tables.size())));
      values.push_back(random_floats(size_t(length * width), uint32_t(52 + tables.size())));
      if (kv_dtype == DType::BF16)  // the reference sees what the cache holds
        for (auto* v : {&keys.back(), &values.back()})
          for (float& f : *v) f = bf16_to_f32(f32_to_bf16(f));
      // Every position is written, earlier ones one row at a time (as decode steps do).
      std::vector<int32_t> slots(static_cast<size_t>(length));
      for (int p = 0; p < length; ++p) slots[size_t(p)] = table[size_t(p / bs)] * bs + p % bs;
      const float *d_keys = put(keys.back()), *d_values = put(values.back());
      for (int p = 0; p < length; ++p)
        be().kv_write(*kv, layer, d_keys + p * width, d_values + p * width, 1, width, slots.data() + p);
      tables.push_back(table);
    }
    // The query rows of the step (strided), sequence after sequence.
    std::vector<int32_t> row_begin = {0}, first;
    for (const Seq& s : seqs) row_begin.push_back(row_begin.back() + s.rows), first.push_back(s.first);
    const int64_t rows = row_begin.back(), ldq = width + 8, ldo = width + 4;
    const std::vector<float> q = random_floats(size_t(rows * ldq), 60, -2, 2);
    std::vector<const int32_t*> table_ptrs;
    for (auto& t : tables) table_ptrs.push_back(t.data());
    const AttentionBatch batch{int(seqs.size()), row_begin.data(), first.data(), table_ptrs.data()};
    const float scale = 1.0f / std::sqrt(float(hd));
    const float* d_q = put(q);
    float* d_out = put(std::vector<float>(static_cast<size_t>(rows * ldo), -9.0f));  // the gaps must stay
    be().paged_attention(d_q, ldq, *kv, layer, batch, heads, hd, scale, d_out, ldo);
    const std::vector<float> out = get(d_out, size_t(rows * ldo));

    std::vector<double> want(static_cast<size_t>(rows * width)), mag(want.size());
    for (size_t s = 0; s < seqs.size(); ++s)
      for (int i = 0; i < seqs[s].rows; ++i) {
        const int64_t r = row_begin[s] + i;
        const int p = seqs[s].first + i;
        for (int h = 0; h < heads; ++h) {
          std::vector<double> sc(static_cast<size_t>(p + 1));
          double mx = -1e300;
          for (int k = 0; k <= p; ++k) {
            double d = 0;
            for (int e = 0; e < hd; ++e) d += double(q[size_t(r * ldq + h * hd + e)]) * keys[s][size_t(k * width + h * hd + e)];
            sc[size_t(k)] = d * scale;
            mx = std::max(mx, sc[size_t(k)]);
          }
          double z = 0;
          for (double& v : sc) v = std::exp(v - mx), z += v;
          for (int e = 0; e < hd; ++e) {
            double acc = 0, a = 0;
            for (int k = 0; k <= p; ++k) {
              const double t = sc[size_t(k)] / z * values[s][size_t(k * width + h * hd + e)];
              acc += t, a += std::abs(t);
            }
            want[size_t(r * width + h * hd + e)] = acc;
            mag[size_t(r * width + h * hd + e)] = a;
          }
        }
      }
    expect_close(dense_rows(out, rows, width, ldo).data(), want, mag, tol().math * 64 * kEps, tol().math * 2e-6,
                 "paged_attention");
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = width; c < ldo; ++c) ASSERT_EQ(out[size_t(r * ldo + c)], -9.0f);

    if (invariant()) {  // the decode row alone, and the last prefill row alone, give the same bits
      for (size_t s : {size_t(1), size_t(0)}) {
        const int64_t r = row_begin[s + 1] - 1;
        const int32_t rb[] = {0, 1}, fp[] = {seqs[s].first + seqs[s].rows - 1};
        const int32_t* tp[] = {tables[s].data()};
        const AttentionBatch one{1, rb, fp, tp};
        float* d_alone = poisoned(size_t(width));
        be().paged_attention(d_q + r * ldq, ldq, *kv, layer, one, heads, hd, scale, d_alone, width);
        EXPECT_TRUE(same_bits(get(d_alone, size_t(width)).data(), out.data() + r * ldo, size_t(width))) << "sequence " << s << " alone differs";
      }
    }
  }
}

// ---- mixture of experts -----------------------------------------------------------------------------

TEST_P(BackendOps, RouteExpertsRunTheirMlpsAndCombine) {
  for (bool norm : {false, true}) {
    SCOPED_TRACE(norm ? "norm_topk_prob" : "raw top-k");
    const int experts = 6, top_k = 2, hidden = 32, inter = 24;
    const int64_t rows = 9;
    const RouterConfig cfg{experts, top_k, norm, 1.5f, true};
    std::vector<TestWeight> mats;
    for (int e = 0; e <= experts; ++e)
      for (int m = 0; m < 3; ++m)
        mats.emplace_back(DType::BF16, m == 2 ? hidden : (e == experts ? 2 * inter : inter),
                          m == 2 ? (e == experts ? 2 * inter : inter) : hidden, uint32_t(70 + 3 * e + m));
    std::vector<ExpertMlp> mlps;
    for (int e = 0; e <= experts; ++e)
      mlps.push_back({wt(mats[size_t(3 * e)]), wt(mats[size_t(3 * e + 1)]), wt(mats[size_t(3 * e + 2)])});

    const std::vector<float> logits0 = random_floats(size_t(rows * experts), 90, -3, 3);
    const std::vector<float> x = random_floats(size_t(rows * hidden), 91);
    const float* d_x = put(x);
    const ExpertRouting& routing = be().route_experts(put(logits0), rows, cfg);
    ASSERT_EQ(routing.grouped_rows(), rows * top_k + rows);  // the shared MLP sees every row

    // Reference routing: softmax in double, top-k by probability, ties to the lower id.
    std::vector<std::vector<std::pair<int, double>>> route(static_cast<size_t>(rows));
    std::vector<bool> hit(static_cast<size_t>(experts));
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> p(static_cast<size_t>(experts));
      double mx = -1e300, z = 0;
      for (int e = 0; e < experts; ++e) mx = std::max(mx, double(logits0[size_t(r * experts + e)]));
      for (int e = 0; e < experts; ++e) z += p[size_t(e)] = std::exp(logits0[size_t(r * experts + e)] - mx);
      for (double& v : p) v /= z;
      std::vector<int> order(static_cast<size_t>(experts));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
      double top_sum = 0;
      for (int j = 0; j < top_k; ++j) top_sum += p[size_t(order[size_t(j)])];
      for (int j = 0; j < top_k; ++j) {
        const int e = order[size_t(j)];
        const double w = (norm ? p[size_t(e)] / top_sum : p[size_t(e)]) * 1.5;
        route[size_t(r)].push_back({e, w});
        hit[size_t(e)] = true;
        EXPECT_EQ(routing.top_ids()[r * top_k + j], e) << "row " << r << " choice " << j;
        EXPECT_NEAR(routing.top_weights()[r * top_k + j], w, 1e-6) << "row " << r << " choice " << j;
      }
    }
    EXPECT_EQ(routing.experts_hit(), int(std::count(hit.begin(), hit.end(), true)));

    float* d_y = poisoned(size_t(routing.grouped_rows() * hidden));
    be().expert_mlp(d_x, routing, mlps, d_y);
    float* d_out = put(x);
    be().moe_combine(d_y, routing, d_out, hidden);
    const std::vector<float> out = get(d_out, x.size());

    auto mlp_ref = [&](int e, int64_t r, std::vector<double>& res, std::vector<double>& mag) {
      const TestWeight &g = mats[size_t(3 * e)], &u = mats[size_t(3 * e + 1)], &d = mats[size_t(3 * e + 2)];
      std::vector<double> act(static_cast<size_t>(g.rows));
      double act_mag = 0;
      for (int64_t i = 0; i < g.rows; ++i) {
        double gs = 0, us = 0;
        for (int64_t k = 0; k < hidden; ++k) {
          gs += double(x[size_t(r * hidden + k)]) * g.ref[size_t(i * hidden + k)];
          us += double(x[size_t(r * hidden + k)]) * u.ref[size_t(i * hidden + k)];
        }
        act[size_t(i)] = silu(gs) * us;
        act_mag += std::abs(act[size_t(i)]);
      }
      for (int64_t c = 0; c < hidden; ++c) {
        double s = 0, a = 0;
        for (int64_t i = 0; i < g.rows; ++i) {
          const double t = act[size_t(i)] * d.ref[size_t(c * g.rows + i)];
          s += t, a += std::abs(t);
        }
        res[size_t(c)] = s;
        mag[size_t(c)] = a + act_mag * 1e-3;  // the intermediate is itself rounded
      }
    };
    std::vector<double> want(x.size()), scale(x.size());
    std::vector<double> res(static_cast<size_t>(hidden)), mag(static_cast<size_t>(hidden));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < hidden; ++c) want[size_t(r * hidden + c)] = x[size_t(r * hidden + c)],
                                          scale[size_t(r * hidden + c)] = std::abs(x[size_t(r * hidden + c)]);
      std::vector<std::pair<int, double>> terms = route[size_t(r)];
      terms.push_back({experts, 1.0});
      for (auto [e, w] : terms) {
        mlp_ref(e, r, res, mag);
        for (int64_t c = 0; c < hidden; ++c) {
          want[size_t(r * hidden + c)] += w * res[size_t(c)];
          scale[size_t(r * hidden + c)] += std::abs(w) * mag[size_t(c)];
        }
      }
    }
    // Rounded operands also enter the gate and up products whose errors silu carries into the down
    // product: twice the operand allowance.
    expect_close(out.data(), want, scale, product_rtol(2 * inter) * 2 + 2 * tol().operand, 1e-7,
                 "route + expert_mlp + moe_combine");

    if (invariant()) {  // one row alone through the same three ops gives the same bits
      const int64_t r = 4;
      const std::vector<float> one_logits(logits0.begin() + r * experts, logits0.begin() + (r + 1) * experts);
      const ExpertRouting& one = be().route_experts(put(one_logits), 1, cfg);
      float* d_y1 = poisoned(size_t(one.grouped_rows() * hidden));
      be().expert_mlp(d_x + r * hidden, one, mlps, d_y1);
      float* d_x1 = put(std::vector<float>(x.begin() + r * hidden, x.begin() + (r + 1) * hidden));
      be().moe_combine(d_y1, one, d_x1, hidden);
      EXPECT_TRUE(same_bits(get(d_x1, size_t(hidden)).data(), out.data() + r * hidden, size_t(hidden))) << "MoE row alone differs";
    }
  }
}

// ---- vision attention --------------------------------------------------------------------------------

namespace {

// softmax(q k^T / sqrt(d) + rel bias) v over the given key tokens, for one query token and head.
// qkv rows are [q | k | v]; key_row(i) gives the qkv row of key i; rel_bias(i) its bias.
void reference_vit_row(const float* qrow, int heads, int hd, int h, int keys, const std::function<const float*(int)>& key_row,
                       const std::function<double(int)>& rel_bias, double* out, double* mag) {
  const int64_t width = int64_t(heads) * hd;
  std::vector<double> s(static_cast<size_t>(keys));
  double mx = -1e300;
  for (int i = 0; i < keys; ++i) {
    const float* kr = key_row(i) + width + h * hd;
    double d = 0;
    for (int e = 0; e < hd; ++e) d += double(qrow[h * hd + e]) * kr[e];
    s[size_t(i)] = d / std::sqrt(double(hd)) + rel_bias(i);
    mx = std::max(mx, s[size_t(i)]);
  }
  double z = 0;
  for (double& v : s) v = std::exp(v - mx), z += v;
  for (int e = 0; e < hd; ++e) {
    double acc = 0, a = 0;
    for (int i = 0; i < keys; ++i) {
      const double t = s[size_t(i)] / z * key_row(i)[2 * width + h * hd + e];
      acc += t, a += std::abs(t);
    }
    out[e] = acc, mag[e] = a;
  }
}

double dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}

}  // namespace

TEST_P(BackendOps, VisionGlobalAttentionWithAndWithoutRelPos) {
  const int heads = 2, hd = 16, gh = 3, gw = 5, tokens = gh * gw, batch = 2;
  const int64_t width = heads * hd;
  const std::vector<float> qkv = random_floats(size_t(batch * tokens * 3 * width), 100, -1.5f, 1.5f);
  const std::vector<float> rh = random_floats(size_t((2 * gh - 1) * hd), 101), rw = random_floats(size_t((2 * gw - 1) * hd), 102);
  const RelPos rel{cst(rh), cst(rw)};
  const float* d_qkv = put(qkv);
  for (bool with_rel : {false, true}) {
    float* d_out = poisoned(size_t(batch * tokens * width));
    be().attention_global(d_qkv, batch, tokens, heads, hd, d_out, with_rel ? &rel : nullptr, gh, gw);
    const std::vector<float> out = get(d_out, size_t(batch * tokens * width));
    std::vector<double> want(out.size()), mag(out.size());
    for (int b = 0; b < batch; ++b)
      for (int t = 0; t < tokens; ++t)
        for (int h = 0; h < heads; ++h) {
          const float* qrow = qkv.data() + (size_t(b) * tokens + t) * 3 * width;
          const int qy = t / gw, qx = t % gw;
          reference_vit_row(
              qrow, heads, hd, h, tokens, [&](int i) { return qkv.data() + (size_t(b) * tokens + i) * 3 * width; },
              [&](int i) {
                if (!with_rel) return 0.0;
                const int ky = i / gw, kx = i % gw;
                return dot(qrow + h * hd, rh.data() + (qy - ky + gh - 1) * hd, hd) +
                       dot(qrow + h * hd, rw.data() + (qx - kx + gw - 1) * hd, hd);
              },
              want.data() + (size_t(b) * tokens + t) * width + h * hd, mag.data() + (size_t(b) * tokens + t) * width + h * hd);
        }
    expect_close(out.data(), want, mag, tol().math * 64 * kEps, tol().math * 2e-6,
                 with_rel ? "attention_global rel" : "attention_global");
  }
}

TEST_P(BackendOps, VisionWindowedAttentionPadsWithTheBiasRow) {
  const int heads = 2, hd = 8, grid = 7, window = 3, batch = 2;  // 7 -> padded to 9: 3 x 3 windows
  const int64_t width = heads * hd;
  const std::vector<float> qkv = random_floats(size_t(batch * grid * grid * 3 * width), 110, -1.5f, 1.5f);
  const std::vector<float> pad = random_floats(size_t(3 * width), 111);
  const std::vector<float> rh = random_floats(size_t((2 * window - 1) * hd), 112), rw = random_floats(size_t((2 * window - 1) * hd), 113);
  const RelPos rel{cst(rh), cst(rw)};
  const float *d_qkv = put(qkv), *d_pad = cst(pad);
  for (bool with_rel : {false, true}) {
    float* d_out = poisoned(size_t(batch * grid * grid * width));
    be().attention_windowed(d_qkv, batch, grid, window, heads, hd, d_pad, d_out, with_rel ? &rel : nullptr);
    const std::vector<float> out = get(d_out, size_t(batch * grid * grid * width));
    std::vector<double> want(out.size()), mag(out.size());
    for (int b = 0; b < batch; ++b)
      for (int y = 0; y < grid; ++y)
        for (int x = 0; x < grid; ++x)
          for (int h = 0; h < heads; ++h) {
            const int wy = y / window * window, wx = x / window * window;  // the window's corner
            const float* qrow = qkv.data() + ((size_t(b) * grid + y) * grid + x) * 3 * width;
            auto key_row = [&](int i) -> const float* {
              const int ky = wy + i / window, kx = wx + i % window;
              if (ky >= grid || kx >= grid) return pad.data();
              return qkv.data() + ((size_t(b) * grid + ky) * grid + kx) * 3 * width;
            };
            auto bias = [&](int i) {
              if (!with_rel) return 0.0;
              const int ky = i / window, kx = i % window, qy = y - wy, qx = x - wx;
              return dot(qrow + h * hd, rh.data() + (qy - ky + window - 1) * hd, hd) +
                     dot(qrow + h * hd, rw.data() + (qx - kx + window - 1) * hd, hd);
            };
            const size_t o = ((size_t(b) * grid + y) * grid + x) * width + h * hd;
            reference_vit_row(qrow, heads, hd, h, window * window, key_row, bias, want.data() + o, mag.data() + o);
          }
    expect_close(out.data(), want, mag, tol().math * 64 * kEps, tol().math * 2e-6,
                 with_rel ? "attention_windowed rel" : "attention_windowed");
  }
}

TEST(KernelVariants, TheActiveOneIsSupportedAndNamedInTheDescription) {
  const cpu::KernelVariant& active = cpu::active_kernels();
  EXPECT_TRUE(active.supported);
  ASSERT_NE(active.table, nullptr);
  EXPECT_GT(active.table->lanes, 0);
  const std::string text = cpu::describe_cpu_kernels();
  EXPECT_NE(text.find(active.name), std::string::npos) << text;
  // A cap naming a variant this CPU runs selects exactly that one.
  if (const char* cap = std::getenv("DSOCR_ISA")) {
    for (const cpu::KernelVariant& v : cpu::kernel_variants()) {
      if (v.supported && std::string(v.name) == cap) {
        EXPECT_EQ(std::string(active.name), cap) << text;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendOps, ::testing::ValuesIn(backend_cases()),
                         [](const ::testing::TestParamInfo<BackendCase>& info) { return info.param.name; });
