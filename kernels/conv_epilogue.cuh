// The hand-written parts around cuDNN's convolutions (conv_cudnn.cuh): the
// bias and inference epilogue applied after the library's output is
// written, y = relu2?(relu?(y + bias) + residual) (ops::detail::ConvEpilogue,
// the CPU's order), and the per-channel sum of a gradient that gives a bias
// its gradient (ConvBiasBackward, the transposed convolution's bias, and the
// convolution's own bias in its weight-gradient entry).
#pragma once

#include <cstdint>

#include "block_reduce.cuh"
#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/conv.hpp"
#include "op_common.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// y [N, C, HW] in place; bias [C] or null; residual shaped like y or null.
template <typename T>
__global__ void conv_epilogue(T* __restrict__ y, const T* __restrict__ bias, const T* __restrict__ residual,
                              int64_t N, int64_t C, int64_t HW, bool relu, bool relu_after_residual) {
  LGH_GRID_STRIDE_LOOP(i, N * C * HW) {
    T v = y[i];
    if (bias) v += bias[(i / HW) % C];
    if (relu) v = v > T(0) ? v : T(0);
    if (residual) v += residual[i];
    if (relu_after_residual) v = v > T(0) ? v : T(0);
    y[i] = v;
  }
}

// Block c: gb[c] = the sum over n and the HW positions of gy [N, C, HW].
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    channel_sums(const T* __restrict__ gy, int64_t N, int64_t C, int64_t HW, T* __restrict__ gb) {
  const int64_t c = blockIdx.x;
  double s = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* p = gy + (n * C + c) * HW;
    for (int64_t k = threadIdx.x; k < HW; k += blockDim.x) s += static_cast<double>(p[k]);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) gb[c] = static_cast<T>(s);
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------

// Nothing to do (no launch) without a bias and an active epilogue.
template <typename T>
inline void conv_epilogue(T* y, const T* bias, const T* residual, int64_t N, int64_t C, int64_t HW, bool relu,
                          bool relu_after_residual, cudaStream_t stream) {
  LGH_CHECK(y && N >= 1 && C >= 1 && HW >= 1,
            "cuda::conv_epilogue: invalid output [" << N << ", " << C << ", " << HW << "]");
  if (!bias && !residual && !relu && !relu_after_residual) return;
  launch_kernel("conv_epilogue", kernels::conv_epilogue<T>, ops_launch::blocks(N * C * HW), ops_launch::kThreads, 0,
                stream, y, bias, residual, N, C, HW, relu, relu_after_residual);
}

template <typename T>
inline void channel_sums(const T* gy, int64_t N, int64_t C, int64_t HW, T* gb, cudaStream_t stream) {
  LGH_CHECK(gy && gb && N >= 1 && C >= 1 && HW >= 1 && C <= ops_launch::kMaxGridX,
            "cuda::channel_sums: invalid operands [" << N << ", " << C << ", " << HW << "]");
  launch_kernel("channel_sums", kernels::channel_sums<T>, static_cast<unsigned>(C), ops_launch::kRowThreads, 0, stream,
                gy, N, C, HW, gb);
}

// ---- entries ----------------------------------------------------------------------
namespace conv_entries {

// ops::entries::ConvBiasBackward: gb [C] from gy [N, C, H, W].
template <typename T>
void bias_backward(const Tensor<T>& gy, const Tensor<T>& gb) {
  cuda::channel_sums(gy.data(), gy.size(0), gy.size(1), gy.size(2) * gy.size(3), gb.data(),
                     current_cuda_stream(gb.device()));
}

}  // namespace conv_entries

// Installs the bias-gradient entry (hand-written) for float and double.
inline void register_conv_bias_entries() {
  dispatch::set_entry<ops::entries::ConvBiasBackward, float>(DeviceType::CUDA, &conv_entries::bias_backward<float>);
  dispatch::set_entry<ops::entries::ConvBiasBackward, double>(DeviceType::CUDA, &conv_entries::bias_backward<double>);
}

}  // namespace cuda
}  // namespace lgh
