// The CUDA backend: every op of backend.h on one stream, weights in the checkpoint dtype, f32
// activations, a KV cache in any float dtype (bf16 for serving), cuBLAS for the linear layers
// with more rows than the GEMV takes, and CUDA graphs for decode steps.
//
// Memory protocol: upload() of a small buffer goes through a pinned staging ring and an async
// copy on the stream; large uploads (weights) are synchronous. download() waits for the
// stream. download_async() lands in a pinned readback ring and records an event; waiting for
// its ticket waits for that event only, so steps queued after it keep running, and frees the
// staging slots queued before it.
// Graphs: a key is run eagerly the first time (so every buffer is sized and every table
// uploaded), captured and launched the second time, and replayed afterwards. Any free() or any
// growth of a backend buffer drops all graphs, because recordings bake device pointers in.
// Errors: every CUDA and cuBLAS call is checked into this backend's own slot (cuda::Stream),
// which take_error() empties once per step; nothing here is shared with another backend.
#include "backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "util/byte_ring.h"
#include "util/check.h"

namespace mlxs {
namespace {

constexpr size_t kStagingBytes = size_t(16) << 20;  // pinned ring for small uploads
constexpr size_t kSmallUpload = size_t(1) << 20;    // larger uploads go synchronously
constexpr size_t kCublasWorkspace = size_t(32) << 20;
constexpr size_t kReadbackBytes = size_t(1) << 20;  // pinned landing area of download_async()
// gemm_quant() dequantizes at most this many bytes of weight rows per cuBLAS call.
constexpr size_t kDequantBytes = size_t(64) << 20;

cuda::QuantView quant_view(const Tensor& w) {
  return {w.data,       w.quant.scales,     w.quant.biases, w.quant.scale_dtype,
          w.quant.bits, w.quant.group_size, w.rows,         w.cols};
}

// A device buffer that only grows; growth is reported so graphs can be dropped.
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  // Returns true when the buffer moved; a failure goes to `stream`'s slot.
  bool reserve(size_t need, cuda::Stream& stream) {
    if (need <= bytes) return false;
    if (ptr) MLXS_CUDA(stream, cudaFree(ptr));
    bytes = std::max(need, bytes * 2);
    if (!MLXS_CUDA(stream, cudaMalloc(&ptr, bytes))) ptr = nullptr, bytes = 0;
    return true;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaBackendConfig& config, int device) : opt_(config), device_(device) {
    stream_.pdl = config.pdl;
  }
  ~CudaBackend() override;
  Status init();
  std::string name() const override { return "cuda"; }
  // Precise mode keeps the KV cache in f32 too (it matches the CPU reference up to summation
  // order); the fast mode stores it in bf16 (half the memory, twice the sequences).
  DType kv_dtype() const override { return precise() ? DType::kF32 : DType::kBF16; }

