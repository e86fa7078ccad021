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

// conv2d with an epilogue: y = post_relu?(relu?(conv(x) + b) + residual).
template <typename T>
Tensor<T> conv2d_inference(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias, int64_t stride,
                           int64_t padding, bool relu, const Tensor<T>& residual = Tensor<T>(),
                           bool relu_after_residual = false) {
  const char* op = "conv2d_inference";
  detail::check_inference<T>(op, {&input, &weight, &bias, &residual});
  detail::check_cpu<T>(op, {&input, &weight, &bias, &residual});
  const detail::ConvGeometry g = detail::conv2d_geometry(op, input, weight, bias, stride, padding);
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  const Tensor<T> b = bias.defined() ? bias.contiguous() : bias;
  Tensor<T> res;
  if (residual.defined()) {
    detail::check_shape(op, "residual", residual, Shape{g.N, g.O, g.OH, g.OW});
    res = residual.contiguous();
  }
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.O, g.OH, g.OW});
  detail::ConvEpilogue<T> e;
  e.relu = relu;
  e.residual = res.defined() ? res.data() : nullptr;
  e.relu_after_residual = relu_after_residual;
  detail::conv_forward(x.data(), w.data(), b.defined() ? b.data() : static_cast<const T*>(nullptr), y.data(), g, e);
  return y;
}

// conv_transpose2d (weight [in, out, k, k]) with bias and optional ReLU in one pass.
template <typename T>
Tensor<T> conv_transpose2d_inference(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias,
                                     int64_t stride, int64_t padding, bool relu) {
  const char* op = "conv_transpose2d_inference";
  detail::check_inference<T>(op, {&input, &weight, &bias});
  detail::check_cpu<T>(op, {&input, &weight, &bias});
  const detail::ConvGeometry g = detail::conv_transpose2d_geometry(input, weight, bias, stride, padding, 0);
  const Tensor<T> x = input.contiguous(), w = weight.contiguous();
  Tensor<T> y = Tensor<T>::empty(Shape{g.N, g.C, g.H, g.W});
  detail::conv_backward_data(x.data(), w.data(), y.data(), g);
  const Tensor<T> b = bias.defined() ? bias.contiguous() : Tensor<T>::zeros(Shape{g.C});
  const int64_t HW = g.H * g.W;
  T* py = y.data();
  const T* pb = b.data();
  parallel_for(0, g.N * g.C, std::max<int64_t>(1, detail::kElementwiseGrain / std::max<int64_t>(HW, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i) {
                   const T bb = pb[i % g.C];
                   T* p = py + i * HW;
                   if (relu)
                     for (int64_t k = 0; k < HW; ++k) p[k] = std::max(p[k] + bb, T(0));
                   else
                     for (int64_t k = 0; k < HW; ++k) p[k] += bb;
                 }
               });
  return y;
}

// y = relu?(scale[c] * x + shift[c]): an eval-mode batch norm (+ ReLU) that
// cannot be folded into a convolution (it precedes one, across a ReLU).
template <typename T>
Tensor<T> channel_affine_inference(const Tensor<T>& input, const std::vector<T>& scale, const std::vector<T>& shift,
                                   bool relu) {
  const char* op = "channel_affine_inference";
  detail::check_inference<T>(op, {&input});
  detail::check_cpu<T>(op, {&input});
  detail::check_ndim(op, "input", input, 4);
  const int64_t N = input.size(0), C = input.size(1), HW = input.size(2) * input.size(3);
  LGH_CHECK(static_cast<int64_t>(scale.size()) == C && static_cast<int64_t>(shift.size()) == C,
            op << ": " << scale.size() << " scales and " << shift.size() << " shifts for " << C << " channels");
  const Tensor<T> x = input.contiguous();
  Tensor<T> y = Tensor<T>::empty(input.shape());
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
  return y;
}

}  // namespace ops
}  // namespace lgh
