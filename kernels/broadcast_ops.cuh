// CUDA entries of the broadcasting elementwise ops (lgh/ops/elementwise.hpp):
// add / sub / mul with NumPy broadcasting, and the reduction of a gradient
// back to an input's shape that their backward needs.
//
// Both walk strided layouts (tensor_ops.cuh: up to kMaxDims dimensions,
// coalesced on the host). sum_to_shape is a gather, one thread per output
// element, that adds the broadcast copies in increasing order of their
// position in g, as the CPU loop does, so the two agree bit for bit.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/elementwise.hpp"
#include "op_common.cuh"
#include "tensor_ops.cuh"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

template <typename T>
struct BinaryMapOp {
  T* out;
  const T* a;
  const T* b;
  ops::BinaryOp op;
  __device__ void operator()(const int64_t (&o)[3]) const {
    const T x = a[o[1]], y = b[o[2]];
    out[o[0]] = op == ops::BinaryOp::Add ? x + y : op == ops::BinaryOp::Sub ? x - y : x * y;
  }
};

// out[i] = sum over r < R of g[kept offset of i + reduced offset of r]: `kept`
// maps out's elements (row-major) to g offsets, `reduced` maps r to the
// offsets of the broadcast dimensions (row-major, so r increases with the
// position in g).
template <typename T>
__global__ void sum_to_shape(const T* __restrict__ g, int64_t n, StridedLayout<1> kept, int64_t R,
                             StridedLayout<1> reduced, T* __restrict__ out) {
  LGH_GRID_STRIDE_LOOP(i, n) {
    int64_t base[1];
    strided_offsets(kept, i, base);
    T s = T(0);
    for (int64_t r = 0; r < R; ++r) {
      int64_t off[1];
      strided_offsets(reduced, r, off);
      s += g[base[0] + off[0]];
    }
    out[i] = s;
  }
}

}  // namespace kernels

// ---- host-side plans ------------------------------------------------------------

// The two layouts of sum_to_shape for g (shape gs, strides gst) reduced to
// `out` (whose shape broadcasts to gs): the kept dimensions (those where out
// has g's extent) and the reduced ones (where out has 1 or no extent).
struct SumToShapePlan {
  int64_t n = 0;  // out's elements
  int64_t R = 1;  // copies summed into each
  StridedLayout<1> kept, reduced;
};

inline SumToShapePlan plan_sum_to_shape(const Shape& gs, const Shape& gst, const Shape& out) {
  SumToShapePlan p;
  const int lead = gs.ndim() - out.ndim();
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (int d = 0; d < gs.ndim(); ++d) {
    const int od = d - lead;
    const bool reduced = od < 0 || (out[od] == 1 && gs[d] != 1);
    if (reduced) {
      red_shape.push_back(gs[d]);
      red_strides.push_back(gst[d]);
      p.R *= gs[d];
    } else {
      kept_shape.push_back(gs[d]);
      kept_strides.push_back(gst[d]);
    }
  }
  p.n = out.numel();
  const Shape* const k[1] = {&kept_strides};
  const Shape* const r[1] = {&red_strides};
  p.kept = make_layout<1>(kept_shape, k);
  p.reduced = make_layout<1>(red_shape, r);
  return p;
}

// ---- launchers ----------------------------------------------------------------

template <typename T>
inline void binary_forward(const T* a, const T* b, ops::BinaryOp op, T* out, int64_t n, const StridedLayout<3>& L,
                           cudaStream_t stream) {
  LGH_CHECK(n >= 1 && a && b && out, "cuda::binary_forward: invalid operands of " << n << " elements");
  launch_kernel("binary_forward", kernels::strided_map<3, kernels::BinaryMapOp<T>>, ops_launch::blocks(n),
                ops_launch::kThreads, 0, stream, n, L, kernels::BinaryMapOp<T>{out, a, b, op});
}

template <typename T>
inline void sum_to_shape(const T* g, const SumToShapePlan& plan, T* out, cudaStream_t stream) {
  LGH_CHECK(plan.n >= 1 && g && out, "cuda::sum_to_shape: invalid operands of " << plan.n << " elements");
  launch_kernel("sum_to_shape", kernels::sum_to_shape<T>, ops_launch::blocks(plan.n), ops_launch::kThreads, 0, stream,
                g, plan.n, plan.kept, plan.R, plan.reduced, out);
}

// ---- entries (the signatures of ops::entries in lgh/ops/elementwise.hpp) ---------
namespace broadcast_entries {

template <typename T>
void binary_forward(const Tensor<T>& a, const Tensor<T>& b, ops::BinaryOp op, const Tensor<T>& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Shape& os = out.shape();
  const Shape so = out.strides();
  const Shape sa = ops::detail::broadcast_strides(a, os), sb = ops::detail::broadcast_strides(b, os);
  const Shape* const strides[3] = {&so, &sa, &sb};
  cuda::binary_forward(a.data(), b.data(), op, out.data(), n, make_layout<3>(os, strides),
                       current_cuda_stream(out.device()));
}

template <typename T>
void sum_to_shape(const Tensor<T>& g, const Tensor<T>& out) {
  if (out.numel() == 0) return;
  cuda::sum_to_shape(g.data(), plan_sum_to_shape(g.shape(), g.strides(), out.shape()), out.data(),
                     current_cuda_stream(out.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::BinaryForward, T>(DeviceType::CUDA, &binary_forward<T>);
  dispatch::set_entry<ops::entries::SumToShape, T>(DeviceType::CUDA, &sum_to_shape<T>);
}

}  // namespace broadcast_entries

// Installs the broadcasting elementwise entries for float and double.
inline void register_broadcast_entries() {
  broadcast_entries::register_for<float>();
  broadcast_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
