// Small CUDA kernels of the backend: embedding, norms, RoPE, SwiGLU, copies, KV write, casts,
// argmax. All are memory-bound and tiny next to the linear layers; the napkin math per kernel
// is at its launcher. Activations are f32; weights and the KV cache f32, bf16 or f16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"

namespace mlxs::cuda {
namespace {

// ============================== device helpers ==============================================

__device__ __forceinline__ float load_f32(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::kBF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::kF16:
      return __half2float(static_cast<const __half*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_as(void* p, DType dt, int64_t i, float v) {
  switch (dt) {
    case DType::kBF16:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
      break;
    case DType::kF16:
      static_cast<__half*>(p)[i] = __float2half_rn(v);
      break;
    default:
      static_cast<float*>(p)[i] = v;
  }
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / 32;
  v = lane < nwarps ? partial[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ============================== kernels =====================================================

__global__ void embedding_kernel(const int32_t* ids, const void* table, DType dt, int64_t D,
                                 float* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x, row = ids[t];
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    out[t * D + i] = load_f32(table, dt, row * D + i);
  }
}

// ids[i] < 0 -> prev[-ids[i] - 1]: a step's tokens that the previous step sampled on the device.
__global__ void resolve_placeholders_kernel(int32_t* ids, int64_t n, const int32_t* prev) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n && ids[i] < 0) ids[i] = prev[-int64_t(ids[i]) - 1];
}

// Constrained decoding: a forbidden token's logit becomes -inf. Grid (chunks of V, R).
__global__ void mask_logits_kernel(float* logits, int64_t V, const uint32_t* masks, int64_t W) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t r = blockIdx.y;
  const uint32_t* row_mask = masks + r * W;
  float* row = logits + r * V;
  for (int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; v < V;
       v += int64_t(gridDim.x) * blockDim.x) {
    if (!(row_mask[v >> 5] >> (v & 31) & 1u)) row[v] = -INFINITY;
  }
}

// One block per row; `residual` non-null means residual += x first (x then is the addend).
__global__ void rms_norm_kernel(float* residual, const float* x, const float* w, int64_t C,
                                float eps, float* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t r = blockIdx.x;
  const float* xr = x + r * C;
  float* res = residual ? residual + r * C : nullptr;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    float v = xr[i];
    if (res) {
      v += res[i];
      res[i] = v;
    }
    sum += v * v;
  }
  const float inv = 1.0f / sqrtf(block_sum(sum) / float(C) + eps);
  const float* src = res ? res : xr;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) out[r * C + i] = w[i] * (src[i] * inv);
}

// As rms_norm_kernel for C % 4 == 0 and C <= 1024 * NV: one read of the row (float4, kept in
// registers), one write. Batch-1 decode runs two of these per layer on a single 16 KB row.
template <int NV>
__global__ void rms_norm_vec_kernel(float* residual, const float* x, const float* w, int64_t C,
                                    float eps, float* out) {
  const int64_t r = blockIdx.x, C4 = C / 4;
  // The weights come from no earlier kernel: loaded before the wait, off the critical path.
  const float4* w4 = reinterpret_cast<const float4*>(w);
  float4 gw[NV];
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    const int64_t idx = threadIdx.x + int64_t(i) * blockDim.x;
    if (idx < C4) gw[i] = __ldg(w4 + idx);
  }
  pdl_launch_dependents();
  pdl_wait();
  const float4* x4 = reinterpret_cast<const float4*>(x + r * C);
  float4* res4 = residual ? reinterpret_cast<float4*>(residual + r * C) : nullptr;
  float4 vals[NV];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    const int64_t idx = threadIdx.x + int64_t(i) * blockDim.x;
    if (idx >= C4) break;
    float4 v = x4[idx];
    if (res4) {
      const float4 q = res4[idx];
      v = make_float4(v.x + q.x, v.y + q.y, v.z + q.z, v.w + q.w);
      res4[idx] = v;
    }
    vals[i] = v;
    sum += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float inv = 1.0f / sqrtf(block_sum(sum) / float(C) + eps);
  float4* o4 = reinterpret_cast<float4*>(out + r * C);
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    const int64_t idx = threadIdx.x + int64_t(i) * blockDim.x;
    if (idx >= C4) break;
    const float4 v = vals[i], g = gw[i];
    o4[idx] =
        make_float4(g.x * (v.x * inv), g.y * (v.y * inv), g.z * (v.z * inv), g.w * (v.w * inv));
  }
}

