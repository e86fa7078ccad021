// Winograd F(2x2, 3x3) convolution for 3x3 kernels, stride 1, padding 1
// (A. Lavin and S. Gray, "Fast Algorithms for Convolutional Neural Networks",
// CVPR 2016, Section 4).
//
// The output is cut into 2x2 tiles; tile Y reads the 4x4 input patch d that
// starts one row and one column before it (the padding). For one input and
// one output channel with 3x3 kernel g (L&G Eq. 8):
//
//   Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A
//
//   B^T = | 1  0 -1  0 |    G = |  1    0    0  |    A^T = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
//         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |        |  0    0    1  |
//
// Summing over input channels c commutes with A^T . A, so with
// U = G g G^T per (o, c) and V = B^T d B per (c, tile t), each of the 16
// positions xi of the 4x4 transformed tile is one matrix product
// (L&G Eq. 12):
//
//   M^xi[o, t] = sum_c U^xi[o, c] V^xi[c, t],    Y[o, t] = A^T M[o, t] A.
//
// That is 16 multiplications per 4 outputs per (o, c) instead of 36: 2.25x
// fewer than the direct convolution, all in GEMMs. The transforms add O(C + O)
// work per tile, small next to the GEMMs' O(C * O).
//
// Numerics: G's entries are 1/2 and 0/1, exact in binary; the transforms only
// add and subtract. The error grows like the direct sum's with a small
// constant (each output combines up to 16 products of sums of up to 4 inputs
// and 3 weights); in float, outputs agree with the im2col path to about 1e-6
// of the output's largest magnitude (tests/ops/test_winograd.cpp).
//
// Layout: U is [16][Cout][Cin], transformed once per call. A task owns one
// image and a block of consecutive tiles (row-major over the tile grid),
// sized so that its V [16][Cin][tiles] and M [16][Cout][tiles] stay in cache;
// the block's output transform adds the bias and applies the epilogue while
// M is in cache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "lgh/core/config.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/ops/conv_common.hpp"
#include "lgh/ops/gemm.hpp"

namespace lgh {
namespace ops {
namespace detail {

// Tiles per task: the 16 GEMMs' N dimension. Their speed grows with it (each
// packs U^xi, Cout x Cin, once per block) until V and M no longer stay in
// cache; 256 tiles, and at most 4 MB of V and M together (deep inputs), were
// fastest on the model's shapes with 2 MB of L2 per core.
#ifndef LGH_WINOGRAD_BLOCK_TILES
#define LGH_WINOGRAD_BLOCK_TILES 256
#endif
#ifndef LGH_WINOGRAD_BLOCK_BYTES
#define LGH_WINOGRAD_BLOCK_BYTES (4 * 1024 * 1024)
#endif

// Whether the Winograd kernel computes this convolution: 3x3, stride 1, pad 1.
inline bool winograd_applies(const ConvGeometry& g) {
  return g.KH == 3 && g.KW == 3 && g.stride == 1 && g.pad == 1;
}

// Whether it is faster than im2col + GEMM here (measured on 2 cores against
// conv_forward_im2col and conv_backward_data_im2col; 1.5-1.9x on the model's
// 3x3 shapes): with at least 8 input and output channels (3 -> 16 channels
// was 0.6x, 4 -> 4 already 1.2x), and at least 128 tiles over the batch to
// amortise the weight transform and fill the threads (an 8x8 image with 128
// channels: 0.5x at batch 1, 1.05x at batch 4, 1.3x at batch 8).
inline bool winograd_pays(const ConvGeometry& g) {
  const int64_t tiles = ((g.H + 1) / 2) * ((g.W + 1) / 2);
  return winograd_applies(g) && g.C >= 8 && g.O >= 8 && g.N * tiles >= 128;
}

// U[xi][r][s] = (G g G^T)[xi] for the 3x3 kernel that maps input channel s to
// output channel r. Forward: g = w[r, s] (w is [Cout][Cin][3][3]). Adjoint
// (the data gradient, a 3x3 s1 p1 convolution of gy): g = w[s, r] rotated by
// 180 degrees (w is [Cin][Cout][3][3]).
template <typename T>
void winograd_transform_weights(const T* w, int64_t Cout, int64_t Cin, bool adjoint, T* U) {
  // Kernels are transformed in chunks of input channels into a local
  // [16][chunk] buffer and then copied out as 16 contiguous runs: writing the
  // 16 planes element by element (Cout * Cin elements apart, often a power of
  // two) thrashed the L1 sets and took about 6x longer.
  constexpr int64_t kChunk = 64;
  const int64_t plane = Cout * Cin;
  parallel_for(0, Cout, 8, [&](int64_t r0, int64_t r1) {
    T u[16][kChunk];
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t s0 = 0; s0 < Cin; s0 += kChunk) {
        const int64_t s1 = std::min(Cin, s0 + kChunk);
        for (int64_t s = s0; s < s1; ++s) {
          T g[3][3];
          if (adjoint) {
            const T* src = w + (s * Cout + r) * 9;
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) g[i][j] = src[(2 - i) * 3 + (2 - j)];
          } else {
            const T* src = w + (r * Cin + s) * 9;
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) g[i][j] = src[i * 3 + j];
          }
          // Gg (4x3), then (Gg) G^T (4x4).
          T gg[4][3];
          for (int j = 0; j < 3; ++j) {
            gg[0][j] = g[0][j];
            gg[1][j] = T(0.5) * (g[0][j] + g[1][j] + g[2][j]);
            gg[2][j] = T(0.5) * (g[0][j] - g[1][j] + g[2][j]);
            gg[3][j] = g[2][j];
          }
          const int64_t k = s - s0;
          for (int i = 0; i < 4; ++i) {
            u[i * 4 + 0][k] = gg[i][0];
            u[i * 4 + 1][k] = T(0.5) * (gg[i][0] + gg[i][1] + gg[i][2]);
            u[i * 4 + 2][k] = T(0.5) * (gg[i][0] - gg[i][1] + gg[i][2]);
            u[i * 4 + 3][k] = gg[i][2];
          }
        }
        for (int xi = 0; xi < 16; ++xi) std::copy(u[xi], u[xi] + (s1 - s0), U + xi * plane + r * Cin + s0);
      }
    }
  });
}

