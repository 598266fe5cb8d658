// The named schemas `mlx-serving schema NAME` can print: every option struct and the config.
#pragma once

#include <string>
#include <vector>

#include "api/schema.h"

namespace mlxs::schema {

struct NamedSchema {
  std::string name;  // kebab-case, e.g. "generator-params"
  const Node* node;  // owned by the schema's static; lives for the program
};

// Every named schema, in a fixed order. Thread-safe.
const std::vector<NamedSchema>& schema_registry();

// The schema called `name`, or nullptr.
const NamedSchema* find_schema(const std::string& name);

}  // namespace mlxs::schema
