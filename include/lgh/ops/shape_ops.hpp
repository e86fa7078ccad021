// Differentiable shape ops: reshape, slice, concat, permute, contiguous.
//
// reshape, slice and permute return views that share the input's storage
// (like PyTorch's), so they cost nothing; ops that need contiguous data copy
// on their side. Their backward functions are the inverse data movement.
// ReshapeBackward and ContiguousBackward may return a view of the incoming
// gradient rather than a copy (the engine copies before accumulating into
// it); every other backward here returns fresh, contiguous tensors.
#pragma once

#include <cstring>
#include <vector>

#include "lgh/ops/common.hpp"

namespace lgh {
namespace ops {

namespace detail {

// The shape `dims` describes for a tensor of shape `in` (one extent may be -1).
inline Shape reshape_target(const char* op, const Shape& in, const std::vector<int64_t>& dims_in) {
  std::vector<int64_t> dims = dims_in;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      LGH_CHECK(infer < 0, op << ": more than one -1 in the new shape reshaping " << in.str());
      infer = static_cast<int>(i);
    } else {
      LGH_CHECK(dims[i] >= 0, op << ": negative extent " << dims[i] << " in the new shape");
      known *= dims[i];
    }
  }
  if (infer >= 0) {
    LGH_CHECK(known > 0 && in.numel() % known == 0,
              op << ": cannot infer the -1 extent reshaping " << in.str() << " (" << in.numel()
                 << " elements) with the other extents' product " << known);
    dims[static_cast<size_t>(infer)] = in.numel() / known;
  }
  Shape s(dims);
  LGH_CHECK(s.numel() == in.numel(), op << ": new shape " << s.str() << " (" << s.numel()
                                        << " elements) does not match input shape " << in.str() << " ("
                                        << in.numel() << " elements)");
  return s;
}

inline int normalise_dim(const char* op, int dim, int ndim) {
  const int d = dim < 0 ? dim + ndim : dim;
  LGH_CHECK(d >= 0 && d < ndim, op << ": dim " << dim << " out of range for a " << ndim << "-d tensor");
  return d;
}

// Copies `rows` rows of `len` elements from src (row stride src_stride) to
// dst (row stride dst_stride), rows in parallel.
template <typename T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t len) {
  if (rows == 0 || len == 0) return;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / len);
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r)
      std::memcpy(dst + r * dst_stride, src + r * src_stride, static_cast<size_t>(len) * sizeof(T));
  });
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// y = the concatenation of xs along `dim`. xs: any strides, shapes as
// checked by concat; y: contiguous.
template <typename T>
void concat_forward(const std::vector<Tensor<T>>& xs, int dim, const Tensor<T>& y) {
  const Shape& out_shape = y.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= out_shape[i];
  for (int i = dim + 1; i < out_shape.ndim(); ++i) inner *= out_shape[i];
  const int64_t total = out_shape[dim] * inner;
  int64_t offset = 0;
  for (const Tensor<T>& x : xs) {
    const Tensor<T> xc = x.contiguous();
    const int64_t len = x.size(dim) * inner;
    detail::copy_rows(xc.data(), len, y.data() + offset, total, outer, len);
    offset += len;
  }
}

// The slices of gy along `dim` into gxs[k], which is undefined when input k
// needs no gradient, else contiguous with shape shapes[k] (the input's).
// gy: contiguous.
template <typename T>
void concat_backward(const Tensor<T>& gy, int dim, const std::vector<Shape>& shapes,
                     const std::vector<Tensor<T>>& gxs) {
  const Shape& gs = gy.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= gs[i];
  for (int i = dim + 1; i < gs.ndim(); ++i) inner *= gs[i];
  const int64_t total = gs[dim] * inner;
  int64_t offset = 0;
  for (size_t k = 0; k < gxs.size(); ++k) {
    const int64_t len = shapes[k][dim] * inner;
    if (gxs[k].defined()) detail::copy_rows(gy.data() + offset, total, gxs[k].data(), len, outer, len);
    offset += len;
  }
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct ConcatForward {
  static constexpr const char* name = "concat_forward";
  template <typename T>
  using Fn = void (*)(const std::vector<Tensor<T>>& xs, int dim, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::concat_forward<T>;
};

struct ConcatBackward {
  static constexpr const char* name = "concat_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& gy, int dim, const std::vector<Shape>& shapes,
                      const std::vector<Tensor<T>>& gxs);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::concat_backward<T>;
};

}  // namespace entries

// ---- reshape ----------------------------------------------------------------

template <typename T>
struct ReshapeBackward : autograd::Node<T> {
  Shape input_shape;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    return {g[0].contiguous().detach().view(input_shape.vec())};
  }
  const char* name() const override { return "ReshapeBackward"; }
};