// A run of tiles tw0..tw1 in tile row th, starting at column q0 of its block.
struct WinogradRun {
  int64_t th, tw0, tw1, q0;
};

inline std::vector<WinogradRun>& winograd_run_scratch() {
  static thread_local std::vector<WinogradRun> runs;
  return runs;
}

// Scratch for one run of at most `TW` tiles: the input transform's 4 padded
// rows as even and odd columns, or the output transform's 4 outputs per tile.
inline int64_t winograd_run_scratch_size(int64_t TW) { return 8 * (TW + 1); }

// (s B) for a row s of tiles, s's even and odd columns apart: tile q's
// columns are even[q], odd[q], even[q + 1], odd[q + 1]. A function of its own
// so that the compiler sees the restrict-qualified pointers and vectorises.
template <typename T>
void winograd_input_row(const T* LGH_RESTRICT even, const T* LGH_RESTRICT odd, int64_t tiles, T* LGH_RESTRICT v0,
                        T* LGH_RESTRICT v1, T* LGH_RESTRICT v2, T* LGH_RESTRICT v3) {
  for (int64_t q = 0; q < tiles; ++q) {
    v0[q] = even[q] - even[q + 1];
    v1[q] = odd[q] + even[q + 1];
    v2[q] = even[q + 1] - odd[q];
    v3[q] = odd[q] - odd[q + 1];
  }
}

// B^T d down the columns of 4 rows of n values: rows become
// (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
template <typename T>
void winograd_input_columns(T* LGH_RESTRICT r0, T* LGH_RESTRICT r1, T* LGH_RESTRICT r2, T* LGH_RESTRICT r3,
                            int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const T a = r1[k], b = r2[k];
    r0[k] -= b;
    r3[k] = a - r3[k];
    r1[k] = a + b;
    r2[k] = b - a;
  }
}