  Tensor alloc(DType dtype, int64_t rows, int64_t cols) override;
  void free(Tensor& t) override;
  void upload(const void* host, size_t bytes, void* device) override;
  void download(const void* device, size_t bytes, void* host) override;
  uint64_t download_async(const void* device, size_t bytes, void* host) override;
  void wait_download(uint64_t ticket) override;
  void synchronize() override {
    MLXS_CUDA(stream_, cudaStreamSynchronize(stream_.handle));
    staging_ring_.release_all();
  }
  Status take_error() override;
  std::optional<MemoryInfo> device_memory() const override;

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    cuda::rms_norm(x.as<float>(), w.as<float>(), x.rows, x.cols, eps, out.as<float>(), stream_);
  }
  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                    Tensor& out) override {
    cuda::add_rms_norm(residual.as<float>(), x.as<float>(), w.as<float>(), x.rows, x.cols, eps,
                       out.as<float>(), stream_);
  }
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) override;
  bool supports_quant(int bits, int group_size) const override {
    return cuda::quant_supported(bits, group_size);
  }
  void prepare_gate_up(Tensor& w, Tensor& bias) override;
  void linear_swiglu(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& gate_up,
                     Tensor& act) override;
  void rope(Tensor& x, int heads, int head_dim, const Tensor& positions,
            const RopeParams& rope) override;
  void split_qkv(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) override {
    cuda::split_qkv(qkv.as<float>(), qkv.rows, q.cols, k.cols, v.cols, q.as<float>(), k.as<float>(),
                    v.as<float>(), stream_);
  }
  void silu_mul(const Tensor& gate_up, Tensor& out) override {
    cuda::silu_mul(gate_up.as<float>(), out.rows, out.cols, false, out.as<float>(), stream_);
  }
  void add(Tensor& x, const Tensor& y) override {
    cuda::add(x.as<float>(), y.as<float>(), int64_t(x.numel()), stream_);
  }
  void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) override {
    cuda::gather_rows(x.as<float>(), x.cols, rows.as<int32_t>(), out.rows, out.as<float>(),
                      stream_);
  }
  void resolve_placeholders(Tensor& ids, const Tensor& prev) override {
    cuda::resolve_placeholders(ids.as<int32_t>(), ids.numel(), prev.as<int32_t>(), stream_);
  }
  void mask_logits(Tensor& logits, const Tensor& masks) override {
    cuda::mask_logits(logits.as<float>(), logits.rows, logits.cols,
                      reinterpret_cast<const uint32_t*>(masks.data), masks.cols, stream_);
  }
  void argmax_rows(const Tensor& x, Tensor& out) override {
    cuda::argmax_rows(x.as<float>(), x.rows, x.cols, out.as<int32_t>(), stream_);
  }
  void qkv_prepare(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v, const Tensor& q_norm,
                   const Tensor& k_norm, float eps, const Tensor& positions, const RopeParams& rope,
                   int heads, int kv_heads, int head_dim, KvLayer& cache) override;
  void sample_rows(const Tensor& logits, const SampleBatch& batch, Tensor& out_tokens,
                   Tensor& out_logprobs) override;
  void begin_step(const AttentionBatch& batch) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, KvLayer& cache,
                 const AttentionBatch& batch, int heads, int kv_heads, int head_dim, float scale,
                 Tensor& out) override;

  bool replay_graph(uint64_t key) override;
  void begin_graph(uint64_t key) override;
  bool end_graph(uint64_t key) override;
  bool supports_graphs() const override { return opt_.graphs; }
  int num_graphs() const override {
    return int(std::count_if(graphs_.begin(), graphs_.end(),
                             [](const auto& kv) { return kv.second.exec != nullptr; }));
  }

 private:
  // Copies `bytes` from host to device on the stream through the pinned ring.
  void stage(const void* host, size_t bytes, void* device);
  // Grows `b` to `need` bytes; drops the graphs if it moved.
  void reserve(DeviceBuffer& b, size_t need) {
    if (b.reserve(need, stream_)) drop_graphs();
  }
  void drop_graphs();
  // out (+)= x @ w^T (+ b) on cuBLAS (bf16/f16 weights: x cast to the weight dtype, split in
  // hi + lo halves in precise mode).
  void gemm(const Tensor& x, const Tensor& w, const float* b, Tensor& out);
  // The same for quantized w: row blocks of w dequantized into dequant_ (bf16, or f32 in
  // precise mode), each multiplied on cuBLAS into its columns of out.
  void gemm_quant(const Tensor& x, const Tensor& w, const float* b, Tensor& out);
  // True when quantized w takes the quantized GEMV for M rows of x.
  bool use_qgemv(int64_t M, const Tensor& w) const;
  const float* inv_freq_table(const RopeParams& rope);

  bool precise() const { return opt_.precision == CudaPrecision::kPrecise; }

  CudaBackendConfig opt_;
  int device_ = 0;
  cuda::Stream stream_;  // the stream, the PDL option and this backend's error slot
  cublasHandle_t cublas_ = nullptr;
  void* cublas_ws_ = nullptr;
  char* staging_ = nullptr;  // pinned, kStagingBytes
  ByteRing staging_ring_{kStagingBytes};
  // download_async(): copies land in the pinned readback_ ring, moved to their destinations by
  // wait_download(), oldest first.
  struct PendingDownload {
    uint64_t ticket;
    cudaEvent_t done;  // recorded after the copy
    const char* slot;
    void* host;
    size_t bytes;
    uint64_t staging_mark, readback_mark;  // ring positions to release once `done`
  };
  char* readback_ = nullptr;  // pinned, kReadbackBytes
  ByteRing readback_ring_{kReadbackBytes};
  std::deque<PendingDownload> pending_downloads_;
  std::vector<cudaEvent_t> free_events_;
  uint64_t last_ticket_ = 0;

  // Step metadata on the device, laid out by capacity so addresses stay put between steps.
  DeviceBuffer meta_;
  std::vector<int32_t> meta_host_;
  int cap_seqs_ = 0, cap_tokens_ = 0, cap_tiles_ = 0, bt_stride_ = 0;
  const int32_t *d_query_start_ = nullptr, *d_context_len_ = nullptr, *d_slots_ = nullptr,
                *d_tiles_ = nullptr, *d_block_tables_ = nullptr;
  int num_tiles_ = 0, max_tile_rows_ = 0, num_tiles16_ = 0;
  const int32_t* d_tiles16_ = nullptr;
  const void* kv_written_ = nullptr;  // the cache qkv_prepare() already wrote this layer's K/V to

  DeviceBuffer act_hi_, act_lo_, part_o_, part_ml_, split_counters_;
  DeviceBuffer dequant_;  // gemm_quant(): one block of dequantized weight rows
  // Gate/up weights whose rows prepare_gate_up() interleaved (gate_0, up_0, gate_1, ...).
  std::unordered_set<const void*> interleaved_;
  DeviceBuffer sample_meta_, sample_scratch_;  // sample_rows(): row params + history, [R, V]
  std::unordered_map<uint64_t, DeviceBuffer> rope_tables_;

  struct Graph {
    int seen = 0;
    cudaGraphExec_t exec = nullptr;
  };
  std::unordered_map<uint64_t, Graph> graphs_;
  bool capturing_ = false;
  bool capture_broken_ = false;
};

