// The paged KV cache of one model on a backend: the memory the forward pass reads and writes.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "mlxs/status.h"
#include "model/config.h"

namespace mlxs {

// The paged KV cache of one model: per layer K and V pools of (num_blocks + 1) * block_size
// rows. Blocks [0, num_blocks) belong to sequences; the last one, scratch_block(), is never
// handed out (the scheduler's pool has num_blocks blocks): padding rows of bucketed decode steps
// and the load-time warm-up write there.
class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(Backend& backend, const ModelArch& config,
                                                 int num_blocks, int block_size,
                                                 DType dtype = DType::kF32);
  ~KvCache();
  int num_blocks() const { return num_blocks_; }
  int scratch_block() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  KvLayer& layer(int i) { return layers_[size_t(i)]; }
  // Bytes one block takes across all layers (K and V).
  static size_t bytes_per_block(const ModelArch& config, int block_size, DType dtype);

 private:
  KvCache(Backend& backend) : backend_(backend) {}
  Backend& backend_;
  int num_blocks_ = 0;
  int block_size_ = 0;
  std::vector<KvLayer> layers_;
};

}  // namespace mlxs