// V[xi][c][q0 + tw - tw0] = (B^T d B)[xi] for the tiles of one run, d the
// 4x4 patch of x[c] at rows 2th-1.., columns 2tw-1.. (zero outside the image).
template <typename T>
void winograd_input_run(const T* xc, int64_t H, int64_t W, const WinogradRun& run, int64_t plane, T* scratch,
                        T* vc) {
  const int64_t tiles = run.tw1 - run.tw0, width = 2 * tiles + 2, half = tiles + 1, col0 = 2 * run.tw0 - 1;
  const int64_t lo = std::max<int64_t>(0, -col0), hi = std::min<int64_t>(width, W - col0);
  // The 4 input rows of the run, zero-padded, split into even and odd
  // columns so that every step below reads contiguous memory: tile q's
  // columns are even[q], odd[q], even[q + 1], odd[q + 1]. Column k of the
  // run is image column col0 + k, inside the image for k in [lo, hi).
  T* split = scratch;  // row i: even at split + 2i*half, odd after
  const int64_t k0 = (lo + 1) / 2, k1 = std::max(k0, hi / 2);  // pairs inside for k in [k0, k1)
  for (int i = 0; i < 4; ++i) {
    const int64_t ih = 2 * run.th - 1 + i;
    T* LGH_RESTRICT even = split + 2 * i * half;
    T* LGH_RESTRICT odd = even + half;
    if (ih < 0 || ih >= H) {
      std::fill(even, even + 2 * half, T(0));
      continue;
    }
    const T* LGH_RESTRICT row = xc + ih * W;
    auto at = [&](int64_t k) { return k >= lo && k < hi ? row[col0 + k] : T(0); };
    for (int64_t k = 0; k < k0; ++k) {
      even[k] = at(2 * k);
      odd[k] = at(2 * k + 1);
    }
    for (int64_t k = k0; k < k1; ++k) {
      even[k] = row[col0 + 2 * k];
      odd[k] = row[col0 + 2 * k + 1];
    }
    for (int64_t k = k1; k < half; ++k) {
      even[k] = at(2 * k);
      odd[k] = at(2 * k + 1);
    }
  }
  winograd_input_columns(split, split + 2 * half, split + 4 * half, split + 6 * half, 2 * half);
  // (B^T d) B along each row: the same combination of the tile's columns.
  for (int i = 0; i < 4; ++i) {
    const T* even = split + 2 * i * half;
    winograd_input_row(even, even + half, tiles, vc + (i * 4 + 0) * plane + run.q0, vc + (i * 4 + 1) * plane + run.q0,
                       vc + (i * 4 + 2) * plane + run.q0, vc + (i * 4 + 3) * plane + run.q0);
  }
}

// The 2x2 outputs A^T M A + bias of `tiles` consecutive tiles, M's 16
// entries in planes `plane` apart; restrict pointers in a function of their
// own, so that the loop vectorises.
template <typename T>
void winograd_output_tiles(const T* m, int64_t plane, int64_t tiles, T bias, T* LGH_RESTRICT out00,
                           T* LGH_RESTRICT out01, T* LGH_RESTRICT out10, T* LGH_RESTRICT out11) {
  for (int64_t q = 0; q < tiles; ++q) {
    // A^T M: rows (m0j + m1j + m2j, m1j - m2j - m3j) for each column j.
    T t0[4], t1[4];
    for (int j = 0; j < 4; ++j) {
      const T a = m[(0 * 4 + j) * plane + q], b = m[(1 * 4 + j) * plane + q], c = m[(2 * 4 + j) * plane + q],
              d = m[(3 * 4 + j) * plane + q];
      t0[j] = a + b + c;
      t1[j] = b - c - d;
    }
    // (A^T M) A: the same combination along each row.
    out00[q] = t0[0] + t0[1] + t0[2] + bias;
    out01[q] = t0[1] - t0[2] - t0[3] + bias;
    out10[q] = t1[0] + t1[1] + t1[2] + bias;
    out11[q] = t1[1] - t1[2] - t1[3] + bias;
  }
}

