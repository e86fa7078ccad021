// Soft-argmax with depth: the 2.5D pose of one group (DESIGN §2). For each
// (b, j), with p = softmax over the H*W pixels of beta_j * h[b,j],
//   u = sum_i p_i x_i,   v = sum_i p_i y_i,   d = sum_i p_i dm[b,j,i]
// (x = column, y = row, 0-based, in heatmap pixels), out[b,j] = (u, v, d).
// h and dm are [B,J,H,W], beta [J] (one learnable sharpness per joint).
//
// Forward: one pass per (b, j) over h and dm with an online softmax
// (math::SoftArgmaxState); it also returns the softmax statistics (max, sum)
// [B,J,2] that the backward uses to recompute p_i, so no H*W-sized
// probability map is kept between forward and backward.
//
// Backward, fused per (b, j) (overwrites its outputs; derivation in
// docs/fused_ops.md): with g_i = du x_i + dv y_i + dd dm_i and
// ds_i = p_i (g_i - (du u + dv v + dd d)),
//   dh_i = beta_j ds_i,   ddm_i = dd p_i,   dbeta_j = sum_b sum_i h_i ds_i.
#pragma once

#include "lgh/ops/common.hpp"
#include "lgh/ops/math/soft_argmax.hpp"

namespace lgh {
namespace ops {

namespace detail {
// Rows of (b, j) per task: at least ~16k pixels, so small maps do not pay
// a task each.
inline int64_t soft_argmax_grain(int64_t hw) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(hw, 1)); }
}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
// All tensors contiguous. out [B,J,3]; stats [B,J,2] = (max, sum), or
// undefined when the backward will not run.
namespace cpu {

template <typename T>
void soft_argmax_depth_forward(const Tensor<T>& h, const Tensor<T>& dm, const Tensor<T>& beta, const Tensor<T>& out,
                               const Tensor<T>& stats) {
  const int64_t J = h.size(1), H = h.size(2), W = h.size(3), HW = H * W;
  const int64_t rows = h.size(0) * J;
  const T* ph = h.data();
  const T* pd = dm.data();
  const T* pb = beta.data();
  T* po = out.data();
  T* ps = stats.defined() ? stats.data() : nullptr;
  parallel_for(0, rows, detail::soft_argmax_grain(HW), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T bj = pb[r % J];
      const T* hr = ph + r * HW;
      const T* dr = pd + r * HW;
      math::SoftArgmaxState<T> st{};
      for (int64_t y = 0; y < H; ++y)
        st.merge(math::soft_argmax_row_state(hr + y * W, dr + y * W, W, bj, static_cast<T>(y)));
      st.result(po + r * 3);
      if (ps) {
        ps[r * 2] = st.m;
        ps[r * 2 + 1] = st.s;
      }
    }
  });
}

// Gradients from the saved inputs, output and statistics; any of dh, ddm,
// dbeta may be undefined (not wanted).
template <typename T>
void soft_argmax_depth_backward(const Tensor<T>& h, const Tensor<T>& dm, const Tensor<T>& beta, const Tensor<T>& out,
                                const Tensor<T>& stats, const Tensor<T>& dout, const Tensor<T>& dh,
                                const Tensor<T>& ddm, const Tensor<T>& dbeta) {
  const int64_t B = h.size(0), J = h.size(1), H = h.size(2), W = h.size(3), HW = H * W;
  const T* ph = h.data();
  const T* pd = dm.data();
  const T* pb = beta.data();
  const T* po = out.data();
  const T* pst = stats.data();
  const T* pg = dout.data();
  T* pdh = dh.defined() ? dh.data() : nullptr;
  T* pddm = ddm.defined() ? ddm.data() : nullptr;
  // Per-(b, j) shares of dbeta, summed over b afterwards in a fixed order.
  Tensor<T> partial;
  if (dbeta.defined()) partial = Tensor<T>::empty({B, J});
  T* pp = dbeta.defined() ? partial.data() : nullptr;
  parallel_for(0, B * J, detail::soft_argmax_grain(HW), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const math::SoftArgmaxBackwardCoeffs<T> c =
          math::soft_argmax_backward_coeffs(pb[r % J], pst[r * 2], pst[r * 2 + 1], po + r * 3, pg + r * 3);
      const T* hr = ph + r * HW;
      const T* dr = pd + r * HW;
      T* dhr = pdh ? pdh + r * HW : nullptr;
      T* ddr = pddm ? pddm + r * HW : nullptr;
      T acc = T(0);
      for (int64_t y = 0; y < H; ++y) {
        const T fy = static_cast<T>(y);
        for (int64_t x = 0; x < W; ++x) {
          const int64_t i = y * W + x;
          T gh, gd;
          acc += math::soft_argmax_backward_point(c, hr[i], dr[i], static_cast<T>(x), fy, &gh, &gd);
          if (dhr) dhr[i] = gh;
          if (ddr) ddr[i] = gd;
        }
      }
      if (pp) pp[r] = acc;
    }
  });
  if (dbeta.defined()) {
    T* pdb = dbeta.data();
    for (int64_t j = 0; j < J; ++j) {
      T acc = T(0);
      for (int64_t b = 0; b < B; ++b) acc += pp[b * J + j];
      pdb[j] = acc;
    }
  }
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct SoftArgmaxDepthForward {
  static constexpr const char* name = "soft_argmax_depth_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& h, const Tensor<T>& dm, const Tensor<T>& beta, const Tensor<T>& out,
                      const Tensor<T>& stats);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::soft_argmax_depth_forward<T>;
};