Status CudaBackend::init() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return error(ErrorCode::kRuntimeError, "no CUDA device is present");
  }
  if (device_ < 0 || device_ >= count) {
    return error(ErrorCode::kInvalidParams, "CUDA device " + std::to_string(device_) +
                                                " does not exist (" + std::to_string(count) +
                                                " present)");
  }
  bool ok = MLXS_CUDA(stream_, cudaSetDevice(device_)) &&
            MLXS_CUDA(stream_, cudaStreamCreateWithFlags(&stream_.handle, cudaStreamNonBlocking)) &&
            MLXS_CUDA(stream_, cudaMallocHost(&staging_, kStagingBytes)) &&
            MLXS_CUDA(stream_, cudaMallocHost(&readback_, kReadbackBytes)) &&
            MLXS_CUDA(stream_, cudaMalloc(&cublas_ws_, kCublasWorkspace)) &&
            MLXS_CUBLAS(stream_, cublasCreate(&cublas_)) &&
            MLXS_CUBLAS(stream_, cublasSetStream(cublas_, stream_.handle)) &&
            MLXS_CUBLAS(stream_, cublasSetWorkspace(cublas_, cublas_ws_, kCublasWorkspace)) &&
            MLXS_CUBLAS(stream_, cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  if (ok) {  // the attention kernels' shared memory limits, on this backend's device
    cuda::configure_attention(stream_);
    cuda::configure_attention_tc(stream_);
  }
  const std::string failure = stream_.take_first_failure();
  if (!ok || !failure.empty()) return error(ErrorCode::kRuntimeError, "CUDA init: " + failure);
  return {};
}

CudaBackend::~CudaBackend() {
  if (stream_.handle) cudaStreamSynchronize(stream_.handle);
  drop_graphs();
  if (cublas_) cublasDestroy(cublas_);
  if (cublas_ws_) cudaFree(cublas_ws_);
  if (staging_) cudaFreeHost(staging_);
  if (readback_) cudaFreeHost(readback_);
  for (const PendingDownload& p : pending_downloads_) cudaEventDestroy(p.done);
  for (cudaEvent_t e : free_events_) cudaEventDestroy(e);
  if (stream_.handle) cudaStreamDestroy(stream_.handle);
}

Status CudaBackend::take_error() {
  std::string f = stream_.take_first_failure();
  if (f.empty()) return {};
  return error(ErrorCode::kRuntimeError, "CUDA: " + f);
}

// --- memory ----------------------------------------------------------------------------------

Tensor CudaBackend::alloc(DType dtype, int64_t rows, int64_t cols) {
  size_t bytes = std::max<size_t>(256, size_t(rows) * size_t(cols) * dtype_size(dtype));
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();  // out of memory is reported by the null pointer, not as a failure
    p = nullptr;
  }
  return {p, dtype, rows, cols};
}

void CudaBackend::free(Tensor& t) {
  if (!t.data) return;
  drop_graphs();  // a recording may hold this pointer
  MLXS_CUDA(stream_, cudaStreamSynchronize(stream_.handle));
  interleaved_.erase(t.data);
  MLXS_CUDA(stream_, cudaFree(t.data));
  t.data = nullptr;
}

std::optional<MemoryInfo> CudaBackend::device_memory() const {
  size_t free_bytes = 0, total_bytes = 0;
  // The query goes to the calling thread's current device: make it this backend's. A failed
  // query is no step's failure: it answers "unknown" and leaves this backend's error slot alone.
  if (cudaSetDevice(device_) != cudaSuccess ||
      cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return std::nullopt;
  }
  return MemoryInfo{int64_t(free_bytes), int64_t(total_bytes)};
}

void CudaBackend::stage(const void* host, size_t bytes, void* device) {
  const size_t aligned = (bytes + 255) / 256 * 256;
  if (aligned > kStagingBytes) {  // larger than the ring: a synchronous copy
    MLXS_CUDA(stream_,
              cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_.handle));
    MLXS_CUDA(stream_, cudaStreamSynchronize(stream_.handle));
    return;
  }
  std::optional<uint64_t> off = staging_ring_.alloc(aligned);
  if (!off) {
    synchronize();  // every earlier staged copy has landed: the whole ring is free
    off = staging_ring_.alloc(aligned);
  }
  char* slot = staging_ + *off;
  std::memcpy(slot, host, bytes);
  MLXS_CUDA(stream_, cudaMemcpyAsync(device, slot, bytes, cudaMemcpyHostToDevice, stream_.handle));
}

void CudaBackend::upload(const void* host, size_t bytes, void* device) {
  if (bytes == 0) return;
  if (bytes <= kSmallUpload) return stage(host, bytes, device);
  MLXS_CUDA(stream_, cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_.handle));
  MLXS_CUDA(stream_, cudaStreamSynchronize(stream_.handle));
}

void CudaBackend::download(const void* device, size_t bytes, void* host) {
  if (bytes > 0)
    MLXS_CUDA(stream_,
              cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_.handle));
  synchronize();
}

uint64_t CudaBackend::download_async(const void* device, size_t bytes, void* host) {
  if (bytes == 0) return 0;
  const size_t aligned = (bytes + 255) / 256 * 256;
  std::optional<uint64_t> off = readback_ring_.alloc(aligned);
  if (!off) {
    wait_download(last_ticket_);  // lands every pending copy: the ring is free
    off = readback_ring_.alloc(aligned);
  }
  cudaEvent_t done = nullptr;
  if (!free_events_.empty()) {
    done = free_events_.back();
    free_events_.pop_back();
  } else if (!MLXS_CUDA(stream_, cudaEventCreateWithFlags(&done, cudaEventDisableTiming))) {
    done = nullptr;
  }
  if (!off || !done) {  // larger than the ring, or no event: a synchronous copy
    if (done) free_events_.push_back(done);
    download(device, bytes, host);
    return 0;
  }
  char* slot = readback_ + *off;
  MLXS_CUDA(stream_, cudaMemcpyAsync(slot, device, bytes, cudaMemcpyDeviceToHost, stream_.handle));
  MLXS_CUDA(stream_, cudaEventRecord(done, stream_.handle));
  pending_downloads_.push_back(
      {++last_ticket_, done, slot, host, bytes, staging_ring_.mark(), readback_ring_.mark()});
  return last_ticket_;
}

