// Loads a model's weights by name from a WeightStore into backend tensors. Matrices keep their
// stored form where the backend can use it: f32 / f16 / bf16, or MLX affine-quantized, packed
// (docs/quantization.md). Vectors (norms, biases) become f32.
//
// Which form a matrix `<base>.weight` has, per the files (config.json is checked against them):
//   1. `<base>.scales` and `<base>.biases` exist: affine-quantized. The weight is U32
//      [N, K * bits / 32], scales and biases [N, K / group_size] of f16, bf16 or f32; bits and
//      group_size come from these shapes and must agree with config.json's quantization block
//      (the module's override, if any) and be supported by the backend.
//   2. The weight is F8_E4M3: FP8, with `<base>.weight_scale` (one value, or one per row) or
//      `<base>.weight_scale_inv` (blocks of weight_block_size): widened to bf16 at load (no FP8
//      kernels yet).
//   3. Otherwise a float matrix [N, K].
// Stacking (q/k/v, gate/up): parts of one affine form (bits, group size, scale dtype) stack their
// packed rows, scales and biases; parts of one float dtype stack as they are; FP8 parts stack
// widened to bf16; any other mix (a mixed recipe's per-module overrides) is widened to f32 on
// the host and stacked, so the fused matrix works on every backend at the price of its memory.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace mlxs {

class WeightLoader {
 public:
  WeightLoader(WeightStore& store, Backend& backend, const QuantConfig& quant,
               std::vector<Tensor>& owned)
      : store_(store), backend_(backend), quant_(quant), owned_(owned) {}

  // Matrices [rows[i], cols] named `names` stacked by rows into one tensor (see above).
  Result<Tensor> matrix(const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                        int64_t cols);
  // Vectors (norm weights, biases) stacked into one f32 [1, sum(sizes)] tensor.
  Result<Tensor> vector(const std::vector<std::string>& names, const std::vector<int64_t>& sizes);
  // Marks `<base>.weight` and its quantization companions used without loading them (an lm_head
  // a model with tied embeddings also stores).
  void skip(const std::string& name);

 private:
  struct Part;
  Result<Part> take_part(const std::string& name, int64_t rows, int64_t cols);
  Status take_affine(const std::string& base, int64_t rows, int64_t cols, Part* p);
  Status take_fp8(const std::string& base, int64_t rows, int64_t cols, Part* p);
  Result<Tensor> stack_affine(const std::vector<Part>& parts, int64_t total, int64_t cols);
  Result<Tensor> stack_widened(const std::vector<Part>& parts, DType dt, int64_t total,
                               int64_t cols);
  Tensor alloc(DType dt, int64_t r, int64_t c);
  Status oom(const std::string& name);

  WeightStore& store_;
  Backend& backend_;
  const QuantConfig& quant_;
  std::vector<Tensor>& owned_;
};

}  // namespace mlxs
