#include "model/random_model.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/safetensors.h"

namespace mlxs {
namespace {

struct Shape {
  const char* name;
  const char* arch;
  int vocab, hidden, inter, layers, heads, kv_heads, head_dim;
  double theta;
  bool tied, qkv_bias, qk_norm;
  const char* rope;  // "default" or "llama3"
  double rope_factor;
  int sliding_window;
  int max_pos;
};

constexpr Shape kShapes[] = {
    {"llama-3.2-1b", "LlamaForCausalLM", 128256, 2048, 8192, 16, 32, 8, 64, 500000, true, false,
     false, "llama3", 32, 0, 131072},
    {"llama-3.2-3b", "LlamaForCausalLM", 128256, 3072, 8192, 28, 24, 8, 128, 500000, true, false,
     false, "llama3", 32, 0, 131072},
    {"llama-3.1-8b", "LlamaForCausalLM", 128256, 4096, 14336, 32, 32, 8, 128, 500000, false, false,
     false, "llama3", 8, 0, 131072},
    {"mistral-7b", "MistralForCausalLM", 32000, 4096, 14336, 32, 32, 8, 128, 10000, false, false,
     false, "default", 1, 4096, 32768},
    {"qwen2.5-0.5b", "Qwen2ForCausalLM", 151936, 896, 4864, 24, 14, 2, 64, 1000000, true, true,
     false, "default", 1, 0, 32768},
    {"qwen2.5-7b", "Qwen2ForCausalLM", 152064, 3584, 18944, 28, 28, 4, 128, 1000000, false, true,
     false, "default", 1, 0, 32768},
    {"qwen3-0.6b", "Qwen3ForCausalLM", 151936, 1024, 3072, 28, 16, 8, 128, 1000000, true, false,
     true, "default", 1, 0, 40960},
    {"tiny-llama", "LlamaForCausalLM", 512, 64, 128, 2, 4, 2, 16, 10000, false, false, false,
     "default", 1, 0, 2048},
    {"tiny-qwen3", "Qwen3ForCausalLM", 512, 64, 128, 2, 4, 2, 32, 10000, true, false, true,
     "default", 1, 0, 2048},
};

// splitmix64 of (seed, tensor, index): a counter-based generator.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [-a, a] with std `std`, shifted by `mean`.
float random_value(uint64_t seed, uint64_t tensor, uint64_t i, float mean, float std) {
  uint64_t r = mix(seed ^ mix(tensor * 0x100000001b3ull + i));
  float u = float(r >> 40) / float(1 << 24);  // [0, 1)
  return mean + (2.f * u - 1.f) * std * std::sqrt(3.f);
}

TensorToWrite random_tensor(std::string name, std::vector<int64_t> shape, DType dtype,
                            uint64_t seed, uint64_t tensor_id, float mean, float std) {
  TensorToWrite t{std::move(name), dtype, std::move(shape), nullptr, nullptr};
  t.fill = [=](uint8_t* dst, size_t offset, size_t nbytes) {
    const size_t es = dtype_size(dtype), first = offset / es;
    const int64_t n = int64_t(nbytes / es);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      float v = random_value(seed, tensor_id, first + size_t(i), mean, std);
      if (dtype == DType::kF32)
        reinterpret_cast<float*>(dst)[i] = v;
      else if (dtype == DType::kBF16)
        reinterpret_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
      else
        reinterpret_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
    }
  };
  return t;
}

// The shortest decimal that reads back as the same float (1e-05, not 9.99999974e-06).
std::string fmt_float(float f) {
  char buf[32];
  for (int prec = 1; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, double(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return buf;
}

}  // namespace

std::vector<std::string> random_model_shapes() {
  std::vector<std::string> out;
  for (const auto& s : kShapes) out.push_back(s.name);
  return out;
}

Result<ModelArch> random_model_config(const std::string& shape) {
  for (const auto& s : kShapes) {
    if (shape != s.name) continue;
    ModelArch c;
    c.architecture = s.arch;
    c.model_type = std::string(s.arch) == "LlamaForCausalLM"     ? "llama"
                   : std::string(s.arch) == "MistralForCausalLM" ? "mistral"
                   : std::string(s.arch) == "Qwen2ForCausalLM"   ? "qwen2"
                                                                 : "qwen3";
    c.vocab_size = s.vocab;
    c.hidden_size = s.hidden;
    c.intermediate_size = s.inter;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv_heads;
    c.head_dim = s.head_dim;
    c.rope_theta = s.theta;
    c.rope_scaling.type = s.rope;
    c.rope_scaling.factor = s.rope_factor;
    c.tie_word_embeddings = s.tied;
    c.qkv_bias = s.qkv_bias;
    c.qk_norm = s.qk_norm;
    c.sliding_window = s.sliding_window;
    c.max_position_embeddings = s.max_pos;
    c.rms_norm_eps = 1e-5f;
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    return c;
  }
  std::string known;
  for (const auto& s : kShapes) known += (known.empty() ? "" : ", ") + std::string(s.name);
  return error(ErrorCode::kInvalidParams,
               "unknown model shape '" + shape + "'; known shapes: " + known);
}

std::string config_to_json(const ModelArch& c) {
  nlohmann::ordered_json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = std::stod(fmt_float(c.rms_norm_eps));
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.type == "llama3") {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling.factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  }
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.model_type == "llama") j["attention_bias"] = c.qkv_bias;
  if (c.model_type == "mistral") j["sliding_window"] = c.sliding_window ? c.sliding_window : 4096;
  if (c.model_type == "qwen2") j["use_sliding_window"] = false;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_ids.size() == 1 ? nlohmann::ordered_json(c.eos_token_ids[0])
                                                  : nlohmann::ordered_json(c.eos_token_ids);
  j["torch_dtype"] = c.dtype == DType::kF32   ? "float32"
                     : c.dtype == DType::kF16 ? "float16"
                                              : "bfloat16";
  return j.dump(2) + "\n";
}

