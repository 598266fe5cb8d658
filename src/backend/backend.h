// The backend interface: memory and the ops a decoder-only transformer needs. The CPU backend
// (src/backend/cpu) is the reference; every other backend is checked against it op by op.
//
// Shapes: T = tokens in the step (all sequences, concatenated), S = sequences in the step,
// D = hidden size, H = query heads, Hk = key/value heads, Dh = head dim, V = vocab, I = FFN size.
// Every tensor is a row-major 2-D view [rows, cols] in the backend's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "mlxs/status.h"
#include "sample/sampler.h"
#include "util/dtype.h"

namespace mlxs {

// Affine-quantized weights, the one quantized layout every backend reads (MLX's; GGUF blocks are
// repacked into it at load). Element (n, k) of the logical [rows, cols] matrix is
//   w[n, k] = scales[n, k / group_size] * q[n, k] + biases[n, k / group_size]
// where q[n, k] is an unsigned `bits`-bit integer. Each row of `data` is a little-endian bit
// stream of its cols values (value k at bits [k * bits, (k + 1) * bits) of the row; for 4 and
// 8 bits that is 32 / bits values per uint32 word, the first in the lowest bits) taking
// cols * bits / 8 bytes, a whole number of words. scales and biases are row-major
// [rows, cols / group_size] tensors of scale_dtype (f16, bf16 or f32) in the backend's memory.
struct AffineQuant {
  int bits = 0;  // 0: not quantized
  int group_size = 0;
  DType scale_dtype = DType::kF16;
  void* scales = nullptr;
  void* biases = nullptr;
};

struct Tensor {
  Tensor() = default;
  Tensor(void* data, DType dtype, int64_t rows, int64_t cols)
      : data(data), dtype(dtype), rows(rows), cols(cols) {}

  void* data = nullptr;
  DType dtype = DType::kF32;  // kU32 when quantized
  int64_t rows = 0;
  int64_t cols = 0;   // logical columns (values), also when quantized
  AffineQuant quant;  // bits > 0: data holds packed values (dtype kU32)

  bool quantized() const { return quant.bits > 0; }
  size_t numel() const { return size_t(rows) * size_t(cols); }
  // Bytes of one row of `data`.
  size_t row_bytes() const {
    return quantized() ? size_t(cols) * size_t(quant.bits) / 8 : size_t(cols) * dtype_size(dtype);
  }
  size_t nbytes() const { return size_t(rows) * row_bytes(); }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // Rows [begin, begin + n) as a view (of the scales and biases too, when quantized).
  Tensor slice_rows(int64_t begin, int64_t n) const {
    Tensor t = *this;
    t.data = static_cast<char*>(data) + size_t(begin) * row_bytes();
    t.rows = n;
    if (quantized()) {
      const size_t group_bytes =
          size_t(cols / quant.group_size) * dtype_size(quant.scale_dtype) * size_t(begin);
      t.quant.scales = static_cast<char*>(quant.scales) + group_bytes;
      t.quant.biases = static_cast<char*>(quant.biases) + group_bytes;
    }
    return t;
  }
};

// Rotary embedding parameters, resolved from config.json (incl. Llama 3.1 "llama3" scaling).
// inv_freq has Dh/2 entries; the rotation pairs element i with element i + Dh/2 (HF "rotate_half").
struct RopeParams {
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;  // multiplies cos/sin (1 except for yarn-style scaling)
};

// Attention metadata for one step, planned once and used by every layer.
// Sequence s owns token rows [query_start[s], query_start[s+1]); its new tokens sit at the end of
// its context, so query row i of s (0-based within s) has position
// context_len[s] - q_len(s) + i and attends to key positions [max(0, pos - window + 1), pos].
struct AttentionBatch {
  int num_seqs = 0;
  int block_size = 16;                // tokens per KV block
  int max_blocks_per_seq = 0;         // columns of block_tables
  std::vector<int32_t> query_start;   // S + 1
  std::vector<int32_t> context_len;   // S: tokens in the cache after this step's writes
  std::vector<int32_t> block_tables;  // S * max_blocks_per_seq, physical block ids, -1 = unused
  std::vector<int32_t> positions;     // T
  std::vector<int32_t> slot_mapping;  // T: block * block_size + offset where each token's K/V go
  int sliding_window = 0;             // 0 = full attention
};

// Free and total bytes of one memory: a device's, or the host's (free = available).
struct MemoryInfo {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};

// One layer's paged KV cache: K and V each [num_blocks * block_size, Hk * Dh].
struct KvLayer {
  Tensor k;
  Tensor v;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // --- memory ---------------------------------------------------------------------------
  // Uninitialised device memory for a [rows, cols] tensor of dtype; null data on failure.
  virtual Tensor alloc(DType dtype, int64_t rows, int64_t cols) = 0;
  virtual void free(Tensor& t) = 0;
  virtual void upload(const void* host, size_t bytes, void* device) = 0;
  virtual void download(const void* device, size_t bytes, void* host) = 0;
  // Waits for queued work (a no-op on synchronous backends).
  virtual void synchronize() {}
  // Starts a device-to-host copy, ordered after the work queued so far, without waiting; `host`
  // must stay valid and unread until wait_download() of the returned ticket. Lets the caller
  // queue more work and do host work meanwhile. Default: a synchronous download(), ticket 0.
  virtual uint64_t download_async(const void* device, size_t bytes, void* host) {
    download(device, bytes, host);
    return 0;
  }
  // Waits for the copy `ticket` (and so for the work queued before it, not after) and lands it
  // in its host buffer; earlier tickets not yet waited for land too. Ticket 0 is a no-op.
  virtual void wait_download(uint64_t ticket) {}
  // The element type this backend wants its KV cache in (f32 on the CPU reference).
  virtual DType kv_dtype() const { return DType::kF32; }