// y[o] at the tiles of one run = A^T M[o] A + bias, then the epilogue
// (res: the residual plane of y[o], or null). Outputs past the image's last
// row or column (odd H or W) are dropped.
template <typename T>
void winograd_output_run(const T* mo, int64_t plane, const WinogradRun& run, int64_t H, int64_t W, T bias,
                         const ConvEpilogue<T>& epilogue, const T* res, T* scratch, T* yo) {
  const int64_t tiles = run.tw1 - run.tw0;
  // out[2i + j][q]: output (i, j) of tile q, computed for the whole run with
  // contiguous loads of the 16 planes of M.
  T* out00 = scratch;
  T* out01 = scratch + tiles;
  T* out10 = scratch + 2 * tiles;
  T* out11 = scratch + 3 * tiles;
  winograd_output_tiles(mo + run.q0, plane, tiles, bias, out00, out01, out10, out11);
  const int64_t oh = 2 * run.th, ow0 = 2 * run.tw0, ow1 = std::min(W, 2 * run.tw1);
  const int64_t full = (ow1 - ow0) / 2;  // tiles with both columns inside the image
  for (int i = 0; i < 2 && oh + i < H; ++i) {
    const T* LGH_RESTRICT left = i == 0 ? out00 : out10;
    const T* LGH_RESTRICT right = i == 0 ? out01 : out11;
    T* LGH_RESTRICT row = yo + (oh + i) * W + ow0;
    for (int64_t q = 0; q < full; ++q) {
      row[2 * q] = left[q];
      row[2 * q + 1] = right[q];
    }
    if (full < tiles) row[2 * full] = left[full];
    if (epilogue.active()) {
      const T* r = res ? res + (oh + i) * W + ow0 : nullptr;
      for (int64_t k = 0; k < ow1 - ow0; ++k) row[k] = epilogue.finish(row[k], r ? r[k] : T(0));
    }
  }
}

// y[N, Cout, H, W] = conv3x3(x[N, Cin, H, W]) (+ bias), stride 1, pad 1, then
// the epilogue. Forward: w is [Cout][Cin][3][3]; adjoint: w is
// [Cin][Cout][3][3] and the kernel is its transpose rotated by 180 degrees.
template <typename T>
void winograd_conv3x3(const T* x, const T* w, bool adjoint, const T* bias, T* y, int64_t N, int64_t Cin,
                      int64_t Cout, int64_t H, int64_t W, const ConvEpilogue<T>& epilogue) {
  const int64_t TH = (H + 1) / 2, TW = (W + 1) / 2, tiles = TH * TW, HW = H * W;
  if (N == 0 || tiles == 0 || Cout == 0) return;
  T* U = conv_scratch<T, 2>(static_cast<size_t>(16 * Cout * Cin));
  winograd_transform_weights(w, Cout, Cin, adjoint, U);

  // Tiles per block: within both limits above, whole SIMD packets for the
  // GEMM's N dimension, and at least as many tasks as threads.
  const int threads = num_threads();
  int64_t tb = static_cast<int64_t>(LGH_WINOGRAD_BLOCK_BYTES / (16 * sizeof(T) * static_cast<size_t>(Cin + Cout)));
  tb = std::max<int64_t>(16, std::min<int64_t>(tb, LGH_WINOGRAD_BLOCK_TILES) / 16 * 16);
  const int64_t min_blocks = (threads + N - 1) / N;
  if (min_blocks > 1) tb = std::min(tb, std::max<int64_t>(16, (tiles + min_blocks - 1) / min_blocks));
  tb = std::min(tb, tiles);
  const int64_t nblocks = (tiles + tb - 1) / tb;

  parallel_tasks(static_cast<int>(N * nblocks), [&](int task) {
    const int64_t n = task / nblocks, b = task % nblocks;
    const int64_t t0 = b * tb, t1 = std::min(tiles, t0 + tb), nt = t1 - t0;
    std::vector<WinogradRun>& runs = winograd_run_scratch();
    runs.clear();
    for (int64_t t = t0; t < t1;) {
      const int64_t th = t / TW, tw0 = t % TW, tw1 = std::min(TW, tw0 + (t1 - t));
      runs.push_back({th, tw0, tw1, t - t0});
      t += tw1 - tw0;
    }
    // The transforms touch all 16 planes of V and M at once; planes a power
    // of two bytes apart would share L1 sets, so one cache line separates them.
    const int64_t pad = 64 / static_cast<int64_t>(sizeof(T));
    const int64_t vplane = Cin * nt + pad, mplane = Cout * nt + pad;
    T* V = conv_scratch<T, 0>(static_cast<size_t>(16 * vplane));
    T* M = conv_scratch<T, 1>(static_cast<size_t>(16 * mplane));
    T* scratch = conv_scratch<T, 3>(static_cast<size_t>(winograd_run_scratch_size(TW)));

    const T* xn = x + n * Cin * HW;
    for (int64_t c = 0; c < Cin; ++c)
      for (const WinogradRun& run : runs) winograd_input_run(xn + c * HW, H, W, run, vplane, scratch, V + c * nt);
    for (int xi = 0; xi < 16; ++xi)
      gemm<T>(false, false, Cout, nt, Cin, U + xi * Cout * Cin, Cin, V + xi * vplane, nt, M + xi * mplane, nt, false);
    for (int64_t o = 0; o < Cout; ++o) {
      T* yo = y + (n * Cout + o) * HW;
      const T* res = epilogue.residual ? epilogue.residual + (n * Cout + o) * HW : nullptr;
      for (const WinogradRun& run : runs)
        winograd_output_run(M + o * nt, mplane, run, H, W, bias ? bias[o] : T(0), epilogue, res, scratch, yo);
    }
  });
}

