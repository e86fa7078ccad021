// CUDA entries of concat (lgh/ops/shape_ops.hpp) forward and backward. The
// other shape ops need no entry: reshape, slice and permute are views, and
// slice's backward (a zero fill and a strided copy) and contiguous() run
// through the data-level entries of tensor_ops.cuh.
//
// Along `dim`, the output is [outer, total] rows and input k owns the
// columns [offset_k, offset_k + len_k) of every row (len_k = its extent along
// dim times inner): each input is one strided row copy.
#pragma once

#include <cstdint>
#include <vector>

#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "op_common.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// dst[r * dst_stride + j] = src[r * src_stride + j], r < rows, j < len.
template <typename T>
__global__ void copy_rows(const T* __restrict__ src, int64_t src_stride, T* __restrict__ dst, int64_t dst_stride,
                          int64_t rows, int64_t len) {
  LGH_GRID_STRIDE_LOOP(i, rows * len) {
    const int64_t r = i / len, j = i % len;
    dst[r * dst_stride + j] = src[r * src_stride + j];
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------

template <typename T>
inline void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t len,
                      cudaStream_t stream) {
  LGH_CHECK(rows >= 0 && len >= 0 && src_stride >= len && dst_stride >= len,
            "cuda::copy_rows: invalid copy of " << rows << " rows of " << len << " elements (strides " << src_stride
                                                << ", " << dst_stride << ")");
  if (rows == 0 || len == 0) return;
  LGH_CHECK(src && dst, "cuda::copy_rows: null operand");
  launch_kernel("copy_rows", kernels::copy_rows<T>, ops_launch::blocks(rows * len), ops_launch::kThreads, 0, stream,
                src, src_stride, dst, dst_stride, rows, len);
}

// ---- entries (the signatures of ops::entries in lgh/ops/shape_ops.hpp) -----------
namespace concat_entries {

// outer (the product of the extents before dim) and inner (after it).
inline void outer_inner(const Shape& s, int dim, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < dim; ++i) outer *= s[i];
  for (int i = dim + 1; i < s.ndim(); ++i) inner *= s[i];
}

template <typename T>
void forward(const std::vector<Tensor<T>>& xs, int dim, const Tensor<T>& y) {
  int64_t outer, inner;
  outer_inner(y.shape(), dim, outer, inner);
  const int64_t total = y.size(dim) * inner;
  const cudaStream_t stream = current_cuda_stream(y.device());
  int64_t offset = 0;
  for (const Tensor<T>& x : xs) {
    const Tensor<T> xc = x.contiguous();  // a device copy when x is a strided view
    const int64_t len = x.size(dim) * inner;
    cuda::copy_rows(xc.data(), len, y.data() + offset, total, outer, len, stream);
    offset += len;
  }
}

template <typename T>
void backward(const Tensor<T>& gy, int dim, const std::vector<Shape>& shapes, const std::vector<Tensor<T>>& gxs) {
  int64_t outer, inner;
  outer_inner(gy.shape(), dim, outer, inner);
  const int64_t total = gy.size(dim) * inner;
  const cudaStream_t stream = current_cuda_stream(gy.device());
  int64_t offset = 0;
  for (size_t k = 0; k < gxs.size(); ++k) {
    const int64_t len = shapes[k][dim] * inner;
    if (gxs[k].defined()) cuda::copy_rows(gy.data() + offset, total, gxs[k].data(), len, outer, len, stream);
    offset += len;
  }
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::ConcatForward, T>(DeviceType::CUDA, &forward<T>);
  dispatch::set_entry<ops::entries::ConcatBackward, T>(DeviceType::CUDA, &backward<T>);
}

}  // namespace concat_entries

// Installs the concat entries for float and double.
inline void register_concat_entries() {
  concat_entries::register_for<float>();
  concat_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
