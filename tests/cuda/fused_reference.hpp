// The CPU twins of the fused CUDA kernels, for the GPU tests: thin wrappers
// that run the lgh::ops CPU functions (and lgh::optim::Adam) on std::vector
// data. Compiled by the host compiler in fused_reference.cpp, so the GPU test
// translation unit needs neither Eigen nor the ops headers. Every output is
// pre-filled with kCpuFill before the CPU op runs, so an element the op
// leaves unwritten differs from whatever the GPU side wrote.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lgh/ops/math/gumbel_softmax.hpp"

namespace lgh_test {

constexpr double kCpuFill = -1234.5;

// ---- Gumbel-softmax selector ----
// noise: kind None (soft), Stream (Philox) or Uniforms (a host array).
template <typename T>
void gumbel_softmax_forward_cpu(const std::vector<T>& theta, int64_t J, int64_t K, T inv_tau,
                                const lgh::math::GumbelNoiseSource<T>& noise, std::vector<T>& y_soft,
                                std::vector<T>* y_hard);
// Hard mode through the public op: one-hot of argmax_k theta.
template <typename T>
std::vector<T> gumbel_softmax_hard_cpu(const std::vector<T>& theta, int64_t J, int64_t K);
template <typename T>
std::vector<T> gumbel_softmax_backward_cpu(const std::vector<T>& y_soft, const std::vector<T>& dy, int64_t J,
                                           int64_t K, T inv_tau);

// ---- masked group selection ----
template <typename T>
std::vector<T> group_select_forward_cpu(const std::vector<T>& s, const std::vector<T>& x, int64_t B, int64_t K,
                                        int64_t J, int64_t C, const std::vector<T>& scale);
template <typename T>
void group_select_backward_cpu(const std::vector<T>& s, const std::vector<T>& x, const std::vector<T>& dy, int64_t B,
                               int64_t K, int64_t J, int64_t C, const std::vector<T>& scale, std::vector<T>& ds,
                               std::vector<T>& dx);

// ---- concat + 1x1 fusion (K groups; each vector one group's tensor) ----
template <typename T>
std::vector<std::vector<T>> group_fusion_forward_cpu(const std::vector<std::vector<T>>& features,
                                                     const std::vector<std::vector<T>>& weights,
                                                     const std::vector<std::vector<T>>& biases, int64_t B, int64_t P,
                                                     int64_t H, int64_t W,
                                                     const std::vector<std::vector<T>>* scale = nullptr,
                                                     const std::vector<std::vector<T>>* shift = nullptr,
                                                     bool relu = false);
template <typename T>
void group_fusion_backward_cpu(const std::vector<std::vector<T>>& features, const std::vector<std::vector<T>>& weights,
                               const std::vector<std::vector<T>>& grad_outputs, int64_t B, int64_t P, int64_t H,
                               int64_t W, std::vector<std::vector<T>>& grad_features,
                               std::vector<std::vector<T>>& grad_weights, std::vector<std::vector<T>>& grad_biases);

// ---- soft-argmax with depth (+ Eq. 3 back-projection) ----
template <typename T>
void soft_argmax_depth_forward_cpu(const std::vector<T>& h, const std::vector<T>& dm, const std::vector<T>& beta,
                                   int64_t B, int64_t J, int64_t H, int64_t W, std::vector<T>& uvd,
                                   std::vector<T>& stats);
template <typename T>
std::vector<T> backproject_forward_cpu(const std::vector<T>& uvd, const std::vector<T>& intrinsics,
                                       const std::vector<T>& z_root, const std::vector<T>& s0, int64_t B, int64_t J);
// The gradient reaching uvd from dxyz through Eq. (3).
template <typename T>
std::vector<T> backproject_backward_cpu(const std::vector<T>& uvd, const std::vector<T>& intrinsics,
                                        const std::vector<T>& z_root, const std::vector<T>& s0,
                                        const std::vector<T>& dxyz, int64_t B, int64_t J);
template <typename T>
void soft_argmax_depth_backward_cpu(const std::vector<T>& h, const std::vector<T>& dm, const std::vector<T>& beta,
                                    int64_t B, int64_t J, int64_t H, int64_t W, const std::vector<T>& uvd,
                                    const std::vector<T>& stats, const std::vector<T>& duvd, std::vector<T>& dh,
                                    std::vector<T>& ddm, std::vector<T>& dbeta);

// ---- Adam ----
// A parameter group of the CPU optimiser: its hyper-parameters and its
// parameters' initial values.
struct AdamGroupSpec {
  AdamGroupSpec(std::string name_, double lr_) : name(std::move(name_)), lr(lr_) {}
  std::string name;
  double lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false;
  std::vector<int64_t> sizes;  // elements of each parameter
};
// Runs `grads.size()` steps of lgh::optim::Adam over the groups; grads[step]
// [flat parameter index] is that step's gradient (empty: the parameter has no
// gradient that step). Returns, after the last step, each parameter's value
// and state, flattened in group and parameter order: param, exp_avg,
// exp_avg_sq, max_exp_avg_sq (zeros for non-AMSGrad groups).
template <typename T>
struct AdamResult {
  std::vector<std::vector<T>> param, exp_avg, exp_avg_sq, max_exp_avg_sq;
  std::vector<int64_t> steps;  // the step count of each parameter
};
template <typename T>
AdamResult<T> adam_cpu(const std::vector<AdamGroupSpec>& groups, const std::vector<std::vector<T>>& initial,
                       const std::vector<std::vector<std::vector<T>>>& grads);

}  // namespace lgh_test
