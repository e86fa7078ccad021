// CUDA entries of batch normalisation (lgh/ops/batchnorm.hpp), hand-written
// so that the semantics are exactly the CPU op's (DESIGN §2, PyTorch's
// BatchNorm2d): in training the batch mean and the *biased* batch variance
// normalise, and the running statistics move by
//   running = (1 - momentum) * running + momentum * batch
// with the *unbiased* variance M / (M - 1) * var_B (M = N H W values per
// channel); in eval the running statistics normalise and nothing changes.
//
// One block per channel: the block reduces the channel's M values in double
// (a first pass for the mean, a second over (x - mean) for the variance,
// never E[x^2] - mean^2, as the CPU op), then normalises them. Sums are
// block_sum's fixed-order tree, so a result never depends on timing.
#pragma once

#include <cmath>
#include <cstdint>

#include "block_reduce.cuh"
#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "op_common.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// The block's sum of v (double), returned to every thread.
__device__ inline double block_sum_to_all(double v) {
  __shared__ double total;
  v = block_sum(v);
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  const double r = total;
  __syncthreads();  // total may be rewritten by the next call
  return r;
}

// Block c: channel c of x [N, C, HW]. training: batch statistics (and the
// running update when running_mean is given); else the running statistics.
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    batch_norm_forward(const T* __restrict__ x, int64_t N, int64_t C, int64_t HW, ChannelParam<const T> weight,
                       ChannelParam<const T> bias, ChannelParam<T> running_mean, ChannelParam<T> running_var,
                       bool training, double momentum, double eps, T* __restrict__ y, T* __restrict__ save_mean,
                       T* __restrict__ save_invstd) {
  const int64_t c = blockIdx.x;
  const int64_t M = N * HW;
  double mean, invstd;
  if (training) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * HW;
      for (int64_t k = threadIdx.x; k < HW; k += blockDim.x) s += static_cast<double>(p[k]);
    }
    mean = block_sum_to_all(s) / double(M);
    const T mean_t = static_cast<T>(mean);
    double sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * HW;
      for (int64_t k = threadIdx.x; k < HW; k += blockDim.x) {
        const T d = p[k] - mean_t;
        sq += static_cast<double>(d * d);
      }
    }
    const double var = block_sum_to_all(sq) / double(M);
    invstd = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      save_mean[c] = mean_t;
      save_invstd[c] = static_cast<T>(invstd);
      if (running_mean.data) {
        T& rm = running_mean.data[c * running_mean.stride];
        T& rv = running_var.data[c * running_var.stride];
        rm = static_cast<T>((1.0 - momentum) * double(rm) + momentum * mean);
        rv = static_cast<T>((1.0 - momentum) * double(rv) + momentum * var * double(M) / double(M - 1));
      }
    }
  } else {
    mean = double(running_mean.get(c, T(0)));
    invstd = 1.0 / sqrt(double(running_var.get(c, T(1))) + eps);
    if (threadIdx.x == 0) {
      save_mean[c] = running_mean.get(c, T(0));
      save_invstd[c] = static_cast<T>(invstd);
    }
  }
  const double w = double(weight.get(c, T(1))), b = double(bias.get(c, T(0)));
  const T scale = static_cast<T>(w * invstd);
  const T shift = static_cast<T>(b - mean * w * invstd);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t o = (n * C + c) * HW;
    for (int64_t k = threadIdx.x; k < HW; k += blockDim.x) y[o + k] = x[o + k] * scale + shift;
  }
}

// Block c: the gradients of channel c (each output may be null).
//   gbias = sum gy, gweight = invstd * sum gy (x - mean),
//   gx = a gy + k x + d, a = w invstd; in training (through the batch
//   statistics) k = -a invstd^2 sum(gy (x - mean)) / M and
//   d = -a sum(gy) / M - k mean; in eval k = d = 0.
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    batch_norm_backward(const T* __restrict__ x, const T* __restrict__ gy, int64_t N, int64_t C, int64_t HW,
                        ChannelParam<const T> weight, const T* __restrict__ save_mean,
                        const T* __restrict__ save_invstd, bool training, T* __restrict__ gx, T* __restrict__ gweight,
                        T* __restrict__ gbias) {
  const int64_t c = blockIdx.x;
  const int64_t M = N * HW;
  const T mean = save_mean[c];
  const double invstd = double(save_invstd[c]);
  const bool need_sums = gweight || gbias || (gx && training);
  double sum_g = 0, sum_gxc = 0;
  if (need_sums) {
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * HW;
      for (int64_t k = threadIdx.x; k < HW; k += blockDim.x) {
        const T g = gy[o + k];
        sum_g += static_cast<double>(g);
        sum_gxc += static_cast<double>(g * (x[o + k] - mean));
      }
    }
    sum_g = block_sum_to_all(sum_g);
    sum_gxc = block_sum_to_all(sum_gxc);
  }
  if (threadIdx.x == 0) {
    if (gbias) gbias[c] = static_cast<T>(sum_g);
    if (gweight) gweight[c] = static_cast<T>(sum_gxc * invstd);
  }
  if (!gx) return;
  const double a = double(weight.get(c, T(1))) * invstd;
  double kk = 0, d = 0;
  if (training) {
    kk = -a * invstd * invstd * sum_gxc / double(M);
    d = -a * sum_g / double(M) - kk * double(mean);
  }
  const T at = static_cast<T>(a), kt = static_cast<T>(kk), dt = static_cast<T>(d);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t o = (n * C + c) * HW;
    for (int64_t k = threadIdx.x; k < HW; k += blockDim.x)
      gx[o + k] = training ? gy[o + k] * at + x[o + k] * kt + dt : gy[o + k] * at;
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
// x, y, gy, gx: contiguous [N, C, HW] device arrays; per-channel vectors as
// ChannelParam (null: the default) or contiguous [C].