void CudaBackend::wait_download(uint64_t ticket) {
  while (!pending_downloads_.empty() && pending_downloads_.front().ticket <= ticket) {
    const PendingDownload p = pending_downloads_.front();
    pending_downloads_.pop_front();
    MLXS_CUDA(stream_, cudaEventSynchronize(p.done));
    std::memcpy(p.host, p.slot, p.bytes);
    // Everything staged before the copy was queued has been consumed by the stream.
    staging_ring_.release_to(p.staging_mark);
    readback_ring_.release_to(p.readback_mark);
    free_events_.push_back(p.done);
  }
}

// --- linear ----------------------------------------------------------------------------------

// Napkin math for the cuBLAS path (prefill, T = 512, Llama-3.1-8B): 2 * 8e9 * 512 = 8.2 TFLOP,
// 10.4 ms at the measured ~790 TFLOP/s bf16 rate; the f32 -> bf16 cast of x moves T * K * 6 B,
// under 1 % of that. precise_activations doubles the GEMM work (x = hi + lo).
void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) {
  const int64_t M = x.rows, K = w.cols;
  MLXS_CHECK(x.cols == K && out.cols == w.rows && out.rows == x.rows);
  MLXS_CHECK(!interleaved_.count(w.data));  // interleaved gate/up go through linear_swiglu()
  const float* b = bias.data ? bias.as<float>() : nullptr;
  if (w.quantized()) {
    if (use_qgemv(M, w)) {
      cuda::qgemv(x.as<float>(), M, quant_view(w), b, cuda::kEpiStore, out.as<float>(), stream_);
    } else {
      gemm_quant(x, w, b, out);
    }
    return;
  }
  if (M <= opt_.gemv_max_rows && cuda::gemv_supported(M, K, w.dtype)) {
    cuda::gemv(x.as<float>(), M, K, w.data, w.dtype, w.rows, b, !precise(), cuda::kEpiStore,
               out.as<float>(), stream_);
    return;
  }
  gemm(x, w, b, out);
}

// Interleaving gate and up rows lets one GEMV warp own a gate row and its up row, so SwiGLU is
// the GEMV's epilogue (no silu_mul kernel, no [M, 2I] intermediate): two strided copies through
// a temporary, once at load.
// Quantized gate/up weights interleave their packed rows, and their scale and bias rows the
// same way, so row n of each keeps describing the same weights.
void CudaBackend::prepare_gate_up(Tensor& w, Tensor& bias) {
  if (!opt_.swiglu_epilogue) return;
  MLXS_CHECK(w.rows % 2 == 0);
  const int64_t I = w.rows / 2;
  auto interleave = [&](void* data, size_t row_bytes) {
    void* tmp = nullptr;
    const size_t bytes = size_t(w.rows) * row_bytes;
    if (!MLXS_CUDA(stream_, cudaMalloc(&tmp, bytes))) return false;
    bool ok = MLXS_CUDA(
        stream_, cudaMemcpyAsync(tmp, data, bytes, cudaMemcpyDeviceToDevice, stream_.handle));
    for (int half = 0; half < 2 && ok; ++half) {
      ok = MLXS_CUDA(
          stream_,
          cudaMemcpy2DAsync(static_cast<char*>(data) + half * row_bytes, 2 * row_bytes,
                            static_cast<const char*>(tmp) + size_t(half) * I * row_bytes, row_bytes,
                            row_bytes, size_t(I), cudaMemcpyDeviceToDevice, stream_.handle));
    }
    ok = MLXS_CUDA(stream_, cudaStreamSynchronize(stream_.handle)) && ok;
    cudaFree(tmp);
    return ok;
  };
  bool ok = interleave(w.data, w.row_bytes());
  if (ok && w.quantized()) {
    const size_t group_bytes =
        size_t(w.cols / w.quant.group_size) * dtype_size(w.quant.scale_dtype);
    ok = interleave(w.quant.scales, group_bytes) && interleave(w.quant.biases, group_bytes);
  }
  // A bias is a [1, 2I] vector: its elements interleave like the rows.
  if (ok && (!bias.data || interleave(bias.data, sizeof(float)))) interleaved_.insert(w.data);
}

void CudaBackend::linear_swiglu(const Tensor& x, const Tensor& w, const Tensor& bias,
                                Tensor& gate_up, Tensor& act) {
  if (!interleaved_.count(w.data)) return Backend::linear_swiglu(x, w, bias, gate_up, act);
  const int64_t M = x.rows, K = w.cols;
  MLXS_CHECK(x.cols == K && act.cols * 2 == w.rows && act.rows == M && gate_up.rows == M);
  const float* b = bias.data ? bias.as<float>() : nullptr;
  if (w.quantized() && use_qgemv(M, w)) {
    cuda::qgemv(x.as<float>(), M, quant_view(w), b, cuda::kEpiSwiGLU, act.as<float>(), stream_);
    return;
  }
  if (!w.quantized() && M <= opt_.gemv_max_rows && cuda::gemv_supported(M, K, w.dtype)) {
    cuda::gemv(x.as<float>(), M, K, w.data, w.dtype, w.rows, b, !precise(), cuda::kEpiSwiGLU,
               act.as<float>(), stream_);
    return;
  }
  if (w.quantized())
    gemm_quant(x, w, b, gate_up);  // columns interleaved like the rows
  else
    gemm(x, w, b, gate_up);
  cuda::silu_mul(gate_up.as<float>(), M, act.cols, true, act.as<float>(), stream_);
}

