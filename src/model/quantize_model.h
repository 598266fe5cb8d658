// `mlx-serving quantize --format mlx`: an MLX affine-quantized copy of a float model folder, as
// mlx_lm.convert -q writes it: every matrix weight ([N, K], K a multiple of the group size:
// the linear layers, the embedding table and the lm_head) becomes `.weight` U32 packed values
// plus `.scales` and `.biases` [N, K / group_size] in the source dtype (model/affine_quant.h);
// vectors and other matrices are copied; config.json gains the `quantization` block (and
// `quantization_config`, as mlx_lm writes both); every other file is copied.
#pragma once

#include <string>

#include "mlxs/status.h"

namespace mlxs {

struct QuantizeStats {
  int num_quantized = 0;  // matrices
  int num_copied = 0;     // other tensors
  int64_t bytes_in = 0, bytes_out = 0;
};

// Reads `src` (a float model folder), writes `out` (created; existing files are overwritten).
// bits: 2, 3, 4, 5, 6 or 8; group_size: 32, 64 or 128. A source that is already quantized (U32
// or F8_E4M3 weights, a quantization block) is an error.
Status quantize_model_mlx(const std::string& src, const std::string& out, int bits, int group_size,
                          QuantizeStats* stats = nullptr);

}  // namespace mlxs
