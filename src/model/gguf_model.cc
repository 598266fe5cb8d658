#include "model/gguf_model.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

#include "model/gguf_quants.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;

Status load_error(const std::string& msg) {
  return error(ErrorCode::kModelLoadError, msg);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// GGUF block-level names and their Hugging Face names under model.layers.N.
struct NamePair {
  const char* gguf;
  const char* hf;
};
constexpr NamePair kLayerNames[] = {
    {"attn_norm", "input_layernorm"},    {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},      {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
constexpr NamePair kTopNames[] = {
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
};

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; "" when unknown.
std::string hf_tensor_name(const std::string& gguf) {
  const size_t dot = gguf.rfind('.');
  if (dot == std::string::npos) return "";
  const std::string base = gguf.substr(0, dot), suffix = gguf.substr(dot);  // ".weight"
  for (const auto& p : kTopNames) {
    if (base == p.gguf) return p.hf + suffix;
  }
  static const std::regex kBlock(R"(blk\.(\d+)\.([a-z_]+))");
  std::smatch m;
  if (!std::regex_match(base, m, kBlock)) return "";
  for (const auto& p : kLayerNames) {
    if (m[2] == p.gguf) return "model.layers." + m[1].str() + "." + p.hf + suffix;
  }
  return "";
}

DType float_dtype(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::kF32:
      return DType::kF32;
    case GgmlType::kF16:
      return DType::kF16;
    default:
      return DType::kBF16;
  }
}

bool is_float(uint32_t type) {
  return type == uint32_t(GgmlType::kF32) || type == uint32_t(GgmlType::kF16) ||
         type == uint32_t(GgmlType::kBF16);
}

// Host buffers the store owns (repacked or re-ordered tensors) and the file they came from.
struct GgufBuffers {
  std::shared_ptr<const GgufFile> file;
  std::vector<std::vector<uint8_t>> bytes;
  const void* keep(std::vector<uint8_t> b) {
    bytes.push_back(std::move(b));
    return bytes.back().data();
  }
};

// `rows` rows of `row_bytes` bytes each, gathered in `order` (destination row -> source row).
std::vector<uint8_t> gather_rows(const uint8_t* src, int64_t rows, size_t row_bytes,
                                 const std::vector<int64_t>& order) {
  std::vector<uint8_t> out(size_t(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out.data() + size_t(r) * row_bytes, src + size_t(order[size_t(r)]) * row_bytes,
                row_bytes);
  }
  return out;
}

template <class T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Result<int> read_int(const GgufFile& f, const std::string& key, int64_t min, int64_t max,
                     std::optional<int64_t> fallback = std::nullopt) {
  uint64_t v = 0;
  if (!f.has(key) && fallback) {
    if (*fallback < min || *fallback > max) {
      return f.key_error(key, "missing, and the value it defaults to, " +
                                  std::to_string(*fallback) + ", is outside " +
                                  std::to_string(min) + " to " + std::to_string(max));
    }
    return int(*fallback);
  }
  MLXS_ASSIGN_OR_RETURN(v, f.get_uint(key));
  if (int64_t(v) < min || v > uint64_t(max)) {
    return f.key_error(key, "expected " + std::to_string(min) + " to " + std::to_string(max) +
                                ", got " + std::to_string(v));
  }
  return int(v);
}

// The loader fuses q/k/v and gate/up into one matrix each, which needs one bit width, group
// size and scale type: parts of different block types (Q4_K_M's Q6_K attn_v beside Q4_K attn_q
// and attn_k) are widened to the widest bits, the smallest group and f32 if any part is f32,
// which keeps every value (widen_affine).
void harmonize_fused(std::map<std::string, RepackedMatrix>& quantized) {
  static const std::vector<std::vector<std::string>> kFused = {
      {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
      {"mlp.gate_proj", "mlp.up_proj"}};
  for (auto& [base, m] : quantized) {
    for (const auto& fused : kFused) {
      if (!ends_with(base, fused[0])) continue;
      const std::string layer = base.substr(0, base.size() - fused[0].size());
      std::vector<RepackedMatrix*> parts;
      for (const auto& p : fused) {
        auto it = quantized.find(layer + p);
        if (it != quantized.end()) parts.push_back(&it->second);
      }
      int bits = 0, group = 1 << 30;
      DType dt = parts[0]->scale_dtype;
      for (const RepackedMatrix* p : parts) {
        bits = std::max(bits, p->bits);
        group = std::min(group, p->group_size);
        if (p->scale_dtype != dt) dt = DType::kF32;
      }
      for (RepackedMatrix* p : parts) {
        if (p->bits != bits || p->group_size != group || p->scale_dtype != dt) {
          widen_affine(*p, bits, group, dt);
        }
      }
    }
  }
}

}  // namespace

std::string find_gguf_model(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return ends_with(path, ".gguf") ? path : "";
  if (!fs::is_directory(path, ec) || fs::exists(fs::path(path) / "config.json", ec)) return "";
  std::string found;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (e.path().extension() != ".gguf") continue;
    if (!found.empty()) return "";  // several: which one is meant is not ours to guess
    found = e.path().string();
  }
  return found;
}

std::vector<int64_t> rope_row_order(int64_t rows, int n_head, bool to_gguf) {
  // transformers row h*Dh + i*Dh/2 + j  <->  llama.cpp row h*Dh + 2j + i (i in {0, 1}).
  const int64_t dh = rows / n_head, half = dh / 2;
  std::vector<int64_t> order(static_cast<size_t>(rows));
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t j = 0; j < half; ++j) {
        const int64_t hf = h * dh + i * half + j, gg = h * dh + 2 * j + i;
        if (to_gguf) {
          order[size_t(gg)] = hf;
        } else {
          order[size_t(hf)] = gg;
        }
      }
    }
  }
  return order;
}

