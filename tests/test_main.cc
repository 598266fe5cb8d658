// The test binary's main: gtest, after reading backend.cpu.isa from the configuration (the
// MLXS_CONFIG file and MLXS_* environment, through the config loader) and making that family the
// default of every CPU backend the tests create. So
//   MLXS_BACKEND_CPU_ISA=scalar ctest --preset cpu
// runs the whole suite as a CPU without AVX2 would (tests/e2e's servers read the same variable).
// Tests that name a family themselves (golden, engine greedy, linear) are unaffected.
#include <gtest/gtest.h>

#include <cstdio>

#include "api/config.h"
#include "backend/cpu/cpu_features.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto config = mlxs::load_config("", mlxs::process_environment());
  if (!config.ok()) {
    std::fprintf(stderr, "mlxs_tests: %s\n", config.status().to_string().c_str());
    return 2;
  }
  if (config->backend.cpu.isa != "auto") {
    // stderr: stdout carries --gtest_list_tests to ctest's test discovery.
    const mlxs::cpu::Isa isa = mlxs::cpu::isa_for_choice(config->backend.cpu.isa);
    mlxs::cpu::set_default_isa_for_testing(isa);
    std::fprintf(stderr, "mlxs_tests: CPU kernels default to %s (backend.cpu.isa)\n",
                 mlxs::cpu::isa_name(isa));
  }
  return RUN_ALL_TESTS();
}
