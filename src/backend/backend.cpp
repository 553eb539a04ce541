#include "backend/backend.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace dsocr {

Weight Weight::of(const TensorView& t) {
  if (t.shape.empty()) fail("weight '{}' is a scalar", t.name);
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    fail("weight '{}' has dtype {}, expected F32, BF16 or F16", t.name, dtype_name(t.dtype));
  Weight w;
  w.dtype = t.dtype;
  w.data = t.data;
  w.rows = t.shape[0];
  w.cols = t.shape[0] == 0 ? 0 : t.numel() / t.shape[0];
  return w;
}

Weight Weight::row_slice(int64_t begin, int64_t count) const {
  Weight w = *this;
  w.data = static_cast<const uint8_t*>(data) + size_t(begin * cols) * dtype_size(dtype);
  w.rows = count;
  return w;
}

namespace {
constexpr size_t kAlign = 64;
size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

void* Workspace::bytes(size_t n) {
  n = aligned(std::max<size_t>(n, 1));
  if (used_ + n <= capacity_) {
    void* p = static_cast<char*>(block_) + used_;
    used_ += n;
    high_water_ = std::max(high_water_, used_);
    return p;
  }
  // Beyond the block: served separately this time, the block grows at the next reset.
  ++overflows_;
  used_ += n;
  high_water_ = std::max(high_water_, used_);
  void* p = allocate(n);
  overflow_.push_back(p);
  return p;
}

void Workspace::release_to(Mark m) {
  while (overflow_.size() > m.overflow_count) {
    release(overflow_.back());
    overflow_.pop_back();
  }
  used_ = m.used;
  if (used_ == 0 && high_water_ > capacity_) reserve(high_water_);
}

void Workspace::reserve(size_t n) {
  if (used_ != 0) fail("workspace: reserve while {} bytes are in use", used_);
  n = aligned(n);
  if (n <= capacity_) return;
  if (block_) release(block_);
  block_ = nullptr;
  capacity_ = 0;
  block_ = allocate(n);
  capacity_ = n;
}

void Workspace::release_all() {
  for (void* p : overflow_) release(p);
  overflow_.clear();
  if (block_) release(block_);
  block_ = nullptr;
  capacity_ = used_ = 0;
}

const float* Backend::constant(const TensorView& t) {
  const std::vector<float> values = t.to_f32();
  return constant(std::span<const float>(values));
}

void observe(TensorObserver* observer, Backend& backend, std::string_view name, const float* data,
             std::initializer_list<int64_t> shape) {
  if (!observer) return;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> host(static_cast<size_t>(n));
  backend.to_host(host.data(), data, size_t(n));
  const std::vector<int64_t> dims(shape);
  observer->on_tensor(name, host.data(), dims);
}

}  // namespace dsocr
