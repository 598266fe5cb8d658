#include "model/quantize_model.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/affine_quant.h"
#include "model/safetensors.h"
#include "util/json_depth.h"
#include "util/model_files.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status quant_error(const std::string& message) {
  return error(ErrorCode::kInvalidParams, message);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The packed weight, scales and biases of one matrix.
struct Quantized {
  std::vector<uint8_t> packed, scales, biases;
};

Quantized quantize_matrix(const TensorInfo& t, int bits, int group_size) {
  const int64_t N = t.shape[0], K = t.shape[1], G = K / group_size;
  Quantized q;
  q.packed.resize(size_t(N * K * bits / 8));
  std::vector<float> scales(size_t(N * G)), biases(size_t(N * G));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> row(static_cast<size_t>(K));
    convert_to_f32(static_cast<const char*>(t.data) + size_t(n * K) * dtype_size(t.dtype), t.dtype,
                   size_t(K), row.data());
    quantize_affine_row(row.data(), K, bits, group_size, q.packed.data() + size_t(n * K * bits / 8),
                        scales.data() + n * G, biases.data() + n * G);
  }
  q.scales = store_as(scales, t.dtype);
  q.biases = store_as(biases, t.dtype);
  return q;
}

Status write_config(const std::string& src, const std::string& out, int bits, int group_size) {
  auto text = read_model_file(src, "config.json", {}, int64_t(16) << 20);
  if (!text.ok()) return quant_error(src + "/config.json: cannot read");
  std::string why;
  std::optional<json> j = parse_model_json(*text, &why);
  if (!j || !j->is_object()) return quant_error(src + "/config.json: " + why);
  if (j->contains("quantization") || j->contains("quantization_config")) {
    return quant_error(
        src + "/config.json: the model is already quantized (it has a " +
        std::string(j->contains("quantization") ? "quantization" : "quantization_config") +
        " block); quantize its unquantized original");
  }
  const json block = {{"group_size", group_size}, {"bits", bits}, {"mode", "affine"}};
  (*j)["quantization"] = block;
  (*j)["quantization_config"] = block;
  std::ofstream f(fs::path(out) / "config.json");
  f << j->dump(2) << "\n";
  if (!f) return quant_error(out + "/config.json: cannot write");
  return {};
}

// Every file of `src` but the weights and config.json (tokenizer, generation config, ...).
Status copy_other_files(const std::string& src, const std::string& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "config.json" || ends_with(name, ".safetensors") ||
        name == "model.safetensors.index.json") {
      continue;
    }
    fs::copy_file(e.path(), fs::path(out) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return quant_error(out + "/" + name + ": cannot copy: " + ec.message());
  }
  if (ec) return quant_error(src + ": cannot list: " + ec.message());
  return {};
}

}  // namespace

Status quantize_model_mlx(const std::string& src, const std::string& out, int bits, int group_size,
                          QuantizeStats* stats) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8) {
    return quant_error("bits must be 2, 3, 4, 5, 6 or 8, got " + std::to_string(bits));
  }
  if (group_size != 32 && group_size != 64 && group_size != 128) {
    return quant_error("group size must be 32, 64 or 128, got " + std::to_string(group_size));
  }
  std::error_code ec;
  if (fs::equivalent(src, out, ec)) return quant_error("--out must differ from the source folder");
  MLXS_ASSIGN_OR_RETURN(WeightStore store, WeightStore::open_dir(src));
  fs::create_directories(out, ec);
  if (ec) return quant_error(out + ": cannot create: " + ec.message());
  MLXS_RETURN_IF_ERROR(write_config(src, out, bits, group_size));
  MLXS_RETURN_IF_ERROR(copy_other_files(src, out));

  QuantizeStats s;
  std::map<std::string, Quantized> quantized;  // stable addresses for the writer
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : store.untaken()) {
    MLXS_ASSIGN_OR_RETURN(TensorInfo t, store.take(name));
    s.bytes_in += int64_t(t.nbytes);
    if (t.dtype == DType::kU32 || t.dtype == DType::kF8E4M3) {
      return quant_error(t.file + ": tensor '" + name + "' is " + dtype_name(t.dtype) +
                         ": the model is already quantized");
    }
    const bool matrix =
        ends_with(name, ".weight") && t.shape.size() == 2 &&
        (t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16) &&
        t.shape[1] % group_size == 0 && t.shape[1] * bits % 32 == 0;
    if (!matrix) {
      tensors.push_back({name, t.dtype, t.shape, t.data, {}});
      s.bytes_out += int64_t(t.nbytes);
      ++s.num_copied;
      continue;
    }
    const std::string base = name.substr(0, name.size() - 7);
    Quantized& q = quantized[name] = quantize_matrix(t, bits, group_size);
    const int64_t N = t.shape[0], K = t.shape[1];
    tensors.push_back({name, DType::kU32, {N, K * bits / 32}, q.packed.data(), {}});
    tensors.push_back({base + ".scales", t.dtype, {N, K / group_size}, q.scales.data(), {}});
    tensors.push_back({base + ".biases", t.dtype, {N, K / group_size}, q.biases.data(), {}});
    s.bytes_out += int64_t(q.packed.size() + q.scales.size() + q.biases.size());
    ++s.num_quantized;
  }
  MLXS_RETURN_IF_ERROR(write_safetensors((fs::path(out) / "model.safetensors").string(), tensors,
                                         {{"format", "mlx"}}));
  if (stats) *stats = s;
  return {};
}

}  // namespace mlxs
