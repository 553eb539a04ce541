#include "backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <vector>

#include "core/error.h"

namespace dsocr::cuda {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA: {}: {}", what, cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS: {}: status {}", what, int(s));
}

__global__ void widen_bf16(const uint16_t* src, float* dst, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __uint_as_float(uint32_t(src[i]) << 16);
}

__global__ void add_bias(float* c, const float* bias, int64_t m, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < m * n) c[i] += bias[i % n];
}

// Device buffer freed on scope exit.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) { check(cudaMalloc(&ptr, n * sizeof(T)), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return p.name;
}

void linear_bf16(const float* A, int64_t M, const uint16_t* W, int64_t N, int64_t K, const float* bias, float* C) {
  DeviceBuffer<float> a(size_t(M * K)), w(size_t(N * K)), c(size_t(M * N));
  DeviceBuffer<uint16_t> w16(size_t(N * K));
  check(cudaMemcpy(a.ptr, A, size_t(M * K) * 4, cudaMemcpyHostToDevice), "copy A");
  check(cudaMemcpy(w16.ptr, W, size_t(N * K) * 2, cudaMemcpyHostToDevice), "copy W");
  const int threads = 256;
  widen_bf16<<<unsigned((N * K + threads - 1) / threads), threads>>>(w16.ptr, w.ptr, N * K);
  check(cudaGetLastError(), "widen_bf16");
  cublasHandle_t handle;
  check(cublasCreate(&handle), "create");
  // Row-major C[M,N] = A[M,K] W^T  <=>  column-major C^T[N,M] = W[N,K]^T(col: K x N)^T ... i.e. op(W)=T on the
  // column-major view of W (K x N) and A as column-major K x M.
  const float one = 1.0f, zero = 0.0f;
  cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH);  // true float32, no TF32 shortcuts
  const cublasStatus_t st = cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one, w.ptr, int(K),
                                        a.ptr, int(K), &zero, c.ptr, int(N));
  cublasDestroy(handle);
  check(st, "sgemm");
  if (bias) {
    DeviceBuffer<float> b{size_t(N)};
    check(cudaMemcpy(b.ptr, bias, size_t(N) * 4, cudaMemcpyHostToDevice), "copy bias");
    add_bias<<<unsigned((M * N + threads - 1) / threads), threads>>>(c.ptr, b.ptr, M, N);
    check(cudaGetLastError(), "add_bias");
  }
  check(cudaMemcpy(C, c.ptr, size_t(M * N) * 4, cudaMemcpyDeviceToHost), "copy C");
}

}  // namespace dsocr::cuda
