// Feature fusion among the groups, Eq. (9): for each group k a 1x1
// convolution over the channel concatenation of the K branch outputs,
//   G_k = sum_m W_k[:, mP:(m+1)P] . F_m + b_k,        k = 0..K-1,
// with F_m [B,P,H,W], W_k [P, K*P, 1, 1] (PyTorch's conv weight layout), b_k [P]
// and G_k [B,P,H,W]. The concatenation [F_1..F_K] is never materialised:
// each F_m is read in place as a P x (H*W) row-major matrix per image, and
// each G_k is K accumulated GEMMs (Eigen) per image and spatial chunk.
//
// Gradients (backward overwrites its outputs; dG_k = dL/dG_k):
//   dF_m                 = sum_k W_k[:, mP:(m+1)P]^T . dG_k      (per image)
//   dW_k[:, mP:(m+1)P]   = sum_b dG_k[b] . F_m[b]^T
//   db_k                 = sum_b sum_{h,w} dG_k[b]
//
// group_fusion_eval() applies the eval-mode BatchNorm (folded into a
// per-channel scale and shift) and the ReLU of DESIGN's fusion row in the same
// pass, while the chunk is in cache. It is for inference only: it has no
// gradient and refuses to run when a gradient would be wanted.
//
// group_fusion_init(K, P) gives the paper's initialisation: W_k has
// alpha_k^k I_P on its own group's block and alpha_m^k I_P elsewhere, with
// alpha_k^k = 0.9 and alpha_{m != k}^k = 0.1 / (K - 1) (K = 1: W = I), b_k = 0,
// so that initially G_k = 0.9 F_k + 0.1/(K-1) sum_{m != k} F_m.
#pragma once

#include "lgh/ops/common.hpp"
#include "lgh/ops/eigen.hpp"
#include "lgh/ops/math/group_fusion.hpp"

