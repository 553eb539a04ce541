// Included first by every kernel source: they are compiled once per instruction set, each time into the
// namespace dsocr::cpu::DSOCR_KERNEL_NS (backend/cpu/kernels.h).
#pragma once
#ifndef DSOCR_KERNEL_NS
#error "kernel sources are compiled through the per-instruction-set targets of CMakeLists.txt"
#endif
