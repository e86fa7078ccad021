// conv2d and conv_transpose2d (NCHW, square stride and padding, no dilation
// or groups: what the model uses), forward and backward on the CPU.
//
//   conv2d:           x [N,C,H,W], weight [O,C,KH,KW], bias [O] (optional)
//                     -> [N,O,(H+2p-KH)/s+1,(W+2p-KW)/s+1]
//   conv_transpose2d: x [N,C,H,W], weight [C,O,KH,KW] (PyTorch's layout), bias [O]
//                     -> [N,O,(H-1)s-2p+KH+op,(W-1)s-2p+KW+op]
#pragma once

#include "lgh/ops/common.hpp"
#include "lgh/ops/conv_impl.hpp"

namespace lgh {
namespace ops {

namespace detail {

template <typename T>
ConvGeometry conv2d_geometry(const char* op, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b,
                             int64_t stride, int64_t padding) {
  check_ndim(op, "input", x, 4);
  check_ndim(op, "weight", w, 4);
  LGH_CHECK(stride >= 1 && padding >= 0, op << ": stride must be >= 1 and padding >= 0, got stride "
                                            << stride << ", padding " << padding);
  LGH_CHECK(x.size(1) == w.size(1), op << ": input " << x.shape().str() << " has " << x.size(1)
                                       << " channels but weight " << w.shape().str() << " expects "
                                       << w.size(1));
  if (b.defined()) check_shape(op, "bias", b, Shape{w.size(0)});
  ConvGeometry g;
  g.N = x.size(0); g.C = x.size(1); g.H = x.size(2); g.W = x.size(3);
  g.O = w.size(0); g.KH = w.size(2); g.KW = w.size(3);
  g.stride = stride; g.pad = padding;
  LGH_CHECK(g.H + 2 * padding >= g.KH && g.W + 2 * padding >= g.KW,
            op << ": kernel " << g.KH << "x" << g.KW << " larger than the padded input " << x.shape().str());
  g.OH = conv_out_size(g.H, g.KH, stride, padding);
  g.OW = conv_out_size(g.W, g.KW, stride, padding);
  return g;
}

// The convolution whose adjoint a transposed convolution is: its input is
// the transposed convolution's output.
template <typename T>
ConvGeometry conv_transpose2d_geometry(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, int64_t stride,
                                       int64_t padding, int64_t output_padding) {
  const char* op = "conv_transpose2d";
  check_ndim(op, "input", x, 4);
  check_ndim(op, "weight", w, 4);
  LGH_CHECK(stride >= 1 && padding >= 0 && output_padding >= 0 && output_padding < stride,
            op << ": need stride >= 1, padding >= 0 and 0 <= output_padding < stride, got stride " << stride
               << ", padding " << padding << ", output_padding " << output_padding);
  LGH_CHECK(x.size(1) == w.size(0), op << ": input " << x.shape().str() << " has " << x.size(1)
                                       << " channels but weight " << w.shape().str() << " expects "
                                       << w.size(0));
  if (b.defined()) check_shape(op, "bias", b, Shape{w.size(1)});
  ConvGeometry g;
  g.N = x.size(0);
  g.O = x.size(1);  // the adjoint conv maps [C=out channels] -> [O=in channels]
  g.OH = x.size(2); g.OW = x.size(3);
  g.C = w.size(1); g.KH = w.size(2); g.KW = w.size(3);
  g.stride = stride; g.pad = padding;
  g.H = (g.OH - 1) * stride - 2 * padding + g.KH + output_padding;
  g.W = (g.OW - 1) * stride - 2 * padding + g.KW + output_padding;
  LGH_CHECK(g.H > 0 && g.W > 0, op << ": output size would be " << g.H << "x" << g.W << " for input "
                                   << x.shape().str());
  return g;
}

template <typename T>
void add_channel_bias(T* y, const T* bias, int64_t N, int64_t C, int64_t HW) {
  parallel_for(0, N * C, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(HW, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const T b = bias[i % C];
      T* p = y + i * HW;
      for (int64_t k = 0; k < HW; ++k) p[k] += b;
    }
  });
}

template <typename T>
void channel_sums(const T* gy, T* gb, int64_t N, int64_t C, int64_t HW) {
  for (int64_t c = 0; c < C; ++c) gb[c] = T(0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* p = gy + (n * C + c) * HW;
      T s = 0;
      for (int64_t k = 0; k < HW; ++k) s += p[k];
      gb[c] += s;
    }
}

}  // namespace detail

// ---- conv2d -------------------------------------------------------------------

template <typename T>
struct Conv2dBackward : autograd::Node<T> {
  Tensor<T> x, w;
  detail::ConvGeometry g;
  bool has_bias = false;

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& grads) override {
    const Tensor<T> gy = grads[0].contiguous();
    Tensor<T> gx, gw, gb;
    // Shapes come from the geometry: x and w are saved only when needed.
    if (this->needs_input_grad(0)) {
      gx = Tensor<T>::empty(Shape{g.N, g.C, g.H, g.W});
      detail::conv_backward_data(gy.data(), w.data(), gx.data(), g);
    }
    if (this->needs_input_grad(1) || (has_bias && this->needs_input_grad(2))) {
      gw = Tensor<T>::empty(Shape{g.O, g.C, g.KH, g.KW});
      if (has_bias) gb = Tensor<T>::empty(Shape{g.O});
      detail::conv_backward_weight(x.data(), gy.data(), gw.data(), has_bias ? gb.data() : nullptr, g);
      if (!this->needs_input_grad(1)) gw = Tensor<T>();
      if (has_bias && !this->needs_input_grad(2)) gb = Tensor<T>();
    }
    return {gx, gw, gb};
  }
  const char* name() const override { return "Conv2dBackward"; }
  void release_saved() override { x = w = Tensor<T>(); }
};