namespace lgh {
namespace ops {

template <typename T>
struct GroupFusionParams {
  std::vector<Tensor<T>> weights;  // K x [P, K*P, 1, 1]
  std::vector<Tensor<T>> biases;   // K x [P]
};

template <typename T>
GroupFusionParams<T> group_fusion_init(int64_t K, int64_t P) {
  LGH_CHECK(K >= 1 && P >= 1, "group_fusion_init: K and P must be >= 1, got K = " << K << ", P = " << P);
  const T own = K == 1 ? T(1) : T(0.9);
  const T other = K == 1 ? T(0) : T(0.1) / static_cast<T>(K - 1);
  GroupFusionParams<T> params;
  for (int64_t k = 0; k < K; ++k) {
    Tensor<T> w = Tensor<T>::zeros({P, K * P, 1, 1});
    T* pw = w.data();
    for (int64_t m = 0; m < K; ++m)
      for (int64_t p = 0; p < P; ++p) pw[p * K * P + m * P + p] = m == k ? own : other;
    params.weights.push_back(w);
    params.biases.push_back(Tensor<T>::zeros({P}));
  }
  return params;
}

namespace detail {

struct FusionDims {
  int64_t K = 0, B = 0, P = 0, H = 0, W = 0, HW = 0;
  Device device;  // of every feature, weight and bias
};

template <typename T>
FusionDims check_group_fusion(const char* op, const std::vector<Tensor<T>>& features,
                              const std::vector<Tensor<T>>& weights, const std::vector<Tensor<T>>& biases) {
  LGH_CHECK(!features.empty(), op << ": 'features' is empty, expected the K >= 1 branch outputs [B, P, H, W]");
  FusionDims d;
  d.K = static_cast<int64_t>(features.size());
  LGH_CHECK(static_cast<int64_t>(weights.size()) == d.K && static_cast<int64_t>(biases.size()) == d.K,
            op << ": " << d.K << " features but " << weights.size() << " weights and " << biases.size()
               << " biases; expected one weight and one bias per group");
  check_ndim(op, "features[0]", features[0], 4);
  const Shape fs = features[0].shape();
  d.B = fs[0];
  d.P = fs[1];
  d.H = fs[2];
  d.W = fs[3];
  d.HW = d.H * d.W;
  LGH_CHECK(d.B >= 1 && d.P >= 1 && d.HW >= 1,
            op << ": 'features[0]' has shape " << fs.str() << ", expected [B, P, H, W] with no zero extent");
  for (int64_t m = 0; m < d.K; ++m) {
    const std::string i = "[" + std::to_string(m) + "]";
    check_shape(op, ("features" + i).c_str(), features[static_cast<size_t>(m)], fs);
    check_shape(op, ("weights" + i).c_str(), weights[static_cast<size_t>(m)], Shape{d.P, d.K * d.P, 1, 1});
    check_shape(op, ("biases" + i).c_str(), biases[static_cast<size_t>(m)], Shape{d.P});
  }
  d.device = features[0].device();
  common_device(op, "features", features, d.device);
  common_device(op, "weights", weights, d.device);
  common_device(op, "biases", biases, d.device);
  return d;
}

// Spatial columns per task: a P x 256 chunk of each of the K inputs stays in
// L2 while the K outputs are formed from it.
constexpr int64_t kFusionChunk = 256;

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstStridedMap = Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using StridedMap = Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>>;

template <typename T>
std::vector<const T*> data_ptrs(const std::vector<Tensor<T>>& ts) {
  std::vector<const T*> p;
  p.reserve(ts.size());
  for (const Tensor<T>& t : ts) p.push_back(t.data());
  return p;
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
// Every tensor contiguous, shapes as checked by check_group_fusion.
namespace cpu {

// outputs[k] = G_k of Eq. (9). When `scale` and `shift` are not empty (K x
// [P] each), the output is fusion_epilogue(conv, scale, shift, relu) per
// channel, else the plain conv.
template <typename T>
void group_fusion_forward(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                          const std::vector<Tensor<T>>& biases, const std::vector<Tensor<T>>& scale,
                          const std::vector<Tensor<T>>& shift, bool relu, const std::vector<Tensor<T>>& outputs) {
  const int64_t K = static_cast<int64_t>(features.size());
  const int64_t B = features[0].size(0), P = features[0].size(1), HW = features[0].size(2) * features[0].size(3);
  const std::vector<const T*> f = detail::data_ptrs(features), w = detail::data_ptrs(weights),
                              bias = detail::data_ptrs(biases);
  const bool epilogue = !scale.empty();
  std::vector<const T*> sc, sh;
  if (epilogue) {
    sc = detail::data_ptrs(scale);
    sh = detail::data_ptrs(shift);
  }
  std::vector<T*> g;
  for (const Tensor<T>& t : outputs) g.push_back(t.data());
  const int64_t chunks = (HW + detail::kFusionChunk - 1) / detail::kFusionChunk;
  using CMap = detail::ConstStridedMap<T>;
  using MMap = detail::StridedMap<T>;
  parallel_for(0, B * chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t b = t / chunks, c0 = (t % chunks) * detail::kFusionChunk;
      const int64_t n = std::min(detail::kFusionChunk, HW - c0);
      const int64_t off = b * P * HW + c0;
      for (int64_t k = 0; k < K; ++k) {
        MMap out(g[k] + off, P, n, Eigen::OuterStride<>(HW));
        for (int64_t m = 0; m < K; ++m) {
          // Eq. (9): the block of W_k that multiplies group m's channels.
          CMap wkm(w[k] + m * P, P, P, Eigen::OuterStride<>(K * P));
          CMap fm(f[m] + off, P, n, Eigen::OuterStride<>(HW));
          if (m == 0)
            out.noalias() = wkm * fm;
          else
            out.noalias() += wkm * fm;
        }
        for (int64_t p = 0; p < P; ++p) {
          T* row = g[k] + off + p * HW;
          const T bp = bias[k][p];
          if (epilogue) {
            const T s = sc[k][p], z = sh[k][p];
            for (int64_t i = 0; i < n; ++i) row[i] = math::fusion_epilogue(row[i] + bp, s, z, relu);
          } else {
            for (int64_t i = 0; i < n; ++i) row[i] += bp;
          }
        }
      }
    }
  });
}

// Gradients of group_fusion_forward (without epilogue). Pass empty vectors
// for the gradients that are not wanted; the others must be allocated (K
// tensors each, shaped like their inputs) and are overwritten.
template <typename T>
void group_fusion_backward(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                           const std::vector<Tensor<T>>& grad_outputs, const std::vector<Tensor<T>>& grad_features,
                           const std::vector<Tensor<T>>& grad_weights, const std::vector<Tensor<T>>& grad_biases) {
  const int64_t K = static_cast<int64_t>(features.size());
  const int64_t B = features[0].size(0), P = features[0].size(1), HW = features[0].size(2) * features[0].size(3);
  const std::vector<const T*> f = detail::data_ptrs(features), w = detail::data_ptrs(weights),
                              dg = detail::data_ptrs(grad_outputs);
  using CMap = detail::ConstStridedMap<T>;
  using MMap = detail::StridedMap<T>;

  if (!grad_features.empty()) {
    std::vector<T*> df;
    for (const Tensor<T>& t : grad_features) df.push_back(t.data());
    const int64_t chunks = (HW + detail::kFusionChunk - 1) / detail::kFusionChunk;
    parallel_for(0, B * chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t b = t / chunks, c0 = (t % chunks) * detail::kFusionChunk;
        const int64_t n = std::min(detail::kFusionChunk, HW - c0);
        const int64_t off = b * P * HW + c0;
        for (int64_t m = 0; m < K; ++m) {
          MMap out(df[m] + off, P, n, Eigen::OuterStride<>(HW));
          for (int64_t k = 0; k < K; ++k) {
            CMap wkm(w[k] + m * P, P, P, Eigen::OuterStride<>(K * P));
            CMap gk(dg[k] + off, P, n, Eigen::OuterStride<>(HW));
            if (k == 0)
              out.noalias() = wkm.transpose() * gk;
            else
              out.noalias() += wkm.transpose() * gk;
          }
        }
      }
    });
  }

