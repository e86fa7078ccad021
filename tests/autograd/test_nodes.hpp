// Minimal ops defined by the tests themselves, so that the engine and the
// gradient checker are tested without depending on lgh::ops.
#pragma once

#include <cmath>

#include "lgh/autograd/engine.hpp"

namespace testops {
using namespace lgh;

// y = scale * x^2 (elementwise); `skip_last` makes backward forget to write
// its last element, `factor` scales the returned gradient (1 = correct).
struct SquareNode : autograd::Node<double> {
  TensorD x;
  double scale = 1, factor = 1;
  bool skip_last = false;
  std::vector<TensorD> backward(const std::vector<TensorD>& g) override {
    TensorD dx = TensorD::empty(x.shape());
    const int64_t n = x.numel() - (skip_last ? 1 : 0);
    for (int64_t i = 0; i < n; ++i) dx.data()[i] = factor * 2 * scale * x.data()[i] * g[0].data()[i];
    return {dx};
  }
  const char* name() const override { return "SquareNode"; }
  void release_saved() override { x = TensorD(); }
};

inline TensorD square(const TensorD& x, double scale = 1, double factor = 1, bool skip_last = false) {
  TensorD y = TensorD::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = scale * x.data()[i] * x.data()[i];
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<SquareNode>();
    node->x = x.detach();
    node->scale = scale;
    node->factor = factor;
    node->skip_last = skip_last;
    autograd::record<double>(node, {&x}, {&y});
  }
  return y;
}

// z = x * y (elementwise, same shape)
struct MulNode : autograd::Node<double> {
  TensorD x, y;
  std::vector<TensorD> backward(const std::vector<TensorD>& g) override {
    TensorD dx, dy;
    if (needs_input_grad(0)) {
      dx = TensorD::empty(x.shape());
      for (int64_t i = 0; i < x.numel(); ++i) dx.data()[i] = y.data()[i] * g[0].data()[i];
    }
    if (needs_input_grad(1)) {
      dy = TensorD::empty(y.shape());
      for (int64_t i = 0; i < y.numel(); ++i) dy.data()[i] = x.data()[i] * g[0].data()[i];
    }
    return {dx, dy};
  }
  const char* name() const override { return "MulNode"; }
};

inline TensorD mul(const TensorD& x, const TensorD& y) {
  TensorD z = TensorD::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) z.data()[i] = x.data()[i] * y.data()[i];
  if (autograd::needs_grad(x, y)) {
    auto node = std::make_shared<MulNode>();
    node->x = x.detach();
    node->y = y.detach();
    autograd::record<double>(node, {&x, &y}, {&z});
  }
  return z;
}

// |x| elementwise: a kink at 0.
struct AbsNode : autograd::Node<double> {
  TensorD x;
  std::vector<TensorD> backward(const std::vector<TensorD>& g) override {
    TensorD dx = TensorD::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i)
      dx.data()[i] = (x.data()[i] > 0 ? 1.0 : x.data()[i] < 0 ? -1.0 : 0.0) * g[0].data()[i];
    return {dx};
  }
  const char* name() const override { return "AbsNode"; }
};

inline TensorD abs(const TensorD& x) {
  TensorD y = TensorD::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = std::fabs(x.data()[i]);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<AbsNode>();
    node->x = x.detach();
    autograd::record<double>(node, {&x}, {&y});
  }
  return y;
}

}  // namespace testops
