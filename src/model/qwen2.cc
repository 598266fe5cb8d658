// Qwen2 / Qwen2.5: biases on q, k and v; sliding window only when use_sliding_window is set.
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/family.h"

namespace mlxs {
namespace {

Status configure_qwen2(const nlohmann::json& j, const std::string& file, ModelArch* c) {
  c->qkv_bias = true;
  if (j.value("use_sliding_window", false) && j.contains("sliding_window") &&
      j["sliding_window"].is_number_integer()) {
    // transformers applies the window only to layers >= max_window_layers; we support the common
    // case where every layer uses it.
    int max_window_layers = j.value("max_window_layers", 0);
    if (max_window_layers != 0) {
      return error(ErrorCode::kModelLoadError,
                   file + ": use_sliding_window with max_window_layers != 0 is not supported");
    }
    c->sliding_window = j["sliding_window"].get<int>();
  }
  return {};
}

}  // namespace

const ModelFamily kQwen2Family = {"qwen2", {"Qwen2ForCausalLM"}, {"qwen2"}, configure_qwen2};

}  // namespace mlxs