// One thread per (token, rotation pair); cos/sin in double and rounded, as the CPU reference.
__global__ void rope_kernel(float* x, int64_t T, int64_t stride, int heads, int half,
                            const int32_t* pos, const float* inv_freq, float scaling) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= T * half) return;
  const int64_t t = idx / half;
  const int i = int(idx % half);
  const float angle = float(pos[t]) * inv_freq[i];
  double s, c;
  sincos(double(angle), &s, &c);
  const float cf = float(c) * scaling, sf = float(s) * scaling;
  float* row = x + t * stride;
  for (int h = 0; h < heads; ++h) {
    float* p = row + int64_t(h) * 2 * half;
    const float x1 = p[i], x2 = p[i + half];
    p[i] = x1 * cf - x2 * sf;
    p[i + half] = x2 * cf + x1 * sf;
  }
}

__global__ void split_qkv_kernel(const float* qkv, int64_t nq, int64_t nk, int64_t nv, float* q,
                                 float* k, float* v) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x, cols = nq + nk + nv;
  const float* src = qkv + t * cols;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float val = src[i];
    if (i < nq)
      q[t * nq + i] = val;
    else if (i < nq + nk)
      k[t * nk + i - nq] = val;
    else
      v[t * nv + i - nq - nk] = val;
  }
}

// Grid: x = token, y = groups of 4 head slots (H query, Hk key, Hk value heads); a warp per
// head: load, optional RMSNorm (warp reduction), RoPE through a per-warp shared row (the pair
// partner can sit in another lane), store (and for k, v: into the cache as well). What comes
// from no earlier kernel of the step (the norm weights, the position and slot uploaded before
// the step, and so the RoPE angles, in double) is read and computed before the PDL wait.
__global__ void qkv_prepare_kernel(QkvPrepareArgs a) {
  __shared__ float row[4][256];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t t = blockIdx.x;
  const int slot = blockIdx.y * 4 + warp, Dh = a.head_dim, half = Dh / 2;
  const int H = a.heads, Hk = a.kv_heads;
  if (slot >= H + 2 * Hk) return;
  const bool is_q = slot < H, is_k = !is_q && slot < H + Hk;
  const float* norm = is_q ? a.q_norm : is_k ? a.k_norm : nullptr;
  float nw[8], rc[8], rs[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int d = lane + 32 * e;
    nw[e] = norm && d < Dh ? norm[d] : 0.f;
    rc[e] = rs[e] = 0.f;
  }
  if (is_q || is_k) {
    const float p = float(a.positions[t]);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = lane + 32 * e;
      if (d >= Dh) continue;
      double sn, cs;
      sincos(double(p * a.inv_freq[d < half ? d : d - half]), &sn, &cs);
      rc[e] = float(cs) * a.rope_scaling, rs[e] = float(sn) * a.rope_scaling;
    }
  }
  const int head = is_q ? slot : is_k ? slot - H : slot - H - Hk;
  const int64_t at = int64_t(a.slots[t]) * Hk * Dh + int64_t(head) * Dh;
  pdl_launch_dependents();
  pdl_wait();
  const int64_t cols = int64_t(H + 2 * Hk) * Dh;
  const float* src = a.qkv + t * cols + int64_t(slot) * Dh;
  float vals[8];
  float ss = 0.f;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int d = lane + 32 * e;
    vals[e] = d < Dh ? src[d] : 0.f;
    ss += vals[e] * vals[e];
  }
  if (norm) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = 1.0f / sqrtf(ss / float(Dh) + a.eps);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = lane + 32 * e;
      if (d < Dh) vals[e] = nw[e] * (vals[e] * inv);
    }
  }
  if (is_q || is_k) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = lane + 32 * e;
      if (d < Dh) row[warp][d] = vals[e];
    }
    __syncwarp();
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = lane + 32 * e;
      if (d >= Dh) continue;
      const int i = d < half ? d : d - half;
      const float x1 = row[warp][i], x2 = row[warp][i + half];
      vals[e] = d < half ? x1 * rc[e] - x2 * rs[e] : x2 * rc[e] + x1 * rs[e];
    }
  }
  float* dst = (is_q ? a.q + t * int64_t(H) * Dh : (is_k ? a.k : a.v) + t * int64_t(Hk) * Dh) +
               int64_t(head) * Dh;
  void* cache = is_q ? nullptr : is_k ? a.k_cache : a.v_cache;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int d = lane + 32 * e;
    if (d >= Dh) continue;
    dst[d] = vals[e];
    if (cache) store_as(cache, a.cache_dtype, at + d, vals[e]);
  }
}

__global__ void silu_mul_kernel(const float* gate_up, int64_t T, int64_t I, bool interleaved,
                                float* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= T * I) return;
  const int64_t t = idx / I, i = idx % I;
  const float* row = gate_up + t * 2 * I;
  const float g = interleaved ? row[2 * i] : row[i], u = interleaved ? row[2 * i + 1] : row[I + i];
  out[idx] = g / (1.0f + expf(-g)) * u;
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void gather_rows_kernel(const float* x, int64_t cols, const int32_t* rows, float* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t r = blockIdx.x, src = rows[r];
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) out[r * cols + i] = x[src * cols + i];
}

