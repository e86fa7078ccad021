// The joint-group selector of Eq. (8) on the GPU, in one launch:
//   S~_jk = softmax_k((theta_jk + g_jk) / tau),   g_jk = -log(-log U_jk),
// the Philox draw, the Gumbel transform and the row softmax of a row j all in
// one thread, with the math of lgh/ops/math/gumbel_softmax.hpp that the CPU op
// (lgh/ops/gumbel_softmax.hpp) calls. U_jk = Philox(seed, stream).uniform(j*K + k)
// is a pure function of the element's index, so the device draws exactly
// the CPU's noise for the same (seed, stream).
//
// Modes, as the CPU op: the noise source says Sample (a Philox stream), Soft
// (no noise) or explicit uniforms (a device array laid out like theta, which
// the caller has checked to lie in (0, 1)); y_hard, when given, also receives
// the one-hot of each row's argmax (the straight-through forward). Hard mode
// (one-hot of argmax_k theta_jk, no softmax) is its own launcher.
//
// Backward (overwrites dtheta): dtheta_jk = (1/tau) S~_jk (dy_jk - sum_l dy_jl S~_jl),
// from the saved relaxed rows S~ (also under straight-through).
//
// All arrays are contiguous [J, K] in device memory; J x K is 21 x 3 in the
// model, so each launch is one block (fused_launch.hpp).
#pragma once

#include <cmath>

#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/ops/math/gumbel_softmax.hpp"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

template <typename T>
__global__ void gumbel_softmax_forward(const T* __restrict__ theta, int64_t J, int K, T inv_tau,
                                       math::GumbelNoiseSource<T> noise, T* __restrict__ y_soft,
                                       T* __restrict__ y_hard) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= J) return;
  const int64_t row = j * K;
  // Eq. (8): the logits go to y_soft, which the softmax then overwrites in place.
  const int best = math::gumbel_softmax_row(theta + row, K, inv_tau, noise, static_cast<uint64_t>(row), y_soft + row);
  if (y_hard) math::one_hot_row(best, K, y_hard + row);
}

template <typename T>
__global__ void gumbel_softmax_hard(const T* __restrict__ theta, int64_t J, int K, T* __restrict__ y) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= J) return;
  math::one_hot_row(math::argmax(theta + j * K, K), K, y + j * K);
}

template <typename T>
__global__ void gumbel_softmax_backward(const T* __restrict__ y_soft, const T* __restrict__ dy, int64_t J, int K,
                                        T inv_tau, T* __restrict__ dtheta) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= J) return;
  math::gumbel_softmax_row_backward(y_soft + j * K, dy + j * K, K, inv_tau, dtheta + j * K);
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
namespace detail {
inline void check_selector_shape(const char* op, int64_t J, int64_t K) {
  LGH_CHECK(J >= 1 && K >= 1 && K <= 2147483647,
            op << ": the selector must be [J, K] with J >= 1 and 1 <= K < 2^31, got [" << J << ", " << K << "]");
}
template <typename T>
inline void check_inv_tau(const char* op, T inv_tau, int64_t J, int64_t K) {
  LGH_CHECK(std::isfinite(static_cast<double>(inv_tau)) && inv_tau > T(0),
            op << ": 1/tau must be finite and > 0, got " << inv_tau << " (selector [" << J << ", " << K << "])");
}
}  // namespace detail

// y_soft [J,K] <- Eq. (8) of theta [J,K]; y_hard [J,K] (optional) <- one-hot
// argmax rows. inv_tau = 1/tau > 0.
template <typename T>
inline void gumbel_softmax_forward(const T* theta, int64_t J, int64_t K, T inv_tau,
                                   const math::GumbelNoiseSource<T>& noise, T* y_soft, T* y_hard,
                                   cudaStream_t stream) {
  const char* op = "cuda::gumbel_softmax_forward";
  detail::check_selector_shape(op, J, K);
  LGH_CHECK(theta && y_soft, op << ": null theta or y_soft for a [" << J << ", " << K << "] selector");
  detail::check_inv_tau(op, inv_tau, J, K);
  LGH_CHECK(noise.kind != math::GumbelNoiseSource<T>::Uniforms || noise.uniforms != nullptr,
            op << ": the noise source names uniforms but their pointer is null ([" << J << ", " << K << "])");
  const launch::Launch1D l = launch::gumbel_softmax_launch(J);
  launch_kernel("gumbel_softmax_forward", kernels::gumbel_softmax_forward<T>, static_cast<unsigned>(l.blocks),
                l.threads, 0, stream, theta, J, static_cast<int>(K), inv_tau, noise, y_soft, y_hard);
}

// y [J,K] <- one-hot of argmax_k theta_jk (lowest k on ties): Hard mode,
// Eq. (7)'s binary selector.
template <typename T>
inline void gumbel_softmax_hard(const T* theta, int64_t J, int64_t K, T* y, cudaStream_t stream) {
  const char* op = "cuda::gumbel_softmax_hard";
  detail::check_selector_shape(op, J, K);
  LGH_CHECK(theta && y, op << ": null theta or y for a [" << J << ", " << K << "] selector");
  const launch::Launch1D l = launch::gumbel_softmax_launch(J);
  launch_kernel("gumbel_softmax_hard", kernels::gumbel_softmax_hard<T>, static_cast<unsigned>(l.blocks), l.threads, 0,
                stream, theta, J, static_cast<int>(K), y);
}

// dtheta [J,K] <- backward of Eq. (8) from the relaxed rows y_soft and dy.
template <typename T>
inline void gumbel_softmax_backward(const T* y_soft, const T* dy, int64_t J, int64_t K, T inv_tau, T* dtheta,
                                    cudaStream_t stream) {
  const char* op = "cuda::gumbel_softmax_backward";
  detail::check_selector_shape(op, J, K);
  LGH_CHECK(y_soft && dy && dtheta, op << ": null y_soft, dy or dtheta for a [" << J << ", " << K << "] selector");
  detail::check_inv_tau(op, inv_tau, J, K);
  const launch::Launch1D l = launch::gumbel_softmax_launch(J);
  launch_kernel("gumbel_softmax_backward", kernels::gumbel_softmax_backward<T>, static_cast<unsigned>(l.blocks),
                l.threads, 0, stream, y_soft, dy, J, static_cast<int>(K), inv_tau, dtheta);
}

}  // namespace cuda
}  // namespace lgh
