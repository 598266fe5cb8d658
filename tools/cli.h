// Subcommands of the `mlx-serving` binary register themselves here: each tools/cmd_*.cc defines
// one static CommandRegistrar, so adding a command touches no shared file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "mlxs/options.h"

namespace mlxs::cli {

// Declares the command's options on `app` and returns the function that runs it (exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  std::string help;
  CommandSetup setup;
};

std::vector<CommandInfo>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string help, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

// "1,2,3" -> {1,2,3}; throws CLI::ValidationError naming the flag on bad input.
std::vector<int> parse_id_list(const std::string& flag, const std::string& text);

// The engine options of the --config, --threads and --device (auto, cpu or cuda) flags.
EngineOptions engine_options(const std::string& config, int threads, const std::string& device);

}  // namespace mlxs::cli