__global__ void kv_write_kernel(const float* k, const float* v, int64_t C, const int32_t* slots,
                                void* kc, void* vc, DType dt) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x, slot = slots[t];
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    store_as(kc, dt, slot * C + i, k[t * C + i]);
    store_as(vc, dt, slot * C + i, v[t * C + i]);
  }
}

__global__ void split_to_half_kernel(const float* x, int64_t n, DType dt, void* hi, void* lo) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = x[i];
  store_as(hi, dt, i, v);
  if (lo) store_as(lo, dt, i, v - load_f32(hi, dt, i));
}

__global__ void add_bias_kernel(float* out, int64_t rows, int64_t N, const float* bias) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows * N) out[i] += bias[i % N];
}

// kVec4: the row is read as float4 (V % 4 == 0, 16-byte aligned), 4 loads in flight per thread:
// at batch 1 one CTA scans the whole vocabulary (128256 floats), where scalar loads took 31 us.
template <bool kVec4>
__global__ void argmax_kernel(const float* x, int64_t V, int32_t* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t r = blockIdx.x;
  float best = -FLT_MAX;
  int64_t arg = 0;
  if constexpr (kVec4) {
    // Per thread the indices rise (chunk by chunk, element by element): the first max is kept.
    const float4* x4 = reinterpret_cast<const float4*>(x + r * V);
    const int64_t n4 = V / 4, step = int64_t(blockDim.x);
    for (int64_t i0 = threadIdx.x; i0 < n4; i0 += 4 * step) {
      float4 v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int64_t i = i0 + u * step;
        v[u] = i < n4 ? __ldg(x4 + i) : make_float4(-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int64_t base = 4 * (i0 + u * step);
        if (v[u].x > best) best = v[u].x, arg = base;
        if (v[u].y > best) best = v[u].y, arg = base + 1;
        if (v[u].z > best) best = v[u].z, arg = base + 2;
        if (v[u].w > best) best = v[u].w, arg = base + 3;
      }
    }
  } else {
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      const float v = x[r * V + i];
      if (v > best) best = v, arg = i;  // per thread, i rises: the first maximum is kept
    }
  }
  __shared__ float sv[1024];
  __shared__ int64_t si[1024];
  sv[threadIdx.x] = best;
  si[threadIdx.x] = arg;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      const float ov = sv[threadIdx.x + s];
      const int64_t oi = si[threadIdx.x + s];
      if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) {
        sv[threadIdx.x] = ov;
        si[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[r] = int32_t(si[0]);
}

int blocks_for(int64_t n, int threads) {
  return int((n + threads - 1) / threads);
}
int row_threads(int64_t cols) {
  return cols >= 1024 ? 1024 : cols >= 256 ? 256 : 128;
}

}  // namespace

// ============================== launchers ===================================================
// Napkin math (Llama-3.1-8B, batch 1): every launcher below moves at most a few hundred KB per
// call (one row of D = 4096 f32 is 16 KB), so each is bound by launch latency (~2-4 us), not
// bandwidth; at T = 2048 the largest, silu_mul, moves 2048 * 14336 * 12 B = 352 MB, 0.1 ms
// at 3.5 TB/s. Fusing them into the GEMV epilogues is the next step for batch-1 latency.

void embedding(const int32_t* ids, int64_t T, const void* table, DType dt, int64_t D, float* out,
               Stream& stream) {
  launch(embedding_kernel, unsigned(T), row_threads(D), 0, stream, ids, table, dt, D, out);
  MLXS_CUDA_LAUNCHED(stream);
}

void mask_logits(float* logits, int64_t R, int64_t V, const uint32_t* masks, int64_t W,
                 Stream& stream) {
  if (R == 0) return;
  const unsigned chunks = unsigned(std::min<int64_t>((V + 255) / 256, 64));
  launch(mask_logits_kernel, dim3(chunks, unsigned(R)), 256, 0, stream, logits, V, masks, W);
  MLXS_CUDA_LAUNCHED(stream);
}

void resolve_placeholders(int32_t* ids, int64_t n, const int32_t* prev, Stream& stream) {
  if (n == 0) return;
  launch(resolve_placeholders_kernel, unsigned((n + 255) / 256), 256, 0, stream, ids, n, prev);
  MLXS_CUDA_LAUNCHED(stream);
}

