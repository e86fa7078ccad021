// The joint-group selector, Eq. (8): a relaxed one-hot row per joint over the
// K groups,
//   S~_jk = softmax_k((theta_jk + g_jk) / tau),   g_jk = -log(-log U_jk).
//
// Modes (DESIGN §2):
//   Sample: training. U_jk = Philox(seed, stream).uniform(j*K + k); the caller
//           advances the stream every step, so a step's noise is fixed by
//           (seed, stream) on any device.
//   Soft:   softmax(theta / tau), deterministic (no noise).
//   Hard:   one-hot argmax_k theta_jk (lowest k on ties); tau is not used.
//           Its output is a constant: it has no gradient and records nothing.
// straight_through: the forward is the one-hot of the argmax of the relaxed
// logits (theta + g)/tau (Sample) or theta/tau (Soft, and Hard, whose argmax
// is the same), the backward is that of the relaxed S~ (the straight-through
// estimator). So Hard + straight_through behaves as Soft + straight_through.
//
// Backward (overwrites its output): dtheta_jk = (1/tau) S~_jk (dy_jk - sum_k dy_jk S~_jk),
// with S~ the relaxed sample (saved from the forward).
#pragma once

#include <cmath>

#include "lgh/ops/common.hpp"
#include "lgh/ops/math/gumbel_softmax.hpp"

namespace lgh {
namespace ops {

enum class SelectorMode { Hard, Soft, Sample };

inline const char* selector_mode_name(SelectorMode m) {
  switch (m) {
    case SelectorMode::Hard: return "hard";
    case SelectorMode::Soft: return "soft";
    case SelectorMode::Sample: return "sample";
  }
  return "?";
}

// ---- CPU kernels ------------------------------------------------------------------
// theta, y_soft, y_hard, dy, dtheta: contiguous [J, K].
namespace cpu {

// Relaxed rows of Eq. (8) into y_soft; when y_hard is defined, also the
// one-hot of each row's argmax. The noise's uniforms, if any, are on the
// tensors' device.
template <typename T>
void gumbel_softmax_forward(const Tensor<T>& theta, T inv_tau, const math::GumbelNoiseSource<T>& noise,
                            const Tensor<T>& y_soft, const Tensor<T>& y_hard) {
  const int64_t J = theta.size(0);
  const int K = static_cast<int>(theta.size(1));
  const T* th = theta.data();
  T* ys = y_soft.data();
  T* yh = y_hard.defined() ? y_hard.data() : nullptr;
  // J x K is tiny (21 x 3 in the model): rows are spread over threads only
  // when there are very many.
  parallel_for(0, J, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const uint64_t base = static_cast<uint64_t>(j) * static_cast<uint64_t>(K);
      const int best = math::gumbel_softmax_row(th + j * K, K, inv_tau, noise, base, ys + j * K);
      if (yh) math::one_hot_row(best, K, yh + j * K);
    }
  });
}

// dtheta from the relaxed rows y_soft and the output gradient dy. Overwrites dtheta.
template <typename T>
void gumbel_softmax_backward(const Tensor<T>& y_soft, const Tensor<T>& dy, T inv_tau, const Tensor<T>& dtheta) {
  const int64_t J = y_soft.size(0);
  const int K = static_cast<int>(y_soft.size(1));
  const T* y = y_soft.data();
  const T* g = dy.data();
  T* d = dtheta.data();
  parallel_for(0, J, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) math::gumbel_softmax_row_backward(y + j * K, g + j * K, K, inv_tau, d + j * K);
  });
}

// Eq. (7)'s binary selector: y = the one-hot of each row's argmax of theta
// (lowest k on ties).
template <typename T>
void selector_one_hot(const Tensor<T>& theta, const Tensor<T>& y) {
  const int64_t J = theta.size(0);
  const int K = static_cast<int>(theta.size(1));
  for (int64_t j = 0; j < J; ++j) math::one_hot_row(math::argmax(theta.data() + j * K, K), K, y.data() + j * K);
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct GumbelSoftmaxForward {
  static constexpr const char* name = "gumbel_softmax_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& theta, T inv_tau, const math::GumbelNoiseSource<T>& noise,
                      const Tensor<T>& y_soft, const Tensor<T>& y_hard);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::gumbel_softmax_forward<T>;
};

struct GumbelSoftmaxBackward {
  static constexpr const char* name = "gumbel_softmax_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& y_soft, const Tensor<T>& dy, T inv_tau, const Tensor<T>& dtheta);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::gumbel_softmax_backward<T>;
};

struct SelectorOneHot {
  static constexpr const char* name = "selector_one_hot";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& theta, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::selector_one_hot<T>;
};

}  // namespace entries

template <typename T>
struct GumbelSoftmaxBackward : autograd::Node<T> {
  Tensor<T> y_soft;  // the relaxed sample S~ (also for straight-through)
  T inv_tau = T(1);

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> dtheta = Tensor<T>::empty(y_soft.shape(), y_soft.device());
    dispatch::call<entries::GumbelSoftmaxBackward, T>(y_soft.device(), y_soft, g[0].contiguous(), inv_tau, dtheta);
    return {dtheta};
  }
  const char* name() const override { return "GumbelSoftmaxBackward"; }
  void release_saved() override { y_soft = Tensor<T>(); }
};

