// `mlx-serving config-docs`: docs/configuration.md from the config schema.
// `mlx-serving config-check [--config FILE]`: validates the configuration (file + MLXS_*
// environment) and prints the effective values as JSON.
#include <cstdio>
#include <fstream>

#include "api/config.h"
#include "cli.h"

namespace {

int run_config_docs(const std::string& output) {
  std::string text = mlxs::config_reference_markdown();
  if (output.empty()) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  std::ofstream out(output, std::ios::binary);
  out << text;
  if (!out) {
    std::fprintf(stderr, "mlx-serving config-docs: cannot write '%s'\n", output.c_str());
    return 1;
  }
  return 0;
}

int run_config_check(const std::string& path) {
  std::vector<std::string> warnings;
  auto config = mlxs::load_config(path, mlxs::process_environment(), &warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().to_string().c_str());
    return 1;
  }
  auto json = mlxs::schema::schema_of<mlxs::Config>().to_json(*config);
  std::printf("%s\n", json.dump(2).c_str());
  return 0;
}

mlxs::cli::CommandRegistrar docs_reg("config-docs", "Print the configuration reference (Markdown)",
                                     [](CLI::App& app) {
                                       auto output = std::make_shared<std::string>();
                                       app.add_option("-o,--output", *output, "write to this file");
                                       return [output] { return run_config_docs(*output); };
                                     });

mlxs::cli::CommandRegistrar check_reg("config-check",
                                      "Validate the configuration and print the effective values",
                                      [](CLI::App& app) {
                                        auto path = std::make_shared<std::string>();
                                        app.add_option("--config", *path,
                                                       "YAML file (default: $MLXS_CONFIG)");
                                        return [path] { return run_config_check(*path); };
                                      });

}  // namespace
