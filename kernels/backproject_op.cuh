// CUDA entries of the stand-alone back-projection of the 2.5D pose to camera
// space (lgh/ops/backproject.hpp, Eq. 1-3), forward and backward: one thread
// per joint running the same LGH_HOST_DEVICE math as the CPU loop
// (lgh/ops/math/backproject.hpp), so the two agree to the last bit. (The
// soft-argmax kernel fuses the same math into its own pass; this entry serves
// the op when it runs alone.)
#pragma once

#include <cstdint>

#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/math/backproject.hpp"
#include "op_common.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// Row r = (b, j) of uvd / xyz [B, J, 3]; k [B, 4], z_root and s0 [B].
template <typename T>
__global__ void backproject_forward(const T* __restrict__ uvd, const T* __restrict__ k, const T* __restrict__ z_root,
                                    const T* __restrict__ s0, int64_t B, int64_t J, T* __restrict__ xyz) {
  LGH_GRID_STRIDE_LOOP(r, B * J) {
    const int64_t b = r / J;
    math::backproject_point(uvd + r * 3, k + b * 4, z_root[b], s0[b], xyz + r * 3);
  }
}

template <typename T>
__global__ void backproject_backward(const T* __restrict__ uvd, const T* __restrict__ k,
                                     const T* __restrict__ z_root, const T* __restrict__ s0,
                                     const T* __restrict__ dxyz, int64_t B, int64_t J, T* __restrict__ duvd) {
  LGH_GRID_STRIDE_LOOP(r, B * J) {
    const int64_t b = r / J;
    math::backproject_point_backward(uvd + r * 3, k + b * 4, z_root[b], s0[b], dxyz + r * 3, duvd + r * 3);
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------

template <typename T>
inline void backproject_forward(const T* uvd, const T* k, const T* z_root, const T* s0, int64_t B, int64_t J, T* xyz,
                                cudaStream_t stream) {
  LGH_CHECK(B >= 0 && J >= 0 && (B * J == 0 || (uvd && k && z_root && s0 && xyz)),
            "cuda::backproject_forward: invalid operands for B " << B << ", J " << J);
  if (B * J == 0) return;
  launch_kernel("backproject_forward", kernels::backproject_forward<T>, ops_launch::blocks(B * J),
                ops_launch::kThreads, 0, stream, uvd, k, z_root, s0, B, J, xyz);
}

template <typename T>
inline void backproject_backward(const T* uvd, const T* k, const T* z_root, const T* s0, const T* dxyz, int64_t B,
                                 int64_t J, T* duvd, cudaStream_t stream) {
  LGH_CHECK(B >= 0 && J >= 0 && (B * J == 0 || (uvd && k && z_root && s0 && dxyz && duvd)),
            "cuda::backproject_backward: invalid operands for B " << B << ", J " << J);
  if (B * J == 0) return;
  launch_kernel("backproject_backward", kernels::backproject_backward<T>, ops_launch::blocks(B * J),
                ops_launch::kThreads, 0, stream, uvd, k, z_root, s0, dxyz, B, J, duvd);
}

// ---- entries (the signatures of ops::entries in lgh/ops/backproject.hpp) -----------
namespace backproject_entries {

template <typename T>
void forward(const Tensor<T>& uvd, const Tensor<T>& k, const Tensor<T>& z_root, const Tensor<T>& s0,
             const Tensor<T>& xyz) {
  if (xyz.numel() == 0) return;
  cuda::backproject_forward(uvd.data(), k.data(), z_root.data(), s0.data(), uvd.size(0), uvd.size(1), xyz.data(),
                            current_cuda_stream(xyz.device()));
}

template <typename T>
void backward(const Tensor<T>& uvd, const Tensor<T>& k, const Tensor<T>& z_root, const Tensor<T>& s0,
              const Tensor<T>& dxyz, const Tensor<T>& duvd) {
  if (duvd.numel() == 0) return;
  cuda::backproject_backward(uvd.data(), k.data(), z_root.data(), s0.data(), dxyz.data(), uvd.size(0), uvd.size(1),
                             duvd.data(), current_cuda_stream(duvd.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::BackprojectForward, T>(DeviceType::CUDA, &forward<T>);
  dispatch::set_entry<ops::entries::BackprojectBackward, T>(DeviceType::CUDA, &backward<T>);
}

}  // namespace backproject_entries

// Installs the back-projection entries for float and double.
inline void register_backproject_entries() {
  backproject_entries::register_for<float>();
  backproject_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
