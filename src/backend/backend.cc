// Default implementations of the Backend interface's optional parts.
#include "backend/backend.h"

#include <limits>
#include <span>
#include <vector>

#include "util/check.h"

namespace mlxs {

void Backend::resolve_placeholders(Tensor& ids, const Tensor& prev) {
  std::vector<int32_t> host(size_t(ids.numel())), from(size_t(prev.numel()));
  download(ids.data, ids.nbytes(), host.data());
  download(prev.data, prev.nbytes(), from.data());
  for (int32_t& id : host) {
    if (id >= 0) continue;
    MLXS_CHECK(size_t(-int64_t(id) - 1) < from.size());
    id = from[size_t(-int64_t(id) - 1)];
  }
  upload(host.data(), host.size() * sizeof(int32_t), ids.data);
}

void Backend::mask_logits(Tensor& logits, const Tensor& masks) {
  const size_t R = size_t(logits.rows), V = size_t(logits.cols), W = size_t(masks.cols);
  MLXS_CHECK(size_t(masks.rows) >= R && W >= (V + 31) / 32);
  std::vector<float> host(logits.numel());
  std::vector<uint32_t> bits(size_t(masks.numel()));
  download(logits.data, logits.nbytes(), host.data());
  download(masks.data, masks.nbytes(), bits.data());
  for (size_t r = 0; r < R; ++r) {
    for (size_t v = 0; v < V; ++v) {
      if (!(bits[r * W + v / 32] >> (v % 32) & 1u)) {
        host[r * V + v] = -std::numeric_limits<float>::infinity();
      }
    }
  }
  upload(host.data(), host.size() * sizeof(float), logits.data);
}

void Backend::argmax_rows(const Tensor& x, Tensor& out) {
  std::vector<float> host(x.numel());
  download(x.data, x.nbytes(), host.data());
  std::vector<int32_t> ids(static_cast<size_t>(x.rows));
  for (int64_t r = 0; r < x.rows; ++r) {
    const float* row = host.data() + r * x.cols;
    int64_t best = 0;
    for (int64_t c = 1; c < x.cols; ++c) {
      if (row[c] > row[best]) best = c;
    }
    ids[size_t(r)] = int32_t(best);
  }
  upload(ids.data(), ids.size() * sizeof(int32_t), out.data);
}

void Backend::sample_rows(const Tensor& logits, const SampleBatch& batch, Tensor& out_tokens,
                          Tensor& out_logprobs) {
  const size_t R = size_t(logits.rows), V = size_t(logits.cols);
  std::vector<float> host(logits.numel());
  download(logits.data, logits.nbytes(), host.data());
  std::vector<int32_t> tokens(R);
  std::vector<float> logprobs(R);
#pragma omp parallel for if (R > 4)  // sample() is a pure function
  for (size_t r = 0; r < R; ++r) {
    SamplingParams p = batch.params[r];
    p.top_logprobs = 0;
    const SampleResult s = sample(std::span<const float>(host.data() + r * V, V), p,
                                  batch.history(int(r)), batch.steps[r]);
    tokens[r] = s.token;
    logprobs[r] = s.logprob;
  }
  upload(tokens.data(), R * sizeof(int32_t), out_tokens.data);
  upload(logprobs.data(), R * sizeof(float), out_logprobs.data);
}

void Backend::qkv_prepare(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v, const Tensor& q_norm,
                          const Tensor& k_norm, float eps, const Tensor& positions,
                          const RopeParams& rope, int heads, int kv_heads, int head_dim,
                          KvLayer& cache) {
  split_qkv(qkv, q, k, v);
  const int64_t T = q.rows;
  if (q_norm.data) {
    Tensor qh{q.data, q.dtype, T * heads, head_dim};
    rms_norm(qh, q_norm, eps, qh);
  }
  if (k_norm.data) {
    Tensor kh{k.data, k.dtype, T * kv_heads, head_dim};
    rms_norm(kh, k_norm, eps, kh);
  }
  this->rope(q, heads, head_dim, positions, rope);
  this->rope(k, kv_heads, head_dim, positions, rope);
}

}  // namespace mlxs
