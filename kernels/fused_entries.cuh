// The CUDA entries of the paper's fused ops (core/dispatch.hpp): the
// dispatch registry's signatures of lgh::ops::entries, each running the
// raw-pointer launcher of its kernel header on the current stream of the
// tensors' device:
//   gumbel_softmax.cuh     GumbelSoftmaxForward, GumbelSoftmaxBackward, SelectorOneHot (Eq. 7-8)
//   group_select.cuh       GroupSelectForward, GroupSelectBackward (Eq. 5)
//   group_fusion.cuh       GroupFusionForward (with the eval epilogue), GroupFusionBackward (Eq. 9)
//   soft_argmax_depth.cuh  SoftArgmaxDepthForward, SoftArgmaxDepthBackward
//
// The ops have checked shapes and devices and made every tensor contiguous
// before they dispatch; an entry reads only data pointers and extents.
// Scratch memory (the weight-gradient splits of the fusion, the per-(b, j)
// shares of dbeta) is a Storage from the caching allocator on the current
// stream, released to it at the end of the entry: work queued later on the
// same stream cannot overtake the kernels that still read it.
#pragma once

#include <vector>

#include "common.cuh"
#include "group_fusion.cuh"
#include "group_select.cuh"
#include "gumbel_softmax.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/storage.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/ops/group_fusion.hpp"
#include "lgh/ops/group_select.hpp"
#include "lgh/ops/gumbel_softmax.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"
#include "soft_argmax_depth.cuh"

