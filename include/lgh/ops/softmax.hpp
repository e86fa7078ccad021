// softmax and log_softmax along one dimension, numerically stable: the
// maximum of each slice is subtracted before exponentiating, so no exp
// overflows and log_softmax never takes the log of an underflowed 0.
//
//   softmax:     y = exp(x - m) / s,        s = sum exp(x - m)
//   log_softmax: y = x - m - log s
//   backward:    softmax      gx = y * (g - sum(g * y))
//                log_softmax  gx = g - exp(y) * sum(g)
// Both save only their output. Backward kernels overwrite their outputs.
//
// The tensor is seen as [outer, D, inner] with D the softmax dimension: for
// the last dimension (inner = 1) each row is contiguous; otherwise the D
// slices of a block of `inner` are combined elementwise (vectorised along
// inner).
#pragma once

#include <cmath>

#include "lgh/ops/reduce.hpp"

namespace lgh {
namespace ops {

namespace detail {

struct SoftmaxGeometry {
  int64_t outer = 1, D = 1, inner = 1;
};

inline SoftmaxGeometry softmax_geometry(const Shape& s, int d) {
  SoftmaxGeometry g;
  for (int i = 0; i < d; ++i) g.outer *= s[i];
  g.D = s[d];
  for (int i = d + 1; i < s.ndim(); ++i) g.inner *= s[i];
  return g;
}

constexpr int64_t kSoftmaxBlock = 512;  // elements of `inner` per task

// Runs f(o, i0, n) over [outer] x blocks of [inner], in parallel.
template <typename F>
void softmax_tasks(const SoftmaxGeometry& g, F&& f) {
  const int64_t block = g.inner == 1 ? 1 : std::min(g.inner, kSoftmaxBlock);
  const int64_t blocks = (g.inner + block - 1) / block;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, g.D * block));
  parallel_for(0, g.outer * blocks, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * block;
      f(o, i0, std::min(block, g.inner - i0));
    }
  });
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// Forward kernel. x, y: contiguous, same shape, seen as [outer, D, inner].
template <typename T>
void softmax_forward(const Tensor<T>& x, const detail::SoftmaxGeometry& geo, bool log, const Tensor<T>& y) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T* px = x.data();
  T* py = y.data();
  const int64_t D = geo.D, inner = geo.inner;
  if (D == 0) return;
  if (inner == 1) {
    detail::softmax_tasks(geo, [&](int64_t o, int64_t, int64_t) {
      const auto row = detail::ConstArrayMap<T>(px + o * D, D);
      auto out = detail::ArrayMap<T>(py + o * D, D);
      const T m = row.maxCoeff();
      if (log) {
        const T lse = m + std::log((row - m).exp().sum());
        out = row - lse;
      } else {
        out = (row - m).exp();
        out *= T(1) / out.sum();
      }
    });
    return;
  }
  detail::softmax_tasks(geo, [&](int64_t o, int64_t i0, int64_t n) {
    const T* xb = px + o * D * inner + i0;
    T* yb = py + o * D * inner + i0;
    Array m = detail::ConstArrayMap<T>(xb, n);
    for (int64_t d = 1; d < D; ++d) m = m.max(detail::ConstArrayMap<T>(xb + d * inner, n));
    Array s = Array::Zero(n);
    for (int64_t d = 0; d < D; ++d) {
      auto yd = detail::ArrayMap<T>(yb + d * inner, n);
      yd = (detail::ConstArrayMap<T>(xb + d * inner, n) - m).exp();
      s += yd;
    }
    if (log) {
      m += s.log();  // m is now the log-sum-exp
      for (int64_t d = 0; d < D; ++d)
        detail::ArrayMap<T>(yb + d * inner, n) = detail::ConstArrayMap<T>(xb + d * inner, n) - m;
    } else {
      s = s.inverse();
      for (int64_t d = 0; d < D; ++d) detail::ArrayMap<T>(yb + d * inner, n) *= s;
    }
  });
}

