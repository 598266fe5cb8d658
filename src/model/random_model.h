// Random-weight models of real shapes in Hugging Face layout, so benchmarks and tests need no
// downloads (`mlx-serving make-random-model`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlxs/status.h"
#include "model/config.h"

namespace mlxs {

// Known shapes: "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "mistral-7b", "qwen2.5-0.5b",
// "qwen3-0.6b", "tiny-llama", "tiny-qwen3".
std::vector<std::string> random_model_shapes();
Result<ModelArch> random_model_config(const std::string& shape);

// Writes `out_dir`/config.json and model.safetensors for `config` with weights drawn uniformly
// with std 0.02 (norm weights near 1) from a counter-based generator: the same seed gives the
// same bytes whatever the thread count. `num_layers` > 0 overrides the depth.
Status write_random_model(const ModelArch& config, DType dtype, const std::string& out_dir,
                          uint64_t seed);

// config.json text in the transformers format for `c`.
std::string config_to_json(const ModelArch& c);

}  // namespace mlxs
