// CUDA entries of the reductions (lgh/ops/reduce.hpp: sum and mean over all
// elements or over dimensions, and their backward) and of softmax /
// log_softmax along one dimension (lgh/ops/softmax.hpp).
//
// A full reduction is two launches: blocks of kRowThreads threads sum
// fixed chunks in double into partials (scratch from the caching allocator),
// then one block adds the partials; block_sum's tree is fixed, so a result
// never depends on timing. A reduction over [outer, R, inner]: one block per
// output (double accumulation) when inner = 1, else one thread per output
// adding the R rows in T in the CPU's order. Softmax: one thread per
// (outer, inner) slice of D values; the slices of the model are short (the K
// groups, a heatmap's classes), so a thread per slice keeps every slice's
// three passes in one thread's registers and cache.
#pragma once

#include <cmath>
#include <cstdint>

#include "block_reduce.cuh"
#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/storage.hpp"
#include "lgh/ops/math/scalar.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/softmax.hpp"
#include "op_common.cuh"

namespace lgh {
namespace cuda {

namespace ops_launch {
// Elements per block of the first pass of a full reduction (a multiple of
// kRowThreads), and the grid of that pass.
constexpr int64_t kReduceChunk = 8192;
inline int64_t reduce_all_blocks(int64_t n) { return n <= 0 ? 1 : (n + kReduceChunk - 1) / kReduceChunk; }
}  // namespace ops_launch

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// partial[b] = the sum of x[b * chunk, (b + 1) * chunk) in double.
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    reduce_partials(const T* __restrict__ x, int64_t n, double* __restrict__ partial) {
  const int64_t lo = blockIdx.x * ops_launch::kReduceChunk;
  const int64_t hi = lo + ops_launch::kReduceChunk < n ? lo + ops_launch::kReduceChunk : n;
  double s = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += static_cast<double>(x[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// y[0] = scale * the sum of partial[0, count) (one block).
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    reduce_finish(const double* __restrict__ partial, int64_t count, double scale, T* __restrict__ y) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_sum(s);
  if (threadIdx.x == 0) y[0] = static_cast<T>(s * scale);
}

// inner == 1: block o sums row o (R values) in double.
template <typename T>
__global__ void __launch_bounds__(ops_launch::kRowThreads)
    reduce_rows(const T* __restrict__ src, int64_t R, T scale, T* __restrict__ dst) {
  const int64_t o = blockIdx.x;
  const T* row = src + o * R;
  double s = 0;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += static_cast<double>(row[r]);
  s = block_sum(s);
  if (threadIdx.x == 0) dst[o] = static_cast<T>(s * static_cast<double>(scale));
}

// inner > 1: thread (o, i) adds the R rows in order, in T, as the CPU does.
template <typename T>
__global__ void reduce_columns(const T* __restrict__ src, int64_t outer, int64_t R, int64_t inner, T scale,
                               T* __restrict__ dst) {
  LGH_GRID_STRIDE_LOOP(t, outer * inner) {
    if (R == 0) {  // an empty sum is 0; an empty mean is NaN (scale is inf), as on the CPU
      dst[t] = T(0) * scale;
      continue;
    }
    const int64_t o = t / inner, i = t % inner;
    const T* p = src + o * R * inner + i;
    T s = p[0];
    for (int64_t r = 1; r < R; ++r) s += p[r * inner];
    if (scale != T(1)) s *= scale;
    dst[t] = s;
  }
}

// dst[o, r, i] = scale * g[o, i].
template <typename T>
__global__ void reduce_broadcast(const T* __restrict__ g, int64_t outer, int64_t R, int64_t inner, T scale,
                                 T* __restrict__ dst) {
  LGH_GRID_STRIDE_LOOP(t, outer * R * inner) {
    const int64_t i = t % inner, o = t / (R * inner);
    dst[t] = scale * g[o * inner + i];
  }
}

// Thread s: the slice (o, i) of [outer, D, inner].
template <typename T>
__global__ void softmax_forward(const T* __restrict__ x, int64_t outer, int64_t D, int64_t inner, bool log,
                                T* __restrict__ y) {
  LGH_GRID_STRIDE_LOOP(s, outer * inner) {
    const int64_t o = s / inner, i = s % inner;
    const T* xs = x + o * D * inner + i;
    T* ys = y + o * D * inner + i;
    T m = xs[0];
    for (int64_t d = 1; d < D; ++d) m = xs[d * inner] > m ? xs[d * inner] : m;
    T sum = T(0);
    for (int64_t d = 0; d < D; ++d) {
      const T e = math::exp(xs[d * inner] - m);
      if (!log) ys[d * inner] = e;
      sum += e;
    }
    if (log) {
      const T lse = m + math::log(sum);
      for (int64_t d = 0; d < D; ++d) ys[d * inner] = xs[d * inner] - lse;
    } else {
      const T inv = T(1) / sum;
      for (int64_t d = 0; d < D; ++d) ys[d * inner] *= inv;
    }
  }
}

// softmax: gx = y (g - sum(g y)); log_softmax: gx = g - exp(y) sum(g).
template <typename T>
__global__ void softmax_backward(const T* __restrict__ y, const T* __restrict__ gy, int64_t outer, int64_t D,
                                 int64_t inner, bool log, T* __restrict__ gx) {
  LGH_GRID_STRIDE_LOOP(s, outer * inner) {
    const int64_t base = (s / inner) * D * inner + s % inner;
    T acc = T(0);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = base + d * inner;
      acc += log ? gy[k] : gy[k] * y[k];
    }
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = base + d * inner;
      gx[k] = log ? gy[k] - math::exp(y[k]) * acc : y[k] * (gy[k] - acc);
    }
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------

// y[0] = scale * sum of x[0, n); `partial` holds reduce_all_blocks(n) doubles.
template <typename T>
inline void reduce_all(const T* x, int64_t n, double scale, double* partial, T* y, cudaStream_t stream) {
  LGH_CHECK(n >= 0 && y && partial && (n == 0 || x), "cuda::reduce_all: invalid operands of " << n << " elements");
  const int64_t blocks = ops_launch::reduce_all_blocks(n);
  LGH_CHECK(blocks <= ops_launch::kMaxGridX, "cuda::reduce_all: " << n << " elements exceed one grid");
  if (n == 0) {
    LGH_CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(double), stream));
  } else {
    launch_kernel("reduce_partials", kernels::reduce_partials<T>, static_cast<unsigned>(blocks),
                  ops_launch::kRowThreads, 0, stream, x, n, partial);
  }
  launch_kernel("reduce_finish", kernels::reduce_finish<T>, 1u, ops_launch::kRowThreads, 0, stream,
                static_cast<const double*>(partial), blocks, scale, y);
}

template <typename T>
inline void reduce_forward(const T* src, int64_t outer, int64_t R, int64_t inner, T scale, T* dst,
                           cudaStream_t stream) {
  LGH_CHECK(outer >= 0 && R >= 0 && inner >= 0 && (outer * inner == 0 || (dst && (R == 0 || src))),
            "cuda::reduce_forward: invalid operands [" << outer << ", " << R << ", " << inner << "]");
  if (outer * inner == 0) return;
  if (inner == 1) {
    LGH_CHECK(outer <= ops_launch::kMaxGridX, "cuda::reduce_forward: " << outer << " rows exceed one grid");
    launch_kernel("reduce_rows", kernels::reduce_rows<T>, static_cast<unsigned>(outer), ops_launch::kRowThreads, 0,
                  stream, src, R, scale, dst);
    return;
  }
  launch_kernel("reduce_columns", kernels::reduce_columns<T>, ops_launch::blocks(outer * inner), ops_launch::kThreads,
                0, stream, src, outer, R, inner, scale, dst);
}

template <typename T>
inline void reduce_backward(const T* g, int64_t outer, int64_t R, int64_t inner, T scale, T* dst,
                            cudaStream_t stream) {
  const int64_t n = outer * R * inner;
  LGH_CHECK(outer >= 0 && R >= 0 && inner >= 0 && (n == 0 || (g && dst)),
            "cuda::reduce_backward: invalid operands [" << outer << ", " << R << ", " << inner << "]");
  if (n == 0) return;
  launch_kernel("reduce_broadcast", kernels::reduce_broadcast<T>, ops_launch::blocks(n), ops_launch::kThreads, 0,
                stream, g, outer, R, inner, scale, dst);
}

template <typename T>
inline void softmax_forward(const T* x, const ops::detail::SoftmaxGeometry& geo, bool log, T* y, cudaStream_t stream) {
  const int64_t slices = geo.outer * geo.inner;
  if (slices == 0 || geo.D == 0) return;
  LGH_CHECK(x && y, "cuda::softmax_forward: null operand");
  launch_kernel("softmax_forward", kernels::softmax_forward<T>, ops_launch::blocks(slices), ops_launch::kThreads, 0,
                stream, x, geo.outer, geo.D, geo.inner, log, y);
}

template <typename T>
inline void softmax_backward(const T* y, const T* gy, const ops::detail::SoftmaxGeometry& geo, bool log, T* gx,
                             cudaStream_t stream) {
  const int64_t slices = geo.outer * geo.inner;
  if (slices == 0 || geo.D == 0) return;
  LGH_CHECK(y && gy && gx, "cuda::softmax_backward: null operand");
  launch_kernel("softmax_backward", kernels::softmax_backward<T>, ops_launch::blocks(slices), ops_launch::kThreads, 0,
                stream, y, gy, geo.outer, geo.D, geo.inner, log, gx);
}

// ---- entries (ops::entries of lgh/ops/reduce.hpp and lgh/ops/softmax.hpp) ---------
namespace reduce_entries {

template <typename T>
void reduce_all_forward(const Tensor<T>& x, double scale, const Tensor<T>& y) {
  const int64_t n = x.numel();
  Storage partial(static_cast<size_t>(ops_launch::reduce_all_blocks(n)) * sizeof(double), y.device());
  cuda::reduce_all(n ? x.data() : static_cast<const T*>(nullptr), n, scale, static_cast<double*>(partial.data()),
                   y.data(), current_cuda_stream(y.device()));
}

template <typename T>
void reduce_forward(const Tensor<T>& src, int64_t outer, int64_t R, int64_t inner, T scale, const Tensor<T>& dst) {
  cuda::reduce_forward(src.numel() ? src.data() : static_cast<const T*>(nullptr), outer, R, inner, scale,
                       dst.numel() ? dst.data() : static_cast<T*>(nullptr), current_cuda_stream(dst.device()));
}

template <typename T>
void reduce_backward(const Tensor<T>& g, int64_t outer, int64_t R, int64_t inner, T scale, const Tensor<T>& dst) {
  cuda::reduce_backward(g.numel() ? g.data() : static_cast<const T*>(nullptr), outer, R, inner, scale,
                        dst.numel() ? dst.data() : static_cast<T*>(nullptr), current_cuda_stream(dst.device()));
}

template <typename T>
void softmax_forward(const Tensor<T>& x, const ops::detail::SoftmaxGeometry& geo, bool log, const Tensor<T>& y) {
  if (y.numel() == 0) return;
  cuda::softmax_forward(x.data(), geo, log, y.data(), current_cuda_stream(y.device()));
}

template <typename T>
void softmax_backward(const Tensor<T>& y, const Tensor<T>& gy, const ops::detail::SoftmaxGeometry& geo, bool log,
                      const Tensor<T>& gx) {
  if (gx.numel() == 0) return;
  cuda::softmax_backward(y.data(), gy.data(), geo, log, gx.data(), current_cuda_stream(gx.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::ReduceAllForward, T>(DeviceType::CUDA, &reduce_all_forward<T>);
  dispatch::set_entry<ops::entries::ReduceForward, T>(DeviceType::CUDA, &reduce_forward<T>);
  dispatch::set_entry<ops::entries::ReduceBackward, T>(DeviceType::CUDA, &reduce_backward<T>);
  dispatch::set_entry<ops::entries::SoftmaxForward, T>(DeviceType::CUDA, &softmax_forward<T>);
  dispatch::set_entry<ops::entries::SoftmaxBackward, T>(DeviceType::CUDA, &softmax_backward<T>);
}

}  // namespace reduce_entries

// Installs the reduction and softmax entries for float and double.
inline void register_reduce_softmax_entries() {
  reduce_entries::register_for<float>();
  reduce_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
