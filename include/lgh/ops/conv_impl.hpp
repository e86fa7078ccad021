// The three CPU convolution routines that conv2d and conv_transpose2d are
// built from, on raw NCHW pointers:
//
//   conv_forward        y  = W * x (+ b)                 [the convolution]
//   conv_backward_data  gx = W^T * gy                    [its adjoint in x]
//   conv_backward_weight gW = sum_n gy[n] * im2col(x[n])^T, gb = sum gy
//
// A transposed convolution's forward is conv_backward_data and its backward
// uses the other two with the roles of input and output exchanged.
//
// Method: im2col + GEMM over blocks of output columns, sized so that one
// block of the column matrix stays in the L2 cache; the blocks (and, for
// small images, output-channel ranges) are spread over the thread pool.
// Pointwise convolutions (1x1, stride 1, no padding) skip im2col entirely.
// 3x3 convolutions with stride 1 and padding 1 (forward and data gradient)
// use the Winograd F(4x4, 3x3) kernel of winograd_f4.hpp on images of 32x32
// and more (over the batch), F(2x2, 3x3) of winograd.hpp on smaller ones
// where it is faster than im2col; their weight gradient uses F(2x2, 3x3)
// wherever that pays (F(4x4)'s larger transform constants would scale the
// rounding of sums over the whole batch).
// All routines overwrite their outputs.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "lgh/core/config.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/ops/conv_common.hpp"
#include "lgh/ops/gemm.hpp"
#include "lgh/ops/winograd.hpp"
#include "lgh/ops/winograd_f4.hpp"

