// Reductions: sum and mean over all elements (0-d result) or over a list of
// dimensions (optionally keeping them with extent 1). The CPU kernels of
// reduce_forward / reduce_backward also serve linear's bias gradient.
//
// Full reductions are summed in fixed chunks whose partial sums are added in
// double, in order, so that the result does not depend on the thread count
// and float tensors of millions of elements keep their precision. The
// backward functions overwrite their outputs.
#pragma once

#include <algorithm>
#include <vector>

#include "lgh/ops/common.hpp"
#include "lgh/ops/eigen.hpp"

namespace lgh {
namespace ops {

namespace detail {

// Vectorised views of contiguous runs, shared by the op headers.
template <typename T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;

// Elements summed in T (by Eigen's vectorised reduction) before the partial
// sum joins a double accumulator.
constexpr int64_t kSumChunk = 1024;

// Sum of n contiguous values, accumulated in double across chunks (serial).
template <typename T>
double row_sum(const T* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i += kSumChunk)
    s += static_cast<double>(ConstArrayMap<T>(p + i, std::min(kSumChunk, n - i)).sum());
  return s;
}

// Sum of n contiguous values, in parallel, deterministic (see the header).
template <typename T>
double parallel_sum(const T* p, int64_t n) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  if (chunks <= 1) return row_sum(p, n);
  std::vector<double> partial(static_cast<size_t>(chunks));
  parallel_for(0, chunks, std::max<int64_t>(1, kElementwiseGrain / kSumChunk), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c)
      partial[static_cast<size_t>(c)] = row_sum(p + c * kSumChunk, std::min(kSumChunk, n - c * kSumChunk));
  });
  double s = 0;
  for (double v : partial) s += v;
  return s;
}

// A reduction over some dimensions, as [outer, R, inner] over a contiguous
// source: when the reduced dimensions are adjacent the input is read in
// place; otherwise it is first permuted so that they come last (inner = 1).
struct ReducePlan {
  Shape keep_shape;  // input shape with the reduced dims set to 1
  Shape out_shape;   // keep_shape, or without the reduced dims
  std::vector<int> order;  // permutation applied to the input (empty: none)
  int64_t outer = 1, reduced = 1, inner = 1;
};

inline ReducePlan plan_reduce(const char* op, const Shape& in, const std::vector<int>& dims_in, bool keepdim) {
  const int nd = in.ndim();
  LGH_CHECK(!dims_in.empty(), op << ": empty list of dims (use the overload without dims to reduce all)");
  std::vector<bool> red(static_cast<size_t>(nd), false);
  for (int d : dims_in) {
    const int a = d < 0 ? d + nd : d;
    LGH_CHECK(a >= 0 && a < nd, op << ": dim " << d << " out of range for input of shape " << in.str());
    LGH_CHECK(!red[static_cast<size_t>(a)], op << ": dim " << d << " repeated");
    red[static_cast<size_t>(a)] = true;
  }
  ReducePlan p;
  int first = nd, last = -1;
  for (int i = 0; i < nd; ++i) {
    const bool r = red[static_cast<size_t>(i)];
    p.keep_shape.push_back(r ? 1 : in[i]);
    if (!r || keepdim) p.out_shape.push_back(r ? 1 : in[i]);
    if (r) {
      first = std::min(first, i);
      last = i;
    }
  }
  bool adjacent = true;
  for (int i = first; i <= last; ++i) adjacent = adjacent && red[static_cast<size_t>(i)];
  if (adjacent) {
    for (int i = 0; i < first; ++i) p.outer *= in[i];
    for (int i = first; i <= last; ++i) p.reduced *= in[i];
    for (int i = last + 1; i < nd; ++i) p.inner *= in[i];
  } else {
    for (int i = 0; i < nd; ++i)
      if (!red[static_cast<size_t>(i)]) {
        p.order.push_back(i);
        p.outer *= in[i];
      }
    for (int i = 0; i < nd; ++i)
      if (red[static_cast<size_t>(i)]) {
        p.order.push_back(i);
        p.reduced *= in[i];
      }
  }
  return p;
}