  if (!grad_weights.empty() || !grad_biases.empty()) {
    // One task per (k, m) block of the weights, summing over the batch in
    // order: deterministic whatever the thread count.
    parallel_for(0, K * K, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t k = t / K, m = t % K;
        if (!grad_weights.empty()) {
          MMap dw(grad_weights[static_cast<size_t>(k)].data() + m * P, P, P, Eigen::OuterStride<>(K * P));
          for (int64_t b = 0; b < B; ++b) {
            CMap gk(dg[k] + b * P * HW, P, HW, Eigen::OuterStride<>(HW));
            CMap fm(f[m] + b * P * HW, P, HW, Eigen::OuterStride<>(HW));
            if (b == 0)
              dw.noalias() = gk * fm.transpose();
            else
              dw.noalias() += gk * fm.transpose();
          }
        }
        if (m == 0 && !grad_biases.empty()) {
          T* db = grad_biases[static_cast<size_t>(k)].data();
          for (int64_t p = 0; p < P; ++p) {
            T acc = T(0);
            for (int64_t b = 0; b < B; ++b) {
              const T* row = dg[k] + (b * P + p) * HW;
              for (int64_t i = 0; i < HW; ++i) acc += row[i];
            }
            db[p] = acc;
          }
        }
      }
    });
  }
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct GroupFusionForward {
  static constexpr const char* name = "group_fusion_forward";
  template <typename T>
  using Fn = void (*)(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                      const std::vector<Tensor<T>>& biases, const std::vector<Tensor<T>>& scale,
                      const std::vector<Tensor<T>>& shift, bool relu, const std::vector<Tensor<T>>& outputs);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::group_fusion_forward<T>;
};

struct GroupFusionBackward {
  static constexpr const char* name = "group_fusion_backward";
  template <typename T>
  using Fn = void (*)(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                      const std::vector<Tensor<T>>& grad_outputs, const std::vector<Tensor<T>>& grad_features,
                      const std::vector<Tensor<T>>& grad_weights, const std::vector<Tensor<T>>& grad_biases);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::group_fusion_backward<T>;
};

}  // namespace entries

template <typename T>
struct GroupFusionBackward : autograd::Node<T> {
  std::vector<Tensor<T>> features, weights;  // contiguous, detached

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    const size_t K = features.size();
    std::vector<Tensor<T>> dg;
    for (const Tensor<T>& t : g) dg.push_back(t.contiguous());
    bool want_f = false, want_w = false, want_b = false;
    for (size_t i = 0; i < K; ++i) {
      want_f = want_f || this->needs_input_grad(i);
      want_w = want_w || this->needs_input_grad(K + i);
      want_b = want_b || this->needs_input_grad(2 * K + i);
    }
    std::vector<Tensor<T>> df, dw, db;
    for (size_t i = 0; i < K; ++i) {
      if (want_f) df.push_back(Tensor<T>::empty(features[i].shape(), features[i].device()));
      if (want_w) dw.push_back(Tensor<T>::empty(weights[i].shape(), weights[i].device()));
      if (want_b) db.push_back(Tensor<T>::empty({weights[i].size(0)}, weights[i].device()));
    }
    dispatch::call<entries::GroupFusionBackward, T>(features[0].device(), features, weights, dg, df, dw, db);
    std::vector<Tensor<T>> out(3 * K);
    for (size_t i = 0; i < K; ++i) {
      if (this->needs_input_grad(i)) out[i] = df[i];
      if (this->needs_input_grad(K + i)) out[K + i] = dw[i];
      if (this->needs_input_grad(2 * K + i)) out[2 * K + i] = db[i];
    }
    return out;
  }
  const char* name() const override { return "GroupFusionBackward"; }
  void release_saved() override {
    features.clear();
    weights.clear();
  }
};