// ---- the weight gradient ----------------------------------------------------------------
//
// With M[o, t] = sum_c U[o, c] ⊙ V[c, t] and Y[o, t] = A^T M[o, t] A, the
// chain rule through each step of the forward pass gives (A is 4x2):
//
//   dM[o, t]   = A dY[o, t] A^T                    (the 2x2 gradient tile, 4x4)
//   dU^xi[o, c] = sum_{n, t} dM^xi[o, t] V^xi[c, t]  (16 GEMMs, depth = tiles)
//   dw[o, c]   = G^T dU[o, c] G                    (4x4 -> 3x3)
//
// V is the forward pass's input transform, recomputed here. That is 16
// multiplications per 4 outputs per (o, c), against 36 for im2col, and no
// 9x copy of the input. Output positions past an odd H or W contribute
// nothing: their gradient is taken as zero.

// dM for the tiles of one run of gy[o] (rows 2th and 2th + 1): planes
// `plane` apart, at m + q0. With g the 2x2 tile, A g A^T has rows
// (g0, g0 + g1, g0 - g1, -g1) for the rows g0, g1 of g, and the same
// combination along each row.
template <typename T>
void winograd_grad_output_run(const T* gyo, int64_t H, int64_t W, const WinogradRun& run, int64_t plane, T* m) {
  const int64_t oh = 2 * run.th;
  const T* row0 = gyo + oh * W;
  const T* row1 = oh + 1 < H ? row0 + W : nullptr;
  for (int64_t tw = run.tw0; tw < run.tw1; ++tw) {
    const int64_t ow = 2 * tw, q = run.q0 + tw - run.tw0;
    const bool right = ow + 1 < W;
    const T g00 = row0[ow], g01 = right ? row0[ow + 1] : T(0);
    const T g10 = row1 ? row1[ow] : T(0), g11 = row1 && right ? row1[ow + 1] : T(0);
    // A g: 4 rows of 2.
    const T r[4][2] = {{g00, g01}, {g00 + g10, g01 + g11}, {g00 - g10, g01 - g11}, {-g10, -g11}};
    for (int i = 0; i < 4; ++i) {
      m[(i * 4 + 0) * plane + q] = r[i][0];
      m[(i * 4 + 1) * plane + q] = r[i][0] + r[i][1];
      m[(i * 4 + 2) * plane + q] = r[i][0] - r[i][1];
      m[(i * 4 + 3) * plane + q] = -r[i][1];
    }
  }
}

// gw[o, c] += G^T dU[o, c] G for every (o, c); dU is [16][Cout][Cin].
template <typename T>
void winograd_weight_from_transformed(const T* dU, int64_t Cout, int64_t Cin, T* gw) {
  const int64_t plane = Cout * Cin;
  parallel_for(0, plane, 64, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      T u[4][4];
      for (int xi = 0; xi < 16; ++xi) u[xi / 4][xi % 4] = dU[xi * plane + k];
      // dU G (4x3): columns (u0 + (u1 + u2)/2, (u1 - u2)/2, (u1 + u2)/2 + u3).
      T ug[4][3];
      for (int i = 0; i < 4; ++i) {
        ug[i][0] = u[i][0] + T(0.5) * (u[i][1] + u[i][2]);
        ug[i][1] = T(0.5) * (u[i][1] - u[i][2]);
        ug[i][2] = T(0.5) * (u[i][1] + u[i][2]) + u[i][3];
      }
      // G^T (dU G): the same combination down the columns.
      T* out = gw + k * 9;
      for (int j = 0; j < 3; ++j) {
        out[0 * 3 + j] += ug[0][j] + T(0.5) * (ug[1][j] + ug[2][j]);
        out[1 * 3 + j] += T(0.5) * (ug[1][j] - ug[2][j]);
        out[2 * 3 + j] += T(0.5) * (ug[1][j] + ug[2][j]) + ug[3][j];
      }
    }
  });
}