namespace lgh {
namespace ops {
namespace detail {

// Bytes of one block of the column matrix: small enough to stay in L2 with
// the GEMM's packed panels, large enough to amortise packing the weights.
#ifndef LGH_CONV_BLOCK_BYTES
#define LGH_CONV_BLOCK_BYTES (512 * 1024)
#endif
// Narrower blocks make the GEMM inefficient (a deep im2col, e.g. 277
// channels x 3x3, would otherwise get blocks of 48 columns; 192 measured
// best on the model's shapes).
#ifndef LGH_CONV_MIN_BLOCK_COLS
#define LGH_CONV_MIN_BLOCK_COLS 192
#endif

// Columns per block: the block of the column matrix (rows x cols floats)
// targets LGH_CONV_BLOCK_BYTES, at least LGH_CONV_MIN_BLOCK_COLS columns, and the blocks number at least
// `min_blocks` when the image is large enough.
inline int64_t conv_block_cols(int64_t rows, int64_t P, int64_t min_blocks, size_t elem) {
  int64_t pb = static_cast<int64_t>((LGH_CONV_BLOCK_BYTES) / (elem * static_cast<size_t>(std::max<int64_t>(rows, 1))));
  pb = std::max<int64_t>(pb, LGH_CONV_MIN_BLOCK_COLS);
  if (min_blocks > 1) pb = std::min(pb, std::max<int64_t>(32, (P + min_blocks - 1) / min_blocks));
  pb = std::min(pb, P);
  if (pb > 16) pb = pb / 16 * 16;  // whole SIMD packets for the GEMM's N dimension
  return std::max<int64_t>(pb, 1);
}

// The output positions p0..p1 of a block, as runs along output rows:
// (oh, ow0, ow1) with q0 the run's first column in the block. Computed once
// per block, so the per-row loops below do no division.
struct ConvRun {
  int64_t oh, ow0, ow1, q0;
};

inline int conv_runs(const ConvGeometry& g, int64_t p0, int64_t p1, std::vector<ConvRun>& runs) {
  runs.clear();
  int64_t p = p0;
  while (p < p1) {
    const int64_t oh = p / g.OW, ow0 = p % g.OW;
    const int64_t ow1 = std::min(g.OW, ow0 + (p1 - p));
    runs.push_back({oh, ow0, ow1, p - p0});
    p += ow1 - ow0;
  }
  return static_cast<int>(runs.size());
}

inline std::vector<ConvRun>& conv_run_scratch() {
  static thread_local std::vector<ConvRun> runs;
  return runs;
}

// Output columns [lo, hi) of a run whose input column ow*s - pad + kj is
// inside the image.
inline void conv_valid_columns(const ConvGeometry& g, const ConvRun& r, int64_t kj, int64_t& lo, int64_t& hi) {
  const int64_t s = g.stride;
  lo = std::clamp<int64_t>((g.pad - kj + s - 1) / s, r.ow0, r.ow1);
  hi = std::clamp<int64_t>((g.W + g.pad - kj + s - 1) / s, lo, r.ow1);
}

// col[r, q] = x[c, oh*s - pad + ki, ow*s - pad + kj] for r = (c, ki, kj) and
// output positions p0 + q, q in [0, p1 - p0); zero outside the image.
template <typename T>
void im2col_block(const T* x, const ConvGeometry& g, int64_t p0, int64_t p1, T* col) {
  const int64_t pb = p1 - p0, s = g.stride;
  std::vector<ConvRun>& runs = conv_run_scratch();
  conv_runs(g, p0, p1, runs);
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + c * g.H * g.W;
    for (int64_t ki = 0; ki < g.KH; ++ki) {
      for (int64_t kj = 0; kj < g.KW; ++kj) {
        T* dst = col + ((c * g.KH + ki) * g.KW + kj) * pb;
        for (const ConvRun& r : runs) {
          // d[ow - ow0] is output column ow; x's column is ow*s + off.
          T* LGH_RESTRICT d = dst + r.q0;
          const int64_t ih = r.oh * s - g.pad + ki;
          if (ih < 0 || ih >= g.H) {
            for (int64_t i = 0; i < r.ow1 - r.ow0; ++i) d[i] = T(0);
            continue;
          }
          int64_t lo, hi;
          conv_valid_columns(g, r, kj, lo, hi);
          const T* LGH_RESTRICT row = xc + ih * g.W;
          const int64_t off = kj - g.pad;
          for (int64_t ow = r.ow0; ow < lo; ++ow) d[ow - r.ow0] = T(0);
          if (s == 1) {
            const T* LGH_RESTRICT from = row + (lo + off);
            T* LGH_RESTRICT to = d + (lo - r.ow0);
            for (int64_t i = 0; i < hi - lo; ++i) to[i] = from[i];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow - r.ow0] = row[ow * s + off];
          }
          for (int64_t ow = hi; ow < r.ow1; ++ow) d[ow - r.ow0] = T(0);
        }
      }
    }
  }
}

// The adjoint of im2col_block for channels [c0, c1): gx[c, ih, iw] += col[r, q].
// `col` holds only the rows of those channels.
template <typename T>
void col2im_block(const T* col, const ConvGeometry& g, int64_t c0, int64_t c1, int64_t p0, int64_t p1, T* gx) {
  const int64_t pb = p1 - p0, s = g.stride;
  std::vector<ConvRun>& runs = conv_run_scratch();
  conv_runs(g, p0, p1, runs);
  for (int64_t c = c0; c < c1; ++c) {
    T* xc = gx + c * g.H * g.W;
    for (int64_t ki = 0; ki < g.KH; ++ki) {
      for (int64_t kj = 0; kj < g.KW; ++kj) {
        const T* src = col + (((c - c0) * g.KH + ki) * g.KW + kj) * pb;
        for (const ConvRun& r : runs) {
          const int64_t ih = r.oh * s - g.pad + ki;
          if (ih < 0 || ih >= g.H) continue;
          int64_t lo, hi;
          conv_valid_columns(g, r, kj, lo, hi);
          const T* LGH_RESTRICT sp = src + r.q0;  // sp[ow - ow0] is output column ow
          T* LGH_RESTRICT row = xc + ih * g.W;
          const int64_t off = kj - g.pad;
          if (s == 1) {
            const T* LGH_RESTRICT from = sp + (lo - r.ow0);
            T* LGH_RESTRICT to = row + (lo + off);
            for (int64_t i = 0; i < hi - lo; ++i) to[i] += from[i];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) row[ow * s + off] += sp[ow - r.ow0];
          }
        }
      }
    }
  }
}

