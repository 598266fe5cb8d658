// Mistral: Llama's decoder with sliding-window attention.
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/family.h"

namespace mlxs {
namespace {

Status configure_mistral(const nlohmann::json& j, const std::string& file, ModelArch* c) {
  if (j.contains("sliding_window") && j["sliding_window"].is_number_integer()) {
    c->sliding_window = j["sliding_window"].get<int>();
  }
  return {};
}

}  // namespace

const ModelFamily kMistralFamily = {
    "mistral", {"MistralForCausalLM"}, {"mistral"}, configure_mistral};

}  // namespace mlxs
