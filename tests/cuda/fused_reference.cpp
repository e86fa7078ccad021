// CPU twins of the fused CUDA kernels (see fused_reference.hpp): the CPU
// entries of the lgh::ops kernels (lgh::ops::cpu) and lgh::optim::Adam on
// std::vector data.
#include "fused_reference.hpp"

#include "lgh/ops/backproject.hpp"
#include "lgh/ops/group_fusion.hpp"
#include "lgh/ops/group_select.hpp"
#include "lgh/ops/gumbel_softmax.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"
#include "lgh/optim/adam.hpp"

namespace lgh_test {

using lgh::Shape;
using lgh::Tensor;

namespace {

template <typename T>
Tensor<T> tensor(const Shape& shape, const std::vector<T>& v) {
  return Tensor<T>::from_data(shape, v);
}
template <typename T>
Tensor<T> prefilled(const Shape& shape) {
  return Tensor<T>::full(shape, static_cast<T>(kCpuFill));
}
template <typename T>
std::vector<Tensor<T>> tensors(const Shape& shape, const std::vector<std::vector<T>>& v) {
  std::vector<Tensor<T>> out;
  for (const auto& x : v) out.push_back(tensor(shape, x));
  return out;
}
template <typename T>
std::vector<std::vector<T>> vectors(const std::vector<Tensor<T>>& ts) {
  std::vector<std::vector<T>> out;
  for (const auto& t : ts) out.push_back(t.to_vector());
  return out;
}

}  // namespace

template <typename T>
void gumbel_softmax_forward_cpu(const std::vector<T>& theta, int64_t J, int64_t K, T inv_tau,
                                const lgh::math::GumbelNoiseSource<T>& noise, std::vector<T>& y_soft,
                                std::vector<T>* y_hard) {
  Tensor<T> ys = prefilled<T>({J, K}), yh = prefilled<T>({J, K});
  lgh::ops::cpu::gumbel_softmax_forward(tensor<T>({J, K}, theta), inv_tau, noise, ys, y_hard ? yh : Tensor<T>());
  y_soft = ys.to_vector();
  if (y_hard) *y_hard = yh.to_vector();
}

template <typename T>
std::vector<T> gumbel_softmax_hard_cpu(const std::vector<T>& theta, int64_t J, int64_t K) {
  return lgh::ops::gumbel_softmax(tensor<T>({J, K}, theta), 1.0, lgh::ops::SelectorMode::Hard).to_vector();
}

template <typename T>
std::vector<T> gumbel_softmax_backward_cpu(const std::vector<T>& y_soft, const std::vector<T>& dy, int64_t J,
                                           int64_t K, T inv_tau) {
  Tensor<T> d = prefilled<T>({J, K});
  lgh::ops::cpu::gumbel_softmax_backward(tensor<T>({J, K}, y_soft), tensor<T>({J, K}, dy), inv_tau, d);
  return d.to_vector();
}

template <typename T>
std::vector<T> group_select_forward_cpu(const std::vector<T>& s, const std::vector<T>& x, int64_t B, int64_t K,
                                        int64_t J, int64_t C, const std::vector<T>& scale) {
  Tensor<T> y = prefilled<T>({B, J, C});
  lgh::ops::cpu::group_select_forward(tensor<T>({J, K}, s), tensor<T>({B, K, J, C}, x), scale, y);
  return y.to_vector();
}

template <typename T>
void group_select_backward_cpu(const std::vector<T>& s, const std::vector<T>& x, const std::vector<T>& dy, int64_t B,
                               int64_t K, int64_t J, int64_t C, const std::vector<T>& scale, std::vector<T>& ds,
                               std::vector<T>& dx) {
  Tensor<T> ds_t = prefilled<T>({J, K}), dx_t = prefilled<T>({B, K, J, C});
  lgh::ops::cpu::group_select_backward(tensor<T>({J, K}, s), tensor<T>({B, K, J, C}, x), scale,
                                       tensor<T>({B, J, C}, dy), ds_t, dx_t);
  ds = ds_t.to_vector();
  dx = dx_t.to_vector();
}

template <typename T>
std::vector<std::vector<T>> group_fusion_forward_cpu(const std::vector<std::vector<T>>& features,
                                                     const std::vector<std::vector<T>>& weights,
                                                     const std::vector<std::vector<T>>& biases, int64_t B, int64_t P,
                                                     int64_t H, int64_t W, const std::vector<std::vector<T>>* scale,
                                                     const std::vector<std::vector<T>>* shift, bool relu) {
  const int64_t K = static_cast<int64_t>(features.size());
  std::vector<Tensor<T>> out;
  for (int64_t k = 0; k < K; ++k) out.push_back(prefilled<T>({B, P, H, W}));
  std::vector<Tensor<T>> sc, sh;
  if (scale) {
    sc = tensors<T>({P}, *scale);
    sh = tensors<T>({P}, *shift);
  }
  lgh::ops::cpu::group_fusion_forward(tensors<T>({B, P, H, W}, features), tensors<T>({P, K * P, 1, 1}, weights),
                                      tensors<T>({P}, biases), sc, sh, relu, out);
  return vectors(out);
}

template <typename T>
void group_fusion_backward_cpu(const std::vector<std::vector<T>>& features, const std::vector<std::vector<T>>& weights,
                               const std::vector<std::vector<T>>& grad_outputs, int64_t B, int64_t P, int64_t H,
                               int64_t W, std::vector<std::vector<T>>& grad_features,
                               std::vector<std::vector<T>>& grad_weights, std::vector<std::vector<T>>& grad_biases) {
  const int64_t K = static_cast<int64_t>(features.size());
  std::vector<Tensor<T>> df, dw, db;
  for (int64_t k = 0; k < K; ++k) {
    df.push_back(prefilled<T>({B, P, H, W}));
    dw.push_back(prefilled<T>({P, K * P, 1, 1}));
    db.push_back(prefilled<T>({P}));
  }
  lgh::ops::cpu::group_fusion_backward(tensors<T>({B, P, H, W}, features), tensors<T>({P, K * P, 1, 1}, weights),
                                       tensors<T>({B, P, H, W}, grad_outputs), df, dw, db);
  grad_features = vectors(df);
  grad_weights = vectors(dw);
  grad_biases = vectors(db);
}

template <typename T>
void soft_argmax_depth_forward_cpu(const std::vector<T>& h, const std::vector<T>& dm, const std::vector<T>& beta,
                                   int64_t B, int64_t J, int64_t H, int64_t W, std::vector<T>& uvd,
                                   std::vector<T>& stats) {
  Tensor<T> out = prefilled<T>({B, J, 3}), st = prefilled<T>({B, J, 2});
  lgh::ops::cpu::soft_argmax_depth_forward(tensor<T>({B, J, H, W}, h), tensor<T>({B, J, H, W}, dm),
                                           tensor<T>({J}, beta), out, st);
  uvd = out.to_vector();
  stats = st.to_vector();
}

template <typename T>
std::vector<T> backproject_forward_cpu(const std::vector<T>& uvd, const std::vector<T>& intrinsics,
                                       const std::vector<T>& z_root, const std::vector<T>& s0, int64_t B, int64_t J) {
  Tensor<T> xyz = prefilled<T>({B, J, 3});
  lgh::ops::cpu::backproject_forward(tensor<T>({B, J, 3}, uvd), tensor<T>({B, 4}, intrinsics), tensor<T>({B}, z_root),
                                     tensor<T>({B}, s0), xyz);
  return xyz.to_vector();
}

template <typename T>
std::vector<T> backproject_backward_cpu(const std::vector<T>& uvd, const std::vector<T>& intrinsics,
                                        const std::vector<T>& z_root, const std::vector<T>& s0,
                                        const std::vector<T>& dxyz, int64_t B, int64_t J) {
  Tensor<T> duvd = prefilled<T>({B, J, 3});
  lgh::ops::cpu::backproject_backward(tensor<T>({B, J, 3}, uvd), tensor<T>({B, 4}, intrinsics), tensor<T>({B}, z_root),
                                      tensor<T>({B}, s0), tensor<T>({B, J, 3}, dxyz), duvd);
  return duvd.to_vector();
}

template <typename T>
void soft_argmax_depth_backward_cpu(const std::vector<T>& h, const std::vector<T>& dm, const std::vector<T>& beta,
                                    int64_t B, int64_t J, int64_t H, int64_t W, const std::vector<T>& uvd,
                                    const std::vector<T>& stats, const std::vector<T>& duvd, std::vector<T>& dh,
                                    std::vector<T>& ddm, std::vector<T>& dbeta) {
  Tensor<T> dh_t = prefilled<T>({B, J, H, W}), ddm_t = prefilled<T>({B, J, H, W}), db_t = prefilled<T>({J});
  lgh::ops::cpu::soft_argmax_depth_backward(tensor<T>({B, J, H, W}, h), tensor<T>({B, J, H, W}, dm),
                                            tensor<T>({J}, beta), tensor<T>({B, J, 3}, uvd),
                                            tensor<T>({B, J, 2}, stats), tensor<T>({B, J, 3}, duvd), dh_t, ddm_t, db_t);
  dh = dh_t.to_vector();
  ddm = ddm_t.to_vector();
  dbeta = db_t.to_vector();
}

template <typename T>
AdamResult<T> adam_cpu(const std::vector<AdamGroupSpec>& groups, const std::vector<std::vector<T>>& initial,
                       const std::vector<std::vector<std::vector<T>>>& grads) {
  std::vector<lgh::optim::ParamGroup<T>> pg;
  std::vector<Tensor<T>> params;
  size_t flat = 0;
  for (const AdamGroupSpec& g : groups) {
    lgh::optim::ParamGroup<T> p;
    p.name = g.name;
    p.lr = g.lr;
    p.beta1 = g.beta1;
    p.beta2 = g.beta2;
    p.eps = g.eps;
    p.weight_decay = g.weight_decay;
    p.amsgrad = g.amsgrad;
    for (int64_t n : g.sizes) {
      Tensor<T> t = tensor<T>({n}, initial[flat++]);
      t.set_requires_grad(true);
      p.params.push_back(t);
      params.push_back(t);
    }
    pg.push_back(p);
  }
  lgh::optim::Adam<T> adam(pg);
  for (const auto& step : grads) {
    for (size_t i = 0; i < params.size(); ++i)
      params[i].set_grad(step[i].empty() ? Tensor<T>() : tensor<T>({params[i].numel()}, step[i]));
    adam.step();
  }
  AdamResult<T> r;
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].sizes.size(); ++i) {
      r.param.push_back(adam.group(g).params[i].to_vector());
      r.exp_avg.push_back(adam.exp_avg(g, i).to_vector());
      r.exp_avg_sq.push_back(adam.exp_avg_sq(g, i).to_vector());
      r.max_exp_avg_sq.push_back(groups[g].amsgrad ? adam.max_exp_avg_sq(g, i).to_vector()
                                                   : std::vector<T>(static_cast<size_t>(groups[g].sizes[i]), T(0)));
      r.steps.push_back(adam.step_count(g, i));
    }
  return r;
}

