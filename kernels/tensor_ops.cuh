// The CUDA entries of the data-level tensor methods (core/tensor_kernels.hpp):
// fill, strided copy (on one device and between two), axpy, scale, the
// gradient sum and casts. Registered by lgh_cuda.cu (register_tensor_entries).
//
// Every operand is walked as a strided view of up to kMaxDims dimensions;
// on the host the dimensions are coalesced first (dropping extent-1 ones and
// merging neighbours that are contiguous in every operand), so a contiguous
// tensor becomes one dimension and the kernel does no division per element.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/tensor.hpp"

namespace lgh {
namespace cuda {

// N operands walked over one shape.
template <int N>
struct StridedLayout {
  int ndim = 0;
  int64_t shape[Shape::kMaxDims] = {};
  int64_t strides[N][Shape::kMaxDims] = {};
};

// The layout of `shape` read with each operand's strides, coalesced.
template <int N>
StridedLayout<N> make_layout(const Shape& shape, const Shape* const (&strides)[N]) {
  StridedLayout<N> L;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == 1) continue;  // contributes no offset
    const int last = L.ndim - 1;
    bool merge = last >= 0;
    for (int k = 0; merge && k < N; ++k) merge = L.strides[k][last] == (*strides[k])[d] * shape[d];
    if (merge) {  // dimension `last` steps over whole runs of d: one dimension
      L.shape[last] *= shape[d];
      for (int k = 0; k < N; ++k) L.strides[k][last] = (*strides[k])[d];
      continue;
    }
    L.shape[L.ndim] = shape[d];
    for (int k = 0; k < N; ++k) L.strides[k][L.ndim] = (*strides[k])[d];
    ++L.ndim;
  }
  return L;
}

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// Offsets of element i (row-major over L.shape) in each operand.
template <int N>
__device__ inline void strided_offsets(const StridedLayout<N>& L, int64_t i, int64_t (&off)[N]) {
  if (L.ndim <= 1) {
    for (int k = 0; k < N; ++k) off[k] = L.ndim == 0 ? 0 : i * L.strides[k][0];
    return;
  }
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = L.ndim - 1; d >= 0; --d) {
    const int64_t idx = i % L.shape[d];
    i /= L.shape[d];
    for (int k = 0; k < N; ++k) off[k] += idx * L.strides[k][d];
  }
}

// f(offsets) for every element, grid-stride.
template <int N, typename F>
__global__ void strided_map(int64_t n, StridedLayout<N> L, F f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    int64_t off[N];
    strided_offsets(L, i, off);
    f(off);
  }
}

template <typename T>
struct FillOp {
  T* dst;
  T value;
  __device__ void operator()(const int64_t (&o)[1]) const { dst[o[0]] = value; }
};
template <typename T>
struct CopyOp {
  T* dst;
  const T* src;
  __device__ void operator()(const int64_t (&o)[2]) const { dst[o[0]] = src[o[1]]; }
};
template <typename T>
struct AxpyOp {
  T* dst;
  const T* src;
  T alpha;
  __device__ void operator()(const int64_t (&o)[2]) const { dst[o[0]] += alpha * src[o[1]]; }
};
template <typename T>
struct ScaleOp {
  T* dst;
  T factor;
  __device__ void operator()(const int64_t (&o)[1]) const { dst[o[0]] *= factor; }
};
template <typename T>
struct SumOp {
  T* out;
  const T* a;
  const T* b;
  __device__ void operator()(const int64_t (&o)[3]) const { out[o[0]] = a[o[1]] + b[o[2]]; }
};
template <typename U, typename T>
struct CastOp {
  U* dst;
  const T* src;
  __device__ void operator()(const int64_t (&o)[2]) const { dst[o[0]] = static_cast<U>(src[o[1]]); }
};

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
// n elements (n >= 1) over layout L; pointers into device memory of the
// current device; everything on `stream`.

namespace detail {
constexpr unsigned kMapThreads = 256;
// Grid-stride: enough blocks to fill any GPU, not one per element.
inline unsigned map_blocks(int64_t n) {
  const unsigned b = blocks_for(n, kMapThreads);
  return b < 65535u ? b : 65535u;
}
}  // namespace detail

template <typename T>
inline void fill(T* dst, T value, int64_t n, const StridedLayout<1>& L, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && dst != nullptr, "cuda::fill: invalid destination of " << n << " elements");
  launch_kernel("fill", kernels::strided_map<1, kernels::FillOp<T>>, detail::map_blocks(n), detail::kMapThreads, 0,
                stream, n, L, kernels::FillOp<T>{dst, value});
}

template <typename T>
inline void copy(T* dst, const T* src, int64_t n, const StridedLayout<2>& L, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && dst && src, "cuda::copy: invalid operands of " << n << " elements");
  launch_kernel("copy", kernels::strided_map<2, kernels::CopyOp<T>>, detail::map_blocks(n), detail::kMapThreads, 0,
                stream, n, L, kernels::CopyOp<T>{dst, src});
}

template <typename T>
inline void axpy(T* dst, const T* src, T alpha, int64_t n, const StridedLayout<2>& L, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && dst && src, "cuda::axpy: invalid operands of " << n << " elements");
  launch_kernel("axpy", kernels::strided_map<2, kernels::AxpyOp<T>>, detail::map_blocks(n), detail::kMapThreads, 0,
                stream, n, L, kernels::AxpyOp<T>{dst, src, alpha});
}

