// `mlx-serving schema NAME`: the JSON Schema (draft 2020-12) of an options struct or the config;
// `mlx-serving schema --list`: the names.
#include <cstdio>

#include "api/schema_registry.h"
#include "cli.h"

namespace {

struct SchemaArgs {
  std::string name;
  bool list = false;
};

int run_schema(const SchemaArgs& args) {
  using namespace mlxs::schema;
  if (args.list || args.name.empty()) {
    for (const auto& s : schema_registry())
      std::printf("%s\t%s\n", s.name.c_str(), s.node->description.c_str());
    return args.list ? 0 : 2;
  }
  const NamedSchema* s = find_schema(args.name);
  if (!s) {
    std::fprintf(stderr, "mlx-serving schema: unknown schema '%s' (see --list)\n",
                 args.name.c_str());
    return 2;
  }
  std::printf("%s\n", json_schema_document(*s->node).dump(2).c_str());
  return 0;
}

mlxs::cli::CommandRegistrar reg("schema",
                                "Print the JSON Schema of an options struct or the config",
                                [](CLI::App& app) {
                                  auto args = std::make_shared<SchemaArgs>();
                                  app.add_option("name", args->name, "schema name (see --list)");
                                  app.add_flag("--list", args->list, "list the schema names");
                                  return [args] { return run_schema(*args); };
                                });

}  // namespace
