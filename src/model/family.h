// Architecture families. Each family file (llama.cc, mistral.cc, qwen2.cc, qwen3.cc) describes
// how its config.json switches the shared decoder (decoder.h); the weight names are the
// Hugging Face ones every family here shares.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "mlxs/status.h"

namespace mlxs {

struct ModelArch;

struct ModelFamily {
  const char* name;                        // "llama"
  std::vector<std::string> architectures;  // "LlamaForCausalLM", ...
  std::vector<std::string> model_types;    // "llama", ...
  // Applies the family's own config keys to `c` (already holding the common ones).
  Status (*configure)(const nlohmann::json& j, const std::string& file, ModelArch* c);
};

extern const ModelFamily kLlamaFamily;
extern const ModelFamily kMistralFamily;
extern const ModelFamily kQwen2Family;
extern const ModelFamily kQwen3Family;

// The family whose architectures list `architecture`, else whose model_types list `model_type`.
const ModelFamily* find_family(const std::string& architecture, const std::string& model_type);
std::string supported_families();  // "LlamaForCausalLM, MistralForCausalLM, ..."

}  // namespace mlxs
