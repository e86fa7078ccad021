// Batch normalisation over the channels of an NCHW tensor, exactly PyTorch's
// BatchNorm2d (DESIGN §2: eps 1e-5, momentum 0.1):
//
//   training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias, with the
//             batch mean and the *biased* batch variance over (N, H, W); the
//             running statistics are updated in place with
//             running = (1 - momentum) * running + momentum * batch, using the
//             *unbiased* variance for running_var.
//   eval:     the same with running_mean / running_var, nothing updated.
//
// weight and bias may be undefined (affine = false). The running statistics
// are buffers: they are never recorded and receive no gradient; in training
// they may be undefined (track_running_stats = false).
//
// Backward gives x, weight and bias their gradients in both modes; in training
// the x gradient is the full one through the batch statistics. Like every
// backward of lgh::ops it overwrites its outputs (never accumulates).
//
// fold_batch_norm() folds an eval-mode batch norm into the convolution before
// it, for inference.
#pragma once

#include <cmath>

#include "lgh/ops/reduce.hpp"

namespace lgh {
namespace ops {

namespace detail {

// A per-channel vector ([C], any stride) read into a contiguous copy.
template <typename T>
std::vector<T> channel_values(const Tensor<T>& t, int64_t channels, T fallback) {
  std::vector<T> v(static_cast<size_t>(channels), fallback);
  if (!t.defined()) return v;
  const T* p = t.data();
  const int64_t s = t.strides()[0];
  for (int64_t c = 0; c < channels; ++c) v[static_cast<size_t>(c)] = p[c * s];
  return v;
}

// Channels per parallel task: enough elements per task to pay for the dispatch.
inline int64_t channel_grain(int64_t elements_per_channel) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, elements_per_channel));
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// Forward kernel. x: contiguous [N, C, H, W]; y: contiguous, same shape
// (written). save_mean / save_invstd: [C] (written): the statistics used to
// normalise (the batch's in training, the running ones in eval), saved for
// backward. weight, bias: [C] or undefined; running_mean / running_var: [C]
// (any stride) or undefined (training only). In training the running
// statistics, when defined, are updated in place.
template <typename T>
void batch_norm2d_forward(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                          const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training,
                          double momentum, double eps, const Tensor<T>& y, const Tensor<T>& save_mean,
                          const Tensor<T>& save_invstd) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const int64_t M = N * HW;  // values per channel
  const std::vector<T> w = detail::channel_values(weight, C, T(1));
  const std::vector<T> b = detail::channel_values(bias, C, T(0));
  const T* px = x.data();
  T* py = y.data();
  T* pmean = save_mean.data();
  T* pinv = save_invstd.data();

  if (training) {
    const bool update = running_mean.defined();
    T* rm = update ? running_mean.data() : nullptr;
    T* rv = update ? running_var.data() : nullptr;
    const int64_t rms = update ? running_mean.strides()[0] : 0;
    const int64_t rvs = update ? running_var.strides()[0] : 0;
    // One task per channel: the statistics, then the normalisation of the
    // same (still cached) values. Rows are summed with Eigen (vectorised) and
    // the row sums in double, so that float batches of any size keep their
    // precision; the variance is a second pass over (x - mean), not
    // E[x^2] - mean^2, which cancels catastrophically.
    parallel_for(0, C, detail::channel_grain(M), [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        double sum = 0;
        for (int64_t n = 0; n < N; ++n)
          sum += static_cast<double>(detail::ConstArrayMap<T>(px + (n * C + c) * HW, HW).sum());
        const double mean = sum / double(M);
        double sq = 0;
        const T mean_t = static_cast<T>(mean);
        for (int64_t n = 0; n < N; ++n)
          sq += static_cast<double>((detail::ConstArrayMap<T>(px + (n * C + c) * HW, HW) - mean_t).square().sum());
        const double var = sq / double(M);
        const double invstd = 1.0 / std::sqrt(var + eps);
        pmean[c] = mean_t;
        pinv[c] = static_cast<T>(invstd);
        if (update) {
          rm[c * rms] = static_cast<T>((1.0 - momentum) * double(rm[c * rms]) + momentum * mean);
          rv[c * rvs] = static_cast<T>((1.0 - momentum) * double(rv[c * rvs]) +
                                       momentum * var * double(M) / double(M - 1));
        }
        const T scale = static_cast<T>(double(w[size_t(c)]) * invstd);
        const T shift = static_cast<T>(double(b[size_t(c)]) - mean * double(w[size_t(c)]) * invstd);
        for (int64_t n = 0; n < N; ++n)
          detail::ArrayMap<T>(py + (n * C + c) * HW, HW) =
              detail::ConstArrayMap<T>(px + (n * C + c) * HW, HW) * scale + shift;
      }
    });
    return;
  }

  // Eval: one affine map per channel, planes in parallel.
  std::vector<T> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  const std::vector<T> rm = detail::channel_values(running_mean, C, T(0));
  const std::vector<T> rv = detail::channel_values(running_var, C, T(1));
  for (int64_t c = 0; c < C; ++c) {
    const size_t i = static_cast<size_t>(c);
    const double invstd = 1.0 / std::sqrt(double(rv[i]) + eps);
    pmean[c] = rm[i];
    pinv[c] = static_cast<T>(invstd);
    scale[i] = static_cast<T>(double(w[i]) * invstd);
    shift[i] = static_cast<T>(double(b[i]) - double(rm[i]) * double(w[i]) * invstd);
  }
  parallel_for(0, N * C, detail::channel_grain(HW), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const size_t c = static_cast<size_t>(p % C);
      detail::ArrayMap<T>(py + p * HW, HW) = detail::ConstArrayMap<T>(px + p * HW, HW) * scale[c] + shift[c];
    }
  });
}

