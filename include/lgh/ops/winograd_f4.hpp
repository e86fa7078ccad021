// Winograd F(4x4, 3x3) convolution for 3x3 kernels, stride 1, padding 1
// (A. Lavin and S. Gray, "Fast Algorithms for Convolutional Neural Networks",
// CVPR 2016, Section 4, with the interpolation points 0, 1, -1, 2, -2).
//
// The output is cut into 4x4 tiles; tile Y reads the 6x6 input patch d that
// starts one row and one column before it. For one input and one output
// channel with 3x3 kernel g:
//
//   Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A
//
//   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0  |   A^T = | 1  1  1  1  1  0 |
//         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
//         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0  1  1  4  4  0 |
//         | 0 -2 -1  2  1  0 |       | 1/24  1/12   1/6  |         | 0  1 -1  8 -8  1 |
//         | 0  2 -1 -2  1  0 |       | 1/24 -1/12   1/6  |
//         | 0  4  0 -5  0  1 |       |   0     0     1   |
//
// As in F(2x2, 3x3) (winograd.hpp), the sum over input channels becomes one
// matrix product per position xi of the 6x6 transformed tile:
//
//   M^xi[o, t] = sum_c U^xi[o, c] V^xi[c, t],   U = G g G^T,  V = B^T d B,
//
// 36 multiplications per 16 outputs per (o, c) where the direct convolution
// does 144 and F(2x2, 3x3) 64: 4x fewer than direct, 1.78x fewer than F(2x2).
//
// Numerics: G's entries 1/6, 1/12 and 1/24 are not exact in binary, and B^T's
// and A^T's entries up to 5 and 8 scale the rounding of the transformed
// values, so the float error is larger than F(2x2)'s: outputs agree with a
// direct sum in double to about 1e-6 of the output's largest magnitude for
// the model's shapes and random weights (tests/ops/test_winograd.cpp bounds
// it at 2e-5, against 5e-6 for F(2x2)).
//
// Layout and blocking follow winograd.hpp: U [36][Cout][Cin] transformed once
// per call (and, for float, packed once for the GEMM kernel: every tile
// block's 36 products read the same packed panels); a task owns one image
// and a block of consecutive tiles (row-major over the tile grid), with V
// [36][Cin][tiles] and M [36][Cout][tiles]; the output transform adds the
// bias and applies the epilogue while M is in cache.
//
// Every transform is written as whole-array combinations (the b6 and a4
// helpers below) over the tiles of one tile row, vectorised across tiles;
// each is compiled for every instruction set and chosen at run time
// (cpu/multiversion.hpp), like the GEMM's micro-kernel, so that a program
// built for the x86-64 baseline runs them as wide as a native build.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "lgh/core/config.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/cpu/multiversion.hpp"
#include "lgh/cpu/sgemm.hpp"
#include "lgh/ops/conv_common.hpp"
#include "lgh/ops/gemm.hpp"

