#include "model/weight_loader.h"

#include <cmath>
#include <cstring>

#include "model/affine_quant.h"

namespace mlxs {
namespace {

bool is_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

// "model.layers.0.mlp.up_proj" of "model.layers.0.mlp.up_proj.weight".
std::string base_of(const std::string& name) {
  const std::string suffix = ".weight";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

std::string where(const TensorInfo& t) {
  return t.file + ": tensor '" + t.name + "'";
}

std::string describe(const TensorInfo& t) {
  return std::string(dtype_name(t.dtype)) + " " + t.shape_string();
}

Status load_error(const std::string& message) {
  return error(ErrorCode::kModelLoadError, message);
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

// One stored matrix of a (possibly stacked) weight.
struct WeightLoader::Part {
  enum class Kind { kFloat, kAffine, kFp8 };
  Kind kind = Kind::kFloat;
  TensorInfo w;
  TensorInfo scales, biases;  // kAffine: [rows, cols / group_size]; kFp8: scales = weight scale
  int bits = 0, group_size = 0;
  int64_t rows = 0;
  int64_t fp8_block_rows = 0, fp8_block_cols = 0;  // kFp8: the scale's block (1 x cols: per row)

  // Its rows [rows, cols] as f32.
  void widen(int64_t cols, float* out) const {
    switch (kind) {
      case Kind::kFloat:
        convert_to_f32(w.data, w.dtype, size_t(rows * cols), out);
        return;
      case Kind::kAffine:
        dequantize_affine_rows(w.data, bits, group_size, scales.dtype, scales.data, biases.data,
                               rows, cols, out);
        return;
      case Kind::kFp8: {
        const auto* q = static_cast<const uint8_t*>(w.data);
        const int64_t scale_cols = ceil_div(cols, fp8_block_cols);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < cols; ++k) {
            const size_t s = size_t((r / fp8_block_rows) * scale_cols + k / fp8_block_cols);
            out[r * cols + k] =
                f8e4m3_to_f32(q[r * cols + k]) * load_as_f32(scales.data, scales.dtype, s);
          }
        return;
      }
    }
  }
};

Result<WeightLoader::Part> WeightLoader::take_part(const std::string& name, int64_t rows,
                                                   int64_t cols) {
  const std::string base = base_of(name);
  Part p;
  p.rows = rows;
  if (store_.contains(base + ".scales") || store_.contains(base + ".biases")) {
    MLXS_RETURN_IF_ERROR(take_affine(base, rows, cols, &p));
    return p;
  }
  if (store_.contains(name)) {
    MLXS_ASSIGN_OR_RETURN(TensorInfo t, store_.take(name));
    if (t.dtype == DType::kU32) {
      return load_error(where(t) + " is U32 (packed quantized values) but '" + base +
                        ".scales' and '" + base + ".biases' are missing");
    }
  }
  MLXS_ASSIGN_OR_RETURN(p.w, store_.take(name, {rows, cols}));
  if (p.w.dtype == DType::kF8E4M3) {
    MLXS_RETURN_IF_ERROR(take_fp8(base, rows, cols, &p));
    return p;
  }
  if (!is_float(p.w.dtype)) {
    return load_error(where(p.w) + " has dtype " + dtype_name(p.w.dtype) +
                      ", expected a float type (or U32 with '" + base + ".scales' and '" + base +
                      ".biases' for MLX-quantized weights)");
  }
  if (quant_.method == QuantConfig::Method::kFp8 &&
      (store_.contains(base + ".weight_scale") || store_.contains(base + ".weight_scale_inv"))) {
    return load_error(where(p.w) + " is " + dtype_name(p.w.dtype) +
                      " but has an FP8 weight scale: expected F8_E4M3");
  }
  return p;
}

Status WeightLoader::take_affine(const std::string& base, int64_t rows, int64_t cols, Part* p) {
  if (!store_.contains(base + ".scales") || !store_.contains(base + ".biases")) {
    return load_error("quantized matrix '" + base + ".weight' needs both '" + base +
                      ".scales' and '" + base + ".biases'; only one is present");
  }
  p->kind = Part::Kind::kAffine;
  MLXS_ASSIGN_OR_RETURN(p->w, store_.take(base + ".weight"));
  MLXS_ASSIGN_OR_RETURN(p->scales, store_.take(base + ".scales"));
  MLXS_ASSIGN_OR_RETURN(p->biases, store_.take(base + ".biases"));
  const TensorInfo &w = p->w, &s = p->scales, &b = p->biases;
  if (w.dtype != DType::kU32 || w.shape.size() != 2 || w.shape[0] != rows) {
    return load_error(where(w) + " is " + describe(w) + ", expected U32 [" + std::to_string(rows) +
                      ", " + std::to_string(cols) +
                      " * bits / 32] (it has scales and biases, so it is MLX-quantized)");
  }
  if (!is_float(s.dtype) || s.shape.size() != 2 || s.shape[0] != rows) {
    return load_error(where(s) + " is " + describe(s) + ", expected F16, BF16 or F32 [" +
                      std::to_string(rows) + ", " + std::to_string(cols) + " / group_size]");
  }
  if (b.dtype != s.dtype || b.shape != s.shape) {
    return load_error(where(b) + " is " + describe(b) + " but '" + s.name + "' is " + describe(s) +
                      ": they must match");
  }
  const int64_t words = w.shape[1], groups = s.shape[1];
  if (words <= 0 || groups <= 0 || words * 32 % cols != 0 || cols % groups != 0) {
    return load_error(where(w) + ": shapes " + w.shape_string() + " (weight) and " +
                      s.shape_string() + " (scales) do not give a whole number of bits and a " +
                      "whole group size for " + std::to_string(cols) + " columns");
  }
  p->bits = int(words * 32 / cols);
  p->group_size = int(cols / groups);
  const std::string what = std::to_string(p->bits) + "-bit in groups of " +
                           std::to_string(p->group_size) + " (from its shapes)";
  if (quant_.method == QuantConfig::Method::kMlxAffine) {
    const QuantConfig::Affine want = quant_.affine_for(base);
    if (want.bits == 0) {
      return load_error(where(w) + " is quantized (" + what +
                        "), but config.json's quantization marks '" + base + "' as not quantized");
    }
    if (want.bits != p->bits || want.group_size != p->group_size) {
      return load_error(where(w) + " is " + what + ", but config.json's quantization says " +
                        std::to_string(want.bits) + "-bit in groups of " +
                        std::to_string(want.group_size) + " for '" + base + "'");
    }
  }
  if (!backend_.supports_quant(p->bits, p->group_size)) {
    return load_error(where(w) + " is " + what + ": the " + backend_.name() +
                      " backend has no kernels for that");
  }
  return {};
}

Status WeightLoader::take_fp8(const std::string& base, int64_t rows, int64_t cols, Part* p) {
  p->kind = Part::Kind::kFp8;
  const bool inv = store_.contains(base + ".weight_scale_inv");
  if (!inv && !store_.contains(base + ".weight_scale")) {
    return load_error(where(p->w) + " is F8_E4M3 but has neither '" + base +
                      ".weight_scale' nor '" + base + ".weight_scale_inv'");
  }
  MLXS_ASSIGN_OR_RETURN(p->scales,
                        store_.take(base + (inv ? ".weight_scale_inv" : ".weight_scale")));
  // Static activation scales: activations stay f32 here, so they are not needed.
  if (store_.contains(base + ".input_scale")) (void)store_.take(base + ".input_scale");
  const TensorInfo& s = p->scales;
  if (!is_float(s.dtype)) {
    return load_error(where(s) + " has dtype " + dtype_name(s.dtype) + ", expected a float type");
  }
  const int64_t n = s.numel();
  const bool per_row_shape = (s.shape.size() == 1) || (s.shape.size() == 2 && s.shape[1] == 1);
  if (n == 1) {
    p->fp8_block_rows = rows;
    p->fp8_block_cols = cols;
    return {};
  }
  if (n == rows && per_row_shape) {
    p->fp8_block_rows = 1;
    p->fp8_block_cols = cols;
    return {};
  }
  const int64_t br = quant_.fp8_block_rows > 0 ? quant_.fp8_block_rows : 128;
  const int64_t bc = quant_.fp8_block_cols > 0 ? quant_.fp8_block_cols : 128;
  if (s.shape.size() == 2 && s.shape[0] == ceil_div(rows, br) && s.shape[1] == ceil_div(cols, bc)) {
    p->fp8_block_rows = br;
    p->fp8_block_cols = bc;
    return {};
  }
  return load_error(where(s) + " is " + s.shape_string() + ": expected one value, one per row [" +
                    std::to_string(rows) + "], or blocks of weight_block_size [" +
                    std::to_string(br) + ", " + std::to_string(bc) + "]: [" +
                    std::to_string(ceil_div(rows, br)) + ", " + std::to_string(ceil_div(cols, bc)) +
                    "]");
}

Result<Tensor> WeightLoader::matrix(const std::vector<std::string>& names,
                                    const std::vector<int64_t>& rows, int64_t cols) {
  std::vector<Part> parts;
  int64_t total = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    MLXS_ASSIGN_OR_RETURN(Part p, take_part(names[i], rows[i], cols));
    total += rows[i];
    parts.push_back(std::move(p));
  }
  const Part& first = parts[0];
  bool same_kind = true, same_form = true;
  for (const Part& p : parts) {
    same_kind = same_kind && p.kind == first.kind;
    same_form = same_form && same_kind && p.w.dtype == first.w.dtype && p.bits == first.bits &&
                p.group_size == first.group_size && p.scales.dtype == first.scales.dtype;
  }
  if (same_form && first.kind == Part::Kind::kAffine) return stack_affine(parts, total, cols);
  if (same_kind && first.kind == Part::Kind::kFp8) {
    return stack_widened(parts, DType::kBF16, total, cols);
  }
  if (same_kind && first.kind == Part::Kind::kFloat) {
    for (const Part& p : parts) {
      if (p.w.dtype != first.w.dtype) {
        return load_error(p.w.file + ": tensor '" + p.w.name + "' is " + dtype_name(p.w.dtype) +
                          " but '" + first.w.name + "' is " + dtype_name(first.w.dtype));
      }
    }
    Tensor out = alloc(first.w.dtype, total, cols);
    if (!out.data) return oom(names[0]);
    size_t offset = 0;
    for (const auto& p : parts) {
      backend_.upload(p.w.data, p.w.nbytes, static_cast<char*>(out.data) + offset);
      offset += p.w.nbytes;
    }
    return out;
  }
  // A mixed recipe (parts quantized differently, or some not at all): widened, exactly, to f32.
  return stack_widened(parts, DType::kF32, total, cols);
}

Result<Tensor> WeightLoader::stack_affine(const std::vector<Part>& parts, int64_t total,
                                          int64_t cols) {
  const Part& first = parts[0];
  const int64_t words = first.w.shape[1], groups = first.scales.shape[1];
  Tensor data = alloc(DType::kU32, total, words);
  Tensor scales = alloc(first.scales.dtype, total, groups);
  Tensor biases = alloc(first.scales.dtype, total, groups);
  if (!data.data || !scales.data || !biases.data) return oom(first.w.name);
  size_t at_w = 0, at_s = 0;
  for (const Part& p : parts) {
    backend_.upload(p.w.data, p.w.nbytes, static_cast<char*>(data.data) + at_w);
    backend_.upload(p.scales.data, p.scales.nbytes, static_cast<char*>(scales.data) + at_s);
    backend_.upload(p.biases.data, p.biases.nbytes, static_cast<char*>(biases.data) + at_s);
    at_w += p.w.nbytes;
    at_s += p.scales.nbytes;
  }
  Tensor t = data;
  t.cols = cols;
  t.quant = {first.bits, first.group_size, first.scales.dtype, scales.data, biases.data};
  return t;
}

Result<Tensor> WeightLoader::stack_widened(const std::vector<Part>& parts, DType dt, int64_t total,
                                           int64_t cols) {
  std::vector<float> host(size_t(total * cols));
  size_t at = 0;
  for (const Part& p : parts) {
    p.widen(cols, host.data() + at);
    at += size_t(p.rows * cols);
  }
  const std::vector<uint8_t> bytes = store_as(host, dt);
  Tensor out = alloc(dt, total, cols);
  if (!out.data) return oom(parts[0].w.name);
  backend_.upload(bytes.data(), bytes.size(), out.data);
  return out;
}

Result<Tensor> WeightLoader::vector(const std::vector<std::string>& names,
                                    const std::vector<int64_t>& sizes) {
  std::vector<float> host;
  for (size_t i = 0; i < names.size(); ++i) {
    MLXS_ASSIGN_OR_RETURN(TensorInfo t, store_.take(names[i], {sizes[i]}));
    size_t at = host.size();
    host.resize(at + size_t(sizes[i]));
    convert_to_f32(t.data, t.dtype, size_t(sizes[i]), host.data() + at);
  }
  Tensor out = alloc(DType::kF32, 1, int64_t(host.size()));
  if (!out.data) return oom(names[0]);
  backend_.upload(host.data(), host.size() * sizeof(float), out.data);
  return out;
}

void WeightLoader::skip(const std::string& name) {
  const std::string base = base_of(name);
  for (const std::string& n : {name, base + ".scales", base + ".biases", base + ".weight_scale",
                               base + ".weight_scale_inv", base + ".input_scale"}) {
    if (store_.contains(n)) (void)store_.take(n);
  }
}

Tensor WeightLoader::alloc(DType dt, int64_t r, int64_t c) {
  Tensor t = backend_.alloc(dt, r, c);
  if (t.data) owned_.push_back(t);
  return t;
}

Status WeightLoader::oom(const std::string& name) {
  return load_error("out of " + backend_.name() + " memory while loading '" + name + "'");
}

}  // namespace mlxs
