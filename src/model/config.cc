#include "model/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>

#include "model/family.h"
#include "util/json_depth.h"
#include "util/json_int.h"
#include "util/vocab_limits.h"

namespace mlxs {
namespace {

using nlohmann::json;

// Reads key `k` of `j` into `out` if present; type errors name the file and key.
template <class T>
Status read_opt(const json& j, const std::string& file, const char* k, T* out) {
  if (!j.contains(k) || j[k].is_null()) return {};
  const json& v = j[k];
  bool ok;
  if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {  // in T's range: get<int>() would truncate
    ok = json_int_in(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()).has_value();
  } else if constexpr (std::is_floating_point_v<T>) {
    ok = v.is_number() && std::isfinite(v.get<double>());
  } else {
    ok = v.is_string();
  }
  if (!ok) {
    return error(ErrorCode::kModelLoadError, file + ": key '" + k +
                                                 "' has the wrong type or is out of range (got " +
                                                 v.dump().substr(0, 100) + ")");
  }
  *out = v.get<T>();
  return {};
}

// Sizes a config.json may declare. Each bounds what the load allocates from it (head_dim = 2e9
// took 3.8 GB and 28 s before its error, max_position_embeddings = 2^31 - 1 overflowed int
// arithmetic); every real model is far inside them.
struct SizeLimit {
  const char* key;
  int64_t max;
};
constexpr SizeLimit kSizeLimits[] = {
    {"vocab_size", kMaxVocabSize},
    {"hidden_size", 1 << 16},
    {"intermediate_size", 1 << 20},
    {"num_hidden_layers", 1024},
    {"num_attention_heads", 1024},
    {"num_key_value_heads", 1024},
    {"head_dim", 1024},
    {"max_position_embeddings", 1 << 24},
};

int64_t size_limit(const char* key) {
  for (const auto& l : kSizeLimits) {
    if (std::string_view(l.key) == key) return l.max;
  }
  return INT32_MAX;
}

// An optional size: when present, an integer in [1, its limit].
Status read_size(const json& j, const std::string& file, const char* k, int* out) {
  if (!j.contains(k) || j[k].is_null()) return {};
  auto v = json_int_in(j[k], 1, size_limit(k));
  if (!v) {
    return error(ErrorCode::kModelLoadError,
                 file + ": key '" + k + "' has the wrong type or is out of range: must be an " +
                     "integer >= 1 and <= " + std::to_string(size_limit(k)) + ", got " +
                     j[k].dump().substr(0, 100));
  }
  *out = int(*v);
  return {};
}

Status read_req(const json& j, const std::string& file, const char* k, int* out) {
  if (!j.contains(k)) {
    return error(ErrorCode::kModelLoadError, file + ": missing required key '" + k + "'");
  }
  return read_size(j, file, k, out);
}

// transformers <= 4 writes rope_theta + rope_scaling; transformers 5 writes rope_parameters.
Status read_rope(const json& j, const std::string& file, ModelArch* c) {
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "rope_theta", &c->rope_theta));
  const json* s = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    s = &j["rope_parameters"];
  else if (j.contains("rope_scaling") && j["rope_scaling"].is_object())
    s = &j["rope_scaling"];
  if (!s) return {};
  std::string where = file + " (rope parameters)";
  MLXS_RETURN_IF_ERROR(read_opt(*s, where, "rope_theta", &c->rope_theta));
  RopeScaling& r = c->rope_scaling;
  MLXS_RETURN_IF_ERROR(read_opt(*s, where, "type", &r.type));
  MLXS_RETURN_IF_ERROR(read_opt(*s, where, "rope_type", &r.type));
  MLXS_RETURN_IF_ERROR(read_opt(*s, where, "factor", &r.factor));
  MLXS_RETURN_IF_ERROR(read_opt(*s, where, "low_freq_factor", &r.low_freq_factor));
  MLXS_RETURN_IF_ERROR(read_opt(*s, where, "high_freq_factor", &r.high_freq_factor));
  MLXS_RETURN_IF_ERROR(
      read_opt(*s, where, "original_max_position_embeddings", &r.original_max_position_embeddings));
  if (r.type != "default" && r.type != "linear" && r.type != "llama3") {
    return error(ErrorCode::kModelLoadError,
                 file + ": rope type '" + r.type + "' is not supported (default, linear, llama3)");
  }
  return {};
}