// dst[o, i] = scale * sum_r src[o, r, i]; src contiguous [outer, R, inner].
template <typename T>
void reduce_forward(const T* src, int64_t outer, int64_t R, int64_t inner, T scale, T* dst) {
  if (inner == 1) {
    parallel_for(0, outer, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, R)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t o = lo; o < hi; ++o)
                     dst[o] = static_cast<T>(row_sum(src + o * R, R) * static_cast<double>(scale));
                 });
    return;
  }
  // Rows of `inner` are added elementwise (vectorised along inner), in
  // blocks of inner so that small `outer` still spreads over the threads.
  const int64_t block = std::min<int64_t>(inner, 1024);
  const int64_t blocks = (inner + block - 1) / block;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, R * block));
  parallel_for(0, outer * blocks, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * block, n = std::min(block, inner - i0);
      ArrayMap<T> acc(dst + o * inner + i0, n);
      const T* base = src + o * R * inner + i0;
      if (R == 0) {  // an empty sum is 0; an empty mean is NaN (scale is inf)
        acc.setZero();
        acc *= scale;
        continue;
      }
      acc = ConstArrayMap<T>(base, n);
      for (int64_t r = 1; r < R; ++r) acc += ConstArrayMap<T>(base + r * inner, n);
      if (scale != T(1)) acc *= scale;
    }
  });
}

// dst[o, r, i] = scale * g[o, i]; dst contiguous [outer, R, inner].
template <typename T>
void reduce_backward(const T* g, int64_t outer, int64_t R, int64_t inner, T scale, T* dst) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, R * inner));
  parallel_for(0, outer, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      if (inner == 1) {
        ArrayMap<T>(dst + o * R, R).setConstant(scale * g[o]);
        continue;
      }
      const auto row = ConstArrayMap<T>(g + o * inner, inner);
      for (int64_t r = 0; r < R; ++r) ArrayMap<T>(dst + (o * R + r) * inner, inner) = row * scale;
    }
  });
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// y (0-d) = scale * the sum of x's elements (x contiguous).
template <typename T>
void reduce_all_forward(const Tensor<T>& x, double scale, const Tensor<T>& y) {
  *y.data() = static_cast<T>(detail::parallel_sum(x.data(), x.numel()) * scale);
}

// dst [outer, inner] = scale * sum over R of src [outer, R, inner] (both contiguous).
template <typename T>
void reduce_forward(const Tensor<T>& src, int64_t outer, int64_t R, int64_t inner, T scale, const Tensor<T>& dst) {
  detail::reduce_forward(src.data(), outer, R, inner, scale, dst.data());
}

// dst [outer, R, inner] = scale * g [outer, inner] broadcast over R (both contiguous).
template <typename T>
void reduce_backward(const Tensor<T>& g, int64_t outer, int64_t R, int64_t inner, T scale, const Tensor<T>& dst) {
  detail::reduce_backward(g.data(), outer, R, inner, scale, dst.data());
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct ReduceAllForward {
  static constexpr const char* name = "reduce_all_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, double scale, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::reduce_all_forward<T>;
};

struct ReduceForward {
  static constexpr const char* name = "reduce_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& src, int64_t outer, int64_t R, int64_t inner, T scale, const Tensor<T>& dst);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::reduce_forward<T>;
};

struct ReduceBackward {
  static constexpr const char* name = "reduce_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& g, int64_t outer, int64_t R, int64_t inner, T scale, const Tensor<T>& dst);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::reduce_backward<T>;
};

}  // namespace entries

// ---- over all elements ------------------------------------------------------

template <typename T>
struct ReduceAllBackward : autograd::Node<T> {
  Shape input_shape;
  T scale = T(1);
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    // The 0-d gradient broadcast to every element (read on the device: no
    // host round trip).
    Tensor<T> gx = Tensor<T>::empty(input_shape, g[0].device());
    if (gx.numel() > 0)
      dispatch::call<entries::ReduceBackward, T>(gx.device(), g[0], int64_t(1), gx.numel(), int64_t(1), scale, gx);
    return {gx};
  }
  const char* name() const override { return "ReduceAllBackward"; }
};

