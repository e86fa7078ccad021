// Regression losses with PyTorch's semantics: l1_loss (the ℓ1 of Eq. 10) and
// smooth_l1_loss, reduced by mean (the default), sum, or not at all.
//
//   l1:        l = |d|,                          dl/dd = sign(d) (0 at d = 0)
//   smooth l1: l = 0.5 d^2 / beta  if |d| < beta, dl/dd = d / beta
//                  |d| - 0.5 beta  otherwise,     dl/dd = sign(d)
// with d = pred - target; beta = 0 is l1. Both pred and target receive
// gradients (target's is the negative). Reduced losses are summed in fixed
// chunks with partial sums in double, so the value does not depend on the
// thread count. Backward kernels overwrite their outputs.
#pragma once

#include <cmath>

#include "lgh/ops/reduce.hpp"

namespace lgh {
namespace ops {

enum class Reduction { None, Mean, Sum };

namespace detail {

// The per-element loss of d = p - t over a contiguous run, as an Eigen
// expression (smooth when beta > 0).
template <typename T, typename D>
auto loss_elements(const D& d, T beta) {
  const auto a = d.abs();
  return (a < beta).select(a * a * (T(0.5) / beta), a - T(0.5) * beta);
}

// The per-element derivative dl/dd.
template <typename T, typename D>
auto loss_derivative(const D& d, T beta) {
  return (d.abs() < beta).select(d * (T(1) / beta), d.sign());
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// Forward kernel. pred, target: contiguous, same shape. Writes out: the
// per-element losses (Reduction::None, same shape) or a 0-d tensor.
template <typename T>
void regression_loss_forward(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction, T beta,
                             const Tensor<T>& out) {
  const T* p = pred.data();
  const T* t = target.data();
  const int64_t n = pred.numel();
  if (reduction == Reduction::None) {
    T* o = out.data();
    parallel_for(0, n, detail::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      const auto d = detail::ConstArrayMap<T>(p + lo, hi - lo) - detail::ConstArrayMap<T>(t + lo, hi - lo);
      auto dst = detail::ArrayMap<T>(o + lo, hi - lo);
      if (beta > T(0))
        dst = detail::loss_elements(d, beta);
      else
        dst = d.abs();
    });
    return;
  }
  const int64_t chunks = (n + detail::kSumChunk - 1) / detail::kSumChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallel_for(0, chunks, std::max<int64_t>(1, detail::kElementwiseGrain / detail::kSumChunk),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t c = lo; c < hi; ++c) {
                   const int64_t s = c * detail::kSumChunk, m = std::min(detail::kSumChunk, n - s);
                   const auto d = detail::ConstArrayMap<T>(p + s, m) - detail::ConstArrayMap<T>(t + s, m);
                   partial[static_cast<size_t>(c)] =
                       static_cast<double>(beta > T(0) ? detail::loss_elements(d, beta).sum() : d.abs().sum());
                 }
               });
  double total = 0;
  for (double v : partial) total += v;
  // The mean of no elements is NaN, as in PyTorch.
  if (reduction == Reduction::Mean) total /= static_cast<double>(n);
  *out.data() = static_cast<T>(total);
}

// Backward kernel. gy: the loss's gradient (0-d when reduced, else shaped
// like pred), contiguous. Writes gpred and/or gtarget when defined.
template <typename T>
void regression_loss_backward(const Tensor<T>& pred, const Tensor<T>& target, const Tensor<T>& gy,
                              Reduction reduction, T beta, const Tensor<T>& gpred, const Tensor<T>& gtarget) {
  const T* p = pred.data();
  const T* t = target.data();
  const T* g = gy.data();
  T* gp = gpred.defined() ? gpred.data() : nullptr;
  T* gt = gtarget.defined() ? gtarget.data() : nullptr;
  const int64_t n = pred.numel();
  const T scale = reduction == Reduction::None ? T(1)
                  : reduction == Reduction::Mean ? static_cast<T>(*g / static_cast<T>(n))
                                                 : *g;
  if (!gp && !gt) return;
  parallel_for(0, n, detail::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    const int64_t m = hi - lo;
    const auto d = detail::ConstArrayMap<T>(p + lo, m) - detail::ConstArrayMap<T>(t + lo, m);
    // dl/dpred goes into whichever output exists first; dl/dtarget is its negative.
    auto dl = detail::ArrayMap<T>((gp ? gp : gt) + lo, m);
    if (beta > T(0))
      dl = detail::loss_derivative(d, beta);
    else
      dl = d.sign();
    if (reduction == Reduction::None)
      dl *= detail::ConstArrayMap<T>(g + lo, m);
    else
      dl *= scale;
    if (gp && gt)
      detail::ArrayMap<T>(gt + lo, m) = -dl;
    else if (!gp)
      dl = -dl;
  });
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct RegressionLossForward {
  static constexpr const char* name = "regression_loss_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction, T beta,
                      const Tensor<T>& out);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::regression_loss_forward<T>;
};