Status read_token_ids(const json& j, const std::string& file, ModelArch* c) {
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "bos_token_id", &c->bos_token_id));
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return {};
  const json& e = j["eos_token_id"];
  const auto token_id = [](const json& v) { return json_int_in(v, 0, kMaxVocabSize - 1); };
  if (e.is_number_integer()) {
    if (!token_id(e)) {
      return error(ErrorCode::kModelLoadError, file + ": eos_token_id out of range: " + e.dump());
    }
    c->eos_token_ids.push_back(int(*token_id(e)));
  } else if (e.is_array()) {
    for (const auto& v : e) {
      if (!token_id(v)) {
        return error(ErrorCode::kModelLoadError,
                     file + ": eos_token_id entries must be integers >= 0 and < " +
                         std::to_string(kMaxVocabSize) + ", got " + v.dump().substr(0, 100));
      }
      c->eos_token_ids.push_back(int(*token_id(v)));
    }
  } else {
    return error(ErrorCode::kModelLoadError, file + ": eos_token_id must be an integer or a list");
  }
  return {};
}

// One MLX {"group_size", "bits"} object (the block itself or an override) at `where`.
Status read_affine(const json& q, const std::string& where, QuantConfig::Affine* a) {
  for (const char* k : {"bits", "group_size"}) {
    if (!q.contains(k) || !json_int_in(q[k], 1, 1024)) {
      return error(ErrorCode::kModelLoadError,
                   where + ": '" + k + "' must be an integer in [1, 1024], got " +
                       (q.contains(k) ? q[k].dump().substr(0, 100) : std::string("nothing")));
    }
  }
  a->bits = int(*json_int_in(q["bits"], 1, 1024));
  a->group_size = int(*json_int_in(q["group_size"], 1, 1024));
  if (q.contains("mode") && !(q["mode"].is_string() && q["mode"] == "affine")) {
    return error(ErrorCode::kModelLoadError, where + ": mode " + q["mode"].dump().substr(0, 100) +
                                                 " is not supported (only \"affine\")");
  }
  return {};
}

// MLX's block: the default and the per-module overrides (objects, or false).
Status read_mlx_quant(const json& q, const std::string& where, QuantConfig* c) {
  c->method = QuantConfig::Method::kMlxAffine;
  MLXS_RETURN_IF_ERROR(read_affine(q, where, &c->affine));
  for (const auto& [key, v] : q.items()) {
    if (v.is_object()) {
      MLXS_RETURN_IF_ERROR(read_affine(v, where + " (override '" + key + "')", &c->overrides[key]));
    } else if (v.is_boolean() && !v.get<bool>()) {
      c->overrides[key] = {};
    }
  }
  return {};
}

// `quantization` (MLX) and `quantization_config` (Hugging Face: quant_method; mlx_lm writes its
// block there too, without a quant_method).
Status read_quant(const json& j, const std::string& file, QuantConfig* c) {
  if (j.contains("quantization") && j["quantization"].is_object()) {
    return read_mlx_quant(j["quantization"], file + " (quantization)", c);
  }
  if (!j.contains("quantization_config") || !j["quantization_config"].is_object()) return {};
  const json& q = j["quantization_config"];
  const std::string where = file + " (quantization_config)";
  if (!q.contains("quant_method")) return read_mlx_quant(q, where, c);
  const std::string method = q["quant_method"].is_string() ? q["quant_method"].get<std::string>()
                                                           : q["quant_method"].dump();
  if (method != "fp8") {
    return error(ErrorCode::kModelLoadError,
                 where + ": quant_method '" + method +
                     "' is not supported (supported: MLX affine 'quantization', 'fp8'); use "
                     "the unquantized model, or an MLX-quantized one (mlx-serving quantize)");
  }
  c->method = QuantConfig::Method::kFp8;
  if (q.contains("weight_block_size") && !q["weight_block_size"].is_null()) {
    const json& b = q["weight_block_size"];
    if (!b.is_array() || b.size() != 2 || !json_int_in(b[0], 1, 1 << 16) ||
        !json_int_in(b[1], 1, 1 << 16)) {
      return error(ErrorCode::kModelLoadError,
                   where + ": weight_block_size must be [rows, cols] of positive integers, got " +
                       b.dump().substr(0, 100));
    }
    c->fp8_block_rows = int(*json_int_in(b[0], 1, 1 << 16));
    c->fp8_block_cols = int(*json_int_in(b[1], 1, 1 << 16));
  }
  return {};
}

}  // namespace

