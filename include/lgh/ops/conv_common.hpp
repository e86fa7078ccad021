// What the convolution kernels share: the geometry of one convolution, the
// per-thread scratch buffers and the epilogue applied to finished outputs.
// Used by the im2col path (conv_impl.hpp) and the Winograd path
// (winograd.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lgh/cpu/sgemm.hpp"

namespace lgh {
namespace ops {
namespace detail {

struct ConvGeometry {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input of the (forward) convolution
  int64_t O = 0, KH = 0, KW = 0;       // output channels, kernel size
  int64_t stride = 1, pad = 0;
  int64_t OH = 0, OW = 0;              // output of the convolution

  int64_t rows() const { return C * KH * KW; }  // im2col rows (K of the GEMM)
  int64_t cols() const { return OH * OW; }      // im2col columns
  bool pointwise() const { return KH == 1 && KW == 1 && stride == 1 && pad == 0; }
};

inline int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

// Per-thread scratch reused across calls (no allocation in steady state).
// Buffers that are live at the same time on one thread take different slots.
template <typename T, int Slot = 0>
T* conv_scratch(size_t n) {
  static thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// What happens to each output block right after its GEMM, while it is still
// in cache (inference): y = relu?(y); y += residual; y = relu?(y).
template <typename T>
struct ConvEpilogue {
  bool relu = false;                 // ReLU on conv + bias
  const T* residual = nullptr;       // then add a tensor shaped like y
  bool relu_after_residual = false;  // then ReLU again

  bool active() const { return relu || residual || relu_after_residual; }

  // One output value v = conv + bias; r is the residual at its position
  // (unused without a residual).
  T finish(T v, T r) const {
    if (relu) v = v > T(0) ? v : T(0);
    if (residual) v += r;
    if (relu_after_residual) v = v > T(0) ? v : T(0);
    return v;
  }

  // The same steps after adding bias (per output channel, may be null), as
  // the GEMM's epilogue for rows o0.. of image n and columns p0.. of y
  // (output positions, P per channel): applied as each tile is stored.
  ::lgh::cpu::GemmEpilogue<T> for_gemm(const T* bias, int64_t n, int64_t O, int64_t o0, int64_t P, int64_t p0) const {
    ::lgh::cpu::GemmEpilogue<T> e;
    e.bias = bias ? bias + o0 : nullptr;
    e.relu = relu;
    e.residual = residual ? residual + (n * O + o0) * P + p0 : nullptr;
    e.ldr = P;
    e.relu_after_residual = relu_after_residual;
    return e;
  }

  // Rows o0..o1 of image n, columns p0..p0+cols, of y (row stride P).
  void apply(T* yb, int64_t n, int64_t O, int64_t o0, int64_t o1, int64_t P, int64_t p0, int64_t cols) const {
    for (int64_t o = o0; o < o1; ++o) {
      T* row = yb + (o - o0) * P;
      const T* res = residual ? residual + (n * O + o) * P + p0 : nullptr;
      for (int64_t i = 0; i < cols; ++i) row[i] = finish(row[i], res ? res[i] : T(0));
    }
  }
};

}  // namespace detail
}  // namespace ops
}  // namespace lgh
