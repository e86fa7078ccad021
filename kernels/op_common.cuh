// Helpers shared by the CUDA entries of the differentiable ops (the headers
// batchnorm.cuh, pool_upsample.cuh, concat.cuh, reduce_softmax.cuh, loss.cuh,
// broadcast_ops.cuh, conv_cudnn.cuh, gemm_cublas.cuh, adam_multi.cuh): the
// grid of the one-thread-per-element kernels, and how an entry turns its
// optional tensors into kernel arguments.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "lgh/core/tensor.hpp"

namespace lgh {
namespace cuda {
namespace ops_launch {

// One thread per element, grid-stride: at most kMaxBlocks blocks, so that a
// huge tensor loops instead of needing a grid larger than the hardware's.
constexpr unsigned kThreads = 256;
constexpr unsigned kMaxBlocks = 65535;

inline unsigned blocks(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

// Threads of the block-per-row kernels (a channel's statistics, a row's sum):
// a multiple of 32, as block_sum needs.
constexpr unsigned kRowThreads = 256;

// The largest x extent of a grid (2^31 - 1).
constexpr int64_t kMaxGridX = 2147483647;

}  // namespace ops_launch

// A per-channel vector ([C], any stride) as a kernel argument: its data and
// stride, or a null pointer when the tensor is undefined (the kernel then
// uses the op's default, as detail::channel_values does on the CPU).
template <typename T>
struct ChannelParam {
  T* data = nullptr;
  int64_t stride = 0;

  __host__ __device__ T get(int64_t c, T fallback) const { return data ? data[c * stride] : fallback; }
};

template <typename T>
ChannelParam<T> channel_param(const Tensor<T>& t) {
  ChannelParam<T> p;
  if (t.defined()) {
    p.data = t.data();
    p.stride = t.strides()[0];
  }
  return p;
}

// The data of a tensor that may be undefined.
template <typename T>
T* data_or_null(const Tensor<T>& t) {
  return t.defined() ? t.data() : nullptr;
}

}  // namespace cuda
}  // namespace lgh

namespace lgh {
namespace cuda {
namespace kernels {

// for (i = this thread's first; i < n; i += the grid's size)
#define LGH_GRID_STRIDE_LOOP(i, n)                                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x,                              \
               lgh_step_##i = static_cast<int64_t>(gridDim.x) * blockDim.x;                                \
       i < (n); i += lgh_step_##i)

}  // namespace kernels
}  // namespace cuda
}  // namespace lgh
