// Inference-only fused kernels (eval mode, no autograd graph): a batch norm
// folded into the preceding convolution, with bias, ReLU and a residual add
// applied in the same pass over the output. They record nothing and refuse
// inputs that would need a gradient.
#pragma once

#include "lgh/ops/conv.hpp"

namespace lgh {
namespace ops {

namespace detail {
template <typename T>
void check_inference(const char* op, std::initializer_list<const Tensor<T>*> ts) {
  for (const Tensor<T>* t : ts)
    LGH_CHECK(!(t && t->defined() && t->requires_grad() && autograd::grad_enabled()),
              op << ": inference-only op called on a tensor that requires grad while grad mode is on "
                    "(use the differentiable ops, or autograd::NoGradGuard)");
}
}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// y = relu?(scale[c] * x + shift[c]). x, y: contiguous [N, C, H, W]; scale,
// shift: C values in host memory.
template <typename T>
void channel_affine(const Tensor<T>& x, const std::vector<T>& scale, const std::vector<T>& shift, bool relu,
                    const Tensor<T>& y) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const T* px = x.data();
  T* py = y.data();
  parallel_for(0, N * C, std::max<int64_t>(1, detail::kElementwiseGrain / std::max<int64_t>(HW, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i) {
                   const T s = scale[static_cast<size_t>(i % C)], t = shift[static_cast<size_t>(i % C)];
                   const T* a = px + i * HW;
                   T* b = py + i * HW;
                   if (relu)
                     for (int64_t k = 0; k < HW; ++k) b[k] = std::max(s * a[k] + t, T(0));
                   else
                     for (int64_t k = 0; k < HW; ++k) b[k] = s * a[k] + t;
                 }
               });
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct ChannelAffine {
  static constexpr const char* name = "channel_affine";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const std::vector<T>& scale, const std::vector<T>& shift, bool relu,
                      const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::channel_affine<T>;
};

}  // namespace entries

// conv2d with an epilogue: y = post_relu?(relu?(conv(x) + b) + residual).
template <typename T>
Tensor<T> conv2d_inference(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias, int64_t stride,
                           int64_t padding, bool relu, const Tensor<T>& residual = Tensor<T>(),
                           bool relu_after_residual = false) {
  const char* op = "conv2d_inference";
  detail::check_inference<T>(op, {&input, &weight, &bias, &residual});
  const detail::ConvGeometry g = detail::conv2d_geometry(op, input, weight, bias, stride, padding);
  const Device device = detail::common_device<T>(
      op, {{"input", &input}, {"weight", &weight}, {"bias", &bias}, {"residual", &residual}});
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  const Tensor<T> b = bias.defined() ? bias.contiguous() : bias;
  Tensor<T> res;
  if (residual.defined()) {
    detail::check_shape(op, "residual", residual, Shape{g.N, g.O, g.OH, g.OW});
    res = residual.contiguous();
  }
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.O, g.OH, g.OW}, device);
  detail::ConvEpilogue<T> e;
  e.relu = relu;
  e.residual = res.defined() ? res.data() : nullptr;
  e.relu_after_residual = relu_after_residual;
  dispatch::call<entries::Conv2dForward, T>(device, x, w, b, g, e, y);
  return y;
}

// conv_transpose2d (weight [in, out, k, k]) with bias and optional ReLU in one pass.
template <typename T>
Tensor<T> conv_transpose2d_inference(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias,
                                     int64_t stride, int64_t padding, bool relu) {
  const char* op = "conv_transpose2d_inference";
  detail::check_inference<T>(op, {&input, &weight, &bias});
  const detail::ConvGeometry g = detail::conv_transpose2d_geometry(input, weight, bias, stride, padding, 0);
  const Device device = detail::common_device<T>(op, {{"input", &input}, {"weight", &weight}, {"bias", &bias}});
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  const Tensor<T> b = bias.defined() ? bias.contiguous() : bias;
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.C, g.H, g.W}, device);
  dispatch::call<entries::ConvTranspose2dForward, T>(device, x, w, b, g, relu, y);
  return y;
}

// y = relu?(scale[c] * x + shift[c]): an eval-mode batch norm (+ ReLU) that
// cannot be folded into a convolution (it precedes one, across a ReLU).
// scale and shift are host values (one per channel).
template <typename T>
Tensor<T> channel_affine_inference(const Tensor<T>& input, const std::vector<T>& scale, const std::vector<T>& shift,
                                   bool relu) {
  const char* op = "channel_affine_inference";
  detail::check_inference<T>(op, {&input});
  detail::check_ndim(op, "input", input, 4);
  const int64_t C = input.size(1);
  LGH_CHECK(static_cast<int64_t>(scale.size()) == C && static_cast<int64_t>(shift.size()) == C,
            op << ": " << scale.size() << " scales and " << shift.size() << " shifts for " << C << " channels");
  const Tensor<T> x = input.contiguous();
  Tensor<T> y = Tensor<T>::empty(input.shape(), input.device());
  if (y.numel() > 0) dispatch::call<entries::ChannelAffine, T>(input.device(), x, scale, shift, relu, y);
  return y;
}

}  // namespace ops
}  // namespace lgh
