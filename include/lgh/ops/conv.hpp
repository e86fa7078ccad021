// conv2d and conv_transpose2d (NCHW, square stride and padding, no dilation
// or groups: what the model uses), forward and backward; the CPU kernels are
// those of conv_impl.hpp.
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

// y[n, c] += bias[c] (or 0 without a bias), then ReLU when asked.
template <typename T>
void add_channel_bias(T* y, const T* bias, int64_t N, int64_t C, int64_t HW, bool relu) {
  parallel_for(0, N * C, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(HW, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const T b = bias ? bias[i % C] : T(0);
      T* p = y + i * HW;
      if (relu)
        for (int64_t k = 0; k < HW; ++k) p[k] = std::max(p[k] + b, T(0));
      else
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

// ---- CPU kernels ------------------------------------------------------------------
// Every tensor contiguous; shapes as in the geometry g (conv2d_geometry, or
// conv_transpose2d_geometry for the convolution a transposed one is the
// adjoint of). Optional tensors may be undefined. All overwrite their outputs.
namespace cpu {

// y = W * x + b, then the epilogue (ReLU, residual add; e.residual points
// into a tensor shaped like y on the same device).
template <typename T>
void conv2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const detail::ConvGeometry& g,
                    const detail::ConvEpilogue<T>& e, const Tensor<T>& y) {
  detail::conv_forward(x.data(), w.data(), b.defined() ? b.data() : static_cast<const T*>(nullptr), y.data(), g, e);
}

// gx = W^T * gy (the adjoint in x).
template <typename T>
void conv2d_backward_data(const Tensor<T>& gy, const Tensor<T>& w, const detail::ConvGeometry& g,
                          const Tensor<T>& gx) {
  detail::conv_backward_data(gy.data(), w.data(), gx.data(), g);
}

// gw = sum_n gy[n] im2col(x[n])^T and, when defined, gb = sum of gy per channel.
template <typename T>
void conv2d_backward_weight(const Tensor<T>& x, const Tensor<T>& gy, const detail::ConvGeometry& g,
                            const Tensor<T>& gw, const Tensor<T>& gb) {
  detail::conv_backward_weight(x.data(), gy.data(), gw.data(), gb.defined() ? gb.data() : static_cast<T*>(nullptr), g);
}

// The transposed convolution: y = W^T * x + b, then ReLU when asked.
template <typename T>
void conv_transpose2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b,
                              const detail::ConvGeometry& g, bool relu, const Tensor<T>& y) {
  detail::conv_backward_data(x.data(), w.data(), y.data(), g);
  if (b.defined() || relu)
    detail::add_channel_bias(y.data(), b.defined() ? b.data() : static_cast<const T*>(nullptr), g.N, g.C, g.H * g.W,
                             relu);
}

// gb[c] = sum over n, h, w of gy[n, c, h, w] (a transposed convolution's
// bias gradient). gy: [N, C, H, W].
template <typename T>
void conv_bias_backward(const Tensor<T>& gy, const Tensor<T>& gb) {
  detail::channel_sums(gy.data(), gb.data(), gy.size(0), gy.size(1), gy.size(2) * gy.size(3));
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct Conv2dForward {
  static constexpr const char* name = "conv2d_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const detail::ConvGeometry& g,
                      const detail::ConvEpilogue<T>& e, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::conv2d_forward<T>;
};

struct Conv2dBackwardData {
  static constexpr const char* name = "conv2d_backward_data";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& gy, const Tensor<T>& w, const detail::ConvGeometry& g, const Tensor<T>& gx);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::conv2d_backward_data<T>;
};

struct Conv2dBackwardWeight {
  static constexpr const char* name = "conv2d_backward_weight";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& gy, const detail::ConvGeometry& g, const Tensor<T>& gw,
                      const Tensor<T>& gb);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::conv2d_backward_weight<T>;
};

struct ConvTranspose2dForward {
  static constexpr const char* name = "conv_transpose2d_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const detail::ConvGeometry& g,
                      bool relu, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::conv_transpose2d_forward<T>;
};

struct ConvBiasBackward {
  static constexpr const char* name = "conv_bias_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& gy, const Tensor<T>& gb);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::conv_bias_backward<T>;
};

}  // namespace entries

// ---- conv2d -------------------------------------------------------------------

template <typename T>
struct Conv2dBackward : autograd::Node<T> {
  Tensor<T> x, w;
  detail::ConvGeometry g;
  bool has_bias = false;

  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& grads) override {
    const Tensor<T> gy = grads[0].contiguous();
    const Device device = gy.device();
    Tensor<T> gx, gw, gb;
    // Shapes come from the geometry: x and w are saved only when needed.
    if (this->needs_input_grad(0)) {
      gx = Tensor<T>::empty(Shape{g.N, g.C, g.H, g.W}, device);
      dispatch::call<entries::Conv2dBackwardData, T>(device, gy, w, g, gx);
    }
    if (this->needs_input_grad(1) || (has_bias && this->needs_input_grad(2))) {
      gw = Tensor<T>::empty(Shape{g.O, g.C, g.KH, g.KW}, device);
      if (has_bias) gb = Tensor<T>::empty(Shape{g.O}, device);
      dispatch::call<entries::Conv2dBackwardWeight, T>(device, x, gy, g, gw, gb);
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
  const detail::ConvGeometry g = detail::conv2d_geometry("conv2d", input, weight, bias, stride, padding);
  const Device device = detail::common_device<T>("conv2d", {{"input", &input}, {"weight", &weight}, {"bias", &bias}});
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  const Tensor<T> b = bias.defined() ? bias.contiguous() : bias;
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.O, g.OH, g.OW}, device);
  dispatch::call<entries::Conv2dForward, T>(device, x, w, b, g, detail::ConvEpilogue<T>(), y);
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
    const Device device = gy.device();
    Tensor<T> gx, gw, gb;
    // The transposed conv is y = A^T x with A the convolution of geometry g,
    // so gx = A gy (a forward conv of gy) and gW sums x (x) im2col(gy).
    if (this->needs_input_grad(0)) {
      gx = Tensor<T>::empty(Shape{g.N, g.O, g.OH, g.OW}, device);
      dispatch::call<entries::Conv2dForward, T>(device, gy, w, Tensor<T>(), g, detail::ConvEpilogue<T>(), gx);
    }
    if (this->needs_input_grad(1)) {
      gw = Tensor<T>::empty(Shape{g.O, g.C, g.KH, g.KW}, device);
      dispatch::call<entries::Conv2dBackwardWeight, T>(device, gy, x, g, gw, Tensor<T>());
    }
    if (has_bias && this->needs_input_grad(2)) {
      gb = Tensor<T>::empty(Shape{g.C}, device);
      dispatch::call<entries::ConvBiasBackward, T>(device, gy, gb);
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
  const detail::ConvGeometry g =
      detail::conv_transpose2d_geometry(input, weight, bias, stride, padding, output_padding);
  const Device device =
      detail::common_device<T>("conv_transpose2d", {{"input", &input}, {"weight", &weight}, {"bias", &bias}});
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  const Tensor<T> b = bias.defined() ? bias.contiguous() : bias;
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.C, g.H, g.W}, device);
  dispatch::call<entries::ConvTranspose2dForward, T>(device, x, w, b, g, false, y);
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
