// `mlx-serving convert --format gguf --type q8_0|q4_k_m|q4_0|f16|bf16|f32 --out FILE SRC`: a
// Hugging Face model folder written as a GGUF file (model/gguf_convert.h), so tests and
// benchmarks make GGUF models without downloads.
#include <cstdio>

#include "cli.h"
#include "model/gguf_convert.h"

namespace {

struct Args {
  std::string format = "gguf", type = "f16", out, src;
  bool allow_outside = false;
};

int run(const Args& a) {
  mlxs::ModelFileAccess access;
  access.allow_outside = a.allow_outside;
  mlxs::Status s = mlxs::convert_to_gguf(a.src, a.out, a.type, access);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("wrote %s (%s) from %s\n", a.out.c_str(), a.type.c_str(), a.src.c_str());
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "convert", "Write a Hugging Face model folder as a GGUF file (float or llama.cpp quant types)",
    [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--format", a->format, "Output format")->check(CLI::IsMember({"gguf"}));
      app.add_option("--type", a->type, "Tensor type (q4_k_m: llama.cpp's Q4_K/Q6_K mix)")
          ->check(CLI::IsMember(mlxs::gguf_convert_types()));
      app.add_option("--out", a->out, "Output .gguf file")->required();
      app.add_option("src", a->src, "Model folder (config.json, *.safetensors, tokenizer.json)")
          ->required();
      app.add_flag("--allow-files-outside-model-dir", a->allow_outside,
                   "Follow symlinks out of the folder (Hugging Face cache snapshots)");
      return [a] { return run(*a); };
    });

}  // namespace