// 2-D convolution (cross-correlation, as PyTorch). `bias` may be undefined.
template <typename T>
Tensor<T> conv2d(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                 int64_t stride = 1, int64_t padding = 0) {
  detail::check_cpu<T>("conv2d", {&input, &weight, &bias});
  const detail::ConvGeometry g = detail::conv2d_geometry("conv2d", input, weight, bias, stride, padding);
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  const Tensor<T> b = bias.defined() ? bias.contiguous() : bias;
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.O, g.OH, g.OW});
  detail::conv_forward(x.data(), w.data(), b.defined() ? b.data() : static_cast<const T*>(nullptr), y.data(), g);
  if (autograd::needs_grad(input, weight, bias)) {
    auto node = std::make_shared<Conv2dBackward<T>>();
    node->g = g;
    node->has_bias = bias.defined();
    // x is needed for the weight gradient, w for the input gradient.
    if (weight.requires_grad() || bias.requires_grad()) node->x = x.detach();
    if (input.requires_grad()) node->w = w.detach();
    autograd::record<T>(node, {&input, &weight, &bias}, {&y});
  }
  return y;
}

// ---- conv_transpose2d -----------------------------------------------------------

template <typename T>
struct ConvTranspose2dBackward : autograd::Node<T> {
  Tensor<T> x, w;
  detail::ConvGeometry g;  // of the adjoint convolution (see conv_transpose2d_geometry)
  bool has_bias = false;

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& grads) override {
    const Tensor<T> gy = grads[0].contiguous();
    Tensor<T> gx, gw, gb;
    // The transposed conv is y = A^T x with A the convolution of geometry g,
    // so gx = A gy (a forward conv of gy) and gW sums x (x) im2col(gy).
    if (this->needs_input_grad(0)) {
      gx = Tensor<T>::empty(Shape{g.N, g.O, g.OH, g.OW});
      detail::conv_forward(gy.data(), w.data(), static_cast<const T*>(nullptr), gx.data(), g);
    }
    if (this->needs_input_grad(1)) {
      gw = Tensor<T>::empty(Shape{g.O, g.C, g.KH, g.KW});
      detail::conv_backward_weight(gy.data(), x.data(), gw.data(), static_cast<T*>(nullptr), g);
    }
    if (has_bias && this->needs_input_grad(2)) {
      gb = Tensor<T>::empty(Shape{g.C});
      detail::channel_sums(gy.data(), gb.data(), g.N, g.C, g.H * g.W);
    }
    return {gx, gw, gb};
  }
  const char* name() const override { return "ConvTranspose2dBackward"; }
  void release_saved() override { x = w = Tensor<T>(); }
};

// Transposed 2-D convolution (the adjoint of conv2d in its input), PyTorch's
// ConvTranspose2d with weight [in, out, KH, KW].
template <typename T>
Tensor<T> conv_transpose2d(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                           int64_t stride = 1, int64_t padding = 0, int64_t output_padding = 0) {
  detail::check_cpu<T>("conv_transpose2d", {&input, &weight, &bias});
  const detail::ConvGeometry g =
      detail::conv_transpose2d_geometry(input, weight, bias, stride, padding, output_padding);
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.C, g.H, g.W});
  detail::conv_backward_data(x.data(), w.data(), y.data(), g);
  if (bias.defined()) {
    const Tensor<T> b = bias.contiguous();
    detail::add_channel_bias(y.data(), b.data(), g.N, g.C, g.H * g.W);
  }
  if (autograd::needs_grad(input, weight, bias)) {
    auto node = std::make_shared<ConvTranspose2dBackward<T>>();
    node->g = g;
    node->has_bias = bias.defined();
    if (weight.requires_grad()) node->x = x.detach();
    if (input.requires_grad()) node->w = w.detach();
    autograd::record<T>(node, {&input, &weight, &bias}, {&y});
  }
  return y;
}

}  // namespace ops
}  // namespace lgh
