// Which x86 vector ISA the CPU kernels use, chosen once at run time, and the thread count of the
// CPU kernels. Files named *_avx512.cc / *_avx2.cc are compiled with those ISA flags; everything
// else targets baseline x86-64 and reaches them only through the dispatch below.
#pragma once

namespace mlxs::cpu {

// Kernel families, from least to most capable. Each one implies the ones before it.
enum class Isa {
  kScalar,      // baseline x86-64 (plain C++)
  kAvx2,        // AVX2 + FMA + F16C: 8-lane f32
  kAvx512,      // AVX-512 F/BW/VL/DQ: 16-lane f32
  kAvx512Bf16,  // kAvx512 + AVX512_BF16 (vdpbf16ps) for bf16 weights
};

const char* isa_name(Isa isa);

// The family the kernels use by default on this CPU: the most capable one it supports, except
// that kAvx512Bf16 is chosen only on AMD (see cpu_features.cc for the measurement behind it).
// Cached after the first call; thread-safe.
Isa detected_isa();
// Whether this CPU can run `isa` (every family up to the most capable one).
bool isa_supported(Isa isa);

// The family the kernels use now: detected_isa() unless a test forced another one.
Isa active_isa();

// Test hook: makes every kernel use `isa` (a CPU that lacks it keeps its detected family and the
// call returns false). Not thread-safe against kernels running at the same time; tests only.
bool set_isa_for_testing(Isa isa);
void reset_isa_for_testing();

// Threads the CPU kernels use for one call (OpenMP). Default omp_get_max_threads(); n <= 0
// restores the default. Kernel results never depend on it (see linear.h).
void set_num_threads(int n);
int num_threads();

}  // namespace mlxs::cpu