void CudaBackend::gemm(const Tensor& x, const Tensor& w, const float* b, Tensor& out) {
  const int64_t M = x.rows, K = x.cols, N = w.rows;
  const float one = 1.f, zero = 0.f;
  const float* beta = &zero;
  // Column-major view: out^T [N, M] = w [K, N]^T * x^T [K, M].
  if (w.dtype == DType::kF32) {
    MLXS_CUBLAS(stream_, cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K),
                                     &one, w.as<float>(), int(K), x.as<float>(), int(K), beta,
                                     out.as<float>(), int(N)));
  } else {
    const cudaDataType_t dt = w.dtype == DType::kBF16 ? CUDA_R_16BF : CUDA_R_16F;
    const size_t half_bytes = size_t(M) * size_t(K) * 2;
    reserve(act_hi_, half_bytes);
    if (precise()) reserve(act_lo_, half_bytes);
    void* lo = precise() ? act_lo_.ptr : nullptr;
    cuda::split_to_half(x.as<float>(), M * K, w.dtype, act_hi_.ptr, lo, stream_);
    MLXS_CUBLAS(stream_,
                cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one,
                             w.data, dt, int(K), act_hi_.ptr, dt, int(K), beta, out.data,
                             CUDA_R_32F, int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (lo) {
      MLXS_CUBLAS(stream_,
                  cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one,
                               w.data, dt, int(K), lo, dt, int(K), &one, out.data, CUDA_R_32F,
                               int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  }
  if (b) cuda::add_bias(out.as<float>(), M, N, b, stream_);
}

// Quantized weights take their GEMV up to kGemvMaxRows rows whatever gemv_max_rows says above
// 0 (that key weighs the bf16 GEMV against cuBLAS reading the same bytes; here the alternative
// first writes and rereads the weights in bf16, 4x the bytes at 4 bits); 0 keeps cuBLAS.
bool CudaBackend::use_qgemv(int64_t M, const Tensor& w) const {
  return opt_.gemv_max_rows > 0 && M >= 1 && M <= cuda::kGemvMaxRows &&
         cuda::quant_shape_supported(quant_view(w));
}

// Prefill and large batches: weights dequantized by row blocks of at most kDequantBytes into
// one reused scratch (sized on the first, eager, run of a step), each block one cuBLAS call
// writing its columns of out. Fast mode: bf16 weights and x, as gemm() with bf16 weights;
// precise mode: f32 weights and SGEMM. Napkin math (prefill, T = 512, 8B, 4 bits): the
// dequantization writes 2 bytes and rereads them per weight (~32 GB/s of step traffic, ~10 ms
// at 3.3 TB/s) next to 10.4 ms of tensor-core work; a fused dequantize-in-tile GEMM would
// remove the first term.
void CudaBackend::gemm_quant(const Tensor& x, const Tensor& w, const float* b, Tensor& out) {
  const int64_t M = x.rows, K = x.cols, N = w.rows;
  MLXS_CHECK(cuda::quant_shape_supported(quant_view(w)));
  const DType wt = precise() ? DType::kF32 : DType::kBF16;
  const size_t row_bytes = size_t(K) * dtype_size(wt);
  const int64_t block_rows = std::clamp<int64_t>(int64_t(kDequantBytes / row_bytes), 1, N);
  reserve(dequant_, size_t(block_rows) * row_bytes);
  if (!precise()) {
    reserve(act_hi_, size_t(M) * size_t(K) * 2);
    cuda::split_to_half(x.as<float>(), M * K, DType::kBF16, act_hi_.ptr, nullptr, stream_);
  }
  const float one = 1.f, zero = 0.f;
  for (int64_t n0 = 0; n0 < N; n0 += block_rows) {
    const int64_t rows = std::min(block_rows, N - n0);
    cuda::dequantize_rows(quant_view(w), nullptr, n0, rows, wt, dequant_.ptr, stream_);
    float* o = out.as<float>() + n0;
    // Column-major view: out^T [rows, M] (leading dimension N) = block [K, rows]^T * x^T.
    if (precise()) {
      MLXS_CUBLAS(stream_, cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(M), int(K),
                                       &one, static_cast<const float*>(dequant_.ptr), int(K),
                                       x.as<float>(), int(K), &zero, o, int(N)));
    } else {
      MLXS_CUBLAS(stream_, cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(M),
                                        int(K), &one, dequant_.ptr, CUDA_R_16BF, int(K),
                                        act_hi_.ptr, CUDA_R_16BF, int(K), &zero, o, CUDA_R_32F,
                                        int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  }
  if (b) cuda::add_bias(out.as<float>(), M, N, b, stream_);
}

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  if (table.quantized()) {
    MLXS_CHECK(cuda::quant_shape_supported(quant_view(table)));
    cuda::dequantize_rows(quant_view(table), ids.as<int32_t>(), 0, int64_t(ids.numel()),
                          DType::kF32, out.data, stream_);
    return;
  }
  cuda::embedding(ids.as<int32_t>(), int64_t(ids.numel()), table.data, table.dtype, table.cols,
                  out.as<float>(), stream_);
}

// --- RoPE --------------------------------------------------------------------------------------

const float* CudaBackend::inv_freq_table(const RopeParams& rope) {
  uint64_t h = 1469598103934665603ull;
  for (float f : rope.inv_freq) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    h = (h ^ u) * 1099511628211ull;
  }
  h ^= rope.inv_freq.size() << 48;
  DeviceBuffer& b = rope_tables_[h];
  if (!b.ptr) {
    reserve(b, rope.inv_freq.size() * sizeof(float));
    stage(rope.inv_freq.data(), rope.inv_freq.size() * sizeof(float), b.ptr);
  }
  return static_cast<const float*>(b.ptr);
}

void CudaBackend::rope(Tensor& x, int heads, int head_dim, const Tensor& positions,
                       const RopeParams& rope) {
  cuda::rope(x.as<float>(), x.rows, x.cols, heads, head_dim, positions.as<int32_t>(),
             inv_freq_table(rope), rope.attention_scaling, stream_);
}

// --- attention ---------------------------------------------------------------------------------

void CudaBackend::begin_step(const AttentionBatch& b) {
  const int S = b.num_seqs, T = int(b.slot_mapping.size());
  std::vector<int32_t> tiles;
  max_tile_rows_ = 0;
  for (int s = 0; s < S; ++s) {
    for (int t = b.query_start[size_t(s)]; t < b.query_start[size_t(s) + 1];
         t += cuda::kAttnTileRows) {
      const int rows = std::min(cuda::kAttnTileRows, b.query_start[size_t(s) + 1] - t);
      tiles.insert(tiles.end(), {s, t, rows, 0});
      max_tile_rows_ = std::max(max_tile_rows_, rows);
    }
  }
  num_tiles_ = int(tiles.size() / 4);
  // Tensor-core prefill tiles: 16 tokens of one sequence.
  std::vector<int32_t> tiles16;
  for (int s = 0; s < S; ++s) {
    for (int t = b.query_start[size_t(s)]; t < b.query_start[size_t(s) + 1];
         t += cuda::kAttnTcTileRows) {
      const int rows = std::min(cuda::kAttnTcTileRows, b.query_start[size_t(s) + 1] - t);
      tiles16.insert(tiles16.end(), {s, t, rows, 0});
    }
  }
  num_tiles16_ = int(tiles16.size() / 4);
  if (S > cap_seqs_ || T > cap_tokens_ || num_tiles_ > cap_tiles_ ||
      b.max_blocks_per_seq > bt_stride_) {
    cap_seqs_ = std::max(cap_seqs_, std::max(S, 256));
    cap_tokens_ = std::max(cap_tokens_, std::max(T, 1024));
    cap_tiles_ = std::max(cap_tiles_, std::max(num_tiles_, 1024));
    // Doubling: a sequence growing past the width one block at a time must not drop the
    // graphs at every block.
    if (b.max_blocks_per_seq > bt_stride_) {
      bt_stride_ = std::max({b.max_blocks_per_seq, 2 * bt_stride_, 256});
    }
    drop_graphs();
  }
  // Layout: query_start | context_len | slots | tiles | tiles16 | block tables [cap_seqs,
  // bt_stride] (there are never more 16-token tiles than 8-token tiles).
  const size_t o_cl = size_t(cap_seqs_) + 1, o_slots = o_cl + size_t(cap_seqs_),
               o_tiles = o_slots + size_t(cap_tokens_), o_t16 = o_tiles + 4 * size_t(cap_tiles_),
               o_bt = o_t16 + 4 * size_t(cap_tiles_),
               total = o_bt + size_t(cap_seqs_) * size_t(bt_stride_);
  reserve(meta_, total * sizeof(int32_t));
  const int32_t* base = static_cast<const int32_t*>(meta_.ptr);
  d_query_start_ = base, d_context_len_ = base + o_cl, d_slots_ = base + o_slots;
  d_tiles_ = base + o_tiles, d_tiles16_ = base + o_t16, d_block_tables_ = base + o_bt;
  const size_t used = o_bt + size_t(S) * size_t(bt_stride_);
  meta_host_.assign(used, -1);
  std::copy(b.query_start.begin(), b.query_start.end(), meta_host_.begin());
  std::copy(b.context_len.begin(), b.context_len.end(), meta_host_.begin() + ptrdiff_t(o_cl));
  std::copy(b.slot_mapping.begin(), b.slot_mapping.end(), meta_host_.begin() + ptrdiff_t(o_slots));
  std::copy(tiles.begin(), tiles.end(), meta_host_.begin() + ptrdiff_t(o_tiles));
  std::copy(tiles16.begin(), tiles16.end(), meta_host_.begin() + ptrdiff_t(o_t16));
  for (int s = 0; s < S; ++s) {
    auto row = b.block_tables.begin() + ptrdiff_t(s) * b.max_blocks_per_seq;
    std::copy(row, row + b.max_blocks_per_seq,
              meta_host_.begin() + ptrdiff_t(o_bt + size_t(s) * size_t(bt_stride_)));
  }
  stage(meta_host_.data(), used * sizeof(int32_t), meta_.ptr);
}

void CudaBackend::qkv_prepare(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v,
                              const Tensor& q_norm, const Tensor& k_norm, float eps,
                              const Tensor& positions, const RopeParams& rope, int heads,
                              int kv_heads, int head_dim, KvLayer& cache) {
  if (head_dim > 256 || head_dim % 2) {
    Backend::qkv_prepare(qkv, q, k, v, q_norm, k_norm, eps, positions, rope, heads, kv_heads,
                         head_dim, cache);
    return;
  }
  cuda::QkvPrepareArgs a{};
  a.qkv = qkv.as<float>();
  a.q = q.as<float>(), a.k = k.as<float>(), a.v = v.as<float>();
  a.q_norm = q_norm.data ? q_norm.as<float>() : nullptr;
  a.k_norm = k_norm.data ? k_norm.as<float>() : nullptr;
  a.eps = eps;
  a.positions = positions.as<int32_t>();
  a.inv_freq = inv_freq_table(rope);
  a.rope_scaling = rope.attention_scaling;
  a.heads = heads, a.kv_heads = kv_heads, a.head_dim = head_dim;
  a.num_tokens = qkv.rows;
  a.slots = d_slots_;
  a.k_cache = cache.k.data, a.v_cache = cache.v.data;
  a.cache_dtype = cache.k.dtype;
  cuda::qkv_prepare(a, stream_);
  kv_written_ = cache.k.data;
}

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, KvLayer& cache,
                            const AttentionBatch& b, int heads, int kv_heads, int head_dim,
                            float scale, Tensor& out) {
  const int64_t T = q.rows;
  if (kv_written_ != cache.k.data) {
    cuda::kv_write(k.as<float>(), v.as<float>(), T, k.cols, d_slots_, cache.k.data, cache.v.data,
                   cache.k.dtype, stream_);
  }
  kv_written_ = nullptr;
  cuda::AttentionArgs a{};
  a.q = q.as<float>();
  a.k_cache = cache.k.data;
  a.v_cache = cache.v.data;
  a.cache_dtype = cache.k.dtype;
  a.out = out.as<float>();
  a.query_start = d_query_start_;
  a.context_len = d_context_len_;
  a.block_tables = d_block_tables_;
  a.tiles = d_tiles_;
  a.bt_stride = bt_stride_;
  a.num_tiles = num_tiles_;
  a.max_tile_rows = max_tile_rows_;
  a.block_size = b.block_size;
  a.sliding_window = b.sliding_window;
  a.num_tokens = T;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.scale = scale;
  // Decode steps run the decode kernel (one query row per sequence would leave a 16-row MMA
  // tile mostly empty); steps with prefill chunks run on tensor cores when the cache is bf16,
  // else on the general CUDA-core kernel.
  const bool tc = opt_.attention_tc && max_tile_rows_ > 1 && cuda::attention_tc_supported(a);
  const bool decode = !tc && opt_.attention_decode && cuda::attention_decode_supported(a);
  if (decode) {
    a.num_splits = cuda::attention_decode_splits(num_tiles_, kv_heads);
  } else if (tc) {
    const int group = heads / kv_heads, hpc = cuda::attention_tc_heads_per_chunk(heads, kv_heads);
    const int ctas = num_tiles16_ * kv_heads * ((group + hpc - 1) / hpc);
    a.num_splits = std::clamp((264 + ctas - 1) / ctas, 1, 16);
  } else {
    a.num_splits = cuda::attention_splits(num_tiles_, kv_heads, heads, max_tile_rows_);
  }
  if (decode && a.num_splits > 1) {
    const size_t need = size_t(std::max(cap_seqs_, b.num_seqs)) * size_t(kv_heads) * 4;
    if (need > split_counters_.bytes) {
      reserve(split_counters_, need);
      MLXS_CUDA(stream_,
                cudaMemsetAsync(split_counters_.ptr, 0, split_counters_.bytes, stream_.handle));
    }
    a.split_counters = static_cast<int*>(split_counters_.ptr);
  }
  if (a.num_splits > 1) {
    reserve(part_o_, size_t(a.num_splits) * size_t(T) * size_t(heads) * size_t(head_dim) * 4);
    reserve(part_ml_, size_t(a.num_splits) * size_t(T) * size_t(heads) * 2 * 4);
    a.part_o = static_cast<float*>(part_o_.ptr);
    a.part_ml = static_cast<float*>(part_ml_.ptr);
  }
  if (decode) {
    cuda::paged_attention_decode(a, stream_);
  } else if (tc) {
    cuda::paged_attention_tc(a, d_tiles16_, num_tiles16_, stream_);
    if (a.num_splits > 1) cuda::combine_attention(a, stream_);
  } else {
    cuda::paged_attention(a, stream_);
  }
}