// Backward kernel. x, gy: contiguous [N, C, H, W]; save_mean / save_invstd
// from the forward. Writes each of gx (shape of x), gweight and gbias ([C])
// that is defined; weight undefined means 1.
template <typename T>
void batch_norm2d_backward(const Tensor<T>& x, const Tensor<T>& gy, const Tensor<T>& weight,
                           const Tensor<T>& save_mean, const Tensor<T>& save_invstd, bool training,
                           const Tensor<T>& gx, const Tensor<T>& gweight, const Tensor<T>& gbias) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const int64_t M = N * HW;
  const std::vector<T> w = detail::channel_values(weight, C, T(1));
  const T* px = x.data();
  const T* pg = gy.data();
  const T* pmean = save_mean.data();
  const T* pinv = save_invstd.data();
  T* pgx = gx.defined() ? gx.data() : nullptr;
  T* pgw = gweight.defined() ? gweight.data() : nullptr;
  T* pgb = gbias.defined() ? gbias.data() : nullptr;
  // In eval, gx needs no reduction; the sums are needed only for gw, gb and
  // the training gx.
  const bool need_sums = pgw || pgb || (pgx && training);

  parallel_for(0, C, detail::channel_grain(M), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const T mean = pmean[c];
      const double invstd = double(pinv[c]);
      double sum_g = 0, sum_gxc = 0;  // sum(gy), sum(gy * (x - mean))
      if (need_sums) {
        for (int64_t n = 0; n < N; ++n) {
          const int64_t o = (n * C + c) * HW;
          const auto g = detail::ConstArrayMap<T>(pg + o, HW);
          sum_g += static_cast<double>(g.sum());
          sum_gxc += static_cast<double>((g * (detail::ConstArrayMap<T>(px + o, HW) - mean)).sum());
        }
      }
      if (pgb) pgb[c] = static_cast<T>(sum_g);
      if (pgw) pgw[c] = static_cast<T>(sum_gxc * invstd);
      if (!pgx) continue;
      // gx = a * gy + k * x + d. Training (differentiating through the
      // batch mean and variance):
      //   gx = w * invstd * (gy - mean(gy) - xhat * mean(gy * xhat)),
      // xhat = (x - mean) * invstd. Eval: gx = w * invstd * gy.
      const double a = double(w[size_t(c)]) * invstd;
      double k = 0, d = 0;
      if (training) {
        k = -a * invstd * invstd * sum_gxc / double(M);
        d = -a * sum_g / double(M) - k * double(mean);
      }
      const T at = static_cast<T>(a), kt = static_cast<T>(k), dt = static_cast<T>(d);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t o = (n * C + c) * HW;
        if (training)
          detail::ArrayMap<T>(pgx + o, HW) =
              detail::ConstArrayMap<T>(pg + o, HW) * at + detail::ConstArrayMap<T>(px + o, HW) * kt + dt;
        else
          detail::ArrayMap<T>(pgx + o, HW) = detail::ConstArrayMap<T>(pg + o, HW) * at;
      }
    }
  });
}

