// The CUDA entries of the model-level kernels of lgh/nn (core/dispatch.hpp):
// the 1/s0 normalisation of the Eq. (10) loss (nn::entries::InverseScale),
// so that a training step on the GPU computes it where s0 lives and reads
// nothing back.
#pragma once

#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/nn/pose3d.hpp"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// inv[b] = 1 / s0[b]; NaN where s0[b] <= 0 (or is NaN), so that the loss
// shows the bad sample (a kernel cannot throw; the CPU entry does).
template <typename T>
__global__ void inverse_scale(const T* __restrict__ s0, int64_t n, T* __restrict__ inv) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= n) return;
  const T s = s0[b];
  inv[b] = s > T(0) ? T(1) / s : T(NAN);
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
template <typename T>
inline void inverse_scale(const T* s0, int64_t n, T* inv, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && s0 && inv, "cuda::inverse_scale: invalid operands of " << n << " elements");
  const launch::Launch1D l = launch::one_thread_per_item(n, 256);
  LGH_CHECK(l.blocks <= launch::kMaxGridX, "cuda::inverse_scale: " << n << " elements is too many for one launch");
  launch_kernel("inverse_scale", kernels::inverse_scale<T>, static_cast<unsigned>(l.blocks), l.threads, 0, stream, s0,
                n, inv);
}

// ---- entries ------------------------------------------------------------------
namespace model_entries {

template <typename T>
void inverse_scale(const Tensor<T>& s0, const Tensor<T>& inv) {
  cuda::inverse_scale(s0.data(), s0.numel(), inv.data(), current_cuda_stream(inv.device()));
}

}  // namespace model_entries

inline void register_model_entries() {
  dispatch::set_entry<nn::entries::InverseScale, float>(DeviceType::CUDA, &model_entries::inverse_scale<float>);
  dispatch::set_entry<nn::entries::InverseScale, double>(DeviceType::CUDA, &model_entries::inverse_scale<double>);
}

}  // namespace cuda
}  // namespace lgh
