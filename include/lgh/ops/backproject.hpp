// Back-projection of the 2.5D pose to camera space, Eq. (1)-(3):
//   z = s0 d + z_root,   x = z (u - cx) / fx,   y = z (v - cy) / fy
// for uvd [B,J,3] = (u, v, d), intrinsics [B,4] = (fx, fy, cx, cy) of the
// crop (in the pixel units of u, v), z_root [B] and s0 [B] -> xyz [B,J,3].
//
// Only uvd is differentiable. The intrinsics, z_root and s0 are data (the
// ground truth on RHD/STB, or a closed-form estimate): no gradient flows to
// them, and passing one that requires grad while grad mode is on throws
// rather than silently cutting the graph (pass it detach()ed).
//
// Backward (overwrites its output), per joint:
//   du = dx z / fx,   dv = dy z / fy,   dd = s0 (dx (u - cx)/fx + dy (v - cy)/fy + dz).
#pragma once

#include "lgh/ops/common.hpp"
#include "lgh/ops/math/backproject.hpp"

namespace lgh {
namespace ops {

// ---- CPU kernels ------------------------------------------------------------------
// All contiguous; uvd, xyz [B,J,3], k [B,4], z_root and s0 [B].
namespace cpu {

template <typename T>
void backproject_forward(const Tensor<T>& uvd, const Tensor<T>& k, const Tensor<T>& z_root, const Tensor<T>& s0,
                         const Tensor<T>& xyz) {
  const int64_t B = uvd.size(0), J = uvd.size(1);
  const T *pu = uvd.data(), *pk = k.data(), *pz = z_root.data(), *ps = s0.data();
  T* po = xyz.data();
  parallel_for(0, B * J, detail::kElementwiseGrain / 4, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / J;
      math::backproject_point(pu + r * 3, pk + b * 4, pz[b], ps[b], po + r * 3);
    }
  });
}

template <typename T>
void backproject_backward(const Tensor<T>& uvd, const Tensor<T>& k, const Tensor<T>& z_root, const Tensor<T>& s0,
                          const Tensor<T>& dxyz, const Tensor<T>& duvd) {
  const int64_t B = uvd.size(0), J = uvd.size(1);
  const T *pu = uvd.data(), *pk = k.data(), *pz = z_root.data(), *ps = s0.data(), *pg = dxyz.data();
  T* pd = duvd.data();
  parallel_for(0, B * J, detail::kElementwiseGrain / 4, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / J;
      math::backproject_point_backward(pu + r * 3, pk + b * 4, pz[b], ps[b], pg + r * 3, pd + r * 3);
    }
  });
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct BackprojectForward {
  static constexpr const char* name = "backproject_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& uvd, const Tensor<T>& k, const Tensor<T>& z_root, const Tensor<T>& s0,
                      const Tensor<T>& xyz);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::backproject_forward<T>;
};

struct BackprojectBackward {
  static constexpr const char* name = "backproject_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& uvd, const Tensor<T>& k, const Tensor<T>& z_root, const Tensor<T>& s0,
                      const Tensor<T>& dxyz, const Tensor<T>& duvd);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::backproject_backward<T>;
};

}  // namespace entries

template <typename T>
struct BackprojectBackward : autograd::Node<T> {
  Tensor<T> uvd, k, z_root, s0;  // contiguous, detached

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> duvd = Tensor<T>::empty(uvd.shape(), uvd.device());
    if (duvd.numel() > 0)
      dispatch::call<entries::BackprojectBackward, T>(uvd.device(), uvd, k, z_root, s0, g[0].contiguous(), duvd);
    return {duvd};
  }
  const char* name() const override { return "BackprojectBackward"; }
  void release_saved() override { uvd = k = z_root = s0 = Tensor<T>(); }
};

// ---- public op -------------------------------------------------------------------

template <typename T>
Tensor<T> backproject(const Tensor<T>& uvd, const Tensor<T>& intrinsics, const Tensor<T>& z_root,
                      const Tensor<T>& s0) {
  const char* op = "backproject";
  detail::check_ndim(op, "uvd", uvd, 3);
  const int64_t B = uvd.size(0), J = uvd.size(1);
  LGH_CHECK(uvd.size(2) == 3, op << ": 'uvd' has shape " << uvd.shape().str() << ", expected [B, J, 3]");
  detail::check_shape(op, "intrinsics", intrinsics, Shape{B, 4});
  detail::check_shape(op, "z_root", z_root, Shape{B});
  detail::check_shape(op, "s0", s0, Shape{B});
  const Device device = detail::common_device<T>(
      op, {{"uvd", &uvd}, {"intrinsics", &intrinsics}, {"z_root", &z_root}, {"s0", &s0}});
  if (autograd::grad_enabled()) {
    const char* names[] = {"intrinsics", "z_root", "s0"};
    const Tensor<T>* data[] = {&intrinsics, &z_root, &s0};
    for (int i = 0; i < 3; ++i)
      LGH_CHECK(!data[i]->requires_grad(), op << ": '" << names[i]
                                              << "' requires grad, but back-projection treats it as data "
                                                 "(no gradient); pass it detach()ed");
  }
  const Tensor<T> uc = uvd.contiguous(), kc = intrinsics.contiguous(), zc = z_root.contiguous(),
                  sc = s0.contiguous();
  Tensor<T> xyz = Tensor<T>::empty({B, J, 3}, device);
  if (xyz.numel() > 0) dispatch::call<entries::BackprojectForward, T>(device, uc, kc, zc, sc, xyz);
  if (autograd::needs_grad(uvd)) {
    auto node = std::make_shared<BackprojectBackward<T>>();
    node->uvd = uc.detach();
    node->k = kc.detach();
    node->z_root = zc.detach();
    node->s0 = sc.detach();
    autograd::record<T>(node, {&uvd}, {&xyz});
  }
  return xyz;
}

}  // namespace ops
}  // namespace lgh
