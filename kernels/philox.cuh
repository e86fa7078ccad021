// Philox uniforms on the device: the same lgh::Philox (core/philox.hpp) the
// CPU uses, so element i of stream (seed, stream) is bit-identical on both.
#pragma once

#include "common.cuh"
#include "lgh/core/philox.hpp"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {
static __global__ void philox_uniform(Philox gen, uint64_t offset, int64_t n, float* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = gen.uniform(offset + static_cast<uint64_t>(i));
}
}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
// out[i] = uniform(offset + i) of `gen`, for i < n (out: device memory).
inline void philox_uniform(const Philox& gen, uint64_t offset, int64_t n, float* out, cudaStream_t stream = nullptr) {
  LGH_CHECK(n >= 0 && (n == 0 || out != nullptr), "philox_uniform: invalid output of " << n << " elements");
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  launch_kernel("philox_uniform", kernels::philox_uniform, blocks_for(n, kThreads), kThreads, 0, stream, gen, offset, n,
                out);
}

}  // namespace cuda
}  // namespace lgh
