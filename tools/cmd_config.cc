// `mlx-serving config-docs`: docs/configuration.md from the config schema.
// `mlx-serving config-check [--config FILE]`: validates the configuration (file + MLXS_*
// environment) and prints the effective values as JSON. On stderr it says what each MLXS_
// variable of the environment did (the key it set, or why it was ignored or refused), and
// whether backend.device can be honoured on this machine.
#include <cstdio>
#include <fstream>

#include "api/config.h"
#include "backend/make_backend.h"
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

// One line per MLXS_ variable that sets a key; the loader's warnings cover the ignored ones and
// its error the refused ones.
void report_applied_variables(const mlxs::EnvMap& env, const std::string& path) {
  for (const auto& [name, value] : env) {
    if (name == "MLXS_CONFIG") {
      std::fprintf(stderr, "%s=%s: %s\n", name.c_str(), value.c_str(),
                   path.empty() ? "the config file" : "not read (--config is given)");
      continue;
    }
    const std::string key = mlxs::config_key_for_env(name);
    if (!key.empty())
      std::fprintf(stderr, "%s=%s: sets %s\n", name.c_str(), value.c_str(), key.c_str());
  }
}

int run_config_check(const std::string& path) {
  const mlxs::EnvMap env = mlxs::process_environment();
  std::vector<std::string> warnings;
  auto config = mlxs::load_config(path, env, &warnings);
  report_applied_variables(env, path);
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().to_string().c_str());
    return 1;
  }
  const mlxs::Status device = mlxs::check_backend_device(config->backend);
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", device.to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "backend.device: runs on %s here\n",
               mlxs::resolved_backend_device(config->backend).c_str());
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