// Backward kernel. y: the forward's output; gy, gx: contiguous, same shape.
template <typename T>
void softmax_backward(const Tensor<T>& y, const Tensor<T>& gy, const detail::SoftmaxGeometry& geo, bool log,
                      const Tensor<T>& gx) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T* py = y.data();
  const T* pg = gy.data();
  T* pd = gx.data();
  const int64_t D = geo.D, inner = geo.inner;
  if (D == 0) return;
  if (inner == 1) {
    detail::softmax_tasks(geo, [&](int64_t o, int64_t, int64_t) {
      const auto yr = detail::ConstArrayMap<T>(py + o * D, D);
      const auto gr = detail::ConstArrayMap<T>(pg + o * D, D);
      auto out = detail::ArrayMap<T>(pd + o * D, D);
      if (log)
        out = gr - yr.exp() * gr.sum();
      else
        out = yr * (gr - (gr * yr).sum());
    });
    return;
  }
  detail::softmax_tasks(geo, [&](int64_t o, int64_t i0, int64_t n) {
    const int64_t base = o * D * inner + i0;
    Array acc = Array::Zero(n);  // sum over D of g * y (softmax) or of g (log_softmax)
    for (int64_t d = 0; d < D; ++d) {
      const auto gd = detail::ConstArrayMap<T>(pg + base + d * inner, n);
      if (log)
        acc += gd;
      else
        acc += gd * detail::ConstArrayMap<T>(py + base + d * inner, n);
    }
    for (int64_t d = 0; d < D; ++d) {
      const auto yd = detail::ConstArrayMap<T>(py + base + d * inner, n);
      const auto gd = detail::ConstArrayMap<T>(pg + base + d * inner, n);
      auto out = detail::ArrayMap<T>(pd + base + d * inner, n);
      if (log)
        out = gd - yd.exp() * acc;
      else
        out = yd * (gd - acc);
    }
  });
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct SoftmaxForward {
  static constexpr const char* name = "softmax_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const detail::SoftmaxGeometry& geo, bool log, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::softmax_forward<T>;
};

struct SoftmaxBackward {
  static constexpr const char* name = "softmax_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& y, const Tensor<T>& gy, const detail::SoftmaxGeometry& geo, bool log,
                      const Tensor<T>& gx);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::softmax_backward<T>;
};

}  // namespace entries

template <typename T>
struct SoftmaxBackward : autograd::Node<T> {
  Tensor<T> y;
  detail::SoftmaxGeometry geo;
  bool log = false;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx = Tensor<T>::empty(y.shape(), y.device());
    if (gx.numel() > 0) dispatch::call<entries::SoftmaxBackward, T>(y.device(), y, g[0].contiguous(), geo, log, gx);
    return {gx};
  }
  const char* name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  void release_saved() override { y = Tensor<T>(); }
};

template <typename T>
Tensor<T> softmax_impl(const char* op, const Tensor<T>& x, int dim, bool log) {
  detail::check_defined(op, "x", x);
  LGH_CHECK(x.ndim() >= 1, op << ": 'x' must have at least 1 dimension, got a 0-d tensor");
  const int nd = x.ndim();
  LGH_CHECK(dim >= -nd && dim < nd, op << ": dim " << dim << " out of range for 'x' of shape " << x.shape().str());
  const detail::SoftmaxGeometry geo = detail::softmax_geometry(x.shape(), dim < 0 ? dim + nd : dim);
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.device());
  if (y.numel() > 0) dispatch::call<entries::SoftmaxForward, T>(x.device(), xc, geo, log, y);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<SoftmaxBackward<T>>();
    node->y = y.detach();
    node->geo = geo;
    node->log = log;
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

// exp(x) / sum exp(x) along `dim` (negative counts from the end).
template <typename T>
Tensor<T> softmax(const Tensor<T>& x, int dim) {
  return softmax_impl("softmax", x, dim, false);
}

// log(softmax(x)) along `dim`, computed without forming the softmax.
template <typename T>
Tensor<T> log_softmax(const Tensor<T>& x, int dim) {
  return softmax_impl("log_softmax", x, dim, true);
}

}  // namespace ops
}  // namespace lgh