// conv_forward by im2col + GEMM, for every geometry.
template <typename T>
void conv_forward_im2col(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g,
                         const ConvEpilogue<T>& epilogue = {}) {
  const int64_t P = g.cols(), K = g.rows(), HW = g.H * g.W;
  const int threads = num_threads();
  const int64_t pb = conv_block_cols(K, P, (threads + g.N - 1) / g.N, sizeof(T));
  const int64_t nblocks = (P + pb - 1) / pb;
  // Small images (few column blocks): also split the output channels.
  int64_t ochunks = 1;
  if (g.N * nblocks < threads) ochunks = std::min<int64_t>(threads, std::max<int64_t>(1, g.O / 32));
  const int64_t ostep = (g.O + ochunks - 1) / ochunks;
  const int64_t tasks = g.N * nblocks * ochunks;

  parallel_tasks(static_cast<int>(tasks), [&](int t) {
    const int64_t oc = t % ochunks, b = (t / ochunks) % nblocks, n = t / (ochunks * nblocks);
    const int64_t o0 = oc * ostep, o1 = std::min(g.O, o0 + ostep);
    if (o0 >= o1) return;
    const int64_t p0 = b * pb, p1 = std::min(P, p0 + pb), cols = p1 - p0;
    T* yb = y + (n * g.O + o0) * P + p0;
    // Bias, ReLU and the residual are applied by the GEMM as it stores.
    const ::lgh::cpu::GemmEpilogue<T> e = epilogue.for_gemm(bias, n, g.O, o0, P, p0);
    const T* wo = w + o0 * K;
    if (g.pointwise()) {
      gemm<T>(false, false, o1 - o0, cols, K, wo, K, x + n * g.C * HW + p0, HW, yb, P, false, e);
    } else {
      T* col = conv_scratch<T>(static_cast<size_t>(K * cols));
      im2col_block(x + n * g.C * HW, g, p0, p1, col);
      gemm<T>(false, false, o1 - o0, cols, K, wo, K, col, cols, yb, P, false, e);
    }
  });
}

// conv_backward_data by GEMM + col2im, for every geometry.
template <typename T>
void conv_backward_data_im2col(const T* gy, const T* w, T* gx, const ConvGeometry& g) {
  const int64_t P = g.cols(), K = g.rows(), HW = g.H * g.W, kk = g.KH * g.KW;
  const int threads = num_threads();
  if (g.pointwise()) {
    // gx[n] (C x HW) = W^T (C x O) * gy[n] (O x HW), in independent column blocks.
    const int64_t pb = conv_block_cols(g.O, P, (threads + g.N - 1) / g.N, sizeof(T));
    const int64_t nblocks = (P + pb - 1) / pb;
    parallel_tasks(static_cast<int>(g.N * nblocks), [&](int t) {
      const int64_t n = t / nblocks, b = t % nblocks;
      const int64_t p0 = b * pb, p1 = std::min(P, p0 + pb);
      gemm<T>(true, false, g.C, p1 - p0, g.O, w, K, gy + n * g.O * P + p0, P, gx + n * g.C * HW + p0, HW, false);
    });
    return;
  }
  // col2im scatters into overlapping windows, so tasks own disjoint input
  // channel ranges of one image and walk all column blocks themselves.
  const int64_t cchunks = std::min<int64_t>(g.C, std::max<int64_t>(1, (threads + g.N - 1) / g.N));
  const int64_t cstep = (g.C + cchunks - 1) / cchunks;
  parallel_tasks(static_cast<int>(g.N * cchunks), [&](int t) {
    const int64_t n = t / cchunks, cc = t % cchunks;
    const int64_t c0 = cc * cstep, c1 = std::min(g.C, c0 + cstep);
    if (c0 >= c1) return;
    T* gxn = gx + n * g.C * HW;
    std::fill(gxn + c0 * HW, gxn + c1 * HW, T(0));
    const int64_t r0 = c0 * kk, r1 = c1 * kk;
    const int64_t pb = conv_block_cols(r1 - r0, P, 1, sizeof(T));
    T* col = conv_scratch<T>(static_cast<size_t>((r1 - r0) * pb));
    for (int64_t p0 = 0; p0 < P; p0 += pb) {
      const int64_t p1 = std::min(P, p0 + pb);
      // Rows r0..r1 of W^T (K x O) are columns r0..r1 of W (O x K).
      gemm<T>(true, false, r1 - r0, p1 - p0, g.O, w + r0, K, gy + n * g.O * P + p0, P, col, p1 - p0, false);
      col2im_block(col, g, c0, c1, p0, p1, gxn);
    }
  });
}

// y[N,O,OH,OW] = conv(x[N,C,H,W], w[O,C,KH,KW]) + bias[O] (bias may be null),
// then the epilogue.
template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g,
                  const ConvEpilogue<T>& epilogue = {}) {
  if (winograd4_pays(g)) winograd4_conv3x3(x, w, false, bias, y, g.N, g.C, g.O, g.H, g.W, epilogue);
  else if (winograd_pays(g)) winograd_conv3x3(x, w, false, bias, y, g.N, g.C, g.O, g.H, g.W, epilogue);
  else conv_forward_im2col(x, w, bias, y, g, epilogue);
}

