// How far the CPU backend's logits may lie from an exact f32 reference (transformers in f32, or
// our own f32-activation families), per kernel family, argued from each family's arithmetic.
// Used by the golden tests (tests/golden/golden_test.cc) and the engine's greedy test
// (src/engine/engine_test.cc). docs/cpu.md gives the same figures for users.
//
// f32 activations (scalar, avx2, avx512, and avx512bf16 on f32/f16 weights): every product is
// exact (bf16 and f16 weights widen to f32 exactly) and sums in f32 in a fixed order, so a
// logits row differs from an f32 reference by f32 rounding only: relative L2 error ~1e-6
// (measured <= 8.3e-7 on every golden family), far below the smallest top-1/top-2 margin of the
// fixtures (3e-4, default model prompt 0). Greedy tokens must be identical.
//
// bf16 activations (avx512bf16 on bf16 weights: vdpbf16ps): the input of every matrix product is
// rounded to bf16 first, a relative error of at most u = 2^-9 per element (8-bit significand,
// round to nearest even), spread uniformly, so of RMS u / sqrt(3). A model with L layers has
// R = 4 L + 1 such roundings (the inputs of qkv, o, gate_up and down in every layer, and of the
// lm_head). Treating each as an independent relative perturbation that reaches the logits with
// gain 1 (RMSNorm renormalises the residual stream, and a random-like perturbation of a
// matrix product's input perturbs its output by the same relative amount), the logits row's
// relative L2 error is about
//   sigma = u / sqrt(3) * sqrt(R)     (2 layers: 3.4e-3; 10 layers: 7.2e-3).
// Measured, 2026-12-07, teacher-forced along the reference's greedy path, against an f32
// reference (RMS of the per-row relative error; worst row; worst single logit over RMS of its
// row; worst change of the reference's top-1/top-2 gap over RMS):
//   llama_bf16 (L = 2, vs transformers): 3.1e-3 RMS (sigma 3.4e-3), worst row 4.0e-3,
//     worst logit 0.017 RMS, worst gap change 0.019 RMS;
//   models/default (L = 10, vs our scalar family): 1.6e-3 RMS (sigma 7.2e-3), worst row 3.0e-3,
//     worst logit 0.011 RMS, worst gap change 0.0077 RMS.
// So sigma bounds the typical error (the gain is <= 1 on both); single logits reach 5.5 sigma
// on the small model (heavier tails than a Gaussian's 4.2 over its 32k logits). The bounds:
//   row:   relative L2 error <= 2 sigma;
//   logit: |got - ref| <= B = 8 sigma * RMS(ref row);
//   greedy: a token may differ from the reference's only where the reference's top-1/top-2
//     margin is below 2 B (if every logit is within B, a smaller margin cannot flip). After such
//     a step the continuations are no longer comparable.
// The AMD failures of issue 12 were two such near ties: llama_bf16 prompt 2 step 13 (margin
// 0.0054 = 0.0031 RMS, 2 B = 0.054 RMS) and the default model's prompt 3 step 3 (margin 0.0056 =
// 0.0016 RMS, 2 B = 0.12 RMS).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "util/dtype.h"

namespace mlxs::golden {

struct LogitTolerance {
  bool bf16_activations = false;
  double row_rel_l2 = 0;      // ||got - ref|| / ||ref|| of one logits row
  double logit_over_rms = 0;  // B / RMS(ref row); 0 = not checked (exact families)

  // The margin below which a greedy token may differ from the reference's (2 B); 0 when greedy
  // must be identical.
  double near_tie_margin(double ref_rms) const { return 2 * logit_over_rms * ref_rms; }
};

inline bool rounds_activations(cpu::Isa isa, DType weights) {
  return isa == cpu::Isa::kAvx512Bf16 && weights == DType::kBF16;
}

// `exact_rel_l2`: the row tolerance of the f32-activation families for this reference (1e-4
// against transformers: f32 rounding in a different summation order, with room to spare).
// `num_roundings` independent bf16 roundings (2^-9 relative at most each, sigma 2^-9/sqrt(3))
// between the input and the logits.
inline LogitTolerance bf16_tolerance(int num_roundings) {
  const double u = std::ldexp(1.0, -9);
  const double sigma = u / std::sqrt(3.0) * std::sqrt(double(num_roundings));
  return {true, 2 * sigma, 8 * sigma};
}

inline LogitTolerance logit_tolerance(cpu::Isa isa, DType weights, int num_layers,
                                      double exact_rel_l2) {
  if (!rounds_activations(isa, weights)) return {false, exact_rel_l2, 0};
  return bf16_tolerance(4 * num_layers + 1);
}

// The CUDA backend's fast mode (backend.cuda.precision: fast) rounds the input of every linear
// layer to bf16, as vdpbf16ps does (4L + 1), and also stores K and V in bf16 (2L more).
inline LogitTolerance cuda_fast_tolerance(int num_layers) {
  return bf16_tolerance(6 * num_layers + 1);
}

inline double rms(const float* x, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return std::sqrt(s / std::max(n, 1));
}

// The reference's top-1 minus top-2 logit.
inline double top2_margin(const float* ref, int n) {
  std::vector<float> sorted(ref, ref + n);
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
  return double(sorted[0]) - double(sorted[1]);
}

}  // namespace mlxs::golden