std::string gguf_tensor_name(const std::string& hf) {
  const size_t dot = hf.rfind('.');
  if (dot == std::string::npos) return "";
  const std::string base = hf.substr(0, dot), suffix = hf.substr(dot);
  for (const auto& p : kTopNames) {
    if (base == p.hf) return p.gguf + suffix;
  }
  static const std::regex kLayer(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (!std::regex_match(base, m, kLayer)) return "";
  for (const auto& p : kLayerNames) {
    if (m[2] == p.hf) return "blk." + m[1].str() + "." + p.gguf + suffix;
  }
  return "";
}

Result<ModelArch> gguf_model_arch(const GgufFile& f) {
  MLXS_ASSIGN_OR_RETURN(std::string_view arch_view, f.get_string("general.architecture"));
  const std::string arch(arch_view);
  ModelArch c;
  if (arch == "llama") {
    c.architecture = "LlamaForCausalLM";
  } else if (arch == "qwen2") {
    c.architecture = "Qwen2ForCausalLM";
  } else if (arch == "qwen3") {
    c.architecture = "Qwen3ForCausalLM";
    c.qk_norm = true;
  } else {
    return f.key_error("general.architecture",
                       "'" + arch + "' is not supported (expected llama, qwen2 or qwen3)");
  }
  c.model_type = arch;
  const std::string a = arch + ".";
  MLXS_ASSIGN_OR_RETURN(c.hidden_size, read_int(f, a + "embedding_length", 1, 1 << 20));
  MLXS_ASSIGN_OR_RETURN(c.num_layers, read_int(f, a + "block_count", 1, 4096));
  MLXS_ASSIGN_OR_RETURN(c.intermediate_size, read_int(f, a + "feed_forward_length", 1, 1 << 22));
  MLXS_ASSIGN_OR_RETURN(c.num_heads, read_int(f, a + "attention.head_count", 1, 4096));
  MLXS_ASSIGN_OR_RETURN(c.num_kv_heads,
                        read_int(f, a + "attention.head_count_kv", 1, 4096, c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return f.key_error(a + "attention.head_count_kv", std::to_string(c.num_kv_heads) +
                                                          " does not divide the head count " +
                                                          std::to_string(c.num_heads));
  }
  MLXS_ASSIGN_OR_RETURN(
      c.head_dim, read_int(f, a + "attention.key_length", 2, 1024, c.hidden_size / c.num_heads));
  MLXS_ASSIGN_OR_RETURN(int value_dim,
                        read_int(f, a + "attention.value_length", 2, 1024, c.head_dim));
  MLXS_ASSIGN_OR_RETURN(int rope_dim, read_int(f, a + "rope.dimension_count", 2, 1024, c.head_dim));
  if (value_dim != c.head_dim || rope_dim != c.head_dim || c.head_dim % 2 != 0) {
    return f.key_error(a + "rope.dimension_count",
                       "rotary over " + std::to_string(rope_dim) + " of " +
                           std::to_string(c.head_dim) + " head dims (value dim " +
                           std::to_string(value_dim) + ") is not supported: all of an even head");
  }
  MLXS_ASSIGN_OR_RETURN(c.max_position_embeddings,
                        read_int(f, a + "context_length", 0, 1 << 24, 0));
  if (f.has(a + "attention.layer_norm_rms_epsilon")) {
    MLXS_ASSIGN_OR_RETURN(double eps, f.get_float(a + "attention.layer_norm_rms_epsilon"));
    if (!(eps > 0 && eps < 1)) {
      return f.key_error(a + "attention.layer_norm_rms_epsilon", "expected a value in (0, 1)");
    }
    c.rms_norm_eps = float(eps);
  }
  if (f.has(a + "rope.freq_base")) {
    MLXS_ASSIGN_OR_RETURN(c.rope_theta, f.get_float(a + "rope.freq_base"));
    if (!(c.rope_theta > 1)) return f.key_error(a + "rope.freq_base", "expected a value > 1");
  }
  if (f.has(a + "rope.scaling.type")) {
    MLXS_ASSIGN_OR_RETURN(std::string_view type, f.get_string(a + "rope.scaling.type"));
    if (type == "linear") {
      c.rope_scaling.type = "linear";
      MLXS_ASSIGN_OR_RETURN(c.rope_scaling.factor, f.get_float(a + "rope.scaling.factor"));
      if (!(c.rope_scaling.factor > 0)) {
        return f.key_error(a + "rope.scaling.factor", "expected a value > 0");
      }
    } else if (type != "none") {
      return f.key_error(a + "rope.scaling.type",
                         "'" + std::string(type) + "' is not supported (expected none or linear)");
    }
  }
  // Vocabulary: the key, else the token list, else the embedding's rows.
  if (f.has(a + "vocab_size")) {
    MLXS_ASSIGN_OR_RETURN(c.vocab_size, read_int(f, a + "vocab_size", 1, 1 << 24));
  } else if (f.has("tokenizer.ggml.tokens")) {
    MLXS_ASSIGN_OR_RETURN(auto tokens, f.get_strings("tokenizer.ggml.tokens"));
    c.vocab_size = int(tokens.size());
  } else if (auto it = f.tensors().find("token_embd.weight"); it != f.tensors().end()) {
    c.vocab_size = int(it->second.rows());
  }
  if (c.vocab_size < 1 || c.vocab_size > (1 << 24)) {
    return load_error(f.path() + ": no vocabulary size (" + a +
                      "vocab_size, tokenizer.ggml.tokens or token_embd.weight)");
  }
  const auto& t = f.tensors();
  c.tie_word_embeddings = !t.count("output.weight");
  c.qkv_bias = t.count("blk.0.attn_q.bias") != 0;
  c.o_bias = t.count("blk.0.attn_output.bias") != 0;
  c.mlp_bias = t.count("blk.0.ffn_gate.bias") != 0;
  if (auto it = t.find("rope_freqs.weight"); it != t.end()) {
    const GgufTensor& r = it->second;
    if (r.type != uint32_t(GgmlType::kF32) || r.dims.size() != 1 || r.dims[0] != c.head_dim / 2) {
      return load_error(f.path() + ": tensor 'rope_freqs.weight' must be F32 [" +
                        std::to_string(c.head_dim / 2) + "]");
    }
    c.rope_freq_factors.resize(size_t(c.head_dim / 2));
    std::memcpy(c.rope_freq_factors.data(), r.data, r.nbytes);
    for (float v : c.rope_freq_factors) {
      if (!(v > 0)) return load_error(f.path() + ": tensor 'rope_freqs.weight' has a factor <= 0");
    }
  }
  if (auto it = t.find("token_embd.weight"); it != t.end() && is_float(it->second.type)) {
    c.dtype = float_dtype(it->second.type);
  }
  if (f.has("tokenizer.ggml.bos_token_id")) {
    MLXS_ASSIGN_OR_RETURN(c.bos_token_id,
                          read_int(f, "tokenizer.ggml.bos_token_id", 0, c.vocab_size - 1));
  }
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    if (!f.has(key)) continue;
    MLXS_ASSIGN_OR_RETURN(int id, read_int(f, key, 0, c.vocab_size - 1));
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
      c.eos_token_ids.push_back(id);
    }
  }
  return c;
}