namespace detail {

template <typename T>
void check_selector_logits(const char* op, const Tensor<T>& theta) {
  check_ndim(op, "theta", theta, 2);
  LGH_CHECK(theta.size(0) >= 1 && theta.size(1) >= 1,
            op << ": 'theta' must be [J, K] with J, K >= 1, got shape " << theta.shape().str());
}

inline void check_temperature(const char* op, double tau) {
  LGH_CHECK(std::isfinite(tau) && tau > 0.0,
            op << ": temperature 'tau' must be finite and > 0, got " << tau);
}

// Shared by the public entry points once the noise source is known.
template <typename T>
Tensor<T> relaxed_selector(const Tensor<T>& theta, double tau, const math::GumbelNoiseSource<T>& noise,
                           bool straight_through) {
  const Tensor<T> th = theta.contiguous();
  const T inv_tau = static_cast<T>(1.0 / tau);
  Tensor<T> y_soft = Tensor<T>::empty(theta.shape(), theta.device());
  Tensor<T> y_hard;
  if (straight_through) y_hard = Tensor<T>::empty(theta.shape(), theta.device());
  dispatch::call<entries::GumbelSoftmaxForward, T>(theta.device(), th, inv_tau, noise, y_soft, y_hard);
  Tensor<T> out = straight_through ? y_hard : y_soft;
  if (autograd::needs_grad(theta)) {
    auto node = std::make_shared<GumbelSoftmaxBackward<T>>();
    node->y_soft = y_soft.detach();
    node->inv_tau = inv_tau;
    autograd::record<T>(node, {&theta}, {&out});
  }
  return out;
}

}  // namespace detail

// ---- public ops ----------------------------------------------------------------

// The selector S~ [J,K] of Eq. (8) from the logits theta [J,K]. `noise` is
// read in Sample mode only.
template <typename T>
Tensor<T> gumbel_softmax(const Tensor<T>& theta, double tau, SelectorMode mode, const Philox& noise = Philox(),
                         bool straight_through = false) {
  const char* op = "gumbel_softmax";
  detail::check_selector_logits(op, theta);
  if (mode == SelectorMode::Hard && !straight_through) {
    // Eq. (7)'s binary selector itself: a constant, no gradient.
    const Tensor<T> th = theta.contiguous();
    Tensor<T> out = Tensor<T>::empty(theta.shape(), theta.device());
    dispatch::call<entries::SelectorOneHot, T>(theta.device(), th, out);
    return out;
  }
  detail::check_temperature(op, tau);
  math::GumbelNoiseSource<T> src;
  if (mode == SelectorMode::Sample) {
    src.kind = math::GumbelNoiseSource<T>::Stream;
    src.philox = noise;
  }
  return detail::relaxed_selector(theta, tau, src, straight_through);
}

// Eq. (8) with explicit uniforms U [J,K] in (0, 1) instead of a Philox
// stream (g = -log(-log U)); differentiable in theta only.
template <typename T>
Tensor<T> gumbel_softmax_from_uniforms(const Tensor<T>& theta, const Tensor<T>& uniforms, double tau,
                                       bool straight_through = false) {
  const char* op = "gumbel_softmax_from_uniforms";
  detail::check_selector_logits(op, theta);
  detail::check_shape(op, "uniforms", uniforms, theta.shape());
  detail::common_device<T>(op, {{"theta", &theta}, {"uniforms", &uniforms}});
  detail::check_temperature(op, tau);
  const Tensor<T> u = uniforms.contiguous();
  const Tensor<T> host = u.to(Device::cpu());  // u itself on the CPU; a copy of J x K values from a device
  const T* pu = host.data();
  for (int64_t i = 0; i < u.numel(); ++i)
    LGH_CHECK(pu[i] > T(0) && pu[i] < T(1),
              op << ": 'uniforms' must lie in the open interval (0, 1); element " << i << " is " << pu[i]);
  math::GumbelNoiseSource<T> src;
  src.kind = math::GumbelNoiseSource<T>::Uniforms;
  src.uniforms = u.data();
  return detail::relaxed_selector(theta, tau, src, straight_through);
}

// The Gumbel noise g [J,K] that Sample mode adds to theta for this stream
// (element (j, k) from Philox index j*K + k); for tests and CPU/GPU parity.
template <typename T>
Tensor<T> gumbel_noise(int64_t J, int64_t K, const Philox& noise) {
  LGH_CHECK(J >= 1 && K >= 1, "gumbel_noise: J and K must be >= 1, got J = " << J << ", K = " << K);
  Tensor<T> g = Tensor<T>::empty({J, K});
  T* p = g.data();
  for (int64_t i = 0; i < J * K; ++i) p[i] = math::gumbel_noise_at<T>(noise, static_cast<uint64_t>(i));
  return g;
}

// The uniforms U [J,K] behind gumbel_noise (same indexing).
template <typename T>
Tensor<T> gumbel_uniforms(int64_t J, int64_t K, const Philox& noise) {
  LGH_CHECK(J >= 1 && K >= 1, "gumbel_uniforms: J and K must be >= 1, got J = " << J << ", K = " << K);
  Tensor<T> u = Tensor<T>::empty({J, K});
  T* p = u.data();
  for (int64_t i = 0; i < J * K; ++i) p[i] = static_cast<T>(noise.uniform(static_cast<uint64_t>(i)));
  return u;
}

}  // namespace ops
}  // namespace lgh
