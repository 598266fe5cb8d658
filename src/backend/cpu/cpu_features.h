// Which x86 vector ISA the CPU kernels use, chosen at run time, and the thread count of the CPU
// kernels. Files named *_avx512.cc / *_avx2.cc are compiled with those ISA flags; everything
// else targets baseline x86-64 and reaches them only through the dispatch in linear.cc.
//
// The family is a property of each CPU backend (make_cpu_backend in backend.h), chosen by the
// config key backend.cpu.isa; `auto` means default_isa(). docs/cpu.md gives each family's speed
// and accuracy.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mlxs::cpu {

// Kernel families, from least to most capable. Each one implies the ones before it.
enum class Isa {
  kScalar,      // baseline x86-64 (plain C++)
  kAvx2,        // AVX2 + FMA + F16C: 8-lane f32
  kAvx512,      // AVX-512 F/BW/VL/DQ: 16-lane f32
  kAvx512Bf16,  // kAvx512 + AVX512_BF16: bf16 weights with vdpbf16ps, activations rounded to bf16
};

constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16};

// "scalar", "avx2", "avx512", "avx512bf16" (the config's spelling), and back.
const char* isa_name(Isa isa);
std::optional<Isa> isa_from_name(std::string_view name);

// The most capable family this CPU supports. Cached after the first call; thread-safe.
Isa supported_isa();
// Whether this CPU can run `isa` (every family up to supported_isa()).
bool isa_supported(Isa isa);

// The family `auto` stands for on a CPU whose most capable family is `supported`: the most
// capable family with f32 activations, min(supported, kAvx512). kAvx512Bf16 is never the
// default, on any vendor: it rounds activations to bf16, so its greedy output can differ from
// the reference (docs/cpu.md), and a default must be exact.
Isa preferred_isa(Isa supported);
// preferred_isa(supported_isa()), unless the test binary's main forced another family
// (set_default_isa_for_testing).
Isa default_isa();

// backend.cpu.isa: "auto" (default_isa()) or an isa_name(). isa_choice_error says why `choice`
// cannot run on a CPU whose most capable family is `supported` (an unknown name, a family that
// CPU lacks), or nullopt when it can; isa_for_choice is the family a valid choice selects here.
std::optional<std::string> isa_choice_error(std::string_view choice, Isa supported);
Isa isa_for_choice(std::string_view choice);

// Test hook for tests/test_main.cc (MLXS_BACKEND_CPU_ISA=... runs the whole suite on one
// family): makes default_isa() return `isa`, which the CPU must support (else false and no
// change). Call before any backend exists; not thread-safe against concurrent default_isa().
bool set_default_isa_for_testing(Isa isa);

// Threads the CPU kernels use for one call (OpenMP). Default omp_get_max_threads(); n <= 0
// restores the default. Kernel results never depend on it (see linear.h).
void set_num_threads(int n);
int num_threads();

}  // namespace mlxs::cpu