// The same elements in a new shape; one extent may be -1 (inferred). A view
// of x when x is contiguous, else of a contiguous copy.
template <typename T>
Tensor<T> reshape(const Tensor<T>& x, const std::vector<int64_t>& dims) {
  const char* op = "reshape";
  detail::check_defined(op, "x", x);
  const Shape s = detail::reshape_target(op, x.shape(), dims);
  Tensor<T> y = x.detach().contiguous().view(s.vec());
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<ReshapeBackward<T>>();
    node->input_shape = x.shape();
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

// ---- contiguous -------------------------------------------------------------

template <typename T>
struct ContiguousBackward : autograd::Node<T> {
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override { return {g[0]}; }
  const char* name() const override { return "ContiguousBackward"; }
};

// x itself when contiguous, else a contiguous copy (differentiable identity).
template <typename T>
Tensor<T> contiguous(const Tensor<T>& x) {
  detail::check_defined("contiguous", "x", x);
  if (x.is_contiguous()) return x;
  Tensor<T> y = x.detach().contiguous();
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<ContiguousBackward<T>>();
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

// ---- slice ------------------------------------------------------------------

template <typename T>
struct SliceBackward : autograd::Node<T> {
  Shape input_shape;
  int dim = 0;
  int64_t start = 0, end = 0;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    // Elements outside the slice had no influence: their gradient is 0.
    Tensor<T> gx = Tensor<T>::zeros(input_shape, g[0].device());
    gx.narrow(dim, start, end).copy_(g[0]);
    return {gx};
  }
  const char* name() const override { return "SliceBackward"; }
};

// Elements [start, end) of dimension `dim` (a view). Negative dim, start
// and end count from the end, as in Python.
template <typename T>
Tensor<T> slice(const Tensor<T>& x, int dim, int64_t start, int64_t end) {
  const char* op = "slice";
  detail::check_defined(op, "x", x);
  const int d = detail::normalise_dim(op, dim, x.ndim());
  const int64_t n = x.size(d);
  const int64_t s = start < 0 ? start + n : start, e = end < 0 ? end + n : end;
  LGH_CHECK(0 <= s && s <= e && e <= n, op << ": range [" << start << ", " << end
                                           << ") out of bounds for dimension " << d << " of shape "
                                           << x.shape().str());
  Tensor<T> y = x.detach().narrow(d, s, e);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<SliceBackward<T>>();
    node->input_shape = x.shape();
    node->dim = d;
    node->start = s;
    node->end = e;
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

// ---- concat -----------------------------------------------------------------

template <typename T>
struct ConcatBackward : autograd::Node<T> {
  std::vector<Shape> shapes;
  int dim = 0;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    const Tensor<T> gc = g[0].contiguous();
    std::vector<Tensor<T>> out(shapes.size());
    for (size_t k = 0; k < shapes.size(); ++k)
      if (this->needs_input_grad(k)) out[k] = Tensor<T>::empty(shapes[k], gc.device());
    if (gc.numel() > 0) dispatch::call<entries::ConcatBackward, T>(gc.device(), gc, dim, shapes, out);
    return out;
  }
  const char* name() const override { return "ConcatBackward"; }
};

// Concatenation along `dim` (the model concatenates channels, dim = 1). All
// inputs have the same shape except along dim.
template <typename T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, int dim) {
  const char* op = "concat";
  LGH_CHECK(!xs.empty(), op << ": no tensors to concatenate");
  for (size_t k = 0; k < xs.size(); ++k)
    LGH_CHECK(xs[k].defined(), op << ": tensor " << k << " is undefined");
  const Shape& s0 = xs[0].shape();
  LGH_CHECK(s0.ndim() >= 1, op << ": cannot concatenate 0-d tensors");
  const int d = detail::normalise_dim(op, dim, s0.ndim());
  Shape out_shape = s0;
  out_shape[d] = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool match = s.ndim() == s0.ndim();
    for (int i = 0; match && i < s.ndim(); ++i) match = i == d || s[i] == s0[i];
    LGH_CHECK(match, op << ": tensor " << k << " has shape " << s.str() << ", expected "
                        << s0.ndim() << "-d with the shape of tensor 0 " << s0.str()
                        << " except along dim " << d);
    out_shape[d] += s[d];
  }
  const Device device = detail::common_device(op, "xs", xs, xs[0].device());
  Tensor<T> y = Tensor<T>::empty(out_shape, device);
  if (y.numel() > 0) dispatch::call<entries::ConcatForward, T>(device, xs, d, y);

  bool record = false;
  if (autograd::grad_enabled())
    for (const Tensor<T>& x : xs) record = record || x.requires_grad();
  if (record) {
    auto node = std::make_shared<ConcatBackward<T>>();
    for (const Tensor<T>& x : xs) node->shapes.push_back(x.shape());
    node->dim = d;
    std::vector<Tensor<T>> outs{y};
    autograd::record<T>(node, xs, outs);
    y = outs[0];
  }
  return y;
}

// ---- permute ----------------------------------------------------------------

template <typename T>
struct PermuteBackward : autograd::Node<T> {
  std::vector<int> inverse;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    return {g[0].detach().permute(inverse).contiguous()};
  }
  const char* name() const override { return "PermuteBackward"; }
};

// Dimension i of the result is dimension order[i] of x (a strided view).
template <typename T>
Tensor<T> permute(const Tensor<T>& x, const std::vector<int>& order) {
  const char* op = "permute";
  detail::check_defined(op, "x", x);
  const int nd = x.ndim();
  LGH_CHECK(static_cast<int>(order.size()) == nd,
            op << ": " << order.size() << " axes given for a tensor of shape " << x.shape().str());
  std::vector<int> axes(order.size()), inverse(order.size(), -1);
  for (int i = 0; i < nd; ++i) {
    const int a = detail::normalise_dim(op, order[static_cast<size_t>(i)], nd);
    LGH_CHECK(inverse[static_cast<size_t>(a)] < 0, op << ": axis " << a << " repeated in the order");
    axes[static_cast<size_t>(i)] = a;
    inverse[static_cast<size_t>(a)] = i;
  }
  Tensor<T> y = x.detach().permute(axes);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<PermuteBackward<T>>();
    node->inverse = inverse;
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

}  // namespace ops
}  // namespace lgh
