// CUDA backend checks: run where a GPU exists, skipped elsewhere (and absent when CUDA isn't built).
// The op-by-op conformance of the CUDA backend is test_backend_ops (its "cuda" case); these are the
// device discovery, the factory and the first cuBLAS smoke test.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/thread_pool.h"

#ifdef DSOCR_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

using namespace dsocr;

TEST(Cuda, FactoryGivesABackendOnADeviceAndAReasonWithout) {
#ifndef DSOCR_HAVE_CUDA
  GTEST_SKIP() << "built without CUDA";
#else
  std::string why_not;
  std::unique_ptr<Backend> backend = make_cuda_backend(&why_not);
  if (cuda::device_count() == 0) {
    EXPECT_EQ(backend, nullptr);
    EXPECT_FALSE(why_not.empty());
    return;
  }
  ASSERT_NE(backend, nullptr) << why_not;
  EXPECT_NE(backend->name().find("cuda"), std::string::npos) << backend->name();
  EXPECT_NE(backend->name().find(cuda::device_name(0)), std::string::npos) << backend->name();
  // A round trip through device memory gives the values back.
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f};
  std::unique_ptr<Buffer> buf = backend->buffer(values.size());
  backend->from_host(buf->data(), values.data(), values.size());
  std::vector<float> back(values.size(), -1.0f);
  backend->to_host(back.data(), buf->data(), back.size());
  EXPECT_EQ(back, values);
#endif
}

TEST(Cuda, LinearBf16MatchesTheCpuPath) {
#ifndef DSOCR_HAVE_CUDA
  GTEST_SKIP() << "built without CUDA";
#else
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const int64_t M = 37, N = 70, K = 129;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> a(static_cast<size_t>(M * K)), bias(static_cast<size_t>(N));
  std::vector<float> cpu(static_cast<size_t>(M * N)), gpu(static_cast<size_t>(M * N));
  std::vector<uint16_t> w(static_cast<size_t>(N * K));
  for (auto& x : a) x = nd(rng);
  for (auto& x : bias) x = nd(rng);
  for (auto& x : w) x = f32_to_bf16(nd(rng) * 0.1f);
  ThreadPool pool(2);
  cpu::Weight W{DType::BF16, w.data(), N, K};
  cpu::linear(pool, a.data(), M, W, bias.data(), cpu.data());
  cuda::linear_bf16(a.data(), M, w.data(), N, K, bias.data(), gpu.data());
  for (size_t i = 0; i < cpu.size(); ++i) ASSERT_NEAR(cpu[i], gpu[i], 1e-4) << i;
#endif
}