// BN folded into a convolution's weight and bias (fold_batch_norm below):
// out_weight (a contiguous copy of the convolution weight, output channels
// along out_channel_dim) is scaled in place per output channel, out_bias [C]
// is written. conv_b, bn_weight, bn_bias: [C] or undefined.
template <typename T>
void fold_batch_norm(const Tensor<T>& conv_b, const Tensor<T>& bn_weight, const Tensor<T>& bn_bias,
                     const Tensor<T>& running_mean, const Tensor<T>& running_var, double eps, int out_channel_dim,
                     const Tensor<T>& out_weight, const Tensor<T>& out_bias) {
  const int64_t C = out_weight.size(out_channel_dim);
  const std::vector<T> gamma = detail::channel_values(bn_weight, C, T(1));
  const std::vector<T> beta = detail::channel_values(bn_bias, C, T(0));
  const std::vector<T> mean = detail::channel_values(running_mean, C, T(0));
  const std::vector<T> var = detail::channel_values(running_var, C, T(1));
  const std::vector<T> b0 = detail::channel_values(conv_b, C, T(0));
  std::vector<double> s(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const size_t i = static_cast<size_t>(c);
    s[i] = double(gamma[i]) / std::sqrt(double(var[i]) + eps);
    out_bias.data()[c] = static_cast<T>((double(b0[i]) - double(mean[i])) * s[i] + double(beta[i]));
  }
  // weight viewed as [outer, C, inner]: outer = 1 for dim 0, in-channels for dim 1.
  const int64_t outer = out_channel_dim == 0 ? 1 : out_weight.size(0);
  const int64_t inner = out_weight.numel() / std::max<int64_t>(1, outer * C);
  T* pw = out_weight.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c)
      detail::ArrayMap<T>(pw + (o * C + c) * inner, inner) *= static_cast<T>(s[static_cast<size_t>(c)]);
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct BatchNorm2dForward {
  static constexpr const char* name = "batch_norm2d_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                      const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training, double momentum,
                      double eps, const Tensor<T>& y, const Tensor<T>& save_mean, const Tensor<T>& save_invstd);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::batch_norm2d_forward<T>;
};

struct BatchNorm2dBackward {
  static constexpr const char* name = "batch_norm2d_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& gy, const Tensor<T>& weight, const Tensor<T>& save_mean,
                      const Tensor<T>& save_invstd, bool training, const Tensor<T>& gx, const Tensor<T>& gweight,
                      const Tensor<T>& gbias);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::batch_norm2d_backward<T>;
};

struct FoldBatchNorm {
  static constexpr const char* name = "fold_batch_norm";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& conv_b, const Tensor<T>& bn_weight, const Tensor<T>& bn_bias,
                      const Tensor<T>& running_mean, const Tensor<T>& running_var, double eps, int out_channel_dim,
                      const Tensor<T>& out_weight, const Tensor<T>& out_bias);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::fold_batch_norm<T>;
};

}  // namespace entries

template <typename T>
struct BatchNorm2dBackward : autograd::Node<T> {
  Tensor<T> x, weight;             // x contiguous; weight may be undefined
  Tensor<T> save_mean, save_invstd;
  bool training = true;

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx, gw, gb;
    const int64_t C = x.size(1);
    if (this->needs_input_grad(0)) gx = Tensor<T>::empty(x.shape(), x.device());
    if (this->needs_input_grad(1)) gw = Tensor<T>::empty(Shape{C}, x.device());
    if (this->needs_input_grad(2)) gb = Tensor<T>::empty(Shape{C}, x.device());
    dispatch::call<entries::BatchNorm2dBackward, T>(x.device(), x, g[0].contiguous(), weight, save_mean, save_invstd,
                                                    training, gx, gw, gb);
    return {gx, gw, gb};
  }
  const char* name() const override { return "BatchNorm2dBackward"; }
  void release_saved() override { x = weight = save_mean = save_invstd = Tensor<T>(); }
};