#define LGH_TEST_INSTANTIATE(T)                                                                                        \
  template void gumbel_softmax_forward_cpu<T>(const std::vector<T>&, int64_t, int64_t, T,                             \
                                              const lgh::math::GumbelNoiseSource<T>&, std::vector<T>&,                \
                                              std::vector<T>*);                                                        \
  template std::vector<T> gumbel_softmax_hard_cpu<T>(const std::vector<T>&, int64_t, int64_t);                        \
  template std::vector<T> gumbel_softmax_backward_cpu<T>(const std::vector<T>&, const std::vector<T>&, int64_t,       \
                                                         int64_t, T);                                                  \
  template std::vector<T> group_select_forward_cpu<T>(const std::vector<T>&, const std::vector<T>&, int64_t, int64_t, \
                                                      int64_t, int64_t, const std::vector<T>&);                        \
  template void group_select_backward_cpu<T>(const std::vector<T>&, const std::vector<T>&, const std::vector<T>&,     \
                                             int64_t, int64_t, int64_t, int64_t, const std::vector<T>&,               \
                                             std::vector<T>&, std::vector<T>&);                                        \
  template std::vector<std::vector<T>> group_fusion_forward_cpu<T>(                                                   \
      const std::vector<std::vector<T>>&, const std::vector<std::vector<T>>&, const std::vector<std::vector<T>>&,     \
      int64_t, int64_t, int64_t, int64_t, const std::vector<std::vector<T>>*, const std::vector<std::vector<T>>*,     \
      bool);                                                                                                           \
  template void group_fusion_backward_cpu<T>(const std::vector<std::vector<T>>&, const std::vector<std::vector<T>>&,  \
                                             const std::vector<std::vector<T>>&, int64_t, int64_t, int64_t, int64_t,  \
                                             std::vector<std::vector<T>>&, std::vector<std::vector<T>>&,               \
                                             std::vector<std::vector<T>>&);                                            \
  template void soft_argmax_depth_forward_cpu<T>(const std::vector<T>&, const std::vector<T>&, const std::vector<T>&, \
                                                 int64_t, int64_t, int64_t, int64_t, std::vector<T>&,                  \
                                                 std::vector<T>&);                                                     \
  template std::vector<T> backproject_forward_cpu<T>(const std::vector<T>&, const std::vector<T>&,                    \
                                                     const std::vector<T>&, const std::vector<T>&, int64_t, int64_t); \
  template std::vector<T> backproject_backward_cpu<T>(const std::vector<T>&, const std::vector<T>&,                   \
                                                      const std::vector<T>&, const std::vector<T>&,                   \
                                                      const std::vector<T>&, int64_t, int64_t);                       \
  template void soft_argmax_depth_backward_cpu<T>(const std::vector<T>&, const std::vector<T>&,                       \
                                                  const std::vector<T>&, int64_t, int64_t, int64_t, int64_t,          \
                                                  const std::vector<T>&, const std::vector<T>&, const std::vector<T>&, \
                                                  std::vector<T>&, std::vector<T>&, std::vector<T>&);                  \
  template AdamResult<T> adam_cpu<T>(const std::vector<AdamGroupSpec>&, const std::vector<std::vector<T>>&,           \
                                     const std::vector<std::vector<std::vector<T>>>&);

LGH_TEST_INSTANTIATE(float)
LGH_TEST_INSTANTIATE(double)

}  // namespace lgh_test
