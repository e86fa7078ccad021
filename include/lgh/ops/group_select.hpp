// Masked group selection (Eq. 5 with the relaxed selector of Eq. 8): each
// joint takes its prediction from the K group branches as weighted by its
// selector row,
//   y[b,j,c] = a_c * sum_k S[j,k] * x[b,k,j,c]
// with S [J,K], x [B,K,J,C] (C = 3 for (u, v, d), or any C) and an optional
// per-channel scale a [C] (default all 1). The model passes a = (4, 4, 1):
// u and v come from the 1/4-resolution maps and are wanted in input pixels
// (DESIGN §2, output row), d is not scaled; the scale is applied in the same
// pass instead of by a separate op.
//
// Gradients (backward overwrites its outputs):
//   dx[b,k,j,c] = a_c * S[j,k] * dy[b,j,c]
//   dS[j,k]     = sum_b sum_c a_c * dy[b,j,c] * x[b,k,j,c]
// The scale is a constant (no gradient).
#pragma once

#include "lgh/ops/common.hpp"
#include "lgh/ops/math/group_select.hpp"

namespace lgh {
namespace ops {

// ---- CPU kernels ------------------------------------------------------------------
// All tensors contiguous; scale is empty (all 1) or C host values.
namespace cpu {

template <typename T>
void group_select_forward(const Tensor<T>& s, const Tensor<T>& x, const std::vector<T>& channel_scale,
                          const Tensor<T>& y) {
  const T* scale = channel_scale.empty() ? nullptr : channel_scale.data();
  const int64_t B = x.size(0), K = x.size(1), J = x.size(2), C = x.size(3);
  const T* ps = s.data();
  const T* px = x.data();
  T* py = y.data();
  const int64_t group_stride = J * C;
  parallel_for(0, B * J, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / J, j = r % J;
      math::group_select_point(ps + j * K, px + b * K * J * C + j * C, group_stride, static_cast<int>(K),
                               static_cast<int>(C), scale, py + r * C);
    }
  });
}

// Either gradient may be skipped by passing an undefined tensor.
template <typename T>
void group_select_backward(const Tensor<T>& s, const Tensor<T>& x, const std::vector<T>& channel_scale,
                           const Tensor<T>& dy, const Tensor<T>& ds, const Tensor<T>& dx) {
  const T* scale = channel_scale.empty() ? nullptr : channel_scale.data();
  const int64_t B = x.size(0), K = x.size(1), J = x.size(2), C = x.size(3);
  const T* ps = s.data();
  const T* px = x.data();
  const T* pg = dy.data();
  if (dx.defined()) {
    T* pdx = dx.data();
    parallel_for(0, B * K * J, 4096, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {  // r = (b*K + k)*J + j
        const int64_t j = r % J, k = (r / J) % K, b = r / (J * K);
        math::group_select_dx_point(ps[j * K + k], pg + (b * J + j) * C, static_cast<int>(C), scale, pdx + r * C);
      }
    });
  }
  if (ds.defined()) {
    // One task per selector entry, summing over the batch in order, so the
    // result does not depend on the thread count.
    T* pds = ds.data();
    parallel_for(0, J * K, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t e = lo; e < hi; ++e) {
        const int64_t j = e / K, k = e % K;
        T acc = T(0);
        for (int64_t b = 0; b < B; ++b)
          acc += math::group_select_ds_term(pg + (b * J + j) * C, px + ((b * K + k) * J + j) * C, static_cast<int>(C),
                                            scale);
        pds[e] = acc;
      }
    });
  }
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct GroupSelectForward {
  static constexpr const char* name = "group_select_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& s, const Tensor<T>& x, const std::vector<T>& channel_scale, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::group_select_forward<T>;
};

struct GroupSelectBackward {
  static constexpr const char* name = "group_select_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& s, const Tensor<T>& x, const std::vector<T>& channel_scale,
                      const Tensor<T>& dy, const Tensor<T>& ds, const Tensor<T>& dx);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::group_select_backward<T>;
};

}  // namespace entries

template <typename T>
struct GroupSelectBackward : autograd::Node<T> {
  Tensor<T> s, x;        // the saved inputs (handles, not copies)
  std::vector<T> scale;  // empty: all 1
  Shape s_shape, x_shape;

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    const Tensor<T> dy = g[0].contiguous();
    Tensor<T> ds, dx;
    if (this->needs_input_grad(0)) ds = Tensor<T>::empty(s_shape, dy.device());
    if (this->needs_input_grad(1)) dx = Tensor<T>::empty(x_shape, dy.device());
    dispatch::call<entries::GroupSelectBackward, T>(dy.device(), s, x, scale, dy, ds, dx);
    return {ds, dx};
  }
  const char* name() const override { return "GroupSelectBackward"; }
  void release_saved() override { s = x = Tensor<T>(); }
};

// ---- public op -------------------------------------------------------------------

// selector [J,K], x [B,K,J,C] -> [B,J,C]; channel_scale empty or C values.
template <typename T>
Tensor<T> group_select(const Tensor<T>& selector, const Tensor<T>& x, const std::vector<double>& channel_scale = {}) {
  const char* op = "group_select";
  detail::check_ndim(op, "selector", selector, 2);
  detail::check_ndim(op, "x", x, 4);
  const Device device = detail::common_device<T>(op, {{"selector", &selector}, {"x", &x}});
  const int64_t B = x.size(0), K = x.size(1), J = x.size(2), C = x.size(3);
  LGH_CHECK(selector.size(0) == J && selector.size(1) == K,
            op << ": 'selector' has shape " << selector.shape().str() << ", expected [J, K] = [" << J << ", " << K
               << "] to match 'x' of shape " << x.shape().str() << " ([B, K, J, C])");
  LGH_CHECK(channel_scale.empty() || static_cast<int64_t>(channel_scale.size()) == C,
            op << ": 'channel_scale' has " << channel_scale.size() << " values, expected 0 or C = " << C
               << " (x has shape " << x.shape().str() << ")");
  std::vector<T> scale(channel_scale.begin(), channel_scale.end());
  const Tensor<T> sc = selector.contiguous(), xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty({B, J, C}, device);
  dispatch::call<entries::GroupSelectForward, T>(device, sc, xc, scale, y);
  if (autograd::needs_grad(selector, x)) {
    auto node = std::make_shared<GroupSelectBackward<T>>();
    node->s_shape = selector.shape();
    node->x_shape = x.shape();
    node->scale = std::move(scale);
    // dS reads x and dx reads S; both are small ([J,K] and [B,K,J,C]).
    node->s = sc.detach();
    node->x = xc.detach();
    autograd::record<T>(node, {&selector, &x}, {&y});
  }
  return y;
}

}  // namespace ops
}  // namespace lgh
