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
// Streaming driver: weight rows per cache block, reused from L2 by every tile of MR rows of x.
inline constexpr int64_t kWeightBlockBytes = 512 * 1024;
// Blocked driver (many rows of x): a panel of weight rows as f32 (<= kPanelBytes), rows of x in
// blocks of kRowBlock, k in blocks of kDepthBlock (a multiple of every Op::kStep, so blocking
// never moves a chunk boundary).
inline constexpr int64_t kPanelBytes = 768 * 1024;
inline constexpr int64_t kRowBlock = 64;
inline constexpr int64_t kDepthBlock = 1024;

// Chunks [k0, k1) of one tile of MR rows x NR columns (k0 a multiple of Op::kStep; k1 == K or a
// multiple of it). Accumulators start at zero when `first`, else from `saved` (acc[i][j] at
// saved + i * ld_saved + j * lanes); when `last` they are reduced into out (+ bias), else saved.
// kPrefetch: software-prefetch w ahead (for w streamed from DRAM; useless when it sits in L1).
template <class Op, int MR, int NR, bool kPrefetch>
void linear_tile_part(const typename Op::XT* x, int64_t ldx, const typename Op::WT* w, int64_t ldw,
                      int64_t k0, int64_t k1, const float* bias, float* out, int64_t ldo,
                      float* saved, int64_t ld_saved, bool first, bool last) {
  using XV = typename Op::XV;
  using WV = typename Op::WV;
  using Acc = typename Op::Acc;
  constexpr int64_t kLanes = int64_t(sizeof(Acc) / sizeof(float));
  Acc acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      if (first)
        acc[i][j] = Op::zero();
      else
        __builtin_memcpy(&acc[i][j], saved + i * ld_saved + j * kLanes, sizeof(Acc));
    }
  constexpr int64_t kPf = kWeightPrefetchBytes / int64_t(sizeof(typename Op::WT));
  int64_t k = k0;
  for (; k + Op::kStep <= k1; k += Op::kStep) {
    XV xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = Op::load_x(x + i * ldx + k);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      if constexpr (kPrefetch) __builtin_prefetch(w + j * ldw + k + kPf);
      WV wv = Op::load_w(w + j * ldw + k);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = Op::fma(acc[i][j], xv[i], wv);
    }
  }
  if (k < k1) {
    int r = int(k1 - k);
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
      if (!last) {
        __builtin_memcpy(saved + i * ld_saved + j * kLanes, &acc[i][j], sizeof(Acc));
        continue;
      }
      float s = Op::hsum(acc[i][j]);
      out[i * ldo + j] = bias ? s + bias[j] : s;
    }
}

// A whole tile: all of K, no saved accumulators.
template <class Op, int MR, int NR>
void linear_tile(const typename Op::XT* x, int64_t ldx, const typename Op::WT* w, int64_t ldw,
                 int64_t K, const float* bias, float* out, int64_t ldo) {
  linear_tile_part<Op, MR, NR, true>(x, ldx, w, ldw, 0, K, bias, out, ldo, nullptr, 0, true, true);
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

// linear_tile_part for mr (1..MR, run time) rows.
template <class Op, int MR, int NR, bool kPrefetch>
void linear_tile_part_rows(int mr, const typename Op::XT* x, int64_t ldx, const typename Op::WT* w,
                           int64_t ldw, int64_t k0, int64_t k1, const float* bias, float* out,
                           int64_t ldo, float* saved, int64_t ld_saved, bool first, bool last) {
  if constexpr (MR > 1) {
    if (mr < MR) {
      linear_tile_part_rows<Op, MR - 1, NR, kPrefetch>(mr, x, ldx, w, ldw, k0, k1, bias, out, ldo,
                                                       saved, ld_saved, first, last);
      return;
    }
  }
  linear_tile_part<Op, MR, NR, kPrefetch>(x, ldx, w, ldw, k0, k1, bias, out, ldo, saved, ld_saved,
                                          first, last);
}

// Columns [n_begin, n_end) for many rows of x (prefill). Per panel of weight rows (given by
// panel(n, count) -> const WT* rows [n, n + count) with stride K, e.g. converted to f32 in L2):
// blocks of kRowBlock rows of x, blocks of kDepthBlock k; inside, a tile of NR weight rows stays
// in L1 while the tiles of x rows stream from L2, and the vector accumulators are saved between
// k blocks, so every (m, n) sees exactly the chunk sequence of linear_tile.
template <class Op, int MR, int NR, class Panel>
void linear_cols_blocked(const typename Op::XT* x, const LinearArgs& a, int64_t n_begin,
                         int64_t n_end, int64_t panel_rows, Panel panel) {
  constexpr int64_t kLanes = int64_t(sizeof(typename Op::Acc) / sizeof(float));
  const int64_t K = a.K;
  const int64_t ld_saved = panel_rows * kLanes;
  auto* saved = static_cast<float*>(
      thread_scratch(Scratch::kSaved, size_t(kRowBlock * ld_saved) * sizeof(float)));
  for (int64_t nb = n_begin; nb < n_end; nb += panel_rows) {
    const int64_t nc = n_end - nb < panel_rows ? n_end - nb : panel_rows;
    const typename Op::WT* wp = panel(nb, nc);
    for (int64_t mb = 0; mb < a.M; mb += kRowBlock) {
      const int64_t mb_end = mb + kRowBlock < a.M ? mb + kRowBlock : a.M;
      for (int64_t kb = 0; kb < K; kb += kDepthBlock) {
        const int64_t k1 = kb + kDepthBlock < K ? kb + kDepthBlock : K;
        const bool first = kb == 0, last = k1 == K;
        for (int64_t j = 0; j < nc;) {
          const int64_t n = nb + j;
          const bool full = j + NR <= nc;
          for (int64_t m = mb; m < mb_end; m += MR) {
            const int mr = int(mb_end - m < MR ? mb_end - m : MR);
            float* sv = saved + (m - mb) * ld_saved + j * kLanes;
            const float* b = a.bias ? a.bias + n : nullptr;
            float* o = a.out + m * a.N + n;
            if (full)
              linear_tile_part_rows<Op, MR, NR, false>(mr, x + m * K, K, wp + j * K, K, kb, k1, b,
                                                       o, a.N, sv, ld_saved, first, last);
            else
              linear_tile_part_rows<Op, MR, 1, false>(mr, x + m * K, K, wp + j * K, K, kb, k1, b, o,
                                                      a.N, sv, ld_saved, first, last);
          }
          j += full ? NR : 1;
        }
      }
    }
  }
}

}  // namespace mlxs::cpu::detail
