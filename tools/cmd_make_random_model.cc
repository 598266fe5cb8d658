// `mlx-serving make-random-model --shape NAME --dtype bf16 --out DIR`: a random-weight model of a
// real architecture's shape, for benchmarks and tests (no downloads).
#include <cstdio>

#include "cli.h"
#include "model/random_model.h"

namespace {

struct Args {
  std::string shape, dtype = "bf16", out;
  uint64_t seed = 0;
  int layers = 0;
};

int run(const Args& a) {
  auto config = mlxs::random_model_config(a.shape);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().to_string().c_str());
    return 2;
  }
  if (a.layers > 0) config->num_layers = a.layers;
  mlxs::DType dt = a.dtype == "f32"   ? mlxs::DType::kF32
                   : a.dtype == "f16" ? mlxs::DType::kF16
                                      : mlxs::DType::kBF16;
  mlxs::Status s = mlxs::write_random_model(*config, dt, a.out, a.seed);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("wrote %s: %s, %.3f B parameters, %s\n", a.out.c_str(), a.shape.c_str(),
              double(config->num_parameters()) / 1e9, a.dtype.c_str());
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "make-random-model", "Write a random-weight model of a known shape in Hugging Face layout",
    [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--shape", a->shape, "Model shape")
          ->required()
          ->check(CLI::IsMember(mlxs::random_model_shapes()));
      app.add_option("--dtype", a->dtype, "Weight dtype")
          ->check(CLI::IsMember({"bf16", "f16", "f32"}));
      app.add_option("--out", a->out, "Output folder")->required();
      app.add_option("--seed", a->seed, "Random seed");
      app.add_option("--layers", a->layers, "Override the number of layers");
      return [a] { return run(*a); };
    });

}  // namespace
