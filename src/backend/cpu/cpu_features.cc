#include "backend/cpu/cpu_features.h"

#include <omp.h>

#include <atomic>

namespace mlxs::cpu {
namespace {

// The most capable family the CPU has (what set_isa_for_testing accepts).
Isa supported_max() {
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
              __builtin_cpu_supports("f16c");
  if (!avx2) return Isa::kScalar;
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (!avx512) return Isa::kAvx2;
  // GCC 12 has no "avx512bf16" name for __builtin_cpu_supports: read CPUID leaf 7 sub-leaf 1,
  // EAX bit 5 (AVX512_BF16).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(1));
  return (eax & (1u << 5)) ? Isa::kAvx512Bf16 : Isa::kAvx512;
}

// The default family. vdpbf16ps is used only on AMD (Zen 4 and later), where it runs at the rate
// of an f32 FMA while doing twice the work. On Intel it runs at a quarter of the FMA rate
// (measured on a Sapphire Rapids-class Xeon: 0.5/cycle against 2/cycle for vfmadd231ps zmm), so
// widening bf16 weights to f32 and using FMA is both faster and more accurate there.
Isa preferred(Isa max) {
  if (max == Isa::kAvx512Bf16 && !__builtin_cpu_is("amd")) return Isa::kAvx512;
  return max;
}

std::atomic<int> g_forced_isa{-1};
std::atomic<int> g_num_threads{0};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512bf16";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa isa = preferred(supported_max());
  return isa;
}

bool isa_supported(Isa isa) {
  static const Isa max = supported_max();
  return int(isa) <= int(max);
}

Isa active_isa() {
  int forced = g_forced_isa.load(std::memory_order_relaxed);
  return forced >= 0 ? Isa(forced) : detected_isa();
}

bool set_isa_for_testing(Isa isa) {
  if (!isa_supported(isa)) return false;
  g_forced_isa.store(int(isa));
  return true;
}

void reset_isa_for_testing() { g_forced_isa.store(-1); }

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

int num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

}  // namespace mlxs::cpu
