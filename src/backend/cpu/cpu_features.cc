#include "backend/cpu/cpu_features.h"

#include <omp.h>

#include <algorithm>
#include <atomic>

#include "util/check.h"

namespace mlxs::cpu {
namespace {

// CPUID leaf 1, ECX bit 29 (F16C): clang 14 has no "f16c" name for __builtin_cpu_supports.
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  return (ecx & (1u << 29)) != 0;
}

Isa detect_supported() {
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
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

std::atomic<int> g_default_isa{-1};
std::atomic<int> g_num_threads{0};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx512Bf16:
      return "avx512bf16";
  }
  return "?";
}

std::optional<Isa> isa_from_name(std::string_view name) {
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

Isa supported_isa() {
  static const Isa isa = detect_supported();
  return isa;
}

bool isa_supported(Isa isa) {
  return int(isa) <= int(supported_isa());
}

// The default is the fastest exact family. Until 2026-12-07 it was kAvx512Bf16 on AMD (Zen 4
// runs vdpbf16ps at the rate of an f32 FMA while doing twice the work), but its bf16 activations
// made the golden and engine tests diverge from transformers there (issue 12), and decode, which
// is bound by reading the weights, gained nothing measurable from it on the machine we have: see
// bench/RESULTS.md, "CPU kernel families". It stays available as backend.cpu.isa: avx512bf16.
Isa preferred_isa(Isa supported) {
  return std::min(supported, Isa::kAvx512);
}

Isa default_isa() {
  int forced = g_default_isa.load(std::memory_order_relaxed);
  return forced >= 0 ? Isa(forced) : preferred_isa(supported_isa());
}

std::optional<std::string> isa_choice_error(std::string_view choice, Isa supported) {
  if (choice == "auto") return std::nullopt;
  std::optional<Isa> isa = isa_from_name(choice);
  if (!isa) {
    return "must be one of auto, scalar, avx2, avx512, avx512bf16, got '" + std::string(choice) +
           "'";
  }
  if (int(*isa) > int(supported)) {
    return "this CPU cannot run " + std::string(choice) + " (the most it supports is " +
           isa_name(supported) + ")";
  }
  return std::nullopt;
}

Isa isa_for_choice(std::string_view choice) {
  if (choice == "auto") return default_isa();
  std::optional<Isa> isa = isa_from_name(choice);
  MLXS_CHECK(isa.has_value());
  return *isa;
}

bool set_default_isa_for_testing(Isa isa) {
  if (!isa_supported(isa)) return false;
  g_default_isa.store(int(isa));
  return true;
}

void set_num_threads(int n) {
  g_num_threads.store(n > 0 ? n : 0);
}

int num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

}  // namespace mlxs::cpu
