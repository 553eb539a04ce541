#include "backend/cpu/kernel_ns.h"

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"

// This variant's kernels (defined in the other kernel sources, in this namespace) and its table: the
// one global symbol of the variant's object (see kernels.h).
namespace dsocr::cpu::DSOCR_KERNEL_NS {
decltype(cpu::linear) linear;
decltype(cpu::paged_attention) paged_attention;
decltype(cpu::paged_attention_scratch_floats) paged_attention_scratch_floats;
decltype(cpu::attention_global) attention_global;
decltype(cpu::attention_windowed) attention_windowed;
decltype(cpu::gelu_erf) gelu_erf;
decltype(cpu::quick_gelu) quick_gelu;
decltype(cpu::layer_norm) layer_norm;
decltype(cpu::rms_norm) rms_norm;
decltype(cpu::silu_mul) silu_mul;
decltype(cpu::add_inplace) add_inplace;
decltype(cpu::softmax_rows) softmax_rows;
}  // namespace dsocr::cpu::DSOCR_KERNEL_NS

extern "C" const dsocr::cpu::KernelTable* DSOCR_KERNEL_ENTRY() {
  namespace k = dsocr::cpu::DSOCR_KERNEL_NS;
  static const dsocr::cpu::KernelTable table{
      dsocr::cpu::simd::kIsaName, dsocr::cpu::simd::kW, &k::linear, &k::paged_attention,
      &k::paged_attention_scratch_floats, &k::attention_global, &k::attention_windowed, &k::gelu_erf, &k::quick_gelu,
      &k::layer_norm, &k::rms_norm, &k::silu_mul, &k::add_inplace, &k::softmax_rows};
  return &table;
}
