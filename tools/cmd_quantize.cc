// `mlx-serving quantize --format mlx --bits 4 --group-size 64 --out OUT SRC`: an MLX
// affine-quantized copy of a float model folder (model/quantize_model.h), loadable here and by
// mlx_lm, so tests and benchmarks make quantized models without downloads.
#include <cstdio>

#include "cli.h"
#include "model/quantize_model.h"

namespace {

struct Args {
  std::string format = "mlx", src, out;
  int bits = 4, group_size = 64;
};

int run(const Args& a) {
  mlxs::QuantizeStats s;
  mlxs::Status st = mlxs::quantize_model_mlx(a.src, a.out, a.bits, a.group_size, &s);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }
  std::printf(
      "wrote %s: %d matrices quantized to %d bits in groups of %d, %d tensors copied, "
      "%.1f MB -> %.1f MB\n",
      a.out.c_str(), s.num_quantized, a.bits, a.group_size, s.num_copied, double(s.bytes_in) / 1e6,
      double(s.bytes_out) / 1e6);
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "quantize", "Write a quantized copy of a float model folder (MLX affine format)",
    [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--format", a->format, "Output format")->check(CLI::IsMember({"mlx"}));
      app.add_option("--bits", a->bits, "Bits per weight")
          ->check(CLI::IsMember({2, 3, 4, 5, 6, 8}));
      app.add_option("--group-size", a->group_size, "Weights per scale and bias")
          ->check(CLI::IsMember({32, 64, 128}));
      app.add_option("--out", a->out, "Output folder")->required();
      app.add_option("src", a->src, "Source model folder (f32, f16 or bf16 safetensors)")
          ->required();
      return [a] { return run(*a); };
    });

}  // namespace