namespace detail {
template <typename T>
std::vector<Tensor<T>> contiguous_all(const std::vector<Tensor<T>>& ts) {
  std::vector<Tensor<T>> out;
  out.reserve(ts.size());
  for (const Tensor<T>& t : ts) out.push_back(t.contiguous());
  return out;
}
}  // namespace detail

// ---- public ops ----------------------------------------------------------------

// Eq. (9): G_k, k = 0..K-1, from the K branch outputs; differentiable in
// every feature, weight and bias.
template <typename T>
std::vector<Tensor<T>> group_fusion(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                                    const std::vector<Tensor<T>>& biases) {
  const detail::FusionDims d = detail::check_group_fusion("group_fusion", features, weights, biases);
  const std::vector<Tensor<T>> fc = detail::contiguous_all(features), wc = detail::contiguous_all(weights),
                               bc = detail::contiguous_all(biases);
  std::vector<Tensor<T>> outputs;
  for (int64_t k = 0; k < d.K; ++k) outputs.push_back(Tensor<T>::empty({d.B, d.P, d.H, d.W}, d.device));
  dispatch::call<entries::GroupFusionForward, T>(d.device, fc, wc, bc, std::vector<Tensor<T>>(),
                                                 std::vector<Tensor<T>>(), false, outputs);

  bool record = false;
  if (autograd::grad_enabled())
    for (int64_t k = 0; k < d.K; ++k)
      record = record || features[static_cast<size_t>(k)].requires_grad() ||
               weights[static_cast<size_t>(k)].requires_grad() || biases[static_cast<size_t>(k)].requires_grad();
  if (record) {
    auto node = std::make_shared<GroupFusionBackward<T>>();
    for (int64_t k = 0; k < d.K; ++k) {
      node->features.push_back(fc[static_cast<size_t>(k)].detach());
      node->weights.push_back(wc[static_cast<size_t>(k)].detach());
    }
    std::vector<Tensor<T>> inputs;
    for (const auto* group : {&features, &weights, &biases})
      for (const Tensor<T>& t : *group) inputs.push_back(t);
    autograd::record<T>(node, inputs, outputs);
  }
  return outputs;
}

// Inference form: relu_if(scale_k * (conv_k + b_k) + shift_k) per output
// channel, with scale and shift K x [P] (eval BatchNorm folded:
// scale = gamma / sqrt(running_var + eps), shift = beta - running_mean * scale).
// No gradient: throws if grad mode is on and any input requires grad.
template <typename T>
std::vector<Tensor<T>> group_fusion_eval(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                                         const std::vector<Tensor<T>>& biases, const std::vector<Tensor<T>>& scale,
                                         const std::vector<Tensor<T>>& shift, bool relu = true) {
  const char* op = "group_fusion_eval";
  const detail::FusionDims d = detail::check_group_fusion(op, features, weights, biases);
  LGH_CHECK(static_cast<int64_t>(scale.size()) == d.K && static_cast<int64_t>(shift.size()) == d.K,
            op << ": " << d.K << " groups but " << scale.size() << " scales and " << shift.size()
               << " shifts; expected one [P] scale and shift per group");
  for (int64_t k = 0; k < d.K; ++k) {
    const std::string i = "[" + std::to_string(k) + "]";
    detail::check_shape(op, ("scale" + i).c_str(), scale[static_cast<size_t>(k)], Shape{d.P});
    detail::check_shape(op, ("shift" + i).c_str(), shift[static_cast<size_t>(k)], Shape{d.P});
  }
  detail::common_device(op, "scale", scale, d.device);
  detail::common_device(op, "shift", shift, d.device);
  if (autograd::grad_enabled())
    for (const auto* group : {&features, &weights, &biases, &scale, &shift})
      for (const Tensor<T>& t : *group)
        LGH_CHECK(!t.requires_grad(), op << ": an input requires grad, but the fused eval epilogue has no "
                                            "gradient; run it under autograd::NoGradGuard or use group_fusion");
  const std::vector<Tensor<T>> fc = detail::contiguous_all(features), wc = detail::contiguous_all(weights),
                               bc = detail::contiguous_all(biases), sc = detail::contiguous_all(scale),
                               hc = detail::contiguous_all(shift);
  std::vector<Tensor<T>> outputs;
  for (int64_t k = 0; k < d.K; ++k) outputs.push_back(Tensor<T>::empty({d.B, d.P, d.H, d.W}, d.device));
  dispatch::call<entries::GroupFusionForward, T>(d.device, fc, wc, bc, sc, hc, relu, outputs);
  return outputs;
}

}  // namespace ops
}  // namespace lgh
