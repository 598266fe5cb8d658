// `mlx-serving version`: the build's version and which backends it holds.
#include <cstdio>

#include "cli.h"

namespace {
mlxs::cli::CommandRegistrar reg("version", "Print the version and the backends built in",
                                [](CLI::App&) {
                                  return [] {
#ifdef MLXS_HAVE_CUDA
                                    std::puts("mlx-serving 0.1.0 (backends: cpu, cuda)");
#else
                                    std::puts("mlx-serving 0.1.0 (backends: cpu)");
#endif
                                    return 0;
                                  };
                                });
}  // namespace
