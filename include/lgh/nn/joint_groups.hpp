// The paper's grouped feature learning module (DESIGN.md §2):
//
//   JointGroupSelector  θ ∈ R^{J×K} and the relaxed selector S̃ of Eq. (8)
//   GroupBranch         one group's feature branch F_k from the shared features
//   GroupFusion         Eq. (9): K 1x1 convs over concat[F_1..F_K] + BN + ReLU
//   SoftArgmaxDepth     soft-argmax of the heatmaps, expectation of the depth map
//   GroupHead           one group's heatmap and depth heads + SoftArgmaxDepth
#pragma once

#include <mutex>

#include "lgh/nn/blocks.hpp"
#include "lgh/nn/checkpoint_names.hpp"
#include "lgh/ops/group_fusion.hpp"
#include "lgh/ops/gumbel_softmax.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"

namespace lgh {
namespace nn {

using ops::SelectorMode;

// How the selector is evaluated in one forward pass.
struct SelectorOptions {
  SelectorMode mode = SelectorMode::Hard;  // hard for evaluation and inference
  double temperature = 1.0;                // τ
  Philox noise;                            // Gumbel noise stream (Sample mode)
  bool straight_through = false;           // hard forward, soft backward
};

// θ of Eq. (8), initialised to 0.5 everywhere as the authors' nets/Net.py
// (nn.init.constant_(self.meta_S.weight, 0.5)): equal logits, no prior on the
// grouping. Any constant gives the same S̃ (softmax is shift-invariant) and the
// same Adam steps (the gradient does not depend on the constant).
template <typename T>
class JointGroupSelector : public Module<T> {
 public:
  JointGroupSelector(int64_t joints, int64_t groups) {
    theta = this->register_parameter("weight", Tensor<T>::full(Shape{joints, groups}, T(0.5)));
    this->set_param_group(ParamGroup::Selector);
  }

  // S̃ [J,K]: one-hot argmax (hard), softmax(θ/τ) (soft), or
  // softmax((θ + g)/τ) with g = -log(-log U) (sample).
  Tensor<T> forward(const SelectorOptions& o) const {
    return ops::gumbel_softmax(theta, o.temperature, o.mode, o.noise, o.straight_through);
  }
  // Sample mode with explicit uniforms U [J,K] (tests and reproductions).
  Tensor<T> forward_with_uniforms(const Tensor<T>& uniforms, double temperature) const {
    return ops::gumbel_softmax_from_uniforms(theta, uniforms, temperature);
  }

  // The learned grouping: the group each joint is assigned to (argmax of θ).
  // A host copy of θ (J x K values) when it lives on a device: read for
  // reports and checkpoints, not by the training step.
  std::vector<int> assignment() const {
    const int64_t J = theta.size(0), K = theta.size(1);
    const std::vector<T> t = theta.detach().to_vector();
    std::vector<int> out(static_cast<size_t>(J));
    for (int64_t j = 0; j < J; ++j) {
      int best = 0;
      for (int64_t k = 1; k < K; ++k)
        if (t[static_cast<size_t>(j * K + k)] > t[static_cast<size_t>(j * K + best)]) best = static_cast<int>(k);
      out[static_cast<size_t>(j)] = best;
    }
    return out;
  }

  Tensor<T> theta;
};

// Group k's branch on the neck output x:
//   b0 = Basic(P0->P0, 1x1)(x);  b1 = Res2D(P0->P1)(b0);  b2 = Down(b1);  b3 = Down(b2);
//   b21 = [Basic(2P1->P1, 1x1), Up](concat[Up(b3), b2]);
//   F_k = [Basic(P0+2P1->2P1, 1x1), Res2D(2P1->P1)](concat[b21, b1, b0]).
// b1 reads b0, not x: the authors' nets/Net.py, Learnable_Groups.forward
// (bf_0 = b_conv0[j](kpt_F1); bf_1 = b_conv1[j](bf_0)). The key names and the
// shapes are the same either way, so only the values tell the two apart.
template <typename T>
class GroupBranch : public Module<T> {
 public:
  GroupBranch(int k, int64_t p0, int64_t p1, PhiloxEngine& rng) {
    using names::group_key;
    conv0 = this->register_module(group_key(names::kBranchConv0, k), std::make_shared<Basic<T>>(p0, p0, 1, rng));
    conv1 = this->register_module(group_key(names::kBranchConv1, k), std::make_shared<Res2D<T>>(p0, p1, rng));
    down1 = this->register_module(group_key(names::kBranchDown1, k), std::make_shared<Down<T>>(p1, p1, rng));
    down2 = this->register_module(group_key(names::kBranchDown2, k), std::make_shared<Down<T>>(p1, p1, rng));
    up2 = this->register_module(group_key(names::kBranchUp2, k) + ".0", std::make_shared<Up<T>>(p1, p1, rng));
    up1_reduce = this->register_module(group_key(names::kBranchUp1, k) + ".0", std::make_shared<Basic<T>>(2 * p1, p1, 1, rng));
    up1 = this->register_module(group_key(names::kBranchUp1, k) + ".1", std::make_shared<Up<T>>(p1, p1, rng));
    up0_reduce = this->register_module(group_key(names::kBranchUp0, k) + ".0",
                                       std::make_shared<Basic<T>>(p0 + 2 * p1, 2 * p1, 1, rng));
    up0 = this->register_module(group_key(names::kBranchUp0, k) + ".1", std::make_shared<Res2D<T>>(2 * p1, p1, rng));
  }

