#include "api/schema_registry.h"

#include "api/config.h"
#include "api/option_schemas.h"

namespace mlxs::schema {

const std::vector<NamedSchema>& schema_registry() {
  static const std::vector<NamedSchema> registry = {
      {"engine-options", &schema_of<EngineOptions>().node()},
      {"load-model-options", &schema_of<LoadModelOptions>().node()},
      {"generator-params", &schema_of<GeneratorParams>().node()},
      {"generator-options", &schema_of<GeneratorOptions>().node()},
      {"prompt-template", &schema_of<PromptTemplate>().node()},
      {"structured-output", &schema_of<StructuredOutput>().node()},
      {"multimodal-input", &schema_of<MultimodalInput>().node()},
      {"config", &schema_of<Config>().node()},
  };
  return registry;
}

const NamedSchema* find_schema(const std::string& name) {
  for (const auto& s : schema_registry()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace mlxs::schema