// gw[Cout, Cin, 3, 3] = the gradient of a 3x3 s1 p1 convolution's weight
// from x[N, Cin, H, W] and gy[N, Cout, H, W]; gb[Cout] = sum gy (gb may be
// null). Both are overwritten.
template <typename T>
void winograd_conv3x3_backward_weight(const T* x, const T* gy, T* gw, T* gb, int64_t N, int64_t Cin, int64_t Cout,
                                      int64_t H, int64_t W) {
  const int64_t TH = (H + 1) / 2, TW = (W + 1) / 2, tiles = TH * TW, HW = H * W, plane = Cout * Cin;
  std::fill(gw, gw + plane * 9, T(0));
  if (gb) std::fill(gb, gb + Cout, T(0));
  if (N == 0 || tiles == 0 || plane == 0) return;
  const int threads = num_threads();
  int64_t tb = static_cast<int64_t>(LGH_WINOGRAD_BLOCK_BYTES / (16 * sizeof(T) * static_cast<size_t>(Cin + Cout)));
  tb = std::max<int64_t>(16, std::min<int64_t>(tb, LGH_WINOGRAD_BLOCK_TILES) / 16 * 16);
  tb = std::min(tb, tiles);
  const int64_t nblocks = (tiles + tb - 1) / tb, tasks = N * nblocks;
  // Each chunk of tasks sums into its own dU (and bias gradient), reduced at
  // the end: the threads never write the same memory.
  const int64_t chunks = std::min<int64_t>(threads, tasks), per = (tasks + chunks - 1) / chunks;
  const int64_t usize = 16 * plane;
  std::vector<T> dU(static_cast<size_t>(chunks * usize), T(0));
  parallel_tasks(static_cast<int>(chunks), [&](int ch) {
    T* du = dU.data() + ch * usize;
    const int64_t pad = 64 / static_cast<int64_t>(sizeof(T));
    for (int64_t task = ch * per; task < std::min(tasks, (ch + 1) * per); ++task) {
      const int64_t n = task / nblocks, b = task % nblocks;
      const int64_t t0 = b * tb, t1 = std::min(tiles, t0 + tb), nt = t1 - t0;
      std::vector<WinogradRun>& runs = winograd_run_scratch();
      runs.clear();
      for (int64_t t = t0; t < t1;) {
        const int64_t th = t / TW, tw0 = t % TW, tw1 = std::min(TW, tw0 + (t1 - t));
        runs.push_back({th, tw0, tw1, t - t0});
        t += tw1 - tw0;
      }
      const int64_t vplane = Cin * nt + pad, mplane = Cout * nt + pad;
      T* V = conv_scratch<T, 0>(static_cast<size_t>(16 * vplane));
      T* M = conv_scratch<T, 1>(static_cast<size_t>(16 * mplane));
      T* scratch = conv_scratch<T, 3>(static_cast<size_t>(winograd_run_scratch_size(TW)));
      const T* xn = x + n * Cin * HW;
      for (int64_t c = 0; c < Cin; ++c)
        for (const WinogradRun& run : runs) winograd_input_run(xn + c * HW, H, W, run, vplane, scratch, V + c * nt);
      const T* gyn = gy + n * Cout * HW;
      for (int64_t o = 0; o < Cout; ++o)
        for (const WinogradRun& run : runs) winograd_grad_output_run(gyn + o * HW, H, W, run, mplane, M + o * nt);
      for (int xi = 0; xi < 16; ++xi)
        gemm<T>(false, true, Cout, Cin, nt, M + xi * mplane, nt, V + xi * vplane, nt, du + xi * plane, Cin, true);
    }
  });
  for (int64_t ch = 1; ch < chunks; ++ch) {
    const T* src = dU.data() + ch * usize;
    for (int64_t i = 0; i < usize; ++i) dU[i] += src[i];
  }
  winograd_weight_from_transformed(dU.data(), Cout, Cin, gw);
  if (gb)
    parallel_for(0, Cout, 8, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        T s = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T* go = gy + (n * Cout + o) * HW;
          for (int64_t i = 0; i < HW; ++i) s += go[i];
        }
        gb[o] = s;
      }
    });
}

}  // namespace detail
}  // namespace ops
}  // namespace lgh