struct SoftArgmaxDepthBackward {
  static constexpr const char* name = "soft_argmax_depth_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& h, const Tensor<T>& dm, const Tensor<T>& beta, const Tensor<T>& out,
                      const Tensor<T>& stats, const Tensor<T>& dout, const Tensor<T>& dh, const Tensor<T>& ddm,
                      const Tensor<T>& dbeta);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::soft_argmax_depth_backward<T>;
};

}  // namespace entries

template <typename T>
struct SoftArgmaxDepthBackward : autograd::Node<T> {
  Tensor<T> h, dm, beta, out, stats;  // contiguous, detached

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> dh, ddm, dbeta;
    if (this->needs_input_grad(0)) dh = Tensor<T>::empty(h.shape(), h.device());
    if (this->needs_input_grad(1)) ddm = Tensor<T>::empty(dm.shape(), dm.device());
    if (this->needs_input_grad(2)) dbeta = Tensor<T>::empty(beta.shape(), beta.device());
    dispatch::call<entries::SoftArgmaxDepthBackward, T>(h.device(), h, dm, beta, out, stats, g[0].contiguous(), dh,
                                                        ddm, dbeta);
    return {dh, ddm, dbeta};
  }
  const char* name() const override { return "SoftArgmaxDepthBackward"; }
  void release_saved() override { h = dm = beta = out = stats = Tensor<T>(); }
};

// ---- public op -------------------------------------------------------------------

// heatmaps [B,J,H,W], depthmaps [B,J,H,W], beta [J] -> [B,J,3] = (u, v, d).
template <typename T>
Tensor<T> soft_argmax_depth(const Tensor<T>& heatmaps, const Tensor<T>& depthmaps, const Tensor<T>& beta) {
  const char* op = "soft_argmax_depth";
  detail::check_ndim(op, "heatmaps", heatmaps, 4);
  detail::check_shape(op, "depthmaps", depthmaps, heatmaps.shape());
  const int64_t B = heatmaps.size(0), J = heatmaps.size(1);
  detail::check_shape(op, "beta", beta, Shape{J});
  const Device device =
      detail::common_device<T>(op, {{"heatmaps", &heatmaps}, {"depthmaps", &depthmaps}, {"beta", &beta}});
  LGH_CHECK(heatmaps.size(2) >= 1 && heatmaps.size(3) >= 1,
            op << ": 'heatmaps' has shape " << heatmaps.shape().str() << ", expected H, W >= 1");
  const Tensor<T> hc = heatmaps.contiguous(), dc = depthmaps.contiguous(), bc = beta.contiguous();
  Tensor<T> out = Tensor<T>::empty({B, J, 3}, device);
  const bool record = autograd::needs_grad(heatmaps, depthmaps, beta);
  Tensor<T> stats;
  if (record) stats = Tensor<T>::empty({B, J, 2}, device);
  if (out.numel() > 0) dispatch::call<entries::SoftArgmaxDepthForward, T>(device, hc, dc, bc, out, stats);
  if (record) {
    auto node = std::make_shared<SoftArgmaxDepthBackward<T>>();
    node->h = hc.detach();
    node->dm = dc.detach();
    node->beta = bc.detach();
    node->out = out.detach();
    node->stats = stats.detach();
    autograd::record<T>(node, {&heatmaps, &depthmaps, &beta}, {&out});
  }
  return out;
}

}  // namespace ops
}  // namespace lgh
