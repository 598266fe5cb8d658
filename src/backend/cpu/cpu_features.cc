#include "backend/cpu/cpu_features.h"

#include <omp.h>

#include <atomic>

namespace mlxs::cpu {
namespace {

Isa detect() {
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
  static const Isa isa = detect();
  return isa;
}

bool isa_supported(Isa isa) { return int(isa) <= int(detected_isa()); }

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
