// Launchers of the CUDA backend's kernels (plain C++ signatures, so cuda_backend.cc needs no
// device code). Every launcher enqueues on `stream` (the calling backend's cuda::Stream: its
// CUDA stream, launch option and error slot) and checks the launch; pointers are device
// pointers; shapes follow backend.h (T tokens, S sequences, H heads, Hk kv heads, Dh head dim).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "util/dtype.h"

namespace mlxs::cuda {

// --- elementwise.cu -------------------------------------------------------------------------
// out[t, :] = f32(table[ids[t], :]); table [V, D] of dtype dt.
void embedding(const int32_t* ids, int64_t T, const void* table, DType dt, int64_t D, float* out,
               Stream& stream);
// out = x / sqrt(mean(x^2) + eps) * w per row; x, out [rows, C]; may alias.
void rms_norm(const float* x, const float* w, int64_t rows, int64_t C, float eps, float* out,
              Stream& stream);
// residual += x; out = rms_norm(residual) * w.
void add_rms_norm(float* residual, const float* x, const float* w, int64_t rows, int64_t C,
                  float eps, float* out, Stream& stream);
// Rotates `heads` heads of Dh columns at the start of each row of x [T, stride] in place.
void rope(float* x, int64_t T, int64_t stride, int heads, int head_dim, const int32_t* positions,
          const float* inv_freq, float scaling, Stream& stream);
// Column blocks of qkv [T, nq + nk + nv] into q, k, v.
void split_qkv(const float* qkv, int64_t T, int64_t nq, int64_t nk, int64_t nv, float* q, float* k,
               float* v, Stream& stream);
// out[T, I] = silu(gate) * up of gate_up [T, 2I]: gate_up[:, :I] and gate_up[:, I:], or with
// `interleaved` columns 2i and 2i + 1 (the output of interleaved weights, prepare_gate_up).
void silu_mul(const float* gate_up, int64_t T, int64_t I, bool interleaved, float* out,
              Stream& stream);
// x[i] += y[i], n elements.
void add(float* x, const float* y, int64_t n, Stream& stream);
// out[i, :] = x[rows[i], :].
void gather_rows(const float* x, int64_t cols, const int32_t* rows, int64_t R, float* out,
                 Stream& stream);
// k_cache[slots[t], :] = k[t, :] (and v), converted to the cache dtype (f32, bf16 or f16).
void kv_write(const float* k, const float* v, int64_t T, int64_t C, const int32_t* slots,
              void* k_cache, void* v_cache, DType cache_dtype, Stream& stream);
// The attention prologue in one launch: splits qkv [T, (H + 2 Hk) * Dh] into q, k, v, applies
// the per-head RMSNorm (q_norm / k_norm, nullable) and RoPE to q and k, and writes k and v
// into the caches at slots (converted to cache_dtype). Dh <= 256.
struct QkvPrepareArgs {
  const float* qkv;
  float *q, *k, *v;
  const float *q_norm, *k_norm;
  float eps;
  const int32_t* positions;
  const float* inv_freq;
  float rope_scaling;
  int heads, kv_heads, head_dim;
  int64_t num_tokens;
  const int32_t* slots;
  void *k_cache, *v_cache;
  DType cache_dtype;
};
void qkv_prepare(const QkvPrepareArgs& a, Stream& stream);
// hi = half(x) in dtype dt (bf16 or f16); if lo: lo = half(x - f32(hi)). n elements.
void split_to_half(const float* x, int64_t n, DType dt, void* hi, void* lo, Stream& stream);
// out[r, :] += bias.
void add_bias(float* out, int64_t rows, int64_t N, const float* bias, Stream& stream);
// ids[i] < 0 becomes prev[-ids[i] - 1] (Backend::resolve_placeholders), n ids.
void resolve_placeholders(int32_t* ids, int64_t n, const int32_t* prev, Stream& stream);
// logits[r, v] = -inf where bit v % 32 of masks[r * W + v / 32] is 0 (Backend::mask_logits).
void mask_logits(float* logits, int64_t R, int64_t V, const uint32_t* masks, int64_t W,
                 Stream& stream);
// out[r] = argmax of row r of x [R, V] (lowest index on ties).
void argmax_rows(const float* x, int64_t R, int64_t V, int32_t* out, Stream& stream);

// --- sample.cu: sampling on the device (the host sampler's algorithm, sampler.h) ------------
// One row's parameters, resolved on the host so host and device share every derived value.
struct SampleRowParams {
  double inv_t;      // 1 / temperature
  double log_min_p;  // log(min_p), -infinity when min-p is off
  float top_p;       // >= 1: off
  int top_k;         // 0: off
  float repetition, presence, frequency;
  int greedy;  // 1: the argmax (temperature <= 0, top_k == 1, or min_p > 1)
  uint64_t seed, step;
  int32_t history_begin, history_end;  // the row's entries of SampleHistoryView
};
// Penalty history entries (device arrays, CSR per row): token id (distinct within a row), its
// count in the output, and whether it was seen in the prompt or output.
struct SampleHistoryView {
  const int32_t* token;
  const int32_t* count;
  const uint8_t* seen;
};
// out_tokens[r] and out_logprobs[r] (log-softmax of the penalised logits, before temperature)
// of each row r of logits [R, V], as the host sample() computes them. scratch [R, V] holds the
// penalised copy of rows with history entries. V < 2^23.
void sample_rows(const float* logits, int64_t R, int64_t V, const SampleRowParams* params,
                 const SampleHistoryView& history, float* scratch, int32_t* out_tokens,
                 float* out_logprobs, Stream& stream);

// --- gemv.cu: memory-bound linear for few rows ----------------------------------------------
constexpr int kGemvMaxRows = 8;
// What the GEMV writes: the product (+ bias), or SwiGLU of interleaved gate/up rows.
enum GemvEpilogue { kEpiStore = 0, kEpiSwiGLU = 1 };
// True when gemv() handles this shape: 1 <= M <= kGemvMaxRows, K a multiple of 16 bytes of w.
bool gemv_supported(int64_t M, int64_t K, DType wt);
// kEpiStore: out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N]). kEpiSwiGLU (N even, w's rows and bias
// interleaved gate_0, up_0, gate_1, ...): out[M, N / 2] = silu(gate) * up of that product. With
// round_x, x is rounded to w's dtype first. x and out must not overlap.
void gemv(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
          const float* bias, bool round_x, GemvEpilogue epi, float* out, Stream& stream);

// --- qgemv.cu: affine-quantized weights (backend.h AffineQuant) -----------------------------
// A quantized [rows, cols] weight: data holds each row's cols * bits / 8 bytes of packed values,
// scales and biases [rows, cols / group_size] of scale_dtype (f32, bf16 or f16).
struct QuantView {
  const void* data;
  const void* scales;
  const void* biases;
  DType scale_dtype;
  int bits, group_size;
  int64_t rows, cols;
};
// The (bits, group_size) pairs the kernels below take: bits 4, 5, 6 or 8; groups 16, 32, 64, 128.
bool quant_supported(int bits, int group_size);
// True when qgemv() and dequantize_rows() take w: a supported pair, cols a multiple of 32 and
// of the group, data 16-byte aligned at 4 and 8 bits (8 at 6, 4 at 5), a float scale dtype.
bool quant_shape_supported(const QuantView& w);
// gemv() for quantized w, 1 <= M <= kGemvMaxRows: out[M, N] = x[M, K] @ dequant(w)^T (+ bias)
// or, with kEpiSwiGLU (rows interleaved gate/up), out[M, N / 2] = silu(gate) * up. f32
// arithmetic throughout; x is not rounded.
void qgemv(const float* x, int64_t M, const QuantView& w, const float* bias, GemvEpilogue epi,
           float* out, Stream& stream);
// out[r, :] = dequant(w row (ids ? ids[r] : row0 + r)) for r < rows, as out_dt (f32 or bf16),
// out [rows, w.cols] row-major.
void dequantize_rows(const QuantView& w, const int32_t* ids, int64_t row0, int64_t rows,
                     DType out_dt, void* out, Stream& stream);

// --- attention.cu: paged attention over the KV cache ----------------------------------------
// Rows of one sequence per attention work tile (the query block of a CTA).
constexpr int kAttnTileRows = 8;
// A CTA's query vectors (rows x heads of one KV group); fixes how heads are chunked.
constexpr int kAttnMaxVectors = 32;

struct AttentionArgs {
  const float* q;  // [T, H * Dh]
  const void* k_cache;
  const void* v_cache;  // [slots, Hk * Dh]
  DType cache_dtype;
  float* out;  // [T, H * Dh]
  // Step metadata (device): S + 1 query starts, S context lengths, block tables [S, bt_stride],
  // tiles (int4 {seq, first token row, rows, 0}) of at most kAttnTileRows rows.
  const int32_t* query_start;
  const int32_t* context_len;
  const int32_t* block_tables;
  const int32_t* tiles;
  int bt_stride, num_tiles, max_tile_rows, block_size, sliding_window;
  int64_t num_tokens;
  int heads, kv_heads, head_dim;
  float scale;
  // Split-K workspaces [splits, T, H, Dh] and [splits, T, H, 2]; used when num_splits > 1.
  float* part_o;
  float* part_ml;
  int num_splits;
  // Decode kernel only: one zeroed ticket per (sequence, KV head) when num_splits > 1.
  int* split_counters;
};
// The number of sequence splits paged_attention uses for `a` (fills the GPU when few tiles).
int attention_splits(int num_tiles, int kv_heads, int heads, int max_tile_rows);
// Raise the dynamic shared memory limit of every paged_attention (and paged_attention_tc)
// kernel on the current device. Called by each backend at init, on its own device: the limit
// belongs to the device context, and setting it again is harmless.
void configure_attention(Stream& stream);
void configure_attention_tc(Stream& stream);
void paged_attention(const AttentionArgs& a, Stream& stream);

// --- attention_decode.cu: decode steps (one query row per sequence) ------------------------
// True when paged_attention_decode handles `a`: every tile one row, Dh 64 or 128, G = H / Hk an
// integer from 1 to 8, an f32/bf16/f16 cache (backend.cuda.attention_decode is the caller's).
bool attention_decode_supported(const AttentionArgs& a);
// Key splits for a decode step of num_seqs sequences (fills the GPU at small batch).
int attention_decode_splits(int num_seqs, int kv_heads);
// As paged_attention (a.tiles one row each); with a.num_splits > 1 the last CTA of each
// (sequence, KV head) merges the splits (a.split_counters, left zeroed).
void paged_attention_decode(const AttentionArgs& a, Stream& stream);

// --- attention_tc.cu: prefill attention on tensor cores --------------------------------------
// Tokens of one sequence per tensor-core tile (tiles int4 {seq, first token row, rows, 0}).
constexpr int kAttnTcTileRows = 16;
// True when paged_attention_tc handles `a` (bf16 cache, Dh 64 or 128; backend.cuda.attention_tc
// is the caller's).
bool attention_tc_supported(const AttentionArgs& a);
// Query heads of one KV group a tensor-core CTA takes (64 rows = 16 tokens x 4 heads).
int attention_tc_heads_per_chunk(int heads, int kv_heads);
// As paged_attention, over `tiles` of kAttnTcTileRows tokens (a.tiles and a.num_tiles unused);
// a.num_splits > 1 needs the split workspaces and a combine_attention() afterwards.
void paged_attention_tc(const AttentionArgs& a, const int32_t* tiles, int num_tiles,
                        Stream& stream);
// Merges a.num_splits partial results into a.out (see AttentionArgs).
void combine_attention(const AttentionArgs& a, Stream& stream);

}  // namespace mlxs::cuda