template <typename T>
inline void scale(T* dst, T factor, int64_t n, const StridedLayout<1>& L, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && dst, "cuda::scale: invalid destination of " << n << " elements");
  launch_kernel("scale", kernels::strided_map<1, kernels::ScaleOp<T>>, detail::map_blocks(n), detail::kMapThreads, 0,
                stream, n, L, kernels::ScaleOp<T>{dst, factor});
}

template <typename T>
inline void sum(T* out, const T* a, const T* b, int64_t n, const StridedLayout<3>& L, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && out && a && b, "cuda::sum: invalid operands of " << n << " elements");
  launch_kernel("sum", kernels::strided_map<3, kernels::SumOp<T>>, detail::map_blocks(n), detail::kMapThreads, 0,
                stream, n, L, kernels::SumOp<T>{out, a, b});
}

template <typename U, typename T>
inline void cast(U* dst, const T* src, int64_t n, const StridedLayout<2>& L, cudaStream_t stream) {
  LGH_CHECK(n >= 1 && dst && src, "cuda::cast: invalid operands of " << n << " elements");
  launch_kernel("cast", kernels::strided_map<2, kernels::CastOp<U, T>>, detail::map_blocks(n), detail::kMapThreads, 0,
                stream, n, L, kernels::CastOp<U, T>{dst, src});
}

// ---- entries (core/tensor_kernels.hpp) -------------------------------------------
// Called through the dispatch registry with the tensors' device current;
// tensors are non-empty (the Tensor methods skip empty ones).
namespace tensor_entries {

template <typename T>
void fill(const Tensor<T>& dst, T value) {
  const Shape* const st[1] = {&dst.strides()};
  cuda::fill(dst.data(), value, dst.numel(), make_layout<1>(dst.shape(), st), current_cuda_stream(dst.device()));
}

template <typename T>
void copy(const Tensor<T>& dst, const Tensor<T>& src) {
  const Device dd = dst.device(), sd = src.device();
  if (dd == sd) {
    const cudaStream_t stream = current_cuda_stream(dd);
    if (dst.is_contiguous() && src.is_contiguous()) {
      LGH_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream));
      return;
    }
    const Shape* const st[2] = {&dst.strides(), &src.strides()};
    cuda::copy(dst.data(), src.data(), dst.numel(), make_layout<2>(dst.shape(), st), stream);
    return;
  }
  // Two GPUs: contiguous bytes between them, the strides on either side.
  Tensor<T> s = src;
  if (!src.is_contiguous()) {
    ScopedDevice on(sd.index);
    s = Tensor<T>::empty(src.shape(), sd);
    copy(s, src);
  }
  if (dst.is_contiguous()) {
    copy_bytes(dst.data(), dd, s.data(), sd, dst.nbytes());
    return;
  }
  const Tensor<T> staged = Tensor<T>::empty(dst.shape(), dd);
  copy_bytes(staged.data(), dd, s.data(), sd, dst.nbytes());
  copy(dst, staged);
}

template <typename T>
void axpy(const Tensor<T>& dst, const Tensor<T>& src, T alpha) {
  const Shape* const st[2] = {&dst.strides(), &src.strides()};
  cuda::axpy(dst.data(), src.data(), alpha, dst.numel(), make_layout<2>(dst.shape(), st),
             current_cuda_stream(dst.device()));
}

template <typename T>
void scale(const Tensor<T>& dst, T factor) {
  const Shape* const st[1] = {&dst.strides()};
  cuda::scale(dst.data(), factor, dst.numel(), make_layout<1>(dst.shape(), st), current_cuda_stream(dst.device()));
}

template <typename T>
void sum(const Tensor<T>& out, const Tensor<T>& a, const Tensor<T>& b) {
  const Shape* const st[3] = {&out.strides(), &a.strides(), &b.strides()};
  cuda::sum(out.data(), a.data(), b.data(), out.numel(), make_layout<3>(out.shape(), st),
            current_cuda_stream(out.device()));
}

template <typename U, typename T>
void cast(const Tensor<U>& dst, const Tensor<T>& src) {
  const Shape* const st[2] = {&dst.strides(), &src.strides()};
  cuda::cast(dst.data(), src.data(), dst.numel(), make_layout<2>(dst.shape(), st), current_cuda_stream(dst.device()));
}

template <typename T>
void register_for() {
  using namespace tensor_kernels;
  dispatch::set_entry<Fill, T>(DeviceType::CUDA, &fill<T>);
  dispatch::set_entry<Copy, T>(DeviceType::CUDA, &copy<T>);
  dispatch::set_entry<Axpy, T>(DeviceType::CUDA, &axpy<T>);
  dispatch::set_entry<Scale, T>(DeviceType::CUDA, &scale<T>);
  dispatch::set_entry<Sum, T>(DeviceType::CUDA, &sum<T>);
  dispatch::set_entry<Cast<float>, T>(DeviceType::CUDA, &cast<float, T>);
  dispatch::set_entry<Cast<double>, T>(DeviceType::CUDA, &cast<double, T>);
  dispatch::set_entry<Cast<int64_t>, T>(DeviceType::CUDA, &cast<int64_t, T>);
}

}  // namespace tensor_entries

// Installs the data-level entries for float, double and int64 tensors.
inline void register_tensor_entries() {
  tensor_entries::register_for<float>();
  tensor_entries::register_for<double>();
  tensor_entries::register_for<int64_t>();
}

}  // namespace cuda
}  // namespace lgh
