// Host/device math of the masked group selection: joint j takes its
// prediction from the groups as weighted by its selector row (Eq. 5 with the
// relaxed selector of Eq. 8),
//   y[b,j,c] = a_c * sum_k S[j,k] * x[b,k,j,c],
// where a_c is an optional per-channel scale (the model's 4x from 1/4
// resolution to input pixels on u and v, 1 on d).
#pragma once

#include <stdint.h>

#include "lgh/core/config.hpp"

namespace lgh {
namespace math {

// One output point (b, j): s = S[j, 0..K), x = &x[b,0,j,0] with groups
// `group_stride` elements apart, y = &y[b,j,0]; scale may be null (all 1).
template <typename T>
LGH_HOST_DEVICE inline void group_select_point(const T* s, const T* x, int64_t group_stride, int K, int C,
                                               const T* scale, T* y) {
  for (int c = 0; c < C; ++c) {
    T acc = T(0);
    for (int k = 0; k < K; ++k) acc += s[k] * x[k * group_stride + c];
    y[c] = scale ? scale[c] * acc : acc;
  }
}

// Gradient to x at one point (b, k, j): dx[c] = a_c * S[j,k] * dy[b,j,c].
template <typename T>
LGH_HOST_DEVICE inline void group_select_dx_point(T s_jk, const T* dy, int C, const T* scale, T* dx) {
  for (int c = 0; c < C; ++c) dx[c] = (scale ? scale[c] : T(1)) * s_jk * dy[c];
}

// One term of the selector gradient: sum_c a_c * dy[b,j,c] * x[b,k,j,c]
// (dS[j,k] is its sum over the batch).
template <typename T>
LGH_HOST_DEVICE inline T group_select_ds_term(const T* dy, const T* x, int C, const T* scale) {
  T acc = T(0);
  for (int c = 0; c < C; ++c) acc += (scale ? scale[c] : T(1)) * dy[c] * x[c];
  return acc;
}

}  // namespace math
}  // namespace lgh