// --- sampling ----------------------------------------------------------------------------------

void CudaBackend::sample_rows(const Tensor& logits, const SampleBatch& b, Tensor& out_tokens,
                              Tensor& out_logprobs) {
  const int64_t R = logits.rows, V = logits.cols;
  MLXS_CHECK(R == b.num_rows() && V < (int64_t(1) << 23));
  std::vector<cuda::SampleRowParams> rows(static_cast<size_t>(R));
  bool any_history = false;
  for (int64_t r = 0; r < R; ++r) {
    const SamplingParams& p = b.params[size_t(r)];
    cuda::SampleRowParams& d = rows[size_t(r)];
    d.inv_t = 1.0 / double(p.temperature);
    d.log_min_p = p.min_p > 0 ? std::log(double(p.min_p)) : -INFINITY;  // as sampler.cc
    d.top_p = p.top_p;
    d.top_k = p.top_k;
    d.repetition = p.repetition_penalty, d.presence = p.presence_penalty;
    d.frequency = p.frequency_penalty;
    d.greedy = p.temperature <= 0.0f || p.top_k == 1 || p.min_p > 1.0f;
    d.seed = p.seed, d.step = b.steps[size_t(r)];
    d.history_begin = b.history_start[size_t(r)], d.history_end = b.history_start[size_t(r) + 1];
    any_history = any_history || d.history_end > d.history_begin;
  }
  // Device layout: rows | token ids | counts | seen flags, each 256-byte aligned.
  const size_t n = b.history_token.size(), align = 256;
  auto up = [&](size_t bytes) { return (bytes + align - 1) / align * align; };
  const size_t o_tok = up(rows.size() * sizeof(cuda::SampleRowParams)), o_cnt = o_tok + up(n * 4),
               o_seen = o_cnt + up(n * 4), total = o_seen + up(n);
  // Sampling runs after the step's graph, never inside one: its buffers may move freely
  // (DeviceBuffer::reserve, not reserve(), which would drop every recorded graph).
  sample_meta_.reserve(total, stream_);
  if (any_history) sample_scratch_.reserve(size_t(R) * size_t(V) * sizeof(float), stream_);
  char* base = static_cast<char*>(sample_meta_.ptr);
  stage(rows.data(), rows.size() * sizeof(cuda::SampleRowParams), base);
  if (n > 0) {
    stage(b.history_token.data(), n * 4, base + o_tok);
    stage(b.history_count.data(), n * 4, base + o_cnt);
    stage(b.history_seen.data(), n, base + o_seen);
  }
  cuda::SampleHistoryView h{reinterpret_cast<const int32_t*>(base + o_tok),
                            reinterpret_cast<const int32_t*>(base + o_cnt),
                            reinterpret_cast<const uint8_t*>(base + o_seen)};
  cuda::sample_rows(logits.as<float>(), R, V, reinterpret_cast<const cuda::SampleRowParams*>(base),
                    h, static_cast<float*>(sample_scratch_.ptr), out_tokens.as<int32_t>(),
                    out_logprobs.as<float>(), stream_);
}

