// Host/device math of the 3D recovery, Eq. (1)-(3): with the crop-adjusted
// intrinsics (fx, fy, cx, cy), the root depth z_root and the scale s0,
//   z = s0 * d + z_root                          (Eq. 2)
//   (x, y) = z * ((u - cx) / fx, (v - cy) / fy)   (Eq. 1 and 3: s = z, times M^-1 [u, v, 1])
#pragma once

#include "lgh/core/config.hpp"

namespace lgh {
namespace math {

// One joint: uvd = (u, v, d), k = (fx, fy, cx, cy) -> xyz.
template <typename T>
LGH_HOST_DEVICE inline void backproject_point(const T* uvd, const T* k, T z_root, T s0, T* xyz) {
  const T z = s0 * uvd[2] + z_root;
  xyz[0] = z * ((uvd[0] - k[2]) / k[0]);
  xyz[1] = z * ((uvd[1] - k[3]) / k[1]);
  xyz[2] = z;
}

// Gradient to (u, v, d) of one joint (the intrinsics, z_root and s0 are data):
//   du = dx z / fx,  dv = dy z / fy,  dd = s0 (dx (u - cx)/fx + dy (v - cy)/fy + dz).
template <typename T>
LGH_HOST_DEVICE inline void backproject_point_backward(const T* uvd, const T* k, T z_root, T s0, const T* dxyz,
                                                       T* duvd) {
  const T z = s0 * uvd[2] + z_root;
  const T xn = (uvd[0] - k[2]) / k[0];
  const T yn = (uvd[1] - k[3]) / k[1];
  duvd[0] = dxyz[0] * z / k[0];
  duvd[1] = dxyz[1] * z / k[1];
  duvd[2] = s0 * (dxyz[0] * xn + dxyz[1] * yn + dxyz[2]);
}

}  // namespace math
}  // namespace lgh
