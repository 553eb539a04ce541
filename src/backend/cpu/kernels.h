// The CPU kernels, compiled once per instruction set (x86-64: AVX-512, AVX2+FMA, baseline; arm64:
// NEON; or once for -march=native) and chosen at run time by the CPU's features, capped by
// $DSOCR_ISA (avx512, avx2, base, neon), like oneDNN's ONEDNN_MAX_CPU_ISA. Each variant is linked as
// one relocatable object whose only global symbol is its table (so inline code instantiated for one
// instruction set can never be picked by the linker for another). The public functions of gemm.h,
// ops.h, vec_math.h, vit_attention.h and paged_attention.h call the chosen variant.
#pragma once
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/paged_attention.h"
#include "backend/cpu/vec_math.h"
#include "backend/cpu/vit_attention.h"

namespace dsocr::cpu {

struct KernelTable {
  const char* isa;  // "avx512", "avx2", "sse4", "neon", "scalar"
  int lanes;
  decltype(&cpu::linear) linear;
  decltype(&cpu::paged_attention) paged_attention;
  decltype(&cpu::paged_attention_scratch_floats) paged_attention_scratch_floats;
  decltype(&cpu::attention_global) attention_global;
  decltype(&cpu::attention_windowed) attention_windowed;
  decltype(&cpu::gelu_erf) gelu_erf;
  decltype(&cpu::quick_gelu) quick_gelu;
  decltype(&cpu::layer_norm) layer_norm;
  decltype(&cpu::rms_norm) rms_norm;
  decltype(&cpu::silu_mul) silu_mul;
  decltype(&cpu::add_inplace) add_inplace;
  decltype(&cpu::softmax_rows) softmax_rows;
};

struct KernelVariant {
  const char* name;       // what $DSOCR_ISA names: "avx512", "avx2", "base", "neon", "native"
  const char* target;     // the -march it was compiled for
  bool supported;         // this CPU runs it
  const KernelTable* table;
};

// Every compiled variant, best first.
const std::vector<KernelVariant>& kernel_variants();
// The variant in use: the best supported one, or the best at or below $DSOCR_ISA. Chosen once.
const KernelVariant& active_kernels();
// One line for `dsocr info --cpu`: the CPU's model and features, the variants, the chosen one and why.
std::string describe_cpu_kernels();

}  // namespace dsocr::cpu