namespace {
void launch_rms_norm(float* residual, const float* x, const float* w, int64_t rows, int64_t C,
                     float eps, float* out, Stream& stream) {
  const bool aligned =
      C % 4 == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(out) |
                     reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(residual)) %
                            16 ==
                        0;
  const int threads = C >= 2048 ? 256 : 128;
  if (aligned && C / 4 <= int64_t(threads) * 8) {
    launch(rms_norm_vec_kernel<8>, unsigned(rows), threads, 0, stream, residual, x, w, C, eps, out);
  } else {
    launch(rms_norm_kernel, unsigned(rows), threads, 0, stream, residual, x, w, C, eps, out);
  }
  MLXS_CUDA_LAUNCHED(stream);
}
}  // namespace

void rms_norm(const float* x, const float* w, int64_t rows, int64_t C, float eps, float* out,
              Stream& stream) {
  launch_rms_norm(nullptr, x, w, rows, C, eps, out, stream);
}

void add_rms_norm(float* residual, const float* x, const float* w, int64_t rows, int64_t C,
                  float eps, float* out, Stream& stream) {
  launch_rms_norm(residual, x, w, rows, C, eps, out, stream);
}

void rope(float* x, int64_t T, int64_t stride, int heads, int head_dim, const int32_t* positions,
          const float* inv_freq, float scaling, Stream& stream) {
  const int half = head_dim / 2;
  launch(rope_kernel, blocks_for(T * half, 128), 128, 0, stream, x, T, stride, heads, half,
         positions, inv_freq, scaling);
  MLXS_CUDA_LAUNCHED(stream);
}

void split_qkv(const float* qkv, int64_t T, int64_t nq, int64_t nk, int64_t nv, float* q, float* k,
               float* v, Stream& stream) {
  launch(split_qkv_kernel, unsigned(T), row_threads(nq + nk + nv), 0, stream, qkv, nq, nk, nv, q, k,
         v);
  MLXS_CUDA_LAUNCHED(stream);
}

// Napkin: one token of Llama-3.1-8B moves 6144 * 4 B in and 6144 * 4 + 2048 * 2 B out: it is
// launch latency alone; fusing split, norms, two RoPEs and the KV write saves 3-5 launches a layer.
void qkv_prepare(const QkvPrepareArgs& a, Stream& stream) {
  const int slots = a.heads + 2 * a.kv_heads;
  launch(qkv_prepare_kernel, dim3(unsigned(a.num_tokens), unsigned((slots + 3) / 4)), 128, 0,
         stream, a);
}

void silu_mul(const float* gate_up, int64_t T, int64_t I, bool interleaved, float* out,
              Stream& stream) {
  launch(silu_mul_kernel, blocks_for(T * I, 256), 256, 0, stream, gate_up, T, I, interleaved, out);
  MLXS_CUDA_LAUNCHED(stream);
}

void add(float* x, const float* y, int64_t n, Stream& stream) {
  launch(add_kernel, blocks_for(n, 256), 256, 0, stream, x, y, n);
  MLXS_CUDA_LAUNCHED(stream);
}

void gather_rows(const float* x, int64_t cols, const int32_t* rows, int64_t R, float* out,
                 Stream& stream) {
  launch(gather_rows_kernel, unsigned(R), row_threads(cols), 0, stream, x, cols, rows, out);
  MLXS_CUDA_LAUNCHED(stream);
}

void kv_write(const float* k, const float* v, int64_t T, int64_t C, const int32_t* slots,
              void* k_cache, void* v_cache, DType cache_dtype, Stream& stream) {
  launch(kv_write_kernel, unsigned(T), row_threads(C), 0, stream, k, v, C, slots, k_cache, v_cache,
         cache_dtype);
  MLXS_CUDA_LAUNCHED(stream);
}

void split_to_half(const float* x, int64_t n, DType dt, void* hi, void* lo, Stream& stream) {
  launch(split_to_half_kernel, blocks_for(n, 256), 256, 0, stream, x, n, dt, hi, lo);
  MLXS_CUDA_LAUNCHED(stream);
}

void add_bias(float* out, int64_t rows, int64_t N, const float* bias, Stream& stream) {
  launch(add_bias_kernel, blocks_for(rows * N, 256), 256, 0, stream, out, rows, N, bias);
  MLXS_CUDA_LAUNCHED(stream);
}

// Napkin: R rows of V = 128256 f32 = 513 KB per row; 256 rows = 131 MB, ~40 us at 3.5 TB/s,
// against ~5 ms to copy those logits to the host over PCIe.
void argmax_rows(const float* x, int64_t R, int64_t V, int32_t* out, Stream& stream) {
  if (V % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
    launch(argmax_kernel<true>, unsigned(R), 1024, 0, stream, x, V, out);
  } else {
    launch(argmax_kernel<false>, unsigned(R), 1024, 0, stream, x, V, out);
  }
  MLXS_CUDA_LAUNCHED(stream);
}

}  // namespace mlxs::cuda