  // Every tensor of the branch, named as in the comment above.
  struct Intermediates {
    Tensor<T> b0, b1, b2, b3, b21, features;
  };

  Intermediates forward_intermediates(const Tensor<T>& x) {
    Intermediates r;
    r.b0 = conv0->forward(x);
    r.b1 = conv1->forward(r.b0);
    r.b2 = down1->forward(r.b1);
    r.b3 = down2->forward(r.b2);
    r.b21 = up1->forward(up1_reduce->forward(ops::concat<T>({up2->forward(r.b3), r.b2}, 1)));
    r.features = up0->forward(up0_reduce->forward(ops::concat<T>({r.b21, r.b1, r.b0}, 1)));
    return r;
  }

  // F_k [B,P1,H,W] from the neck output x [B,P0,H,W]. (Holding b3 until the
  // end costs one map at 1/4 of the branch's resolution.)
  Tensor<T> forward(const Tensor<T>& x) { return forward_intermediates(x).features; }

  std::shared_ptr<Basic<T>> conv0, up1_reduce, up0_reduce;
  std::shared_ptr<Res2D<T>> conv1, up0;
  std::shared_ptr<Down<T>> down1, down2;
  std::shared_ptr<Up<T>> up2, up1;
};

// Eq. (9): G_k = ReLU(BN_k(W_k · concat[F_1..F_K] + b_k)), with W_k
// initialised to 0.9·I on group k's block and 0.1/(K-1)·I on the others, so
// each group starts from its own features and a small share of the others'.
template <typename T>
class GroupFusion : public Module<T> {
 public:
  GroupFusion(int groups, int64_t channels, PhiloxEngine& rng) {
    for (int k = 0; k < groups; ++k) {
      const std::string key = names::group_key(names::kFusion, k);
      convs.push_back(this->register_module(key + ".0", std::make_shared<Conv2d<T>>(groups * channels, channels, 1, 1, 0, rng)));
      bns.push_back(this->register_module(key + ".1", std::make_shared<BatchNorm2d<T>>(channels)));
    }
    reset_to_paper_init();
    this->set_param_group(ParamGroup::Fusion);
  }

  void reset_to_paper_init() {
    const int K = static_cast<int>(convs.size());
    autograd::NoGradGuard no_grad;
    for (int k = 0; k < K; ++k) {
      Tensor<T>& w = convs[static_cast<size_t>(k)]->weight;
      const int64_t P = w.size(0);
      w.zero_();
      for (int m = 0; m < K; ++m) {
        const T alpha = m == k ? T(K == 1 ? 1.0 : 0.9) : T(0.1 / (K - 1));
        for (int64_t c = 0; c < P; ++c) w.at({c, m * P + c, 0, 0}) = alpha;
      }
      convs[static_cast<size_t>(k)]->bias.zero_();
    }
  }

  std::vector<Tensor<T>> forward(const std::vector<Tensor<T>>& features) {
    std::vector<Tensor<T>> weights, biases;
    for (auto& c : convs) {
      weights.push_back(c->weight);
      biases.push_back(c->bias);
    }
    if (!this->is_training() && !autograd::grad_enabled()) {
      // Inference (eval mode, no graph): BN folded into a per-channel affine and ReLU applied in the
      // same pass over the output (no concatenation is materialised).
      std::vector<Tensor<T>> scales, shifts;
      eval_affines(scales, shifts);
      return ops::group_fusion_eval(features, weights, biases, scales, shifts, true);
    }
    std::vector<Tensor<T>> g = ops::group_fusion(features, weights, biases);
    for (size_t k = 0; k < g.size(); ++k) g[k] = ops::relu(bns[k]->forward(g[k]));
    return g;
  }

  std::vector<std::shared_ptr<Conv2d<T>>> convs;
  std::vector<std::shared_ptr<BatchNorm2d<T>>> bns;

 protected:
  void on_mode_change() override { drop_eval_affines(); }
  void on_parameters_changed() override { drop_eval_affines(); }

