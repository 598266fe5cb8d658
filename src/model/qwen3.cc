// Qwen3: RMSNorm over each head of q and k before RoPE; optional attention bias.
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/family.h"

namespace mlxs {
namespace {

Status configure_qwen3(const nlohmann::json& j, const std::string& file, ModelArch* c) {
  c->qk_norm = true;
  bool attention_bias = j.value("attention_bias", false);
  c->qkv_bias = attention_bias;
  c->o_bias = attention_bias;
  if (j.value("use_sliding_window", false)) {
    return error(ErrorCode::kModelLoadError, file + ": Qwen3 use_sliding_window is not supported");
  }
  return {};
}

}  // namespace

const ModelFamily kQwen3Family = {"qwen3", {"Qwen3ForCausalLM"}, {"qwen3"}, configure_qwen3};

}  // namespace mlxs