Status write_random_model(const ModelArch& config, DType dtype, const std::string& out_dir,
                          uint64_t seed) {
  ModelArch c = config;
  c.dtype = dtype;
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return error(ErrorCode::kRuntimeError, out_dir + ": " + ec.message());
  std::ofstream(out_dir + "/config.json") << config_to_json(c);
  const int64_t D = c.hidden_size, I = c.intermediate_size, Dh = c.head_dim;
  const int64_t q = int64_t(c.num_heads) * Dh, kv = int64_t(c.num_kv_heads) * Dh;
  std::vector<TensorToWrite> ts;
  uint64_t id = 0;
  auto mat = [&](const std::string& n, int64_t r, int64_t cols) {
    ts.push_back(random_tensor(n, {r, cols}, dtype, seed, id++, 0.f, 0.02f));
  };
  auto vec = [&](const std::string& n, int64_t len, float mean, float std) {
    ts.push_back(random_tensor(n, {len}, dtype, seed, id++, mean, std));
  };
  mat("model.embed_tokens.weight", c.vocab_size, D);
  for (int l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    vec(p + "input_layernorm.weight", D, 1.f, 0.1f);
    mat(p + "self_attn.q_proj.weight", q, D);
    mat(p + "self_attn.k_proj.weight", kv, D);
    mat(p + "self_attn.v_proj.weight", kv, D);
    if (c.qkv_bias) {
      vec(p + "self_attn.q_proj.bias", q, 0.f, 0.02f);
      vec(p + "self_attn.k_proj.bias", kv, 0.f, 0.02f);
      vec(p + "self_attn.v_proj.bias", kv, 0.f, 0.02f);
    }
    if (c.qk_norm) {
      vec(p + "self_attn.q_norm.weight", Dh, 1.f, 0.1f);
      vec(p + "self_attn.k_norm.weight", Dh, 1.f, 0.1f);
    }
    mat(p + "self_attn.o_proj.weight", D, q);
    vec(p + "post_attention_layernorm.weight", D, 1.f, 0.1f);
    mat(p + "mlp.gate_proj.weight", I, D);
    mat(p + "mlp.up_proj.weight", I, D);
    mat(p + "mlp.down_proj.weight", D, I);
  }
  vec("model.norm.weight", D, 1.f, 0.1f);
  if (!c.tie_word_embeddings) mat("lm_head.weight", c.vocab_size, D);
  return write_safetensors(out_dir + "/model.safetensors", ts, {{"format", "pt"}});
}

}  // namespace mlxs