struct RegressionLossBackward {
  static constexpr const char* name = "regression_loss_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& pred, const Tensor<T>& target, const Tensor<T>& gy, Reduction reduction,
                      T beta, const Tensor<T>& gpred, const Tensor<T>& gtarget);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::regression_loss_backward<T>;
};

}  // namespace entries

template <typename T>
struct RegressionLossBackward : autograd::Node<T> {
  Tensor<T> pred, target;  // contiguous
  Reduction reduction = Reduction::Mean;
  T beta = T(0);
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gp, gt;
    if (this->needs_input_grad(0)) gp = Tensor<T>::empty(pred.shape(), pred.device());
    if (this->needs_input_grad(1)) gt = Tensor<T>::empty(pred.shape(), pred.device());
    if (pred.numel() > 0 && (gp.defined() || gt.defined()))
      dispatch::call<entries::RegressionLossBackward, T>(pred.device(), pred, target, g[0].contiguous(), reduction,
                                                         beta, gp, gt);
    return {gp, gt};
  }
  const char* name() const override { return beta > T(0) ? "SmoothL1LossBackward" : "L1LossBackward"; }
  void release_saved() override { pred = target = Tensor<T>(); }
};

template <typename T>
Tensor<T> regression_loss(const char* op, const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction,
                          double beta) {
  detail::check_defined(op, "pred", pred);
  detail::check_defined(op, "target", target);
  LGH_CHECK(target.shape() == pred.shape(), op << ": 'target' has shape " << target.shape().str()
                                               << ", expected the shape of 'pred' " << pred.shape().str());
  LGH_CHECK(beta >= 0, op << ": beta must be non-negative, got " << beta);
  const Device device = detail::common_device<T>(op, {{"pred", &pred}, {"target", &target}});
  const Tensor<T> pc = pred.contiguous(), tc = target.contiguous();
  Tensor<T> y = Tensor<T>::empty(reduction == Reduction::None ? pred.shape() : Shape{}, pred.device());
  if (y.numel() > 0) dispatch::call<entries::RegressionLossForward, T>(device, pc, tc, reduction, static_cast<T>(beta), y);
  if (autograd::needs_grad(pred, target)) {
    auto node = std::make_shared<RegressionLossBackward<T>>();
    node->pred = pc.detach();
    node->target = tc.detach();
    node->reduction = reduction;
    node->beta = static_cast<T>(beta);
    autograd::record<T>(node, {&pred, &target}, {&y});
  }
  return y;
}

// Mean / sum / elementwise |pred - target|.
template <typename T>
Tensor<T> l1_loss(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction = Reduction::Mean) {
  return regression_loss("l1_loss", pred, target, reduction, 0.0);
}

// Huber-like loss, quadratic below beta (PyTorch's smooth_l1_loss).
template <typename T>
Tensor<T> smooth_l1_loss(const Tensor<T>& pred, const Tensor<T>& target, Reduction reduction = Reduction::Mean,
                         double beta = 1.0) {
  return regression_loss("smooth_l1_loss", pred, target, reduction, beta);
}

}  // namespace ops
}  // namespace lgh