template <typename T>
Tensor<T> reduce_all(const char* op, const Tensor<T>& x, bool mean) {
  detail::check_defined(op, "x", x);
  const Tensor<T> xc = x.contiguous();
  const int64_t n = x.numel();
  // The mean of no elements is NaN, as in PyTorch.
  const double scale = mean ? 1.0 / static_cast<double>(n) : 1.0;
  Tensor<T> y = Tensor<T>::empty(Shape{}, x.device());
  dispatch::call<entries::ReduceAllForward, T>(x.device(), xc, scale, y);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<ReduceAllBackward<T>>();
    node->input_shape = x.shape();
    node->scale = static_cast<T>(scale);
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

// Sum / mean of every element: a 0-d tensor.
template <typename T>
Tensor<T> sum(const Tensor<T>& x) {
  return reduce_all("sum", x, false);
}
template <typename T>
Tensor<T> mean(const Tensor<T>& x) {
  return reduce_all("mean", x, true);
}

// ---- over dimensions --------------------------------------------------------

template <typename T>
struct ReduceDimsBackward : autograd::Node<T> {
  Shape input_shape;
  detail::ReducePlan plan;
  T scale = T(1);
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    const Tensor<T> gc = g[0].contiguous();
    if (plan.order.empty()) {
      Tensor<T> gx = Tensor<T>::empty(input_shape, gc.device());
      if (gx.numel() > 0)
        dispatch::call<entries::ReduceBackward, T>(gc.device(), gc, plan.outer, plan.reduced, plan.inner, scale, gx);
      return {gx};
    }
    // Fill the permuted layout, then permute back.
    Shape permuted;
    for (int a : plan.order) permuted.push_back(input_shape[a]);
    Tensor<T> gp = Tensor<T>::empty(permuted, gc.device());
    if (gp.numel() > 0)
      dispatch::call<entries::ReduceBackward, T>(gc.device(), gc, plan.outer, plan.reduced, int64_t(1), scale, gp);
    std::vector<int> inverse(plan.order.size());
    for (size_t i = 0; i < plan.order.size(); ++i) inverse[static_cast<size_t>(plan.order[i])] = static_cast<int>(i);
    return {gp.permute(inverse).contiguous()};
  }
  const char* name() const override { return "ReduceDimsBackward"; }
};

template <typename T>
Tensor<T> reduce_dims(const char* op, const Tensor<T>& x, const std::vector<int>& dims, bool keepdim, bool mean) {
  detail::check_defined(op, "x", x);
  const detail::ReducePlan plan = detail::plan_reduce(op, x.shape(), dims, keepdim);
  const Tensor<T> src = plan.order.empty() ? x.contiguous() : x.detach().permute(plan.order).contiguous();
  const double scale = mean ? 1.0 / static_cast<double>(plan.reduced) : 1.0;
  Tensor<T> y = Tensor<T>::empty(plan.out_shape, x.device());
  if (y.numel() > 0)
    dispatch::call<entries::ReduceForward, T>(x.device(), src, plan.outer, plan.reduced, plan.inner,
                                              static_cast<T>(scale), y);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<ReduceDimsBackward<T>>();
    node->input_shape = x.shape();
    node->plan = plan;
    node->scale = static_cast<T>(scale);
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

// Sum / mean over `dims` (negative counts from the end); keepdim keeps them
// with extent 1.
template <typename T>
Tensor<T> sum(const Tensor<T>& x, const std::vector<int>& dims, bool keepdim = false) {
  return reduce_dims("sum", x, dims, keepdim, false);
}
template <typename T>
Tensor<T> mean(const Tensor<T>& x, const std::vector<int>& dims, bool keepdim = false) {
  return reduce_dims("mean", x, dims, keepdim, true);
}

}  // namespace ops
}  // namespace lgh
