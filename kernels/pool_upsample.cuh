// CUDA entries of max pooling and nearest x2 upsampling (lgh/ops/pooling.hpp),
// with the CPU op's semantics: PyTorch's max_pool2d (ceil_mode = false,
// padded positions never win, ties go to the first element of the window in
// row-major order, NaN wins) saving the flat argmax h * W + w of each output.
//
// The upsampling backward is a gather, one thread per input element, adding
// the four children as the CPU does, (r0[0] + r0[1]) + (r1[0] + r1[1]), so it
// equals the CPU gradient bit for bit; the max-pool backward is a scatter at
// the saved argmaxes (see the kernel for when that is exact).
#pragma once

#include <cstdint>

#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/pooling.hpp"
#include "op_common.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// One thread per output element of [planes, Ho, Wo].
template <typename T>
__global__ void max_pool2d_forward(const T* __restrict__ x, int64_t planes, int64_t H, int64_t W, int64_t Ho,
                                   int64_t Wo, int64_t kernel, int64_t stride, int64_t padding, T* __restrict__ y,
                                   int64_t* __restrict__ indices) {
  LGH_GRID_STRIDE_LOOP(i, planes * Ho * Wo) {
    const int64_t ow = i % Wo, oh = (i / Wo) % Ho, p = i / (Wo * Ho);
    const T* xp = x + p * H * W;
    const int64_t hs = oh * stride - padding, ws = ow * stride - padding;
    const int64_t h0 = hs > 0 ? hs : 0, h1 = hs + kernel < H ? hs + kernel : H;
    const int64_t w0 = ws > 0 ? ws : 0, w1 = ws + kernel < W ? ws + kernel : W;
    T m = -INFINITY;
    int64_t idx = h0 * W + w0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const T v = xp[h * W + w];
        if (v > m || v != v) {  // larger, or NaN (it propagates)
          m = v;
          idx = h * W + w;
        }
      }
    y[i] = m;
    if (indices) indices[i] = idx;
  }
}

// One thread per output element: its gradient added at its argmax in gx
// (zeroed first). The entry gets no window geometry, only the argmaxes, so
// this is a scatter. Where windows do not overlap (kernel <= stride: the
// model's 2x2 / stride 2 pooling) every input element receives at most one
// addition to 0, so the result is exact and equal to the CPU's bit for bit;
// with overlapping windows the additions of one element happen in an
// arbitrary order (equal to the CPU's up to rounding).
template <typename T>
__global__ void max_pool2d_backward(const T* __restrict__ gy, const int64_t* __restrict__ indices, int64_t planes,
                                    int64_t HW, int64_t out, T* __restrict__ gx) {
  LGH_GRID_STRIDE_LOOP(i, planes * out) {
    const int64_t p = i / out;
    atomicAdd(gx + p * HW + indices[i], gy[i]);
  }
}

template <typename T>
__global__ void upsample_nearest2x_forward(const T* __restrict__ x, int64_t planes, int64_t H, int64_t W,
                                           T* __restrict__ y) {
  const int64_t W2 = 2 * W, H2 = 2 * H;
  LGH_GRID_STRIDE_LOOP(i, planes * H2 * W2) {
    const int64_t w = i % W2, h = (i / W2) % H2, p = i / (W2 * H2);
    y[i] = x[(p * H + h / 2) * W + w / 2];
  }
}