// y = BatchNorm2d(x). x: [N, C, H, W]; weight, bias: [C] or undefined;
// running_mean, running_var: [C] (required in eval, optional in training,
// where they are updated in place).
template <typename T>
Tensor<T> batch_norm2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                       const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training,
                       double momentum = 0.1, double eps = 1e-5) {
  const char* op = "batch_norm2d";
  detail::check_ndim(op, "x", x, 4);
  const int64_t C = x.size(1);
  if (weight.defined()) detail::check_shape(op, "weight", weight, Shape{C});
  if (bias.defined()) detail::check_shape(op, "bias", bias, Shape{C});
  LGH_CHECK(running_mean.defined() == running_var.defined(),
            op << ": running_mean and running_var must both be defined or both undefined");
  if (running_mean.defined()) {
    detail::check_shape(op, "running_mean", running_mean, Shape{C});
    detail::check_shape(op, "running_var", running_var, Shape{C});
    LGH_CHECK(!running_mean.requires_grad() && !running_var.requires_grad(),
              op << ": running_mean / running_var are buffers and must not require grad");
  } else {
    LGH_CHECK(training, op << ": eval mode needs running_mean and running_var (both undefined)");
  }
  LGH_CHECK(eps > 0, op << ": eps must be positive, got " << eps);
  const Device device = detail::common_device<T>(
      op, {{"x", &x}, {"weight", &weight}, {"bias", &bias}, {"running_mean", &running_mean}, {"running_var", &running_var}});
  if (training)
    LGH_CHECK(x.size(0) * x.size(2) * x.size(3) > 1,
              op << ": expected more than 1 value per channel when training, got input of shape "
                 << x.shape().str());

  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(x.shape(), device);
  Tensor<T> save_mean = Tensor<T>::empty(Shape{C}, device);
  Tensor<T> save_invstd = Tensor<T>::empty(Shape{C}, device);
  dispatch::call<entries::BatchNorm2dForward, T>(device, xc, weight, bias, running_mean, running_var, training,
                                                 momentum, eps, y, save_mean, save_invstd);

  if (autograd::needs_grad(x, weight, bias)) {
    auto node = std::make_shared<BatchNorm2dBackward<T>>();
    node->x = xc.detach();
    if (weight.defined()) node->weight = weight.detach();
    node->save_mean = save_mean;
    node->save_invstd = save_invstd;
    node->training = training;
    autograd::record<T>(node, {&x, &weight, &bias}, {&y});
  }
  return y;
}

// A convolution's weight and bias with a batch norm folded in.
template <typename T>
struct FoldedConv {
  Tensor<T> weight;
  Tensor<T> bias;
};

// Folds an eval-mode batch norm into the convolution that feeds it:
//   BN(conv(x; w, b)) = conv(x; w * s, (b - mean) * s + beta),
//   s = gamma / sqrt(var + eps), per output channel.
// conv_w: the convolution weight, output channels along `out_channel_dim`
// (0 for conv2d's [out, in, kh, kw]; 1 for a transposed convolution's
// [in, out, kh, kw]); conv_b: [out] or undefined (no bias); bn_weight / bn_bias:
// [out] or undefined (affine = false). Data-level (not recorded): the result
// is for inference. Returns new tensors; the inputs are not modified.
template <typename T>
FoldedConv<T> fold_batch_norm(const Tensor<T>& conv_w, const Tensor<T>& conv_b, const Tensor<T>& bn_weight,
                              const Tensor<T>& bn_bias, const Tensor<T>& running_mean,
                              const Tensor<T>& running_var, double eps = 1e-5, int out_channel_dim = 0) {
  const char* op = "fold_batch_norm";
  detail::check_defined(op, "conv_w", conv_w);
  LGH_CHECK(conv_w.ndim() >= 1, op << ": 'conv_w' must have at least 1 dimension, got shape "
                                   << conv_w.shape().str());
  LGH_CHECK(out_channel_dim == 0 || out_channel_dim == 1,
            op << ": out_channel_dim must be 0 or 1, got " << out_channel_dim);
  LGH_CHECK(out_channel_dim < conv_w.ndim(),
            op << ": out_channel_dim " << out_channel_dim << " out of range for 'conv_w' of shape "
               << conv_w.shape().str());
  const int64_t C = conv_w.size(out_channel_dim);
  if (conv_b.defined()) detail::check_shape(op, "conv_b", conv_b, Shape{C});
  if (bn_weight.defined()) detail::check_shape(op, "bn_weight", bn_weight, Shape{C});
  if (bn_bias.defined()) detail::check_shape(op, "bn_bias", bn_bias, Shape{C});
  detail::check_shape(op, "running_mean", running_mean, Shape{C});
  detail::check_shape(op, "running_var", running_var, Shape{C});
  LGH_CHECK(eps > 0, op << ": eps must be positive, got " << eps);
  const Device device = detail::common_device<T>(op, {{"conv_w", &conv_w},
                                                      {"conv_b", &conv_b},
                                                      {"bn_weight", &bn_weight},
                                                      {"bn_bias", &bn_bias},
                                                      {"running_mean", &running_mean},
                                                      {"running_var", &running_var}});

  autograd::NoGradGuard no_grad;
  FoldedConv<T> out;
  out.weight = conv_w.detach().clone();
  out.bias = Tensor<T>::empty(Shape{C}, device);
  dispatch::call<entries::FoldBatchNorm, T>(device, conv_b, bn_weight, bn_bias, running_mean, running_var, eps,
                                            out_channel_dim, out.weight, out.bias);
  return out;
}

}  // namespace ops
}  // namespace lgh
