// Private to linear_avx2.cc / linear_avx512.cc: the register-blocked tile loop shared by the ISA
// files, generic over an `Op` that says how to load and multiply one chunk of k.
//
// Layout: the dot-product form. Rows of x and rows of w are both contiguous along K, so a tile of
// MR rows x NR columns loads MR chunks of x and NR chunks of w per step and does MR*NR vector FMAs
// into MR*NR accumulators, each reduced by Op::hsum at the end. A tile of any shape does exactly
// the same operations for each (m, n), which is what makes linear() batch invariant.
//
// Op (defined in an anonymous namespace of each ISA file, so instantiations never mix ISAs):
//   XT, WT: element types of x and w;  XV, WV, Acc: vector types;  kStep: k per chunk;
//   zero(); load_x(p); load_x_tail(p, r); load_w(p); load_w_tail(p, r) (r < kStep elements, the
//   rest zero); fma(acc, xv, wv); hsum(acc) (the halving tree of linear.h).
#pragma once

#include <cstdint>

#include "backend/cpu/linear_kernels.h"

namespace mlxs::cpu::detail {

// Prefetch distance for weight rows, in bytes ahead of the current chunk (decode streams w
// from DRAM; measured in bench_linear).
inline constexpr int64_t kWeightPrefetchBytes = 1024;
// Weight rows per cache block: a block is reused from L2 by every tile of MR rows of x.
inline constexpr int64_t kWeightBlockBytes = 512 * 1024;

template <class Op, int MR, int NR>
void linear_tile(const typename Op::XT* x, int64_t ldx, const typename Op::WT* w, int64_t ldw,
                 int64_t K, const float* bias, float* out, int64_t ldo) {
  using XV = typename Op::XV;
  using WV = typename Op::WV;
  typename Op::Acc acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = Op::zero();
  constexpr int64_t kPf = kWeightPrefetchBytes / int64_t(sizeof(typename Op::WT));
  int64_t k = 0;
  for (; k + Op::kStep <= K; k += Op::kStep) {
    XV xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = Op::load_x(x + i * ldx + k);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      __builtin_prefetch(w + j * ldw + k + kPf);
      WV wv = Op::load_w(w + j * ldw + k);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = Op::fma(acc[i][j], xv[i], wv);
    }
  }
  if (k < K) {
    int r = int(K - k);
    XV xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = Op::load_x_tail(x + i * ldx + k, r);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      WV wv = Op::load_w_tail(w + j * ldw + k, r);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = Op::fma(acc[i][j], xv[i], wv);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      float s = Op::hsum(acc[i][j]);
      out[i * ldo + j] = bias ? s + bias[j] : s;
    }
}

// Tile of mr (1..MR, run time) rows and NR columns.
template <class Op, int MR, int NR>
void linear_tile_rows(int mr, const typename Op::XT* x, int64_t ldx, const typename Op::WT* w,
                      int64_t ldw, int64_t K, const float* bias, float* out, int64_t ldo) {
  if constexpr (MR > 1) {
    if (mr < MR) {
      linear_tile_rows<Op, MR - 1, NR>(mr, x, ldx, w, ldw, K, bias, out, ldo);
      return;
    }
  }
  linear_tile<Op, MR, NR>(x, ldx, w, ldw, K, bias, out, ldo);
}

// Columns [n_begin, n_end) of out = x @ w^T + bias: blocks of weight rows sized for L2, then
// tiles of MR rows x NR columns; leftover columns one at a time.
template <class Op, int MR, int NR>
void linear_cols(const typename Op::XT* x, const typename Op::WT* w, const LinearArgs& a,
                 int64_t n_begin, int64_t n_end) {
  const int64_t K = a.K;
  int64_t block = kWeightBlockBytes / (K * int64_t(sizeof(typename Op::WT)));
  block = block < NR ? NR : block / NR * NR;
  for (int64_t nb = n_begin; nb < n_end; nb += block) {
    const int64_t nb_end = nb + block < n_end ? nb + block : n_end;
    for (int64_t m = 0; m < a.M; m += MR) {
      const int mr = int(a.M - m < MR ? a.M - m : MR);
      const typename Op::XT* xm = x + m * K;
      float* om = a.out + m * a.N;
      int64_t n = nb;
      for (; n + NR <= nb_end; n += NR)
        linear_tile_rows<Op, MR, NR>(mr, xm, K, w + n * K, K, K, a.bias ? a.bias + n : nullptr,
                                     om + n, a.N);
      for (; n < nb_end; ++n)
        linear_tile_rows<Op, MR, 1>(mr, xm, K, w + n * K, K, K, a.bias ? a.bias + n : nullptr,
                                    om + n, a.N);
    }
  }
}

}  // namespace mlxs::cpu::detail
