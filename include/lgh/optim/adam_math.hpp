// The per-element Adam update (Kingma & Ba 2015; AMSGrad of Reddi et al.
// 2018), written once for the CPU loop of lgh::optim::Adam and the fused
// multi-tensor CUDA kernel.
//
// It reproduces PyTorch 1.13's torch.optim.Adam (the default single-tensor,
// non-fused path) operation by operation, so that float32 runs agree with it
// to the last bit or so:
//
//   step scalars, in double, once per (group, step count t):
//     bias_correction1 = 1 - beta1^t
//     bias_correction2 = 1 - beta2^t
//     step_size        = lr / bias_correction1
//   then rounded to T, as PyTorch rounds a Python number to the tensor's type.
//
//   per element, each line rounded to T:
//     g  = fma(weight_decay, p, g)               (only when weight_decay != 0)
//     m  = beta1 * m;  m = fma(1 - beta1, g, m)
//     v  = beta2 * v;  v = fma((1 - beta2) * g, g, v)
//     vmax = max(vmax, v)                          (amsgrad; NaN propagates)
//     denom = sqrt(v or vmax) / sqrt(bias_correction2);  denom = denom + eps
//     p  = p + ((-step_size) * m) / denom
//
// The fused multiply-adds are explicit because PyTorch's CPU kernels compute
// `add(alpha=)` and `addcmul` with FMA instructions (vectorised and scalar
// paths alike); spelling them out also makes the result independent of the
// compiler's floating-point contraction settings, so the CPU and GPU builds
// agree and a resumed run repeats an uninterrupted one bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "lgh/core/config.hpp"

namespace lgh {
namespace optim {

// The per-step constants of one Adam update, already rounded to T. Computed on
// the host by adam_step_scalars() and passed by value to the kernels.
template <typename T>
struct AdamScalars {
  T beta1 = T(0);
  T one_minus_beta1 = T(0);
  T beta2 = T(0);
  T one_minus_beta2 = T(0);
  T weight_decay = T(0);  // 0 skips the decay term entirely, as PyTorch does
  T eps = T(0);
  T bias_correction2_sqrt = T(1);
  T neg_step_size = T(0);  // -lr / (1 - beta1^t)
};

// Hyper-parameters and the step count t >= 1 (after incrementing) to the
// rounded per-step constants, in the order PyTorch computes them.
template <typename T>
inline AdamScalars<T> adam_step_scalars(double lr, double beta1, double beta2, double eps,
                                        double weight_decay, int64_t step) {
  // PyTorch evaluates these in Python floats (double), with the step count
  // read back from its state tensor.
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1.0 - std::pow(beta1, t);
  const double bias_correction2 = 1.0 - std::pow(beta2, t);
  const double step_size = lr / bias_correction1;
  AdamScalars<T> s;
  s.beta1 = static_cast<T>(beta1);
  s.one_minus_beta1 = static_cast<T>(1.0 - beta1);
  s.beta2 = static_cast<T>(beta2);
  s.one_minus_beta2 = static_cast<T>(1.0 - beta2);
  s.weight_decay = static_cast<T>(weight_decay);
  s.eps = static_cast<T>(eps);
  s.bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  s.neg_step_size = static_cast<T>(-step_size);
  return s;
}

namespace detail {

LGH_HOST_DEVICE inline float adam_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
LGH_HOST_DEVICE inline double adam_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
LGH_HOST_DEVICE inline float adam_sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}
LGH_HOST_DEVICE inline double adam_sqrt(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}
// IEEE division even under nvcc's -prec-div=false / --use_fast_math.
LGH_HOST_DEVICE inline float adam_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
LGH_HOST_DEVICE inline double adam_div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

}  // namespace detail

// One element of the update, in place. `max_exp_avg_sq` is null unless the
// group uses AMSGrad. The gradient is read, never written.
template <typename T>
LGH_HOST_DEVICE inline void adam_update(T& param, T grad, T& exp_avg, T& exp_avg_sq, T* max_exp_avg_sq,
                                        const AdamScalars<T>& s) {
  T g = grad;
  // L2 penalty folded into the gradient (Adam's weight_decay, not AdamW's).
  if (s.weight_decay != T(0)) g = detail::adam_fma(s.weight_decay, param, g);

  // First and second moment running averages. Two roundings each: PyTorch
  // runs mul_ and then add_/addcmul_ as separate kernels.
  T m = s.beta1 * exp_avg;
  m = detail::adam_fma(s.one_minus_beta1, g, m);
  T v = s.beta2 * exp_avg_sq;
  v = detail::adam_fma(s.one_minus_beta2 * g, g, v);
  exp_avg = m;
  exp_avg_sq = v;

  T second = v;
  if (max_exp_avg_sq) {
    // torch.maximum: the larger, or NaN when either is NaN.
    const T old = *max_exp_avg_sq;
    const T mx = (old != old) ? old : (old > v ? old : v);
    *max_exp_avg_sq = mx;
    second = mx;
  }

  T denom = detail::adam_div(detail::adam_sqrt(second), s.bias_correction2_sqrt);
  denom = denom + s.eps;
  // addcdiv_(m, denom, value=-step_size): self + value * t1 / t2, left to right.
  param = param + detail::adam_div(s.neg_step_size * m, denom);
}

// The update over a contiguous run of n elements (the inner loop of the CPU
// pass; a CUDA kernel calls adam_update per element instead).
template <typename T>
inline void adam_update_range(T* LGH_RESTRICT param, const T* LGH_RESTRICT grad, T* LGH_RESTRICT exp_avg,
                              T* LGH_RESTRICT exp_avg_sq, T* LGH_RESTRICT max_exp_avg_sq, int64_t n,
                              const AdamScalars<T>& s) {
  if (max_exp_avg_sq) {
    for (int64_t i = 0; i < n; ++i) adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], max_exp_avg_sq + i, s);
  } else {
    for (int64_t i = 0; i < n; ++i)
      adam_update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], static_cast<T*>(nullptr), s);
  }
}

}  // namespace optim
}  // namespace lgh