Result<WeightStore> gguf_weight_store(std::shared_ptr<const GgufFile> file, const ModelArch& arch) {
  auto buffers = std::make_shared<GgufBuffers>();
  buffers->file = file;
  std::vector<TensorInfo> out;
  std::map<std::string, RepackedMatrix> quantized;  // by HF base name ("...q_proj")
  const bool llama_rope = arch.model_type == "llama";
  for (const auto& [name, g] : file->tensors()) {
    if (name == "rope_freqs.weight") continue;  // in the ModelArch
    const std::string where = file->path() + ": tensor '" + name + "'";
    std::string hf = hf_tensor_name(name);
    if (hf.empty()) hf = name;  // unexpected: the loader names it
    // Rows of the llama Q and K projections go back to transformers' order.
    std::vector<int64_t> order;
    if (llama_rope && g.dims.size() == 2) {
      if (ends_with(hf, "q_proj.weight")) order = rope_row_order(g.rows(), arch.num_heads, false);
      if (ends_with(hf, "k_proj.weight"))
        order = rope_row_order(g.rows(), arch.num_kv_heads, false);
      if (!order.empty() &&
          g.rows() % (2 * (ends_with(hf, "q_proj.weight") ? arch.num_heads : arch.num_kv_heads)) !=
              0) {
        return load_error(where + ": " + std::to_string(g.rows()) +
                          " rows do not split into the model's heads");
      }
    }
    TensorInfo t;
    t.file = file->path();
    t.name = hf;
    t.shape.assign(g.dims.rbegin(), g.dims.rend());
    if (is_float(g.type)) {
      t.dtype = float_dtype(g.type);
      t.nbytes = g.nbytes;
      t.data = g.data;
      if (!order.empty()) {
        t.data = buffers->keep(gather_rows(g.data, g.rows(), g.nbytes / size_t(g.rows()), order));
      }
      out.push_back(std::move(t));
      continue;
    }
    if (!gguf_type_repackable(g.type)) {
      return load_error(where + " has type " + ggml_type_name(g.type) +
                        ", which mlx-serving does not load (supported: F32, F16, BF16, Q8_0, "
                        "Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    }
    if (g.dims.size() != 2 || !ends_with(hf, ".weight")) {
      return load_error(where + ": a quantized tensor must be a 2-D weight, got " +
                        std::to_string(g.dims.size()) + " dimensions");
    }
    RepackedMatrix m = repack_gguf_rows(g.type, g.data, g.rows(), g.cols());
    if (!order.empty()) permute_affine_rows(m, order);
    quantized.emplace(hf.substr(0, hf.size() - 7), std::move(m));  // without ".weight"
  }
  harmonize_fused(quantized);
  for (auto& [base, m] : quantized) {
    TensorInfo w;
    w.file = file->path();
    w.name = base + ".weight";
    w.dtype = DType::kU32;
    w.shape = {m.rows, m.words_per_row()};
    w.nbytes = m.packed.size() * 4;
    w.data = buffers->keep(as_bytes(m.packed));
    out.push_back(std::move(w));
    for (auto* part : {&m.scales, &m.biases}) {
      TensorInfo s;
      s.file = file->path();
      s.name = base + (part == &m.scales ? ".scales" : ".biases");
      s.dtype = m.scale_dtype;
      s.shape = {m.rows, m.groups_per_row()};
      s.nbytes = part->size();
      s.data = buffers->keep(std::move(*part));
      out.push_back(std::move(s));
    }
  }
  return WeightStore::from_tensors(std::move(out), buffers);
}

}  // namespace mlxs
