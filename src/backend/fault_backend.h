// Test support, included by tests only: a Backend decorator that forwards every op to the
// backend it wraps (the optional parts too, so a CUDA backend keeps its graphs, fused ops and
// device sampling) and injects faults of two kinds:
//  - fail_next(n): the next n take_error() calls report "injected device fault" (synthetic: the
//    wrapped backend never sees it);
//  - break_next_step(): the next begin_step() also launches a kernel with an empty grid on the
//    wrapped backend, a real (non-sticky) launch error that lands in that backend's own error
//    slot, as a device fault would. A no-op on the CPU backend (an empty gather does nothing).
// With emulate_device(bytes) it also plays a device of that size: device_memory() reports it
// less the bytes allocated and not freed (how the runner sizes the KV pool is tested with it).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include "backend/backend.h"

namespace mlxs::test_support {

class FaultBackend final : public Backend {
 public:
  explicit FaultBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}
  void fail_next(int n) { armed_.store(n); }
  void break_next_step() { break_step_.store(true); }
  void emulate_device(int64_t total_bytes) { device_bytes_ = total_bytes; }
  // The last device_memory() answer, and how many steps had begun when it was asked.
  MemoryInfo last_query() const { return last_query_; }
  int steps_before_last_query() const { return steps_at_query_; }

  std::string name() const override { return "fault(" + in_->name() + ")"; }
  Tensor alloc(DType dtype, int64_t rows, int64_t cols) override {
    Tensor t = in_->alloc(dtype, rows, cols);
    if (t.data) live_bytes_[t.data] = int64_t(t.nbytes());
    return t;
  }
  void free(Tensor& t) override {
    live_bytes_.erase(t.data);
    in_->free(t);
  }
  std::optional<MemoryInfo> device_memory() const override {
    if (device_bytes_ == 0) return in_->device_memory();
    int64_t used = 0;
    for (const auto& [p, n] : live_bytes_) used += n;
    last_query_ = {device_bytes_ - used, device_bytes_};
    steps_at_query_ = num_steps_;
    return last_query_;
  }
  void upload(const void* host, size_t bytes, void* device) override {
    in_->upload(host, bytes, device);
  }
  void download(const void* device, size_t bytes, void* host) override {
    in_->download(device, bytes, host);
  }
  void synchronize() override { in_->synchronize(); }
  uint64_t download_async(const void* device, size_t bytes, void* host) override {
    return in_->download_async(device, bytes, host);
  }
  void wait_download(uint64_t ticket) override { in_->wait_download(ticket); }
  DType kv_dtype() const override { return in_->kv_dtype(); }

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override {
    in_->embedding(ids, table, out);
  }
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    in_->rms_norm(x, w, eps, out);
  }
  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                    Tensor& out) override {
    in_->add_rms_norm(residual, x, w, eps, out);
  }
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) override {
    in_->linear(x, w, bias, out);
  }
  void rope(Tensor& x, int heads, int head_dim, const Tensor& positions,
            const RopeParams& rope) override {
    in_->rope(x, heads, head_dim, positions, rope);
  }
  void split_qkv(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) override {
    in_->split_qkv(qkv, q, k, v);
  }
  void silu_mul(const Tensor& gate_up, Tensor& out) override { in_->silu_mul(gate_up, out); }
  void add(Tensor& x, const Tensor& y) override { in_->add(x, y); }
  void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) override {
    in_->gather_rows(x, rows, out);
  }
  void begin_step(const AttentionBatch& batch) override {
    ++num_steps_;
    in_->begin_step(batch);
    if (break_step_.exchange(false)) {
      Tensor x{nullptr, DType::kF32, 1, 32}, rows{nullptr, DType::kI32, 0, 1},
          out{nullptr, DType::kF32, 0, 32};
      in_->gather_rows(x, rows, out);  // zero rows: an empty grid
    }
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, KvLayer& cache,
                 const AttentionBatch& batch, int heads, int kv_heads, int head_dim, float scale,
                 Tensor& out) override {
    in_->attention(q, k, v, cache, batch, heads, kv_heads, head_dim, scale, out);
  }
  void qkv_prepare(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v, const Tensor& q_norm,
                   const Tensor& k_norm, float eps, const Tensor& positions, const RopeParams& rope,
                   int heads, int kv_heads, int head_dim, KvLayer& cache) override {
    in_->qkv_prepare(qkv, q, k, v, q_norm, k_norm, eps, positions, rope, heads, kv_heads, head_dim,
                     cache);
  }
  void prepare_gate_up(Tensor& w, Tensor& bias) override { in_->prepare_gate_up(w, bias); }
  void linear_swiglu(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& gate_up,
                     Tensor& act) override {
    in_->linear_swiglu(x, w, bias, gate_up, act);
  }
  void resolve_placeholders(Tensor& ids, const Tensor& prev) override {
    in_->resolve_placeholders(ids, prev);
  }
  void argmax_rows(const Tensor& x, Tensor& out) override { in_->argmax_rows(x, out); }
  void sample_rows(const Tensor& logits, const SampleBatch& batch, Tensor& out_tokens,
                   Tensor& out_logprobs) override {
    in_->sample_rows(logits, batch, out_tokens, out_logprobs);
  }
  Status take_error() override {
    MLXS_RETURN_IF_ERROR(in_->take_error());
    if (armed_.load() > 0) {
      armed_.fetch_sub(1);
      return error(ErrorCode::kRuntimeError, "injected device fault");
    }
    return {};
  }
  bool replay_graph(uint64_t key) override { return in_->replay_graph(key); }
  void begin_graph(uint64_t key) override { in_->begin_graph(key); }
  bool end_graph(uint64_t key) override { return in_->end_graph(key); }
  bool supports_graphs() const override { return in_->supports_graphs(); }
  int num_graphs() const override { return in_->num_graphs(); }

 private:
  std::unique_ptr<Backend> in_;
  std::atomic<int> armed_{0};
  std::atomic<bool> break_step_{false};
  int64_t device_bytes_ = 0;
  std::unordered_map<const void*, int64_t> live_bytes_;  // alloc'd and not freed (emulation)
  int num_steps_ = 0;
  mutable MemoryInfo last_query_;
  mutable int steps_at_query_ = 0;
};

}  // namespace mlxs::test_support
