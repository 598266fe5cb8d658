// CPU kernels behind the CPU backend (f32 activations). Each is the reference for its op.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/linear.h"  // cpu::linear, the matrix kernel

namespace mlxs::cpu {

// out = x / sqrt(mean(x^2) + eps) * w, over n elements; out may alias x.
void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* out);

// Writes k, v [T, Hk * Dh] into cache rows slot_mapping[t].
void kv_write(const Tensor& k, const Tensor& v, const int32_t* slot_mapping, KvLayer& cache);

// Causal GQA attention of q [T, H * Dh] over the paged cache, see AttentionBatch.
void paged_attention(const Tensor& q, const KvLayer& cache, const AttentionBatch& b, int heads,
                     int kv_heads, int head_dim, float scale, Tensor& out);

}  // namespace mlxs::cpu
