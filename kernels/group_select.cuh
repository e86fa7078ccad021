// Masked group selection on the GPU (Eq. 5 with the relaxed selector of
// Eq. 8): joint j takes its prediction from the K group branches as weighted
// by its selector row,
//   y[b,j,c] = a_c * sum_k S[j,k] * x[b,k,j,c],
// S [J,K], x [B,K,J,C], y [B,J,C], with an optional per-channel scale a [C]
// (the model's (4, 4, 1): u, v to input pixels, d unscaled). The per-point math
// is lgh/ops/math/group_select.hpp, as in the CPU op (lgh/ops/group_select.hpp).
//
// Backward, one launch (overwrites its outputs):
//   dx[b,k,j,c] = a_c * S[j,k] * dy[b,j,c]            (one thread per (b, k, j))
//   dS[j,k]     = sum_b sum_c a_c * dy[b,j,c] * x[b,k,j,c]   (one block per (j, k))
// The scale travels by value in the kernel's parameters (at most
// kMaxScaledChannels channels), so no device copy of it is needed.
//
// All arrays contiguous in device memory.
#pragma once

#include "block_reduce.cuh"
#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/ops/math/group_select.hpp"

namespace lgh {
namespace cuda {

constexpr int kMaxScaledChannels = 16;

// The per-channel scale a_c by value; n == 0 means all ones.
template <typename T>
struct ChannelScale {
  int n = 0;
  T a[kMaxScaledChannels];
};

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// The scale, copied from the kernel parameters to shared memory (a pointer
// into the parameters would make every thread copy them to local memory);
// null when there is none. Every thread of the block must call it.
template <typename T>
__device__ __forceinline__ const T* stage_scale(const ChannelScale<T>& scale) {
  __shared__ T a[kMaxScaledChannels];
  if (threadIdx.x == 0) {
#pragma unroll
    for (int c = 0; c < kMaxScaledChannels; ++c)  // constant indices: read straight from the parameters
      if (c < scale.n) a[c] = scale.a[c];
  }
  __syncthreads();
  return scale.n ? a : nullptr;
}

template <typename T>
__global__ void group_select_forward(const T* __restrict__ s, const T* __restrict__ x, int64_t B, int K, int J, int C,
                                     ChannelScale<T> scale, T* __restrict__ y) {
  const T* a = stage_scale(scale);
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;  // r = b*J + j
  if (r >= B * J) return;
  const int64_t b = r / J;
  const int j = static_cast<int>(r - b * J);
  math::group_select_point(s + static_cast<int64_t>(j) * K, x + (b * K * J + j) * C, static_cast<int64_t>(J) * C, K,
                           C, a, y + r * C);
}

template <typename T>
__global__ void group_select_backward(const T* __restrict__ s, const T* __restrict__ x, const T* __restrict__ dy,
                                      int64_t B, int K, int J, int C, ChannelScale<T> scale, int64_t dx_blocks,
                                      T* __restrict__ ds, T* __restrict__ dx) {
  const T* a = stage_scale(scale);
  if (blockIdx.x < dx_blocks) {
    // dx: point r = (b*K + k)*J + j.
    const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (r >= B * K * J) return;
    const int j = static_cast<int>(r % J);
    const int k = static_cast<int>((r / J) % K);
    const int64_t b = r / (static_cast<int64_t>(J) * K);
    math::group_select_dx_point(s[static_cast<int64_t>(j) * K + k], dy + (b * J + j) * C, C, a, dx + r * C);
    return;
  }
  // dS: entry e = j*K + k, summed over the batch by the whole block.
  const int64_t e = blockIdx.x - dx_blocks;
  const int j = static_cast<int>(e / K), k = static_cast<int>(e % K);
  T acc = T(0);
  for (int64_t b = threadIdx.x; b < B; b += blockDim.x)
    acc += math::group_select_ds_term(dy + (b * J + j) * C, x + ((b * K + k) * J + j) * C, C, a);
  acc = block_sum(acc);
  if (threadIdx.x == 0) ds[e] = acc;
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
namespace detail {
inline void check_group_select(const char* op, int64_t B, int64_t K, int64_t J, int64_t C, int scale_n) {
  LGH_CHECK(B >= 1 && K >= 1 && J >= 1 && C >= 1 && K <= 65535 && J <= 65535 && C <= 65535,
            op << ": x must be [B, K, J, C] with every extent >= 1 (K, J, C < 65536), got [" << B << ", " << K << ", "
               << J << ", " << C << "]");
  LGH_CHECK(scale_n == 0 || scale_n == C, op << ": the channel scale has " << scale_n << " values, expected 0 or C = "
                                             << C << " (x [" << B << ", " << K << ", " << J << ", " << C << "])");
}
}  // namespace detail

// Packs a host array of C scale values (or none) for the kernels.
template <typename T>
inline ChannelScale<T> make_channel_scale(const T* scale, int64_t C) {
  ChannelScale<T> cs;
  if (!scale) return cs;
  LGH_CHECK(C >= 1 && C <= kMaxScaledChannels, "cuda::group_select: a channel scale of C = "
                                                   << C << " values; the CUDA kernels take 1 to "
                                                   << kMaxScaledChannels << " scaled channels");
  cs.n = static_cast<int>(C);
  for (int64_t c = 0; c < C; ++c) cs.a[c] = scale[c];
  return cs;
}

// y [B,J,C] <- selection of x [B,K,J,C] by s [J,K].
template <typename T>
inline void group_select_forward(const T* s, const T* x, int64_t B, int64_t K, int64_t J, int64_t C,
                                 const ChannelScale<T>& scale, T* y, cudaStream_t stream) {
  const char* op = "cuda::group_select_forward";
  detail::check_group_select(op, B, K, J, C, scale.n);
  LGH_CHECK(s && x && y, op << ": null s, x or y (x [" << B << ", " << K << ", " << J << ", " << C << "])");
  const launch::Launch1D l = launch::group_select_forward_launch(B, J);
  LGH_CHECK(l.blocks <= launch::kMaxGridX, op << ": batch " << B << " x " << J << " joints is too large for one launch");
  launch_kernel("group_select_forward", kernels::group_select_forward<T>, static_cast<unsigned>(l.blocks), l.threads, 0,
                stream, s, x, B, static_cast<int>(K), static_cast<int>(J), static_cast<int>(C), scale, y);
}

// ds [J,K] and dx [B,K,J,C] (either may be null: not wanted) from dy [B,J,C].
template <typename T>
inline void group_select_backward(const T* s, const T* x, const T* dy, int64_t B, int64_t K, int64_t J, int64_t C,
                                  const ChannelScale<T>& scale, T* ds, T* dx, cudaStream_t stream) {
  const char* op = "cuda::group_select_backward";
  detail::check_group_select(op, B, K, J, C, scale.n);
  LGH_CHECK(s && x && dy, op << ": null s, x or dy (x [" << B << ", " << K << ", " << J << ", " << C << "])");
  const launch::GroupSelectBackwardLaunch l = launch::group_select_backward_launch(B, K, J, ds != nullptr, dx != nullptr);
  if (l.blocks() == 0) return;
  LGH_CHECK(l.blocks() <= launch::kMaxGridX,
            op << ": x [" << B << ", " << K << ", " << J << ", " << C << "] is too large for one launch");
  launch_kernel("group_select_backward", kernels::group_select_backward<T>, static_cast<unsigned>(l.blocks()),
                l.threads, 0, stream, s, x, dy, B, static_cast<int>(K), static_cast<int>(J), static_cast<int>(C), scale,
                l.dx_blocks, ds, dx);
}

}  // namespace cuda
}  // namespace lgh
