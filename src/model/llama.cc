// Llama 2, 3, 3.1 (llama3 rope scaling, read by ModelArch) and 3.2 (tied embeddings).
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/family.h"

namespace mlxs {
namespace {

Status configure_llama(const nlohmann::json& j, const std::string& file, ModelArch* c) {
  bool attention_bias = j.value("attention_bias", false);
  c->qkv_bias = attention_bias;
  c->o_bias = attention_bias;
  c->mlp_bias = j.value("mlp_bias", false);
  return {};
}

}  // namespace

const ModelFamily kLlamaFamily = {"llama", {"LlamaForCausalLM"}, {"llama"}, configure_llama};

}  // namespace mlxs