template <typename T>
inline void batch_norm_forward(const T* x, int64_t N, int64_t C, int64_t HW, ChannelParam<const T> weight,
                               ChannelParam<const T> bias, ChannelParam<T> running_mean, ChannelParam<T> running_var,
                               bool training, double momentum, double eps, T* y, T* save_mean, T* save_invstd,
                               cudaStream_t stream) {
  LGH_CHECK(N >= 1 && C >= 1 && HW >= 1 && x && y && save_mean && save_invstd,
            "cuda::batch_norm_forward: invalid operands for N " << N << ", C " << C << ", HW " << HW);
  LGH_CHECK(training || (running_mean.data && running_var.data) || (!running_mean.data && !running_var.data),
            "cuda::batch_norm_forward: running_mean and running_var must be given together");
  LGH_CHECK(C <= ops_launch::kMaxGridX, "cuda::batch_norm_forward: " << C << " channels exceed one grid");
  launch_kernel("batch_norm_forward", kernels::batch_norm_forward<T>, static_cast<unsigned>(C),
                ops_launch::kRowThreads, 0, stream, x, N, C, HW, weight, bias, running_mean, running_var, training,
                momentum, eps, y, save_mean, save_invstd);
}

template <typename T>
inline void batch_norm_backward(const T* x, const T* gy, int64_t N, int64_t C, int64_t HW,
                                ChannelParam<const T> weight, const T* save_mean, const T* save_invstd, bool training,
                                T* gx, T* gweight, T* gbias, cudaStream_t stream) {
  LGH_CHECK(N >= 1 && C >= 1 && HW >= 1 && x && gy && save_mean && save_invstd,
            "cuda::batch_norm_backward: invalid operands for N " << N << ", C " << C << ", HW " << HW);
  if (!gx && !gweight && !gbias) return;
  launch_kernel("batch_norm_backward", kernels::batch_norm_backward<T>, static_cast<unsigned>(C),
                ops_launch::kRowThreads, 0, stream, x, gy, N, C, HW, weight, save_mean, save_invstd, training, gx,
                gweight, gbias);
}

// ---- entries (the signatures of ops::entries in lgh/ops/batchnorm.hpp) -----------
namespace batchnorm_entries {

template <typename T>
ChannelParam<const T> const_param(const Tensor<T>& t) {
  const ChannelParam<T> p = channel_param(t);
  return ChannelParam<const T>{p.data, p.stride};
}

template <typename T>
void forward(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const Tensor<T>& running_mean,
             const Tensor<T>& running_var, bool training, double momentum, double eps, const Tensor<T>& y,
             const Tensor<T>& save_mean, const Tensor<T>& save_invstd) {
  cuda::batch_norm_forward(x.data(), x.size(0), x.size(1), x.size(2) * x.size(3), const_param(weight),
                           const_param(bias), channel_param(running_mean), channel_param(running_var), training,
                           momentum, eps, y.data(), save_mean.data(), save_invstd.data(),
                           current_cuda_stream(y.device()));
}

template <typename T>
void backward(const Tensor<T>& x, const Tensor<T>& gy, const Tensor<T>& weight, const Tensor<T>& save_mean,
              const Tensor<T>& save_invstd, bool training, const Tensor<T>& gx, const Tensor<T>& gweight,
              const Tensor<T>& gbias) {
  cuda::batch_norm_backward(x.data(), gy.data(), x.size(0), x.size(1), x.size(2) * x.size(3), const_param(weight),
                            save_mean.data(), save_invstd.data(), training, data_or_null(gx), data_or_null(gweight),
                            data_or_null(gbias), current_cuda_stream(x.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::BatchNorm2dForward, T>(DeviceType::CUDA, &forward<T>);
  dispatch::set_entry<ops::entries::BatchNorm2dBackward, T>(DeviceType::CUDA, &backward<T>);
}

}  // namespace batchnorm_entries

// Installs the batch-norm entries for float and double.
inline void register_batchnorm_entries() {
  batchnorm_entries::register_for<float>();
  batchnorm_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
