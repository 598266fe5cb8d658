#include "model/gguf_convert.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "model/config.h"
#include "model/gguf_model.h"
#include "model/gguf_quants.h"
#include "model/gguf_tokenizer.h"
#include "model/gguf_writer.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace mlxs {
namespace {

using nlohmann::json;

Status convert_error(const std::string& msg) {
  return error(ErrorCode::kInvalidParams, msg);
}

std::string gguf_arch_of(const ModelArch& c) {
  if (c.model_type == "llama" || c.model_type == "mistral") return "llama";
  if (c.model_type == "qwen2" || c.model_type == "qwen3") return c.model_type;
  return "";
}

void write_shape(const ModelArch& c, const std::string& arch, GgufWriter& w) {
  const std::string a = arch + ".";
  w.set_string("general.architecture", arch);
  w.set_u32(a + "context_length", uint32_t(std::max(c.max_position_embeddings, 0)));
  w.set_u32(a + "embedding_length", uint32_t(c.hidden_size));
  w.set_u32(a + "block_count", uint32_t(c.num_layers));
  w.set_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
  w.set_u32(a + "attention.head_count", uint32_t(c.num_heads));
  w.set_u32(a + "attention.head_count_kv", uint32_t(c.num_kv_heads));
  w.set_u32(a + "attention.key_length", uint32_t(c.head_dim));
  w.set_u32(a + "attention.value_length", uint32_t(c.head_dim));
  w.set_u32(a + "rope.dimension_count", uint32_t(c.head_dim));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  w.set_f32(a + "rope.freq_base", float(c.rope_theta));
  w.set_u32(a + "vocab_size", uint32_t(c.vocab_size));
  if (c.rope_scaling.type == "linear") {
    w.set_string(a + "rope.scaling.type", "linear");
    w.set_f32(a + "rope.scaling.factor", float(c.rope_scaling.factor));
  }
}

}  // namespace

Status write_gguf_tokenizer(const std::string& src, const ModelFileAccess& access, GgufWriter& w) {
  MLXS_ASSIGN_OR_RETURN(std::string text, read_model_file(src, "tokenizer.json", access));
  MLXS_ASSIGN_OR_RETURN(auto tok, Tokenizer::load(src, access));
  json j = json::parse(text, nullptr, false);
  const std::string file = src + "/tokenizer.json";
  if (!j.is_object() || !j.contains("model") || j["model"].value("type", "") != "BPE") {
    return convert_error(file + ": only BPE tokenizers convert to GGUF");
  }
  const json& m = j["model"];
  std::vector<std::string> tokens(tok->vocab_size());
  std::vector<int32_t> types(tokens.size(), 1);
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    const size_t id = it.value().get<size_t>();
    if (id < tokens.size()) tokens[id] = it.key();
  }
  for (const json& a : j.value("added_tokens", json::array())) {
    const size_t id = a["id"].get<size_t>();
    if (id >= tokens.size()) continue;
    tokens[id] = a["content"].get<std::string>();
    types[id] = a.value("special", false) ? 3 : 4;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = 5;
    }
  }
  std::vector<std::string> merges;
  for (const json& mg : m.value("merges", json::array())) {
    merges.push_back(mg.is_string() ? mg.get<std::string>()
                                    : mg[0].get<std::string>() + " " + mg[1].get<std::string>());
  }
  if (m.value("byte_fallback", false)) {
    w.set_string("tokenizer.ggml.model", "llama");
    // Scores: minus the rank of the first merge that makes a token.
    std::map<std::string, size_t> first_rank;
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ');
      std::string merged = merges[r].substr(0, sp) + merges[r].substr(sp + 1);
      first_rank.emplace(std::move(merged), r);
    }
    std::vector<float> scores(tokens.size(), 0.f);
    static const std::regex kByte("<0x[0-9A-F]{2}>");
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (types[i] == 1 && std::regex_match(tokens[i], kByte)) types[i] = 6;
      auto it = first_rank.find(tokens[i]);
      scores[i] = it == first_rank.end() ? -1e9f : -float(it->second);
    }
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      const int32_t unk = tok->token_to_id(m["unk_token"].get<std::string>());
      if (unk >= 0) {
        types[size_t(unk)] = 2;
        w.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(unk));
      }
    }
    const std::string normalizer = j.value("normalizer", json()).dump();
    const std::string pre = j.value("pre_tokenizer", json()).dump();
    const bool prefix =
        normalizer.find("Prepend") != std::string::npos ||
        (pre.find("Metaspace") != std::string::npos && pre.find("\"never\"") == std::string::npos);
    w.set_bool("tokenizer.ggml.add_space_prefix", prefix);
    w.set_strings("tokenizer.ggml.tokens", tokens);
    w.set_f32s("tokenizer.ggml.scores", scores);
  } else {
    w.set_string("tokenizer.ggml.model", "gpt2");
    std::string pre_name;
    const std::string pre_json = j.value("pre_tokenizer", json()).dump();
    for (const char* name : {"llama-bpe", "qwen2", "default"}) {
      if (pre_json.find(json(gguf_pre_tokenizer_regex(name)).dump()) != std::string::npos) {
        pre_name = name;
        break;
      }
    }
    if (pre_name.empty()) {
      return convert_error(file +
                           ": its pre-tokenizer regex is not one GGUF names here "
                           "(llama-bpe, qwen2, default)");
    }
    w.set_string("tokenizer.ggml.pre", pre_name);
    w.set_strings("tokenizer.ggml.tokens", tokens);
    w.set_strings("tokenizer.ggml.merges", merges);
  }
  w.set_i32s("tokenizer.ggml.token_type", types);
  if (tok->bos_id() >= 0) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(tok->bos_id()));
  const auto& eos = tok->eos_ids();
  if (!eos.empty()) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(eos[0]));
  if (eos.size() > 1) w.set_u32("tokenizer.ggml.eot_token_id", uint32_t(eos[1]));
  w.set_bool("tokenizer.ggml.add_bos_token", tok->add_bos_token());
  if (!tok->chat_template().empty()) w.set_string("tokenizer.chat_template", tok->chat_template());
  return {};
}