Result<ModelArch> ModelArch::load(const std::string& dir, const ModelFileAccess& access) {
  std::string file = dir + "/config.json";
  auto text = read_model_file(dir, "config.json", access, int64_t(16) << 20);
  if (!text.ok()) {
    return error(ErrorCode::kModelLoadError, text.status().code() == ErrorCode::kNotFound
                                                 ? file + ": cannot open"
                                                 : text.status().message());
  }
  std::string why = "is not a JSON object";
  std::optional<json> parsed = parse_model_json(*text, &why);
  if (!parsed || !parsed->is_object()) return error(ErrorCode::kModelLoadError, file + ": " + why);
  json j = std::move(*parsed);
  ModelArch c;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    c.architecture = j["architectures"][0];
  }
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "model_type", &c.model_type));
  MLXS_RETURN_IF_ERROR(read_req(j, file, "vocab_size", &c.vocab_size));
  MLXS_RETURN_IF_ERROR(read_req(j, file, "hidden_size", &c.hidden_size));
  MLXS_RETURN_IF_ERROR(read_req(j, file, "intermediate_size", &c.intermediate_size));
  MLXS_RETURN_IF_ERROR(read_req(j, file, "num_hidden_layers", &c.num_layers));
  MLXS_RETURN_IF_ERROR(read_req(j, file, "num_attention_heads", &c.num_heads));
  c.num_kv_heads = c.num_heads;
  MLXS_RETURN_IF_ERROR(read_size(j, file, "num_key_value_heads", &c.num_kv_heads));
  c.head_dim = c.hidden_size / c.num_heads;
  MLXS_RETURN_IF_ERROR(read_size(j, file, "head_dim", &c.head_dim));
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "rms_norm_eps", &c.rms_norm_eps));
  MLXS_RETURN_IF_ERROR(read_size(j, file, "max_position_embeddings", &c.max_position_embeddings));
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "tie_word_embeddings", &c.tie_word_embeddings));
  MLXS_RETURN_IF_ERROR(read_rope(j, file, &c));
  MLXS_RETURN_IF_ERROR(read_token_ids(j, file, &c));
  std::string dtype = "bfloat16", act = "silu";
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "torch_dtype", &dtype));
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "dtype", &dtype));
  c.dtype = dtype == "float32" ? DType::kF32 : dtype == "float16" ? DType::kF16 : DType::kBF16;
  MLXS_RETURN_IF_ERROR(read_quant(j, file, &c.quant));
  MLXS_RETURN_IF_ERROR(read_opt(j, file, "hidden_act", &act));
  if (act != "silu") {
    return error(ErrorCode::kModelLoadError,
                 file + ": hidden_act '" + act + "' is not supported (only silu)");
  }
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0 || c.head_dim <= 0 ||
      c.head_dim % 2 != 0) {
    return error(ErrorCode::kModelLoadError,
                 file +
                     ": num_attention_heads must be a multiple of num_key_value_heads and "
                     "head_dim even and > 0");
  }
  const ModelFamily* family = find_family(c.architecture, c.model_type);
  if (!family) {
    return error(ErrorCode::kModelLoadError,
                 file + ": architecture '" + c.architecture + "' (model_type '" + c.model_type +
                     "') is not supported; supported: " + supported_families());
  }
  MLXS_RETURN_IF_ERROR(family->configure(j, file, &c));
  return c;
}

RopeParams ModelArch::rope_params() const {
  RopeParams p;
  int half = head_dim / 2;
  p.inv_freq.resize(size_t(half));
  for (int i = 0; i < half; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in float32.
    float expo = float(2 * i) / float(head_dim);
    float f = 1.0f / std::pow(float(rope_theta), expo);
    if (rope_scaling.type == "linear") {
      f = f / float(rope_scaling.factor);
    } else if (rope_scaling.type == "llama3") {
      const RopeScaling& r = rope_scaling;
      double old_len = r.original_max_position_embeddings;
      double low_wavelen = old_len / r.low_freq_factor;
      double high_wavelen = old_len / r.high_freq_factor;
      double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = float(f / r.factor);
      } else if (wavelen >= high_wavelen) {
        double smooth =
            (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        f = float((1 - smooth) * f / r.factor + smooth * f);
      }
    }
    if (!rope_freq_factors.empty()) f = f / rope_freq_factors[size_t(i)];
    p.inv_freq[size_t(i)] = f;
  }
  return p;
}

int64_t ModelArch::num_parameters() const {
  int64_t d = hidden_size, q = int64_t(num_heads) * head_dim, kv = int64_t(num_kv_heads) * head_dim;
  int64_t layer = d * (q + 2 * kv) + q * d + 3 * d * intermediate_size + 2 * d;
  if (qk_norm) layer += 2 * head_dim;
  int64_t total = num_layers * layer + int64_t(vocab_size) * d + d;
  if (!tie_word_embeddings) total += int64_t(vocab_size) * d;
  return total;
}

double ModelArch::bytes_per_parameter() const {
  switch (quant.method) {
    case QuantConfig::Method::kMlxAffine:
      return quant.affine.bits / 8.0 + 2.0 * double(dtype_size(dtype)) / quant.affine.group_size;
    case QuantConfig::Method::kFp8:
      return 2.0;
    case QuantConfig::Method::kNone:
      break;
  }
  return double(dtype_size(dtype));
}

}  // namespace mlxs