// gx[N,C,H,W] = conv^T(gy[N,O,OH,OW], w): the gradient of conv_forward in x.
// For 3x3, stride 1, pad 1 this is itself such a convolution of gy, with the
// kernel transposed in (O, C) and rotated by 180 degrees.
template <typename T>
void conv_backward_data(const T* gy, const T* w, T* gx, const ConvGeometry& g) {
  // The adjoint's input channels are the forward's outputs: the geometry
  // with C and O exchanged decides.
  ConvGeometry adjoint = g;
  std::swap(adjoint.C, adjoint.O);
  const T* none = nullptr;
  if (winograd4_pays(adjoint)) winograd4_conv3x3(gy, w, true, none, gx, g.N, g.O, g.C, g.H, g.W, {});
  else if (winograd_pays(g)) winograd_conv3x3(gy, w, true, none, gx, g.N, g.O, g.C, g.H, g.W, {});
  else conv_backward_data_im2col(gy, w, gx, g);
}

// gw[O,C,KH,KW] = sum_n gy[n] * im2col(x[n])^T and gb[O] = sum gy (gb may be null);
// 3x3 s1 p1 convolutions where Winograd pays take F(2x2, 3x3) instead.
template <typename T>
void conv_backward_weight(const T* x, const T* gy, T* gw, T* gb, const ConvGeometry& g) {
  if (winograd_pays(g)) {
    winograd_conv3x3_backward_weight(x, gy, gw, gb, g.N, g.C, g.O, g.H, g.W);
    return;
  }
  const int64_t P = g.cols(), K = g.rows(), HW = g.H * g.W;
  const int threads = num_threads();
  const int64_t pb = conv_block_cols(K, P, (threads + g.N - 1) / g.N, sizeof(T));
  const int64_t nblocks = (P + pb - 1) / pb;
  const int64_t tasks = g.N * nblocks;
  if (tasks == 0) {
    std::fill(gw, gw + g.O * K, T(0));
    if (gb) std::fill(gb, gb + g.O, T(0));
    return;
  }
  // Each chunk of tasks sums into its own partial gradient; chunks are reduced at the end.
  const int64_t chunks = std::min<int64_t>(threads, tasks);
  const int64_t per = (tasks + chunks - 1) / chunks;
  const int64_t wsize = g.O * K;
  std::vector<T> partial(static_cast<size_t>(std::max<int64_t>(0, chunks - 1) * (wsize + g.O)));

  parallel_tasks(static_cast<int>(chunks), [&](int ch) {
    T* w_acc = ch == 0 ? gw : partial.data() + (ch - 1) * (wsize + g.O);
    T* b_acc = ch == 0 ? gb : w_acc + wsize;
    std::fill(w_acc, w_acc + wsize, T(0));
    if (b_acc) std::fill(b_acc, b_acc + g.O, T(0));
    for (int64_t t = ch * per; t < std::min(tasks, (ch + 1) * per); ++t) {
      const int64_t n = t / nblocks, b = t % nblocks;
      const int64_t p0 = b * pb, p1 = std::min(P, p0 + pb), cols = p1 - p0;
      const T* gyb = gy + n * g.O * P + p0;
      if (g.pointwise()) {
        gemm<T>(false, true, g.O, K, cols, gyb, P, x + n * g.C * HW + p0, HW, w_acc, K, true);
      } else {
        T* col = conv_scratch<T>(static_cast<size_t>(K * cols));
        im2col_block(x + n * g.C * HW, g, p0, p1, col);
        gemm<T>(false, true, g.O, K, cols, gyb, P, col, cols, w_acc, K, true);
      }
      if (b_acc) {
        for (int64_t o = 0; o < g.O; ++o) {
          const T* r = gyb + o * P;
          T s = 0;
          for (int64_t i = 0; i < cols; ++i) s += r[i];
          b_acc[o] += s;
        }
      }
    }
  });
  for (int64_t ch = 1; ch < chunks; ++ch) {
    const T* w_acc = partial.data() + (ch - 1) * (wsize + g.O);
    for (int64_t i = 0; i < wsize; ++i) gw[i] += w_acc[i];
    if (gb)
      for (int64_t o = 0; o < g.O; ++o) gb[o] += w_acc[wsize + o];
  }
}

}  // namespace detail
}  // namespace ops
}  // namespace lgh
