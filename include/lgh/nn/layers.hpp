// Basic layers: Conv2d, ConvTranspose2d, BatchNorm2d, with PyTorch's default
// initialisation (drawn from a caller-supplied Philox engine, so that a model
// is a deterministic function of its seed).
#pragma once

#include <cmath>

#include "lgh/nn/module.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "lgh/ops/conv.hpp"

namespace lgh {
namespace nn {

namespace detail {
// PyTorch's default for conv weights and biases (kaiming_uniform with
// a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
template <typename T>
Tensor<T> default_init(const Shape& s, int64_t fan_in, PhiloxEngine& rng) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return Tensor<T>::uniform(s, -bound, bound, rng);
}
}  // namespace detail

template <typename T>
class Conv2d : public Module<T> {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, PhiloxEngine& rng,
         bool with_bias = true)
      : stride(stride), padding(padding) {
    const int64_t fan_in = in * kernel * kernel;
    weight = this->register_parameter("weight", detail::default_init<T>(Shape{out, in, kernel, kernel}, fan_in, rng));
    if (with_bias) bias = this->register_parameter("bias", detail::default_init<T>(Shape{out}, fan_in, rng));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return ops::conv2d(x, weight, bias, stride, padding); }

  int64_t in_channels() const { return weight.size(1); }
  int64_t out_channels() const { return weight.size(0); }
  int64_t kernel_size() const { return weight.size(2); }

  Tensor<T> weight, bias;
  int64_t stride, padding;
};

// Weight [in, out, k, k] as PyTorch's ConvTranspose2d.
template <typename T>
class ConvTranspose2d : public Module<T> {
 public:
  ConvTranspose2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, PhiloxEngine& rng)
      : stride(stride), padding(padding) {
    const int64_t fan_in = out * kernel * kernel;  // PyTorch computes it from weight.size(1)
    weight = this->register_parameter("weight", detail::default_init<T>(Shape{in, out, kernel, kernel}, fan_in, rng));
    bias = this->register_parameter("bias", detail::default_init<T>(Shape{out}, fan_in, rng));
  }
  Tensor<T> forward(const Tensor<T>& x) const { return ops::conv_transpose2d(x, weight, bias, stride, padding); }

  Tensor<T> weight, bias;
  int64_t stride, padding;
};

// BatchNorm2d (eps 1e-5, momentum 0.1): batch statistics in training (and
// running statistics updated with the unbiased variance), running statistics
// in eval.
template <typename T>
class BatchNorm2d : public Module<T> {
 public:
  explicit BatchNorm2d(int64_t channels) {
    weight = this->register_parameter("weight", Tensor<T>::ones(Shape{channels}));
    bias = this->register_parameter("bias", Tensor<T>::zeros(Shape{channels}));
    running_mean = this->register_buffer("running_mean", Tensor<T>::zeros(Shape{channels}));
    running_var = this->register_buffer("running_var", Tensor<T>::ones(Shape{channels}));
    this->register_counter("num_batches_tracked", &num_batches_tracked);
  }

  Tensor<T> forward(const Tensor<T>& x) {
    if (this->is_training()) ++num_batches_tracked;
    return ops::batch_norm2d(x, weight, bias, running_mean, running_var, this->is_training(), kMomentum, kEps);
  }

  // The eval-mode affine map y = scale * x + shift per channel, as host
  // values. The statistics are copied to the host when they live on a
  // device: callers cache the result (nn/fold.hpp's BnAffine, GroupFusion),
  // so this is a setup cost paid once per parameter change, never inside a
  // training step.
  void eval_affine(std::vector<T>& scale, std::vector<T>& shift) const {
    const int64_t C = weight.numel();
    scale.resize(static_cast<size_t>(C));
    shift.resize(static_cast<size_t>(C));
    const std::vector<T> w = weight.detach().to_vector(), b = bias.detach().to_vector();
    const std::vector<T> m = running_mean.to_vector(), v = running_var.to_vector();
    for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
      const T s = w[c] / std::sqrt(v[c] + T(kEps));
      scale[c] = s;
      shift[c] = b[c] - m[c] * s;
    }
  }

  static constexpr double kMomentum = 0.1;
  static constexpr double kEps = 1e-5;

  Tensor<T> weight, bias, running_mean, running_var;
  int64_t num_batches_tracked = 0;
};

}  // namespace nn
}  // namespace lgh