template <typename T>
__global__ void upsample_nearest2x_backward(const T* __restrict__ gy, int64_t planes, int64_t H, int64_t W,
                                            T* __restrict__ gx) {
  LGH_GRID_STRIDE_LOOP(i, planes * H * W) {
    const int64_t w = i % W, h = (i / W) % H, p = i / (W * H);
    const T* r0 = gy + (p * 2 * H + 2 * h) * 2 * W + 2 * w;
    const T* r1 = r0 + 2 * W;
    gx[i] = (r0[0] + r0[1]) + (r1[0] + r1[1]);
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
// Contiguous NCHW device arrays (planes = N * C).

template <typename T>
inline void max_pool2d_forward(const T* x, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                               int64_t kernel, int64_t stride, int64_t padding, T* y, int64_t* indices,
                               cudaStream_t stream) {
  LGH_CHECK(x && y && planes >= 1 && Ho >= 1 && Wo >= 1 && kernel >= 1 && stride >= 1 && padding >= 0,
            "cuda::max_pool2d_forward: invalid operands (planes " << planes << ", output " << Ho << "x" << Wo
                                                                  << ", kernel " << kernel << ", stride " << stride
                                                                  << ", padding " << padding << ")");
  const int64_t n = planes * Ho * Wo;
  launch_kernel("max_pool2d_forward", kernels::max_pool2d_forward<T>, ops_launch::blocks(n), ops_launch::kThreads, 0,
                stream, x, planes, H, W, Ho, Wo, kernel, stride, padding, y, indices);
}

// gx (planes x HW) is overwritten: zeroed, then the scatter.
template <typename T>
inline void max_pool2d_backward(const T* gy, const int64_t* indices, int64_t planes, int64_t HW, int64_t out, T* gx,
                                cudaStream_t stream) {
  LGH_CHECK(gy && indices && gx && planes >= 1 && HW >= 1 && out >= 1,
            "cuda::max_pool2d_backward: invalid operands (planes " << planes << ", input plane " << HW
                                                                   << ", output plane " << out << ")");
  LGH_CUDA_CHECK(cudaMemsetAsync(gx, 0, static_cast<size_t>(planes * HW) * sizeof(T), stream));
  const int64_t n = planes * out;
  launch_kernel("max_pool2d_backward", kernels::max_pool2d_backward<T>, ops_launch::blocks(n), ops_launch::kThreads,
                0, stream, gy, indices, planes, HW, out, gx);
}

template <typename T>
inline void upsample_nearest2x_forward(const T* x, int64_t planes, int64_t H, int64_t W, T* y, cudaStream_t stream) {
  LGH_CHECK(x && y && planes >= 1 && H >= 1 && W >= 1,
            "cuda::upsample_nearest2x_forward: invalid operands (planes " << planes << ", " << H << "x" << W << ")");
  const int64_t n = planes * 4 * H * W;
  launch_kernel("upsample_nearest2x_forward", kernels::upsample_nearest2x_forward<T>, ops_launch::blocks(n),
                ops_launch::kThreads, 0, stream, x, planes, H, W, y);
}

template <typename T>
inline void upsample_nearest2x_backward(const T* gy, int64_t planes, int64_t H, int64_t W, T* gx,
                                        cudaStream_t stream) {
  LGH_CHECK(gy && gx && planes >= 1 && H >= 1 && W >= 1,
            "cuda::upsample_nearest2x_backward: invalid operands (planes " << planes << ", " << H << "x" << W << ")");
  const int64_t n = planes * H * W;
  launch_kernel("upsample_nearest2x_backward", kernels::upsample_nearest2x_backward<T>, ops_launch::blocks(n),
                ops_launch::kThreads, 0, stream, gy, planes, H, W, gx);
}

// ---- entries (the signatures of ops::entries in lgh/ops/pooling.hpp) -------------
namespace pool_entries {

template <typename T>
void max_pool_forward(const Tensor<T>& x, int64_t kernel, int64_t stride, int64_t padding, const Tensor<T>& y,
                      const Tensor<int64_t>& indices) {
  cuda::max_pool2d_forward(x.data(), x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3), kernel,
                           stride, padding, y.data(), data_or_null(indices), current_cuda_stream(y.device()));
}

template <typename T>
void max_pool_backward(const Tensor<T>& gy, const Tensor<int64_t>& indices, const Tensor<T>& gx) {
  cuda::max_pool2d_backward(gy.data(), indices.data(), gx.size(0) * gx.size(1), gx.size(2) * gx.size(3),
                            gy.size(2) * gy.size(3), gx.data(), current_cuda_stream(gx.device()));
}

template <typename T>
void upsample_forward(const Tensor<T>& x, const Tensor<T>& y) {
  cuda::upsample_nearest2x_forward(x.data(), x.size(0) * x.size(1), x.size(2), x.size(3), y.data(),
                                   current_cuda_stream(y.device()));
}

template <typename T>
void upsample_backward(const Tensor<T>& gy, const Tensor<T>& gx) {
  cuda::upsample_nearest2x_backward(gy.data(), gx.size(0) * gx.size(1), gx.size(2), gx.size(3), gx.data(),
                                    current_cuda_stream(gx.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::MaxPool2dForward, T>(DeviceType::CUDA, &max_pool_forward<T>);
  dispatch::set_entry<ops::entries::MaxPool2dBackward, T>(DeviceType::CUDA, &max_pool_backward<T>);
  dispatch::set_entry<ops::entries::UpsampleNearest2xForward, T>(DeviceType::CUDA, &upsample_forward<T>);
  dispatch::set_entry<ops::entries::UpsampleNearest2xBackward, T>(DeviceType::CUDA, &upsample_backward<T>);
}

}  // namespace pool_entries

// Installs the pooling and upsampling entries for float and double.
inline void register_pool_upsample_entries() {
  pool_entries::register_for<float>();
  pool_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