// --- graphs ------------------------------------------------------------------------------------

void CudaBackend::drop_graphs() {
  if (capturing_) capture_broken_ = true;
  for (auto& [key, g] : graphs_) {
    if (g.exec) cudaGraphExecDestroy(g.exec);
  }
  graphs_.clear();
}

bool CudaBackend::replay_graph(uint64_t key) {
  if (!opt_.graphs) return false;
  Graph& g = graphs_[key];
  if (!g.exec) return false;
  return MLXS_CUDA(stream_, cudaGraphLaunch(g.exec, stream_.handle));
}

void CudaBackend::begin_graph(uint64_t key) {
  if (!opt_.graphs) return;
  Graph& g = graphs_[key];
  if (++g.seen < 2) return;  // the first run is eager: it sizes every buffer
  capture_broken_ = false;
  capturing_ =
      MLXS_CUDA(stream_, cudaStreamBeginCapture(stream_.handle, cudaStreamCaptureModeThreadLocal));
}

bool CudaBackend::end_graph(uint64_t key) {
  if (!capturing_) return true;  // the ops ran eagerly
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  bool ok = MLXS_CUDA(stream_, cudaStreamEndCapture(stream_.handle, &graph));
  cudaGraphExec_t exec = nullptr;
  ok = ok && !capture_broken_ && MLXS_CUDA(stream_, cudaGraphInstantiate(&exec, graph, 0));
  if (graph) cudaGraphDestroy(graph);
  Graph& g = graphs_[key];
  if (!ok) {
    std::fprintf(stderr, "cuda backend: recording step graph %llx failed; running it eagerly\n",
                 (unsigned long long)key);
    stream_.take_first_failure();  // the failure is handled here, not the caller's error
    g.seen = -(1 << 30);           // never try this key again
    return false;
  }
  g.exec = exec;
  return MLXS_CUDA(stream_, cudaGraphLaunch(exec, stream_.handle));
}

}  // namespace