 private:
  // The eval-mode (scale, shift) of every BN, as tensors on the parameters'
  // device: computed on first use and kept until the parameters, the mode or
  // the device change (Module::to calls parameters_changed), so repeated
  // inference uploads nothing.
  void eval_affines(std::vector<Tensor<T>>& scales, std::vector<Tensor<T>>& shifts) {
    std::lock_guard<std::mutex> lock(eval_mutex_);
    if (eval_scales_.empty()) {
      for (auto& bn : bns) {
        std::vector<T> s, t;
        bn->eval_affine(s, t);
        const Device device = bn->weight.device();
        eval_scales_.push_back(Tensor<T>::from_data(Shape{static_cast<int64_t>(s.size())}, s).to(device));
        eval_shifts_.push_back(Tensor<T>::from_data(Shape{static_cast<int64_t>(t.size())}, t).to(device));
      }
    }
    scales = eval_scales_;
    shifts = eval_shifts_;
  }
  void drop_eval_affines() {
    std::lock_guard<std::mutex> lock(eval_mutex_);
    eval_scales_.clear();
    eval_shifts_.clear();
  }
  std::mutex eval_mutex_;
  std::vector<Tensor<T>> eval_scales_, eval_shifts_;
};

// p = softmax over H·W of β_j·h_j; (u, v, d) = Σ p·(x, y, depth_j) with x the
// column and y the row index (0-based) at the heatmap's resolution. wx and
// wy are the reference's coordinate grids, kept (frozen) for the state dict.
template <typename T>
class SoftArgmaxDepth : public Module<T> {
 public:
  SoftArgmaxDepth(int64_t joints, int64_t size) {
    beta = this->register_parameter("beta.weight", Tensor<T>::ones(Shape{joints, 1, 1, 1}));
    Tensor<T> gx = Tensor<T>::empty(Shape{size, size}), gy = Tensor<T>::empty(Shape{size, size});
    for (int64_t r = 0; r < size; ++r)
      for (int64_t c = 0; c < size; ++c) {
        gx.at({r, c}) = T(c);
        gy.at({r, c}) = T(r);
      }
    wx = this->register_parameter("wx", gx, /*trainable=*/false);
    wy = this->register_parameter("wy", gy, /*trainable=*/false);
  }

  // heatmaps, depthmaps [B,J,H,W] -> [B,J,3] = (u, v, d) at heatmap resolution.
  Tensor<T> forward(const Tensor<T>& heatmaps, const Tensor<T>& depthmaps) const {
    return ops::soft_argmax_depth(heatmaps, depthmaps, ops::reshape(beta, {-1}));
  }

  // The grids must be the index grids the soft-argmax assumes.
  // Read on the host (a copy when the module lives on a device), when
  // weights are loaded.
  void check_grids(const std::string& key) const {
    const int64_t n = wx.size(0);
    const std::vector<T> x = wx.to_vector(), y = wy.to_vector();
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < n; ++c) {
        const T xv = x[static_cast<size_t>(r * n + c)], yv = y[static_cast<size_t>(r * n + c)];
        LGH_CHECK(xv == T(c) && yv == T(r),
                  key << ".wx/wy: expected the column/row index grids (wx[r][c] = c, wy[r][c] = r), found wx["
                      << r << "][" << c << "] = " << xv << ", wy = " << yv);
      }
  }

  Tensor<T> beta, wx, wy;
};

// Group k's heads on its (fused) features: heatmaps and depth maps
// (conv3x3 P1->P0, ReLU, conv3x3 P0->J each), then SoftArgmaxDepth.
template <typename T>
class GroupHead : public Module<T> {
 public:
  GroupHead(int k, int64_t p0, int64_t p1, int64_t joints, int64_t size, PhiloxEngine& rng) {
    using names::group_key;
    heat_a = this->register_module(group_key(names::kHeatmapHead, k) + ".0", std::make_shared<Conv2d<T>>(p1, p0, 3, 1, 1, rng));
    heat_b = this->register_module(group_key(names::kHeatmapHead, k) + ".2", std::make_shared<Conv2d<T>>(p0, joints, 3, 1, 1, rng));
    soft_argmax = this->register_module(group_key(names::kSoftArgmax, k), std::make_shared<SoftArgmaxDepth<T>>(joints, size));
    depth_a = this->register_module(group_key(names::kDepthHead, k) + ".0", std::make_shared<Conv2d<T>>(p1, p0, 3, 1, 1, rng));
    depth_b = this->register_module(group_key(names::kDepthHead, k) + ".2", std::make_shared<Conv2d<T>>(p0, joints, 3, 1, 1, rng));
  }

  // [B,P1,H,W] -> [B,J,3] (u, v, d) at heatmap resolution.
  Tensor<T> forward(const Tensor<T>& features) {
    if (inference_mode(*this)) {
      const Tensor<T> h = ops::conv2d_inference(
          ops::conv2d_inference(features, heat_a->weight, heat_a->bias, 1, 1, true), heat_b->weight, heat_b->bias, 1, 1, false);
      const Tensor<T> d = ops::conv2d_inference(
          ops::conv2d_inference(features, depth_a->weight, depth_a->bias, 1, 1, true), depth_b->weight, depth_b->bias, 1, 1, false);
      return soft_argmax->forward(h, d);
    }
    const Tensor<T> h = heat_b->forward(ops::relu(heat_a->forward(features)));
    const Tensor<T> d = depth_b->forward(ops::relu(depth_a->forward(features)));
    return soft_argmax->forward(h, d);
  }

  std::shared_ptr<Conv2d<T>> heat_a, heat_b, depth_a, depth_b;
  std::shared_ptr<SoftArgmaxDepth<T>> soft_argmax;
};

}  // namespace nn
}  // namespace lgh
