// CUDA entries of the regression losses (lgh/ops/loss.hpp): l1 (the l1 of
// Eq. 10) and smooth l1, reduced by mean, sum or not at all, forward and
// backward, with the CPU op's per-element formulas:
//   l = |d| (beta = 0) or 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta,
//   dl/dd = sign(d) (0 at d = 0) or d / beta inside the quadratic zone,
// d = pred - target; the target's gradient is the negative of pred's.
// A reduced forward sums the per-element losses like reduce_all (double
// partials over fixed chunks, then one block), so it never waits for the host.
#pragma once

#include <cmath>
#include <cstdint>

#include "block_reduce.cuh"
#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/storage.hpp"
#include "lgh/ops/loss.hpp"
#include "op_common.cuh"
#include "reduce_softmax.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

template <typename T>
__device__ __forceinline__ T loss_element(T d, T beta) {
  const T a = d < T(0) ? -d : d;
  if (beta > T(0)) return a < beta ? a * a * (T(0.5) / beta) : a - T(0.5) * beta;
  return a;
}

template <typename T>
__device__ __forceinline__ T loss_derivative(T d, T beta) {
  const T a = d < T(0) ? -d : d;
  if (beta > T(0) && a < beta) return d * (T(1) / beta);
  return d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
}

template <typename T>
__global__ void loss_elements(const T* __restrict__ p, const T* __restrict__ t, int64_t n, T beta,
                              T* __restrict__ out) {
  LGH_GRID_STRIDE_LOOP(i, n) out[i] = loss_element(p[i] - t[i], beta);
}

// partial[b] = the sum of the losses of chunk b, in double.
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    loss_partials(const T* __restrict__ p, const T* __restrict__ t, int64_t n, T beta, double* __restrict__ partial) {
  const int64_t lo = blockIdx.x * ops_launch::kReduceChunk;
  const int64_t hi = lo + ops_launch::kReduceChunk < n ? lo + ops_launch::kReduceChunk : n;
  double s = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += static_cast<double>(loss_element(p[i] - t[i], beta));
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// gp / gt (either may be null) from the loss gradient g: per element
// (reduction None) or the 0-d g[0] scaled by 1/n (Mean) or 1 (Sum).
template <typename T>
__global__ void loss_backward(const T* __restrict__ p, const T* __restrict__ t, const T* __restrict__ g, int64_t n,
                              ops::Reduction reduction, T beta, T* __restrict__ gp, T* __restrict__ gt) {
  const T scale = reduction == ops::Reduction::Mean ? static_cast<T>(g[0] / static_cast<T>(n)) : g[0];
  LGH_GRID_STRIDE_LOOP(i, n) {
    T dl = loss_derivative(p[i] - t[i], beta);
    dl *= reduction == ops::Reduction::None ? g[i] : scale;
    if (gp) gp[i] = dl;
    if (gt) gt[i] = -dl;
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------

// Reduction None: out has n elements; else out[0] is the sum (Mean: divided
// by n; the mean of nothing is NaN, as on the CPU), and `partial` holds
// reduce_all_blocks(n) doubles.
template <typename T>
inline void loss_forward(const T* p, const T* t, int64_t n, ops::Reduction reduction, T beta, double* partial, T* out,
                         cudaStream_t stream) {
  LGH_CHECK(n >= 0 && out && (n == 0 || (p && t)), "cuda::loss_forward: invalid operands of " << n << " elements");
  if (reduction == ops::Reduction::None) {
    if (n == 0) return;
    launch_kernel("loss_elements", kernels::loss_elements<T>, ops_launch::blocks(n), ops_launch::kThreads, 0, stream,
                  p, t, n, beta, out);
    return;
  }
  LGH_CHECK(partial, "cuda::loss_forward: no scratch for the partial sums");
  const int64_t blocks = ops_launch::reduce_all_blocks(n);
  if (n == 0) {
    LGH_CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(double), stream));
  } else {
    launch_kernel("loss_partials", kernels::loss_partials<T>, static_cast<unsigned>(blocks), ops_launch::kRowThreads,
                  0, stream, p, t, n, beta, partial);
  }
  const double scale = reduction == ops::Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  launch_kernel("reduce_finish", kernels::reduce_finish<T>, 1u, ops_launch::kRowThreads, 0, stream,
                static_cast<const double*>(partial), blocks, scale, out);
}

template <typename T>
inline void loss_backward(const T* p, const T* t, const T* g, int64_t n, ops::Reduction reduction, T beta, T* gp,
                          T* gt, cudaStream_t stream) {
  LGH_CHECK(n >= 0 && (n == 0 || (p && t && g)), "cuda::loss_backward: invalid operands of " << n << " elements");
  if (n == 0 || (!gp && !gt)) return;
  launch_kernel("loss_backward", kernels::loss_backward<T>, ops_launch::blocks(n), ops_launch::kThreads, 0, stream, p,
                t, g, n, reduction, beta, gp, gt);
}

// ---- entries (the signatures of ops::entries in lgh/ops/loss.hpp) -----------------
namespace loss_entries {

template <typename T>
void forward(const Tensor<T>& pred, const Tensor<T>& target, ops::Reduction reduction, T beta, const Tensor<T>& out) {
  const int64_t n = pred.numel();
  const T* p = n ? pred.data() : nullptr;
  const T* t = n ? target.data() : nullptr;
  if (reduction == ops::Reduction::None) {
    cuda::loss_forward(p, t, n, reduction, beta, static_cast<double*>(nullptr), out.numel() ? out.data() : nullptr,
                       current_cuda_stream(out.device()));
    return;
  }
  Storage partial(static_cast<size_t>(ops_launch::reduce_all_blocks(n)) * sizeof(double), out.device());
  cuda::loss_forward(p, t, n, reduction, beta, static_cast<double*>(partial.data()), out.data(),
                     current_cuda_stream(out.device()));
}

template <typename T>
void backward(const Tensor<T>& pred, const Tensor<T>& target, const Tensor<T>& gy, ops::Reduction reduction, T beta,
              const Tensor<T>& gpred, const Tensor<T>& gtarget) {
  const int64_t n = pred.numel();
  if (n == 0) return;
  cuda::loss_backward(pred.data(), target.data(), gy.data(), n, reduction, beta, data_or_null(gpred),
                      data_or_null(gtarget), current_cuda_stream(pred.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::RegressionLossForward, T>(DeviceType::CUDA, &forward<T>);
  dispatch::set_entry<ops::entries::RegressionLossBackward, T>(DeviceType::CUDA, &backward<T>);
}

}  // namespace loss_entries

// Installs the loss entries for float and double.
inline void register_loss_entries() {
  loss_entries::register_for<float>();
  loss_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