namespace {

// The ggml type of 2-D tensor `gguf_name` with `cols` values per row under `type`.
GgmlType matrix_type(const std::string& type, const std::string& gguf_name, int64_t cols,
                     int num_layers) {
  if (type == "f32") return GgmlType::kF32;
  if (type == "f16") return GgmlType::kF16;
  if (type == "bf16") return GgmlType::kBF16;
  GgmlType t = type == "q8_0" ? GgmlType::kQ8_0 : GgmlType::kQ4_0;
  if (type == "q4_k_m") {
    t = GgmlType::kQ4_K;
    int layer = -1;
    if (gguf_name.rfind("blk.", 0) == 0) layer = std::stoi(gguf_name.substr(4));
    const bool more_bits = layer >= 0 && (layer < num_layers / 8 || layer >= 7 * num_layers / 8 ||
                                          (layer - num_layers / 8) % 3 == 2);
    const bool v_or_down = gguf_name.find("attn_v.") != std::string::npos ||
                           gguf_name.find("ffn_down.") != std::string::npos;
    if (gguf_name == "output.weight" || (v_or_down && more_bits)) t = GgmlType::kQ6_K;
    if (cols % 256 != 0) t = t == GgmlType::kQ6_K ? GgmlType::kQ8_0 : GgmlType::kQ5_0;
  }
  if (cols % 32 != 0) t = GgmlType::kF16;
  return t;
}

std::vector<uint8_t> encode_rows(GgmlType t, const std::vector<float>& x, int64_t rows,
                                 int64_t cols) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(t));
  const size_t row_bytes = size_t(cols / info->block_values * info->block_bytes);
  std::vector<uint8_t> out(size_t(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = x.data() + size_t(r * cols);
    uint8_t* dst = out.data() + size_t(r) * row_bytes;
    switch (t) {
      case GgmlType::kF32:
        std::memcpy(dst, src, row_bytes);
        break;
      case GgmlType::kF16:
      case GgmlType::kBF16:
        for (int64_t i = 0; i < cols; ++i) {
          const uint16_t h = t == GgmlType::kF16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
          dst[2 * i] = uint8_t(h);
          dst[2 * i + 1] = uint8_t(h >> 8);
        }
        break;
      case GgmlType::kQ8_0:
        quantize_row_q8_0(src, cols, dst);
        break;
      case GgmlType::kQ4_0:
        quantize_row_q4_0(src, cols, dst);
        break;
      case GgmlType::kQ5_0:
        quantize_row_q5_0(src, cols, dst);
        break;
      case GgmlType::kQ4_K:
        quantize_row_q4_k(src, cols, dst);
        break;
      default:
        quantize_row_q6_k(src, cols, dst);
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& gguf_convert_types() {
  static const std::vector<std::string> types = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m"};
  return types;
}

Status convert_to_gguf(const std::string& src, const std::string& out_path, const std::string& type,
                       const ModelFileAccess& access) {
  const auto& types = gguf_convert_types();
  if (std::find(types.begin(), types.end(), type) == types.end()) {
    return convert_error("--type '" + type + "' is not one of f32, f16, bf16, q8_0, q4_0, q4_k_m");
  }
  MLXS_ASSIGN_OR_RETURN(ModelArch c, ModelArch::load(src, access));
  const std::string arch = gguf_arch_of(c);
  if (arch.empty()) {
    return convert_error(src + "/config.json: model_type '" + c.model_type +
                         "' has no GGUF mapping here (llama, mistral, qwen2, qwen3)");
  }
  MLXS_ASSIGN_OR_RETURN(WeightStore store, WeightStore::open_dir(src, access));
  GgufWriter w;
  write_shape(c, arch, w);
  if (model_file_exists(src, "tokenizer.json")) {
    MLXS_RETURN_IF_ERROR(write_gguf_tokenizer(src, access, w));
  }
  if (c.rope_scaling.type == "llama3") {
    // llama.cpp divides each base frequency by its factor: factor = base / scaled.
    ModelArch base = c;
    base.rope_scaling = RopeScaling();
    const RopeParams scaled = c.rope_params(), plain = base.rope_params();
    std::vector<uint8_t> bytes(plain.inv_freq.size() * 4);
    for (size_t i = 0; i < plain.inv_freq.size(); ++i) {
      const float factor = plain.inv_freq[i] / scaled.inv_freq[i];
      std::memcpy(bytes.data() + 4 * i, &factor, 4);
    }
    w.add_tensor("rope_freqs.weight", GgmlType::kF32, {int64_t(plain.inv_freq.size())}, bytes);
  }
  const bool permute = arch == "llama";
  std::vector<std::string> names;
  for (const auto& n : store.untaken()) names.push_back(n);
  for (const std::string& hf : names) {
    if (hf.size() >= 20 && hf.compare(hf.size() - 20, 20, "rotary_emb.inv_freq") == 0) continue;
    if (c.tie_word_embeddings && hf == "lm_head.weight") continue;
    const std::string name = gguf_tensor_name(hf);
    if (name.empty()) return convert_error(src + ": tensor '" + hf + "' has no GGUF name");
    MLXS_ASSIGN_OR_RETURN(TensorInfo t, store.take(hf));
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16) {
      return convert_error(t.file + ": tensor '" + hf + "' is " + dtype_name(t.dtype) +
                           "; only float folders convert");
    }
    std::vector<float> x(size_t(t.numel()));
    convert_to_f32(t.data, t.dtype, x.size(), x.data());
    if (t.shape.size() != 2) {
      std::vector<uint8_t> bytes(x.size() * 4);
      std::memcpy(bytes.data(), x.data(), bytes.size());
      w.add_tensor(name, GgmlType::kF32, t.shape, std::move(bytes));
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const bool q = name.find("attn_q.weight") != std::string::npos;
    const bool k = name.find("attn_k.weight") != std::string::npos;
    if (permute && (q || k)) {
      const auto order = rope_row_order(rows, q ? c.num_heads : c.num_kv_heads, true);
      std::vector<float> y(x.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::copy_n(x.data() + size_t(order[size_t(r)] * cols), cols, y.data() + size_t(r * cols));
      }
      x.swap(y);
    }
    const GgmlType gt = matrix_type(type, name, cols, c.num_layers);
    w.add_tensor(name, gt, t.shape, encode_rows(gt, x, rows, cols));
  }
  return w.write(out_path);
}

}  // namespace mlxs
