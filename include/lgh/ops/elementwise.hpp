// Elementwise ops: add, sub, mul (NumPy broadcasting), scalar add and
// multiply, negation, ReLU: CPU kernels, entry descriptors, public ops.
#pragma once

#include "lgh/ops/common.hpp"

namespace lgh {
namespace ops {

enum class BinaryOp { Add, Sub, Mul };

namespace detail {

template <typename T>
inline T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
  }
  return T(0);
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// out = a (op) b. out: contiguous, the broadcast shape; a and b broadcast to
// it (NumPy rules; detail::broadcast_strides), any strides.
template <typename T>
void binary_forward(const Tensor<T>& a, const Tensor<T>& b, BinaryOp op, const Tensor<T>& out) {
  const Shape& out_shape = out.shape();
  T* o = out.data();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    const T* pa = a.data();
    const T* pb = b.data();
    parallel_for(0, out.numel(), detail::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      switch (op) {
        case BinaryOp::Add: for (int64_t i = lo; i < hi; ++i) o[i] = pa[i] + pb[i]; break;
        case BinaryOp::Sub: for (int64_t i = lo; i < hi; ++i) o[i] = pa[i] - pb[i]; break;
        case BinaryOp::Mul: for (int64_t i = lo; i < hi; ++i) o[i] = pa[i] * pb[i]; break;
      }
    });
    return;
  }
  // General case: walk the output rows with broadcast strides for a and b.
  const Shape sa = detail::broadcast_strides(a, out_shape), sb = detail::broadcast_strides(b, out_shape);
  if (out_shape.ndim() == 0) {
    *o = detail::apply_binary(op, *a.data(), *b.data());
    return;
  }
  const int last = out_shape.ndim() - 1;
  const int64_t n = out_shape[last], ia = sa[last], ib = sb[last];
  const T* pa = a.data();
  const T* pb = b.data();
  int64_t row = 0;
  lgh::detail::for_each_row(out_shape, sa, sb, [&](int64_t oa, int64_t ob) {
    T* orow = o + row * n;
    for (int64_t i = 0; i < n; ++i) orow[i] = detail::apply_binary(op, pa[oa + i * ia], pb[ob + i * ib]);
    ++row;
  });
}

// out = g summed down to out's shape (g is shaped like a broadcast of out).
// g, out: contiguous.
template <typename T>
void sum_to_shape(const Tensor<T>& g, const Tensor<T>& out) {
  std::fill(out.data(), out.data() + out.numel(), T(0));
  const Shape st = detail::broadcast_strides(out, g.shape());
  const int last = g.ndim() - 1;
  const int64_t n = g.shape()[last], s = st[last];
  T* o = out.data();
  const T* src = g.data();
  lgh::detail::for_each_row(g.shape(), st, g.strides(), [&](int64_t oo, int64_t go) {
    for (int64_t i = 0; i < n; ++i) o[oo + i * s] += src[go + i];
  });
}

// y = alpha * x + beta. x, y: contiguous, same shape.
template <typename T>
void affine(const Tensor<T>& x, T alpha, T beta, const Tensor<T>& y) {
  const T* s = x.data();
  T* d = y.data();
  parallel_for(0, y.numel(), detail::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) d[i] = alpha * s[i] + beta;
  });
}

// y = max(x, 0). x, y: contiguous, same shape.
template <typename T>
void relu_forward(const Tensor<T>& x, const Tensor<T>& y) {
  const T* s = x.data();
  T* d = y.data();
  parallel_for(0, y.numel(), detail::kElementwiseGrain, [s, d](int64_t lo, int64_t hi) {
    const T* LGH_RESTRICT a = s;
    T* LGH_RESTRICT b = d;
    for (int64_t i = lo; i < hi; ++i) b[i] = a[i] > T(0) ? a[i] : T(0);
  });
}

// gx = gy where y > 0, else 0. y, gy, gx: contiguous, same shape.
template <typename T>
void relu_backward(const Tensor<T>& y, const Tensor<T>& gy, const Tensor<T>& gx) {
  const T* py = y.data();
  const T* pg = gy.data();
  T* pd = gx.data();
  parallel_for(0, y.numel(), detail::kElementwiseGrain, [py, pg, pd](int64_t lo, int64_t hi) {
    // Restrict-qualified locals and a select, not a branch: the signs are
    // random, so a branch would mispredict half the time, and without
    // restrict the loop would not vectorise.
    const T* LGH_RESTRICT a = py;
    const T* LGH_RESTRICT g = pg;
    T* LGH_RESTRICT d = pd;
    for (int64_t i = lo; i < hi; ++i) d[i] = a[i] > T(0) ? g[i] : T(0);
  });
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct BinaryForward {
  static constexpr const char* name = "binary_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& a, const Tensor<T>& b, BinaryOp op, const Tensor<T>& out);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::binary_forward<T>;
};

struct SumToShape {
  static constexpr const char* name = "sum_to_shape";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& g, const Tensor<T>& out);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::sum_to_shape<T>;
};

struct Affine {
  static constexpr const char* name = "affine";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, T alpha, T beta, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::affine<T>;
};

struct ReluForward {
  static constexpr const char* name = "relu_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::relu_forward<T>;
};

struct ReluBackward {
  static constexpr const char* name = "relu_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& y, const Tensor<T>& gy, const Tensor<T>& gx);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::relu_backward<T>;
};

}  // namespace entries

namespace detail {

template <typename T>
Tensor<T> binary_forward(BinaryOp op, const Tensor<T>& a, const Tensor<T>& b, const Shape& out_shape) {
  Tensor<T> out = Tensor<T>::empty(out_shape, a.device());
  if (out.numel() > 0) dispatch::call<entries::BinaryForward, T>(a.device(), a, b, op, out);
  return out;
}

template <typename T>
Tensor<T> affine_forward(const Tensor<T>& x, T alpha, T beta) {
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.device());
  if (y.numel() > 0) dispatch::call<entries::Affine, T>(x.device(), xc, alpha, beta, y);
  return y;
}

