// Warp and block sums for the fused kernels: shuffles within a warp, then one
// value per warp through shared memory, always in the same order, so a sum
// is the same on every run (no atomics).
#pragma once

#include <cuda_runtime.h>

namespace lgh {
namespace cuda {
namespace kernels {

constexpr unsigned kFullWarpMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullWarpMask, v, offset);
  return v;  // complete in lane 0
}

// Sum over the block's threads (blockDim.x a multiple of 32, at most 1024);
// every thread must call it. The result is complete in thread 0.
template <typename T>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T warp_sums[32];
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  T total = T(0);
  if (threadIdx.x == 0)
    for (unsigned w = 0; w < blockDim.x / 32; ++w) total += warp_sums[w];
  __syncthreads();  // warp_sums may be reused by a later call
  return total;
}

}  // namespace kernels
}  // namespace cuda
}  // namespace lgh