bool cuda_backend_compiled() {
  return true;
}

Result<double> cuda_copy_bandwidth_gbs(int device) {
  const size_t bytes = size_t(2) << 30;
  void *a = nullptr, *b = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  std::vector<float> ms;
  cuda::Stream errors;  // on the default stream; its slot keeps this measurement's failure
  bool ok = MLXS_CUDA(errors, cudaSetDevice(device)) && MLXS_CUDA(errors, cudaMalloc(&a, bytes)) &&
            MLXS_CUDA(errors, cudaMalloc(&b, bytes)) &&
            MLXS_CUDA(errors, cudaMemset(a, 1, bytes)) && MLXS_CUDA(errors, cudaEventCreate(&e0)) &&
            MLXS_CUDA(errors, cudaEventCreate(&e1));
  for (int i = 0; ok && i < 13; ++i) {
    ok = MLXS_CUDA(errors, cudaEventRecord(e0)) &&
         MLXS_CUDA(errors, cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice)) &&
         MLXS_CUDA(errors, cudaEventRecord(e1)) && MLXS_CUDA(errors, cudaEventSynchronize(e1));
    float t = 0;
    if (ok && i >= 3 && MLXS_CUDA(errors, cudaEventElapsedTime(&t, e0, e1))) ms.push_back(t);
  }
  if (a) cudaFree(a);
  if (b) cudaFree(b);
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  if (!ok || ms.empty())
    return error(ErrorCode::kRuntimeError, "copy bandwidth: " + errors.take_first_failure());
  std::sort(ms.begin(), ms.end());
  return 2.0 * double(bytes) / (double(ms[ms.size() / 2]) * 1e-3) / 1e9;
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendConfig& config, int device) {
  auto b = std::make_unique<CudaBackend>(config, device);
  MLXS_RETURN_IF_ERROR(b->init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace mlxs
