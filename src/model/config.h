// config.json of a Hugging Face model folder, resolved into what the runtime needs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "mlxs/status.h"
#include "util/dtype.h"
#include "util/model_files.h"

namespace mlxs {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

// The weight quantization config.json declares (docs/quantization.md).
//   MLX: `quantization` (or `quantization_config` without a quant_method) {"group_size", "bits",
//   "mode": "affine"} plus per-module overrides: a module path (the weight's name without
//   ".weight") mapped to its own {"group_size", "bits"}, or false for "not quantized".
//   FP8: `quantization_config` {"quant_method": "fp8", "weight_block_size": [rows, cols]}.
// Any other quant_method (awq, gptq, bitsandbytes, ...) is refused at load, by name.
struct QuantConfig {
  enum class Method { kNone, kMlxAffine, kFp8 };
  struct Affine {
    int bits = 0;  // 0: not quantized
    int group_size = 0;
  };
  Method method = Method::kNone;
  Affine affine;                               // kMlxAffine: the default of every module
  std::map<std::string, Affine> overrides;     // module path -> its own (bits 0: not quantized)
  int fp8_block_rows = 0, fp8_block_cols = 0;  // kFp8 with block scales: weight_block_size

  // What config.json says about module `path` under kMlxAffine (the default when no override).
  Affine affine_for(const std::string& path) const {
    auto it = overrides.find(path);
    return it != overrides.end() ? it->second : affine;
  }
};

// The decoder-only transformer shape shared by the Llama family (Llama 2/3/3.1/3.2, Mistral,
// Qwen2/2.5, Qwen3). Family-specific switches are plain fields.
struct ModelArch {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;    // e.g. "llama"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  // Per-frequency divisors of inv_freq (head_dim / 2 of them), as a GGUF file's rope_freqs
  // tensor gives Llama 3.1's scaling; empty: none.
  std::vector<float> rope_freq_factors;
  int max_position_embeddings = 0;  // 0: config.json names none (model.default_context_length)
  int sliding_window = 0;           // 0 = full attention
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2, or Llama's attention_bias
  bool o_bias = false;    // Llama's attention_bias also biases o_proj
  bool mlp_bias = false;
  bool qk_norm = false;  // Qwen3: RMSNorm over each head of q and k
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  DType dtype = DType::kBF16;  // torch_dtype / dtype of the checkpoint
  QuantConfig quant;

  // Parses `dir/config.json`; errors name the file and the key.
  // Reads DIR/config.json under the folder's rules (util/model_files.h); every size is
  // range-checked before anything is allocated from it.
  static Result<ModelArch> load(const std::string& dir, const ModelFileAccess& access = {});
  // Rotary parameters (inv_freq with scaling applied), as transformers computes them.
  RopeParams rope_params() const;
  int64_t num_parameters() const;
  // Bytes one weight takes in memory, as config.json declares it: dtype's size, or for MLX
  // affine bits / 8 plus a scale and a bias (of dtype) per group (the default block; overrides
  // ignored), or 2 for FP8 (widened to bf16 at load). For rooflines.
  double bytes_per_parameter() const;
};

}  // namespace mlxs