namespace lgh {
namespace cuda {

// ---- entries (the signatures of lgh::ops::entries) ------------------------------
namespace fused_entries {

template <typename T>
T* data_or_null(const Tensor<T>& t) {
  return t.defined() ? t.data() : nullptr;
}

// The data pointers of a list of tensors (a host array, as the launchers take).
template <typename T>
std::vector<T*> pointers(const std::vector<Tensor<T>>& ts) {
  std::vector<T*> p;
  p.reserve(ts.size());
  for (const Tensor<T>& t : ts) p.push_back(t.data());
  return p;
}
template <typename T>
std::vector<const T*> const_pointers(const std::vector<Tensor<T>>& ts) {
  std::vector<const T*> p;
  p.reserve(ts.size());
  for (const Tensor<T>& t : ts) p.push_back(t.data());
  return p;
}

// ---- Eq. (7)-(8): the selector ----
template <typename T>
void gumbel_softmax_forward(const Tensor<T>& theta, T inv_tau, const math::GumbelNoiseSource<T>& noise,
                            const Tensor<T>& y_soft, const Tensor<T>& y_hard) {
  cuda::gumbel_softmax_forward(theta.data(), theta.size(0), theta.size(1), inv_tau, noise, y_soft.data(),
                               data_or_null(y_hard), current_cuda_stream(y_soft.device()));
}

template <typename T>
void gumbel_softmax_backward(const Tensor<T>& y_soft, const Tensor<T>& dy, T inv_tau, const Tensor<T>& dtheta) {
  cuda::gumbel_softmax_backward(y_soft.data(), dy.data(), y_soft.size(0), y_soft.size(1), inv_tau, dtheta.data(),
                                current_cuda_stream(dtheta.device()));
}

template <typename T>
void selector_one_hot(const Tensor<T>& theta, const Tensor<T>& y) {
  cuda::gumbel_softmax_hard(theta.data(), theta.size(0), theta.size(1), y.data(), current_cuda_stream(y.device()));
}

// ---- Eq. (5): masked group selection ----
template <typename T>
void group_select_forward(const Tensor<T>& s, const Tensor<T>& x, const std::vector<T>& channel_scale,
                          const Tensor<T>& y) {
  const int64_t B = x.size(0), K = x.size(1), J = x.size(2), C = x.size(3);
  const ChannelScale<T> scale = make_channel_scale(channel_scale.empty() ? nullptr : channel_scale.data(), C);
  cuda::group_select_forward(s.data(), x.data(), B, K, J, C, scale, y.data(), current_cuda_stream(y.device()));
}

template <typename T>
void group_select_backward(const Tensor<T>& s, const Tensor<T>& x, const std::vector<T>& channel_scale,
                           const Tensor<T>& dy, const Tensor<T>& ds, const Tensor<T>& dx) {
  const int64_t B = x.size(0), K = x.size(1), J = x.size(2), C = x.size(3);
  const ChannelScale<T> scale = make_channel_scale(channel_scale.empty() ? nullptr : channel_scale.data(), C);
  cuda::group_select_backward(s.data(), x.data(), dy.data(), B, K, J, C, scale, data_or_null(ds), data_or_null(dx),
                              current_cuda_stream(x.device()));
}

// ---- Eq. (9): concat + 1x1 fusion ----
template <typename T>
void group_fusion_forward(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                          const std::vector<Tensor<T>>& biases, const std::vector<Tensor<T>>& scale,
                          const std::vector<Tensor<T>>& shift, bool relu, const std::vector<Tensor<T>>& outputs) {
  const Tensor<T>& f0 = features[0];
  const int64_t K = static_cast<int64_t>(features.size());
  const std::vector<const T*> f = const_pointers(features), w = const_pointers(weights), b = const_pointers(biases);
  const std::vector<T*> out = pointers(outputs);
  const bool epilogue = !scale.empty();
  const std::vector<const T*> sc = const_pointers(scale), sh = const_pointers(shift);
  cuda::group_fusion_forward(f.data(), w.data(), b.data(), K, f0.size(0), f0.size(1), f0.size(2) * f0.size(3),
                             out.data(), epilogue ? sc.data() : nullptr, epilogue ? sh.data() : nullptr, relu,
                             current_cuda_stream(f0.device()));
}

template <typename T>
void group_fusion_backward(const std::vector<Tensor<T>>& features, const std::vector<Tensor<T>>& weights,
                           const std::vector<Tensor<T>>& grad_outputs, const std::vector<Tensor<T>>& grad_features,
                           const std::vector<Tensor<T>>& grad_weights, const std::vector<Tensor<T>>& grad_biases) {
  const Tensor<T>& f0 = features[0];
  const int64_t K = static_cast<int64_t>(features.size());
  const int64_t B = f0.size(0), P = f0.size(1), HW = f0.size(2) * f0.size(3);
  const std::vector<const T*> f = const_pointers(features), w = const_pointers(weights),
                              g = const_pointers(grad_outputs);
  const std::vector<T*> df = pointers(grad_features), dw = pointers(grad_weights), db = pointers(grad_biases);
  const bool want_w = !grad_weights.empty() || !grad_biases.empty();
  // The split sums of dW and db (group_fusion.cuh), from the cache on this stream.
  const size_t ws_bytes = group_fusion_backward_workspace_bytes<T>(K, B, P, HW, want_w);
  Storage ws(ws_bytes, f0.device());
  cuda::group_fusion_backward(f.data(), w.data(), g.data(), K, B, P, HW, grad_features.empty() ? nullptr : df.data(),
                              grad_weights.empty() ? nullptr : dw.data(), grad_biases.empty() ? nullptr : db.data(),
                              ws.data(), ws_bytes, current_cuda_stream(f0.device()));
}

// ---- soft-argmax with depth ----
template <typename T>
void soft_argmax_depth_forward(const Tensor<T>& h, const Tensor<T>& dm, const Tensor<T>& beta, const Tensor<T>& out,
                               const Tensor<T>& stats) {
  cuda::soft_argmax_depth_forward(h.data(), dm.data(), beta.data(), h.size(0), h.size(1), h.size(2), h.size(3),
                                  out.data(), data_or_null(stats), Backprojection<T>(), static_cast<T*>(nullptr),
                                  current_cuda_stream(h.device()));
}

template <typename T>
void soft_argmax_depth_backward(const Tensor<T>& h, const Tensor<T>& dm, const Tensor<T>& beta, const Tensor<T>& out,
                                const Tensor<T>& stats, const Tensor<T>& dout, const Tensor<T>& dh,
                                const Tensor<T>& ddm, const Tensor<T>& dbeta) {
  const int64_t B = h.size(0), J = h.size(1);
  // The per-(b, j) shares of dbeta, summed over b in order by the second launch.
  const size_t ws_bytes = dbeta.defined() ? soft_argmax_depth_backward_workspace_bytes<T>(B, J) : 0;
  Storage ws(ws_bytes, h.device());
  cuda::soft_argmax_depth_backward(h.data(), dm.data(), beta.data(), B, J, h.size(2), h.size(3), out.data(),
                                   stats.data(), dout.data(), static_cast<const T*>(nullptr), Backprojection<T>(),
                                   data_or_null(dh), data_or_null(ddm), data_or_null(dbeta), ws.data(), ws_bytes,
                                   current_cuda_stream(h.device()));
}

template <typename T>
void register_for() {
  using namespace ops::entries;
  dispatch::set_entry<GumbelSoftmaxForward, T>(DeviceType::CUDA, &gumbel_softmax_forward<T>);
  dispatch::set_entry<GumbelSoftmaxBackward, T>(DeviceType::CUDA, &gumbel_softmax_backward<T>);
  dispatch::set_entry<SelectorOneHot, T>(DeviceType::CUDA, &selector_one_hot<T>);
  dispatch::set_entry<GroupSelectForward, T>(DeviceType::CUDA, &group_select_forward<T>);
  dispatch::set_entry<GroupSelectBackward, T>(DeviceType::CUDA, &group_select_backward<T>);
  dispatch::set_entry<GroupFusionForward, T>(DeviceType::CUDA, &group_fusion_forward<T>);
  dispatch::set_entry<GroupFusionBackward, T>(DeviceType::CUDA, &group_fusion_backward<T>);
  dispatch::set_entry<SoftArgmaxDepthForward, T>(DeviceType::CUDA, &soft_argmax_depth_forward<T>);
  dispatch::set_entry<SoftArgmaxDepthBackward, T>(DeviceType::CUDA, &soft_argmax_depth_backward<T>);
}

}  // namespace fused_entries

// Installs the fused ops' entries for float and double.
inline void register_fused_entries() {
  fused_entries::register_for<float>();
  fused_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
