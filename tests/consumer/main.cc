// Links the installed engine and generates a few greedy tokens from the model folder given as
// argv[1]; prints the text and exits 0, or prints the error and exits 1.
#include <mlxs/engine.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL_DIR\n");
    return 2;
  }
  mlxs::EngineOptions options;
  options.device = mlxs::Device::kCpu;
  auto engine = mlxs::create_engine(options);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 1;
  }
  mlxs::LoadModelOptions model;
  model.model = "default";
  model.local_path = argv[1];
  if (auto handle = (*engine)->load_model(model); !handle.ok()) {
    std::fprintf(stderr, "%s\n", handle.status().to_string().c_str());
    return 1;
  }
  mlxs::GeneratorParams params;
  params.model = "default";
  params.prompt = std::string("Call me Ishmael.");
  params.max_tokens = 8;
  params.temperature = 0.0;
  auto result = (*engine)->generate(params);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().to_string().c_str());
    return 1;
  }
  std::printf("consumer: %zu tokens: %s\n", result->token_ids.size(), result->text.c_str());
  (*engine)->dispose();
  return result->token_ids.size() == 8 ? 0 : 1;
}
