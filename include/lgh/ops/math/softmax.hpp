// Row softmax, its backward, and argmax over short rows (the K groups of the
// selector, Eq. 8), shared by the CPU loops and the CUDA kernels.
#pragma once

#include "lgh/ops/math/scalar.hpp"

namespace lgh {
namespace math {

// Index of the largest of x[0..n), the lowest index on ties (n >= 1).
template <typename T>
LGH_HOST_DEVICE inline int argmax(const T* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// z[0..n) <- softmax(z), in place. Subtracting the row maximum first keeps
// every exponent <= 0, so nothing overflows whatever the logits' magnitude.
template <typename T>
LGH_HOST_DEVICE inline void softmax_inplace(T* z, int n) {
  T m = z[0];
  for (int i = 1; i < n; ++i) m = max(m, z[i]);
  T sum = T(0);
  for (int i = 0; i < n; ++i) {
    z[i] = exp(z[i] - m);
    sum += z[i];
  }
  const T inv = T(1) / sum;  // sum >= 1: the maximum contributes exp(0)
  for (int i = 0; i < n; ++i) z[i] *= inv;
}

// Backward of y = softmax(scale * x) for one row:
//   dx_i = scale * y_i * (dy_i - sum_k dy_k y_k).
template <typename T>
LGH_HOST_DEVICE inline void softmax_backward(const T* y, const T* dy, int n, T scale, T* dx) {
  T dot = T(0);
  for (int i = 0; i < n; ++i) dot += dy[i] * y[i];
  for (int i = 0; i < n; ++i) dx[i] = scale * y[i] * (dy[i] - dot);
}

}  // namespace math
}  // namespace lgh