  // --- ops --------------------------------------------------------------------------------
  // out[t] = table[ids[t]]; ids: T device int32, table [V, D], out [T, D].
  virtual void embedding(const Tensor& ids, const Tensor& table, Tensor& out) = 0;
  // out = rms_norm(x) * weight; x, out [N, C]; weight [1, C]. Rows may be heads (C = Dh).
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  // residual += x; out = rms_norm(residual) * weight.
  virtual void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& weight, float eps,
                            Tensor& out) = 0;
  // out[T, N] = x[T, K] @ w[N, K]^T (+ bias[1, N] if bias.data). w may be quantized (Tensor::
  // quant) when supports_quant(w.quant.bits, w.quant.group_size); so may the embedding table,
  // and the gate/up weights of prepare_gate_up() / linear_swiglu().
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) = 0;
  // True when this backend's linear(), embedding() and linear_swiglu() take affine-quantized
  // weights of `bits` bits in groups of `group_size`. The loader refuses other weights by name.
  virtual bool supports_quant(int bits, int group_size) const { return false; }
  // In place on x [T, heads * Dh], rotating each head at positions[t] (device int32).
  virtual void rope(Tensor& x, int heads, int head_dim, const Tensor& positions,
                    const RopeParams& rope) = 0;
  // Copies the column blocks of qkv [T, (H + 2 Hk) * Dh] into q, k, v (each [T, cols]).
  virtual void split_qkv(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) = 0;
  // out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]; gate_up [T, 2I].
  virtual void silu_mul(const Tensor& gate_up, Tensor& out) = 0;
  // x += y, both [N, C].
  virtual void add(Tensor& x, const Tensor& y) = 0;
  // out[i] = x[rows[i]]; rows device int32 [R].
  virtual void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) = 0;

  // Called once per step before any layer runs: a device backend copies the batch's int32
  // arrays to device memory here, so every layer's attention() reuses them.
  virtual void begin_step(const AttentionBatch& batch) {}
  // Writes k, v [T, Hk * Dh] into the cache at batch.slot_mapping, then computes causal GQA
  // attention of q [T, H * Dh] over each sequence's cached context into out [T, H * Dh],
  // with softmax scale `scale`. `batch` is the one given to begin_step().
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, KvLayer& cache,
                         const AttentionBatch& batch, int heads, int kv_heads, int head_dim,
                         float scale, Tensor& out) = 0;

  // --- optional parts (defaults suit a synchronous backend) ----------------------------------
  // The attention prologue of one layer, fused where the backend can: split_qkv(qkv, q, k, v),
  // per-head RMSNorm of q and k with q_norm / k_norm [1, Dh] when those have data, then rope()
  // on q and k at `positions`. A backend may also write k and v into `cache` at the step's slot
  // mapping here (attention() then skips that write for this cache). The default runs the
  // separate ops and leaves the write to attention().
  virtual void qkv_prepare(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v, const Tensor& q_norm,
                           const Tensor& k_norm, float eps, const Tensor& positions,
                           const RopeParams& rope, int heads, int kv_heads, int head_dim,
                           KvLayer& cache);
  // Gate/up weights of an MLP, [2I, K] (the I gate rows, then the I up rows) and their bias
  // [2I] (may be null): the backend may store them in a layout of its own, after which they
  // are only used through linear_swiglu(). Called once at load. Default: left as they are.
  virtual void prepare_gate_up(Tensor& w, Tensor& bias) {}
  // act[M, I] = silu(x @ gate^T + b_gate) * (x @ up^T + b_up), w and bias as prepare_gate_up()
  // left them; gate_up [M, 2I] f32 is scratch the backend may use. Default: linear() into
  // gate_up, then silu_mul().
  virtual void linear_swiglu(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& gate_up,
                             Tensor& act) {
    linear(x, w, bias, gate_up);
    silu_mul(gate_up, act);
  }
  // Placeholder tokens: ids[i] < 0 becomes prev[-ids[i] - 1], in place, on the device, so a
  // step can take the tokens a previous step sampled before they reach the host. ids int32
  // [T, 1]; prev int32 [>= every referenced row]. The default goes through the host.
  virtual void resolve_placeholders(Tensor& ids, const Tensor& prev);
  // Constrained decoding: logits[r, v] = -infinity where bit (v % 32) of masks[r, v / 32] is 0.
  // logits [R, V] f32, masks [R, (V + 31) / 32] int32 (uint32 words), both device. The default
  // goes through the host.
  virtual void mask_logits(Tensor& logits, const Tensor& masks);
  // out[r] = argmax of row r of x [R, V] f32 (lowest index on ties); out device int32 [R, 1].
  // The default downloads x and computes on the host.
  virtual void argmax_rows(const Tensor& x, Tensor& out);
  // Samples row r of logits [R, V] f32 with batch.params[r], batch.steps[r] and row r's
  // history, exactly as the host sample() does (sampler.h: the same token; the logprob of the
  // penalised logits before temperature, equal up to summation order): out_tokens int32 [R, 1]
  // and out_logprobs f32 [R, 1], both device. The default downloads the logits and calls
  // sample() per row, so the CPU backend is the reference by construction.
  virtual void sample_rows(const Tensor& logits, const SampleBatch& batch, Tensor& out_tokens,
                           Tensor& out_logprobs);
  // The first error an asynchronous backend met since the last call (then cleared), naming the
  // call, file and line; ok on synchronous backends, whose errors are bugs and abort.
  virtual Status take_error() { return {}; }

  // Step graphs: a backend that can record the ops of a step and replay them (CUDA graphs).
  // Protocol, per step, after begin_step(): if replay_graph(key) returns true the ops already
  // ran; otherwise the caller runs the ops between begin_graph(key) and end_graph(key), and
  // once more if end_graph returns false (the recording failed and nothing ran). A recording
  // bakes in every device pointer and launch shape, so `key` must name everything that can
  // change them (model, cache, token and row counts); the backend drops its graphs when any
  // tensor is freed or one of its own buffers moves. Default: no graphs.
  virtual bool replay_graph(uint64_t key) { return false; }
  virtual void begin_graph(uint64_t key) {}
  virtual bool end_graph(uint64_t key) { return true; }
  // True when replay_graph() can ever return true (graphs compiled in and enabled); the model
  // then pads decode steps to a few bucket sizes and records them at load. Default: false.
  virtual bool supports_graphs() const { return false; }
  // Recordings ready to replay (0 on a backend without graphs).
  virtual int num_graphs() const { return 0; }

  // Memory: a backend whose alloc() takes memory of its own device reports that memory's free
  // and total bytes now (the KV pool is sized from it). Default: nullopt, for backends that
  // allocate host memory (the CPU backend), whose pool follows a byte budget instead.
  virtual std::optional<MemoryInfo> device_memory() const { return std::nullopt; }
};

// The CPU backend. num_threads > 0 sets the OpenMP thread count. Its matrix kernels use family
// `isa` (cpu_features.h; a family this CPU lacks is a bug: check cpu::isa_supported first), by
// default cpu::default_isa().
std::unique_ptr<Backend> make_cpu_backend(int num_threads = 0);
std::unique_ptr<Backend> make_cpu_backend(int num_threads, cpu::Isa isa);

}  // namespace mlxs
