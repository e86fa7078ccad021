// CUDA entries of the elementwise ops of lgh/ops/elementwise.hpp. So far:
// ReLU forward and backward and the affine map y = alpha x + beta (scalar
// add, scalar multiply, negation); docs/architecture.md uses them as the
// worked example of adding a CUDA entry.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/elementwise.hpp"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

template <typename T>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    y[i] = x[i] > T(0) ? x[i] : T(0);
}

// As on the CPU: the gradient passes where the output is positive.
template <typename T>
__global__ void relu_backward(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    gx[i] = y[i] > T(0) ? gy[i] : T(0);
}

template <typename T>
__global__ void affine(const T* __restrict__ x, T alpha, T beta, T* __restrict__ y, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    y[i] = alpha * x[i] + beta;
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
// Contiguous device arrays of n >= 1 elements on the current device.

namespace detail {
constexpr unsigned kElementwiseThreads = 256;
inline unsigned elementwise_blocks(int64_t n) {
  const unsigned b = blocks_for(n, kElementwiseThreads);
  return b < 65535u ? b : 65535u;
}
}  // namespace detail

template <typename T>
inline void relu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && x && y, "cuda::relu_forward: invalid operands of " << n << " elements");
  launch_kernel("relu_forward", kernels::relu_forward<T>, detail::elementwise_blocks(n), detail::kElementwiseThreads, 0,
                stream, x, y, n);
}

template <typename T>
inline void relu_backward(const T* y, const T* gy, T* gx, int64_t n, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && y && gy && gx, "cuda::relu_backward: invalid operands of " << n << " elements");
  launch_kernel("relu_backward", kernels::relu_backward<T>, detail::elementwise_blocks(n), detail::kElementwiseThreads,
                0, stream, y, gy, gx, n);
}

template <typename T>
inline void affine(const T* x, T alpha, T beta, T* y, int64_t n, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && x && y, "cuda::affine: invalid operands of " << n << " elements");
  launch_kernel("affine", kernels::affine<T>, detail::elementwise_blocks(n), detail::kElementwiseThreads, 0, stream, x,
                alpha, beta, y, n);
}

// ---- entries (the signatures of ops::entries in lgh/ops/elementwise.hpp) -----------
namespace elementwise_entries {

template <typename T>
void relu_forward(const Tensor<T>& x, const Tensor<T>& y) {
  cuda::relu_forward(x.data(), y.data(), y.numel(), current_cuda_stream(y.device()));
}

template <typename T>
void relu_backward(const Tensor<T>& y, const Tensor<T>& gy, const Tensor<T>& gx) {
  cuda::relu_backward(y.data(), gy.data(), gx.data(), gx.numel(), current_cuda_stream(gx.device()));
}

template <typename T>
void affine(const Tensor<T>& x, T alpha, T beta, const Tensor<T>& y) {
  cuda::affine(x.data(), alpha, beta, y.data(), y.numel(), current_cuda_stream(y.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::ReluForward, T>(DeviceType::CUDA, &relu_forward<T>);
  dispatch::set_entry<ops::entries::ReluBackward, T>(DeviceType::CUDA, &relu_backward<T>);
  dispatch::set_entry<ops::entries::Affine, T>(DeviceType::CUDA, &affine<T>);
}

}  // namespace elementwise_entries

// Installs the elementwise entries for float and double.
inline void register_elementwise_entries() {
  elementwise_entries::register_for<float>();
  elementwise_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