// Sums `g` (shaped like a broadcast result) down to `shape`.
template <typename T>
Tensor<T> sum_to_shape(const Tensor<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const Tensor<T> gc = g.contiguous();
  Tensor<T> out = Tensor<T>::empty(shape, g.device());
  if (out.numel() > 0) dispatch::call<entries::SumToShape, T>(g.device(), gc, out);
  return out;
}

}  // namespace detail

template <typename T>
struct BinaryBackward : autograd::Node<T> {
  BinaryOp op;
  Tensor<T> a, b;  // saved for Mul only
  Shape a_shape, b_shape;

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> ga, gb;
    const Tensor<T>& go = g[0];
    if (this->needs_input_grad(0)) {
      ga = op == BinaryOp::Mul ? detail::binary_forward(BinaryOp::Mul, go, b, go.shape()) : go;
      ga = detail::sum_to_shape(ga, a_shape);
    }
    if (this->needs_input_grad(1)) {
      if (op == BinaryOp::Mul)
        gb = detail::binary_forward(BinaryOp::Mul, go, a, go.shape());
      else if (op == BinaryOp::Sub)
        gb = detail::affine_forward(go, T(-1), T(0));
      else
        gb = go;
      gb = detail::sum_to_shape(gb, b_shape);
    }
    return {ga, gb};
  }
  const char* name() const override { return "BinaryBackward"; }
  void release_saved() override { a = b = Tensor<T>(); }
};

template <typename T>
Tensor<T> binary(BinaryOp op, const Tensor<T>& a, const Tensor<T>& b) {
  const char* name = op == BinaryOp::Add ? "add" : op == BinaryOp::Sub ? "sub" : "mul";
  detail::check_defined(name, "a", a);
  detail::check_defined(name, "b", b);
  detail::common_device<T>(name, {{"a", &a}, {"b", &b}});
  const Shape out_shape = detail::broadcast_shape(name, a.shape(), b.shape());
  Tensor<T> out = detail::binary_forward(op, a, b, out_shape);
  if (autograd::needs_grad(a, b)) {
    auto node = std::make_shared<BinaryBackward<T>>();
    node->op = op;
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    if (op == BinaryOp::Mul) {
      if (b.requires_grad()) node->a = a.detach();
      if (a.requires_grad()) node->b = b.detach();
    }
    autograd::record<T>(node, {&a, &b}, {&out});
  }
  return out;
}

template <typename T> Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) { return binary(BinaryOp::Add, a, b); }
template <typename T> Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) { return binary(BinaryOp::Sub, a, b); }
template <typename T> Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) { return binary(BinaryOp::Mul, a, b); }

// y = alpha * x + beta (covers scalar add, scalar multiply and negation).
template <typename T>
struct AffineBackward : autograd::Node<T> {
  T alpha;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    if (alpha == T(1)) return {g[0]};
    return {detail::affine_forward(g[0], alpha, T(0))};
  }
  const char* name() const override { return "AffineBackward"; }
};

template <typename T>
Tensor<T> affine(const Tensor<T>& x, T alpha, T beta) {
  detail::check_defined("affine", "x", x);
  Tensor<T> y = detail::affine_forward(x, alpha, beta);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<AffineBackward<T>>();
    node->alpha = alpha;
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

template <typename T> Tensor<T> add_scalar(const Tensor<T>& x, T c) { return affine(x, T(1), c); }
template <typename T> Tensor<T> mul_scalar(const Tensor<T>& x, T c) { return affine(x, c, T(0)); }
template <typename T> Tensor<T> neg(const Tensor<T>& x) { return affine(x, T(-1), T(0)); }

// ReLU: y = max(x, 0). The gradient at exactly 0 is taken as 0 (as PyTorch).
template <typename T>
struct ReluBackward : autograd::Node<T> {
  Tensor<T> y;  // the output: y > 0 exactly where x > 0
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx = Tensor<T>::empty(y.shape(), y.device());
    if (gx.numel() > 0) dispatch::call<entries::ReluBackward, T>(y.device(), y, g[0].contiguous(), gx);
    return {gx};
  }
  const char* name() const override { return "ReluBackward"; }
  void release_saved() override { y = Tensor<T>(); }
};

template <typename T>
Tensor<T> relu(const Tensor<T>& x) {
  detail::check_defined("relu", "x", x);
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.device());
  if (y.numel() > 0) dispatch::call<entries::ReluForward, T>(x.device(), xc, y);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<ReluBackward<T>>();
    node->y = y.detach();
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

}  // namespace ops

// Operators on tensors (differentiable; found by argument-dependent lookup).
template <typename T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return ops::add(a, b); }
template <typename T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return ops::sub(a, b); }
template <typename T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return ops::mul(a, b); }
template <typename T> Tensor<T> operator-(const Tensor<T>& a) { return ops::neg(a); }
template <typename T> Tensor<T> operator+(const Tensor<T>& a, T c) { return ops::add_scalar(a, c); }
template <typename T> Tensor<T> operator+(T c, const Tensor<T>& a) { return ops::add_scalar(a, c); }
template <typename T> Tensor<T> operator-(const Tensor<T>& a, T c) { return ops::add_scalar(a, -c); }
template <typename T> Tensor<T> operator*(const Tensor<T>& a, T c) { return ops::mul_scalar(a, c); }
template <typename T> Tensor<T> operator*(T c, const Tensor<T>& a) { return ops::mul_scalar(a, c); }

}  // namespace lgh