namespace lgh {
namespace ops {
namespace detail {

// Tiles per task: the 36 GEMMs' N dimension. V and M of a block (36 x (Cin
// + Cout) x tiles values) should stay in the L2 cache while the block's
// transforms and products run: on 2 MB of L2 per core pair with 128 input
// and output channels, blocks of 32 tiles ran the GEMMs at 110 GFLOP/s and
// the whole convolution 1.3x faster than blocks of 128 (V and M in L3). At
// least 32 tiles (one panel of the AVX-512 kernel), at most 128.
#ifndef LGH_WINOGRAD4_BLOCK_BYTES
#define LGH_WINOGRAD4_BLOCK_BYTES (1024 * 1024)
#endif

// Whether F(4x4, 3x3) computes this convolution: 3x3, stride 1, pad 1
// (winograd_applies), at least 8 input and output channels, and at least 64
// tiles of 4x4 over the batch (a 32x32 image), below which the weight
// transform, done once per call, outweighs the savings and F(2x2, 3x3) or
// im2col is faster (a 16x16 image with 128 channels at batch 1: F(4x4)
// 0.99 ms, F(2x2) 0.44 ms, im2col 0.56 ms on 2 threads).
inline bool winograd4_pays(const ConvGeometry& g) {
  const int64_t tiles = ((g.H + 3) / 4) * ((g.W + 3) / 4);
  return g.KH == 3 && g.KW == 3 && g.stride == 1 && g.pad == 1 && g.C >= 8 && g.O >= 8 && g.N * tiles >= 64;
}

// o = B^T d along one dimension, for n values of each of the six inputs.
template <typename T>
LGH_ALWAYS_INLINE void winograd4_b6(const T* LGH_RESTRICT d0, const T* LGH_RESTRICT d1, const T* LGH_RESTRICT d2,
                                    const T* LGH_RESTRICT d3, const T* LGH_RESTRICT d4, const T* LGH_RESTRICT d5,
                                    int64_t n, T* LGH_RESTRICT o0, T* LGH_RESTRICT o1, T* LGH_RESTRICT o2,
                                    T* LGH_RESTRICT o3, T* LGH_RESTRICT o4, T* LGH_RESTRICT o5) {
  LGH_IVDEP for (int64_t q = 0; q < n; ++q) {
    const T a = d1[q], b = d2[q], c = d3[q], e = d4[q];
    // Shared terms: (d4 - 4 d2) and (d3 - 4 d1), (d4 - d2) and 2 (d3 - d1).
    const T p = e - T(4) * b, r = c - T(4) * a, s = e - b, t = T(2) * (c - a);
    o0[q] = T(4) * d0[q] - T(5) * b + e;
    o1[q] = p + r;
    o2[q] = p - r;
    o3[q] = s + t;
    o4[q] = s - t;
    o5[q] = T(4) * a - T(5) * c + d5[q];
  }
}

// o = A^T m along one dimension, for n values of each of the six inputs.
template <typename T>
LGH_ALWAYS_INLINE void winograd4_a4(const T* LGH_RESTRICT m0, const T* LGH_RESTRICT m1, const T* LGH_RESTRICT m2,
                                    const T* LGH_RESTRICT m3, const T* LGH_RESTRICT m4, const T* LGH_RESTRICT m5,
                                    int64_t n, T* LGH_RESTRICT o0, T* LGH_RESTRICT o1, T* LGH_RESTRICT o2,
                                    T* LGH_RESTRICT o3) {
  LGH_IVDEP for (int64_t q = 0; q < n; ++q) {
    const T p = m1[q] + m2[q], r = m1[q] - m2[q], s = m3[q] + m4[q], t = m3[q] - m4[q];
    o0[q] = m0[q] + p + s;
    o1[q] = r + T(2) * t;
    o2[q] = p + T(4) * s;
    o3[q] = r + T(8) * t + m5[q];
  }
}

// o = G x along one dimension (x: 3 rows of n values, o: 6 rows).
template <typename T>
LGH_ALWAYS_INLINE void winograd4_g6(const T* LGH_RESTRICT x0, const T* LGH_RESTRICT x1, const T* LGH_RESTRICT x2,
                                    int64_t n, T* LGH_RESTRICT o0, T* LGH_RESTRICT o1, T* LGH_RESTRICT o2,
                                    T* LGH_RESTRICT o3, T* LGH_RESTRICT o4, T* LGH_RESTRICT o5) {
  LGH_IVDEP for (int64_t q = 0; q < n; ++q) {
    const T a = x0[q], b = x1[q], c = x2[q];
    const T sum = a + c;
    o0[q] = a * T(0.25);
    o1[q] = (sum + b) * T(-1.0 / 6.0);
    o2[q] = (sum - b) * T(-1.0 / 6.0);
    o3[q] = a * T(1.0 / 24.0) + b * T(1.0 / 12.0) + c * T(1.0 / 6.0);
    o4[q] = a * T(1.0 / 24.0) - b * T(1.0 / 12.0) + c * T(1.0 / 6.0);
    o5[q] = c;
  }
}

// Input channels per step of the weight transform.
constexpr int64_t kWinograd4WeightChunk = 64;

// U[xi][r][s] = (G g G^T)[xi] for output channels r0..r1, g the kernel from
// input channel s to output channel r (forward: w[r, s]; adjoint: w[s, r]
// rotated by 180 degrees, as in winograd_transform_weights), vectorised
// across input channels. scratch: 63 * kWinograd4WeightChunk values.
template <typename T>
struct Winograd4Weights {
  LGH_ALWAYS_INLINE static void run(const T* w, int64_t Cout, int64_t Cin, bool adjoint, int64_t r0, int64_t r1,
                                    T* scratch, T* U) {
    constexpr int64_t kc = kWinograd4WeightChunk;
    const int64_t plane = Cout * Cin;
    T* g = scratch;           // [9][kc]: the kernels, tap-major
    T* gg = scratch + 9 * kc;  // [6][3][kc]: G g
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t s0 = 0; s0 < Cin; s0 += kc) {
        const int64_t n = std::min(kc, Cin - s0);
        for (int64_t k = 0; k < n; ++k) {
          const int64_t s = s0 + k;
          const T* src = adjoint ? w + (s * Cout + r) * 9 : w + (r * Cin + s) * 9;
          for (int tap = 0; tap < 9; ++tap) g[tap * kc + k] = adjoint ? src[8 - tap] : src[tap];
        }
        // G g: down the kernel's columns (taps j, 3 + j, 6 + j).
        for (int j = 0; j < 3; ++j)
          winograd4_g6(g + j * kc, g + (3 + j) * kc, g + (6 + j) * kc, n, gg + (0 * 3 + j) * kc,
                       gg + (1 * 3 + j) * kc, gg + (2 * 3 + j) * kc, gg + (3 * 3 + j) * kc, gg + (4 * 3 + j) * kc,
                       gg + (5 * 3 + j) * kc);
        // (G g) G^T: along each of its six rows, straight into U's planes.
        T* u = U + r * Cin + s0;
        for (int i = 0; i < 6; ++i)
          winograd4_g6(gg + (i * 3 + 0) * kc, gg + (i * 3 + 1) * kc, gg + (i * 3 + 2) * kc, n, u + (i * 6 + 0) * plane,
                       u + (i * 6 + 1) * plane, u + (i * 6 + 2) * plane, u + (i * 6 + 3) * plane,
                       u + (i * 6 + 4) * plane, u + (i * 6 + 5) * plane);
      }
    }
  }
};

// A run of tiles tw0..tw1 in tile row th, starting at column q0 of its block.
struct Winograd4Run {
  int64_t th, tw0, tw1, q0;
};

// Scratch floats for one run of at most TW tiles: the input transform's four
// phase rows and 36 rows of (d B); the output transform's 24 + 16 rows.
inline int64_t winograd4_scratch_size(int64_t TW) { return 44 * (TW + 1); }

// phase[p * len + k] = row[col0 + 4k + p] for p < 4, zero outside the row.
template <typename T>
LGH_ALWAYS_INLINE void winograd4_phase_edge(const T* row, int64_t W, int64_t col0, int64_t len, int64_t k, T* phase) {
  for (int p = 0; p < 4; ++p) {
    const int64_t iw = col0 + 4 * k + p;
    phase[p * len + k] = iw >= 0 && iw < W ? row[iw] : T(0);
  }
}

// V[xi][c][run.q0 + q] = (B^T d B)[xi] for every input channel c and the
// tiles q of each run, d the 6x6 patch of x[c] at rows 4th-1.., columns
// 4tw-1.. (zero outside the image). V's planes are `plane` apart, and its
// rows (one per channel) nt apart.
template <typename T>
struct Winograd4Input {
  LGH_ALWAYS_INLINE static void run(const T* xn, int64_t Cin, int64_t H, int64_t W, const Winograd4Run* runs,
                                    int64_t nruns, int64_t nt, int64_t plane, T* scratch, T* V) {
    for (int64_t c = 0; c < Cin; ++c) {
      const T* xc = xn + c * H * W;
      for (int64_t ri = 0; ri < nruns; ++ri) {
        const Winograd4Run& run = runs[ri];
        const int64_t tiles = run.tw1 - run.tw0, len = tiles + 1, col0 = 4 * run.tw0 - 1;
        // phase[p][k] = x[ih, col0 + 4k + p]: tile q's six columns are
        // phase[0..3][q] and phase[0..1][q + 1].
        T* phase = scratch;
        T* db = scratch + 4 * len;  // [6 rows][6 columns][tiles]: d B
        // Columns col0 + 4k + p for k in [k0, k1) are inside the image for
        // every phase p: the loop without bounds checks; the edges take the
        // checked one.
        const int64_t k0 = std::min<int64_t>(len, col0 < 0 ? (3 - col0) / 4 : 0);
        const int64_t k1 = std::max<int64_t>(k0, std::min<int64_t>(len, (W - col0 - 4) / 4 + 1));
        for (int i = 0; i < 6; ++i) {
          const int64_t ih = 4 * run.th - 1 + i;
          T* out = db + i * 6 * tiles;
          if (ih < 0 || ih >= H) {
            for (int64_t k = 0; k < 6 * tiles; ++k) out[k] = T(0);
            continue;
          }
          const T* row = xc + ih * W;
          for (int64_t k = 0; k < k0; ++k) winograd4_phase_edge(row, W, col0, len, k, phase);
          for (int64_t k = k1; k < len; ++k) winograd4_phase_edge(row, W, col0, len, k, phase);
          const T* from = row + col0;
          LGH_IVDEP for (int64_t k = k0; k < k1; ++k) {
            phase[k] = from[4 * k];
            phase[len + k] = from[4 * k + 1];
            phase[2 * len + k] = from[4 * k + 2];
            phase[3 * len + k] = from[4 * k + 3];
          }
          winograd4_b6(phase, phase + len, phase + 2 * len, phase + 3 * len, phase + 1, phase + len + 1, tiles, out,
                       out + tiles, out + 2 * tiles, out + 3 * tiles, out + 4 * tiles, out + 5 * tiles);
        }
        // B^T (d B): combine the six rows, column by column of the tile.
        const int64_t rs = 6 * tiles;  // from one row of d B to the next
        T* v = V + c * nt + run.q0;
        for (int j = 0; j < 6; ++j) {
          const T* col = db + j * tiles;
          winograd4_b6(col, col + rs, col + 2 * rs, col + 3 * rs, col + 4 * rs, col + 5 * rs, tiles,
                       v + (0 * 6 + j) * plane, v + (1 * 6 + j) * plane, v + (2 * 6 + j) * plane,
                       v + (3 * 6 + j) * plane, v + (4 * 6 + j) * plane, v + (5 * 6 + j) * plane);
        }
      }
    }
  }
};

// y[o] = A^T M[o] A + bias[o] at the tiles of every run, then the epilogue,
// for output channels o0..o1 of image n; outputs past the image's edge are
// dropped. M's planes are `plane` apart and its rows (one per channel) nt.
template <typename T>
struct Winograd4Output {
  LGH_ALWAYS_INLINE static void run(const T* M, int64_t plane, int64_t nt, int64_t n, int64_t Cout, int64_t o0,
                                    int64_t o1, const Winograd4Run* runs, int64_t nruns, int64_t H, int64_t W,
                                    const T* bias, const ConvEpilogue<T>* epilogue, T* scratch, T* y) {
    const int64_t HW = H * W;
    for (int64_t o = o0; o < o1; ++o) {
      T* yo = y + (n * Cout + o) * HW;
      const T* res = epilogue->residual ? epilogue->residual + (n * Cout + o) * HW : nullptr;
      const T b = bias ? bias[o] : T(0);
      for (int64_t ri = 0; ri < nruns; ++ri) {
        const Winograd4Run& run = runs[ri];
        const int64_t tiles = run.tw1 - run.tw0;
        T* am = scratch;                // [4][6][tiles]: A^T M
        T* out = scratch + 24 * tiles;  // [4][4][tiles]: (A^T M) A
        const T* m = M + o * nt + run.q0;
        for (int j = 0; j < 6; ++j)
          winograd4_a4(m + (0 * 6 + j) * plane, m + (1 * 6 + j) * plane, m + (2 * 6 + j) * plane,
                       m + (3 * 6 + j) * plane, m + (4 * 6 + j) * plane, m + (5 * 6 + j) * plane, tiles,
                       am + (0 * 6 + j) * tiles, am + (1 * 6 + j) * tiles, am + (2 * 6 + j) * tiles,
                       am + (3 * 6 + j) * tiles);
        for (int i = 0; i < 4; ++i) {
          const T* a = am + i * 6 * tiles;
          T* oi = out + i * 4 * tiles;
          winograd4_a4(a, a + tiles, a + 2 * tiles, a + 3 * tiles, a + 4 * tiles, a + 5 * tiles, tiles, oi,
                       oi + tiles, oi + 2 * tiles, oi + 3 * tiles);
        }
        const int64_t oh0 = 4 * run.th, ow0 = 4 * run.tw0, width = std::min(W, 4 * run.tw1) - ow0;
        const int64_t full = width / 4;  // tiles with all four columns inside the image
        for (int i = 0; i < 4 && oh0 + i < H; ++i) {
          T* row = yo + (oh0 + i) * W + ow0;
          const T* oi = out + i * 4 * tiles;
          LGH_IVDEP for (int64_t q = 0; q < full; ++q) {
            row[4 * q] = oi[q] + b;
            row[4 * q + 1] = oi[tiles + q] + b;
            row[4 * q + 2] = oi[2 * tiles + q] + b;
            row[4 * q + 3] = oi[3 * tiles + q] + b;
          }
          for (int64_t k = 4 * full; k < width; ++k) row[k] = oi[(k & 3) * tiles + (k >> 2)] + b;
          if (epilogue->active()) {
            const T* r = res ? res + (oh0 + i) * W + ow0 : nullptr;
            for (int64_t k = 0; k < width; ++k) row[k] = epilogue->finish(row[k], r ? r[k] : T(0));
          }
        }
      }
    }
  }
};

// y[N, Cout, H, W] = conv3x3(x[N, Cin, H, W]) (+ bias), stride 1, pad 1, then
// the epilogue; w as in winograd_conv3x3 (forward [Cout][Cin][3][3],
// adjoint [Cin][Cout][3][3]).
template <typename T>
void winograd4_conv3x3(const T* x, const T* w, bool adjoint, const T* bias, T* y, int64_t N, int64_t Cin,
                       int64_t Cout, int64_t H, int64_t W, const ConvEpilogue<T>& epilogue) {
  const int64_t TH = (H + 3) / 4, TW = (W + 3) / 4, tiles = TH * TW;
  if (N == 0 || tiles == 0 || Cout == 0) return;
  const ::lgh::cpu::Isa isa = ::lgh::cpu::active_isa();
  constexpr bool kPacked = std::is_same<T, float>::value;
  const int64_t uplane = Cout * Cin;
  T* U = conv_scratch<T, 2>(static_cast<size_t>(36 * uplane));
  parallel_for(0, Cout, 4, [&](int64_t r0, int64_t r1) {
    T* scratch = conv_scratch<T, 3>(static_cast<size_t>(63 * kWinograd4WeightChunk));
    ::lgh::cpu::Multiversion<Winograd4Weights<T>>::call(isa, w, Cout, Cin, adjoint, r0, r1, scratch, U);
  });
  // float: each U^xi packed once for the GEMM kernel (36 views into one buffer).
  ::lgh::cpu::SgemmPackedA packed[36];
  if constexpr (kPacked) {
    const int64_t psize = ::lgh::cpu::sgemm_packed_a_size(Cout, Cin, isa);
    float* P = conv_scratch<float, 4>(static_cast<size_t>(36 * psize));
    parallel_for(0, 36, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t xi = lo; xi < hi; ++xi)
        packed[xi] = ::lgh::cpu::sgemm_pack_a(false, Cout, Cin, U + xi * uplane, Cin, P + xi * psize, isa);
    });
  }

  const int threads = num_threads();
  int64_t tb = static_cast<int64_t>(LGH_WINOGRAD4_BLOCK_BYTES / (36 * sizeof(T) * static_cast<size_t>(Cin + Cout)));
  tb = std::clamp<int64_t>(tb / 16 * 16, 32, 128);
  const int64_t min_blocks = (threads + N - 1) / N;
  if (min_blocks > 1) tb = std::min(tb, std::max<int64_t>(16, (tiles + min_blocks - 1) / min_blocks));
  tb = std::min(tb, tiles);
  const int64_t nblocks = (tiles + tb - 1) / tb;

  parallel_tasks(static_cast<int>(N * nblocks), [&](int task) {
    const int64_t n = task / nblocks, b = task % nblocks;
    const int64_t t0 = b * tb, t1 = std::min(tiles, t0 + tb), nt = t1 - t0;
    static thread_local std::vector<Winograd4Run> runs;
    runs.clear();
    for (int64_t t = t0; t < t1;) {
      const int64_t th = t / TW, tw0 = t % TW, tw1 = std::min(TW, tw0 + (t1 - t));
      runs.push_back({th, tw0, tw1, t - t0});
      t += tw1 - tw0;
    }
    // Planes one cache line further apart than their size (see winograd.hpp).
    const int64_t pad = 64 / static_cast<int64_t>(sizeof(T));
    const int64_t vplane = Cin * nt + pad, mplane = Cout * nt + pad;
    T* V = conv_scratch<T, 0>(static_cast<size_t>(36 * vplane));
    T* M = conv_scratch<T, 1>(static_cast<size_t>(36 * mplane));
    T* scratch = conv_scratch<T, 3>(static_cast<size_t>(winograd4_scratch_size(TW)));
    const int64_t nruns = static_cast<int64_t>(runs.size());
    ::lgh::cpu::Multiversion<Winograd4Input<T>>::call(isa, x + n * Cin * H * W, Cin, H, W, runs.data(), nruns, nt,
                                                      vplane, scratch, V);
    for (int xi = 0; xi < 36; ++xi) {
      if constexpr (kPacked)
        ::lgh::cpu::sgemm_packed(packed[xi], 0, Cout, false, nt, V + xi * vplane, nt, M + xi * mplane, nt, false);
      else
        gemm<T>(false, false, Cout, nt, Cin, U + xi * uplane, Cin, V + xi * vplane, nt, M + xi * mplane, nt, false);
    }
    ::lgh::cpu::Multiversion<Winograd4Output<T>>::call(isa, static_cast<const T*>(M), mplane, nt, n, Cout,
                                                       int64_t(0), Cout, static_cast<const Winograd4Run*>(runs.data()),
                                                       nruns, H, W, bias, &epilogue, scratch, y);
  });
}

}  // namespace detail
}  // namespace ops
}  // namespace lgh
