// The CUDA backend's entry points (built only when a CUDA toolkit is found: DSOCR_HAVE_CUDA).
// This first piece holds device discovery and the bf16-weight matrix product the model halves are
// built on; the full GPU engine grows from here (see the issues).
#pragma once
#include <cstdint>
#include <string>

namespace dsocr::cuda {

// Number of usable CUDA devices (0 when there is no driver or no GPU; never throws).
int device_count();
std::string device_name(int device);

// C[M, N] = A[M, K] (float32, host) x W^T with W [N, K] bf16 (host, e.g. the mapped checkpoint),
// computed on the device with cuBLAS (bf16 x bf16 products are not used: A stays float32 and W
// is widened on the device, so the result matches the CPU's float32 path). Throws Error on failure.
void linear_bf16(const float* A, int64_t M, const uint16_t* W, int64_t N, int64_t K, const float* bias, float* C);

}  // namespace dsocr::cuda
