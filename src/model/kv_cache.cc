#include "model/kv_cache.h"

namespace mlxs {

size_t KvCache::bytes_per_block(const ModelArch& c, int block_size, DType dtype) {
  return size_t(2) * c.num_layers * block_size * c.num_kv_heads * c.head_dim * dtype_size(dtype);
}

Result<std::unique_ptr<KvCache>> KvCache::create(Backend& backend, const ModelArch& c,
                                                 int num_blocks, int block_size, DType dtype) {
  std::unique_ptr<KvCache> cache(new KvCache(backend));
  cache->num_blocks_ = num_blocks;
  cache->block_size_ = block_size;
  // One block more than asked: the scratch block (see scratch_block()).
  const int64_t rows = (int64_t(num_blocks) + 1) * block_size;
  const int64_t cols = int64_t(c.num_kv_heads) * c.head_dim;
  for (int i = 0; i < c.num_layers; ++i) {
    KvLayer l{backend.alloc(dtype, rows, cols), backend.alloc(dtype, rows, cols)};
    cache->layers_.push_back(l);
    if (!l.k.data || !l.v.data) {
      return error(ErrorCode::kCapacityExceeded,
                   "cannot allocate the KV cache: " + std::to_string(num_blocks) + " blocks of " +
                       std::to_string(block_size) + " tokens");
    }
  }
  return cache;
}

KvCache::~KvCache() {
  for (auto& l : layers_) {
    backend_.free(l.k);
    backend_.free(l.v);
  }
}

}  // namespace mlxs
