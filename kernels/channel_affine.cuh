// The ChannelAffine entry of the fused inference path (ops/inference.hpp) on
// the GPU: a BN on its own in eval mode,
//   y = relu?(scale[c] x + shift[c]),
// with scale and shift (host values, at most kMaxAffineChannels) by value in
// the kernel's parameters, so nothing is copied to the device first. One
// thread per element (grid-stride), x and y contiguous [N, C, H, W].
#pragma once

#include <vector>

#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/ops/inference.hpp"

namespace lgh {
namespace cuda {

// The model's widest layer (nn::ModelConfig::kMaxChannels). The table is
// 2 x 1024 values: 8 KB in float, 16 KB in double, within the 32 KB of
// kernel parameters that CUDA 12.1 and later allow on sm_70 and newer.
constexpr int kMaxAffineChannels = 1024;

template <typename T>
struct AffineTable {
  int channels;
  bool relu;
  T scale[kMaxAffineChannels];
  T shift[kMaxAffineChannels];
};

// ---- kernels ------------------------------------------------------------------
namespace kernels {

template <typename T>
__global__ void channel_affine(const T* __restrict__ x, int64_t hw, int64_t n, const AffineTable<T> table,
                               T* __restrict__ y) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    const int c = static_cast<int>((i / hw) % table.channels);
    const T v = table.scale[c] * x[i] + table.shift[c];
    y[i] = table.relu && v < T(0) ? T(0) : v;
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
namespace detail {
constexpr unsigned kAffineThreads = 256;
inline unsigned affine_blocks(int64_t n) {
  const int64_t b = launch::ceil_div(n, kAffineThreads);
  return static_cast<unsigned>(b < 65536 ? b : 65536);  // grid-stride beyond
}
}  // namespace detail

// y <- relu?(scale[c] x + shift[c]) over x, y [N, C, HW] contiguous; scale,
// shift: C host values.
template <typename T>
inline void channel_affine(const T* x, const T* scale, const T* shift, int64_t N, int64_t C, int64_t HW, bool relu,
                           T* y, cudaStream_t stream) {
  const char* op = "cuda::channel_affine";
  LGH_CHECK(N >= 1 && C >= 1 && HW >= 1 && x && y && scale && shift,
            op << ": invalid operands [" << N << ", " << C << ", " << HW << " pixels]");
  LGH_CHECK(C <= kMaxAffineChannels,
            op << ": " << C << " channels; the CUDA kernel takes at most " << kMaxAffineChannels);
  AffineTable<T> table;
  table.channels = static_cast<int>(C);
  table.relu = relu;
  for (int64_t c = 0; c < C; ++c) {
    table.scale[c] = scale[c];
    table.shift[c] = shift[c];
  }
  const int64_t n = N * C * HW;
  launch_kernel("channel_affine", kernels::channel_affine<T>, detail::affine_blocks(n), detail::kAffineThreads, 0,
                stream, x, HW, n, table, y);
}

// ---- entries (the signatures of ops::entries in lgh/ops/inference.hpp) --------------
namespace channel_affine_entries {

template <typename T>
void channel_affine(const Tensor<T>& x, const std::vector<T>& scale, const std::vector<T>& shift, bool relu,
                    const Tensor<T>& y) {
  cuda::channel_affine(x.data(), scale.data(), shift.data(), x.size(0), x.size(1), x.size(2) * x.size(3), relu,
                       y.data(), current_cuda_stream(y.device()));
}

}  // namespace channel_affine_entries

inline void register_channel_affine_entries() {
  dispatch::set_entry<ops::entries::ChannelAffine, float>(DeviceType::CUDA, &channel_affine_entries::channel_affine<float>);
  dispatch::set_entry<ops::entries::ChannelAffine, double>(DeviceType::CUDA, &channel_affine_entries::channel_affine<double>);
}

}  // namespace cuda
}  // namespace lgh
