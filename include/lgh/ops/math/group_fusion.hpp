// Host/device math of the eval-mode epilogue of the group fusion, Eq. (9):
// BatchNorm folded into a per-channel affine map, then ReLU,
//   out = max(scale_c * conv + shift_c, 0),
// with scale_c = gamma_c / sqrt(var_c + eps) and shift_c = beta_c - mean_c * scale_c.
// (The 1x1 convolutions themselves are GEMMs: Eigen on the CPU, cuBLAS or a
// tiled kernel on the GPU.)
#pragma once

#include "lgh/core/config.hpp"

namespace lgh {
namespace math {

template <typename T>
LGH_HOST_DEVICE inline T fusion_epilogue(T conv, T scale, T shift, bool relu) {
  const T y = scale * conv + shift;
  return relu ? (y > T(0) ? y : T(0)) : y;
}

}  // namespace math
}  // namespace lgh
