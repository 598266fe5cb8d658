// mlx-serving: one binary, one subcommand per job (serve, generate, tokenize, bench, ...).
#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli.h"

namespace mlxs::cli {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

EngineOptions engine_options(const std::string& config, int threads, const std::string& device) {
  EngineOptions eo;
  eo.config_path = config;
  eo.num_threads = threads;
  eo.device = device == "cpu" ? Device::kCpu : device == "cuda" ? Device::kCuda : Device::kAuto;
  return eo;
}

std::vector<int> parse_id_list(const std::string& flag, const std::string& text) {
  std::vector<int> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 0 || v > 0x7fffffff) {
      throw CLI::ValidationError(
          flag, "expected a comma-separated list of token ids, got '" + item + "'");
    }
    ids.push_back(int(v));
    pos = end + 1;
  }
  return ids;
}

}  // namespace mlxs::cli

int main(int argc, char** argv) {
  using namespace mlxs::cli;
  CLI::App app{"mlx-serving: a serving engine for large language models"};
  app.require_subcommand(1);
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; });
  std::function<int()> run;
  for (auto& cmd : registry) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.help);
    auto fn = cmd.setup(*sub);
    sub->callback([&run, fn] { run = fn; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlx-serving: %s\n", e.what());
    return 1;
  }
}
