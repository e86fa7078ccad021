// Host/device math of the joint-group selector, Eq. (8):
//   S~_jk = softmax_k((theta_jk + g_jk) / tau),   g_jk = -log(-log U_jk).
//
// The uniform of element (j, k) of a J x K selector is U_jk =
// Philox(seed, stream).uniform(j*K + k): a pure function of the element's
// index, so a CPU loop and a CUDA thread draw the same noise and the caller
// only advances `stream` once per training step.
#pragma once

#include <stdint.h>

#include "lgh/core/philox.hpp"
#include "lgh/ops/math/softmax.hpp"

namespace lgh {
namespace math {

// The Gumbel(0, 1) variable of a uniform u in (0, 1).
template <typename T>
LGH_HOST_DEVICE inline T gumbel_from_uniform(T u) {
  return -log(-log(u));
}

// Gumbel noise of element i of a Philox stream. The uniform is the 23-bit one
// (in [2^-24, 1 - 2^-24]) for float and double alike, so a float and a double
// model draw the same noise; it bounds g to about [-2.8, 16.6], which cuts
// probability ~6e-8 off each tail.
template <typename T>
LGH_HOST_DEVICE inline T gumbel_noise_at(const Philox& philox, uint64_t i) {
  return gumbel_from_uniform(static_cast<T>(philox.uniform(i)));
}

// Where the Gumbel noise of a selector comes from: none (soft mode,
// softmax(theta / tau)), a Philox stream, or explicit uniforms laid out like
// theta (tests, and reproducing an outside sampler).
template <typename T>
struct GumbelNoiseSource {
  enum Kind { None = 0, Stream = 1, Uniforms = 2 };
  int kind = None;
  Philox philox;
  const T* uniforms = nullptr;

  LGH_HOST_DEVICE T at(uint64_t i) const {
    if (kind == Stream) return gumbel_noise_at<T>(philox, i);
    if (kind == Uniforms) return gumbel_from_uniform(uniforms[i]);
    return T(0);
  }
};

// Eq. (8) for one row j of the selector: y[k] = softmax_k((theta[k] + g_k) * inv_tau),
// with g_k the noise of element row_base + k. Returns the argmax of the
// logits (lowest k on ties), which is the one-hot of the straight-through
// forward: softmax is monotone, so it is also the argmax of y.
template <typename T>
LGH_HOST_DEVICE inline int gumbel_softmax_row(const T* theta, int K, T inv_tau,
                                              const GumbelNoiseSource<T>& noise, uint64_t row_base, T* y) {
  for (int k = 0; k < K; ++k) y[k] = (theta[k] + noise.at(row_base + static_cast<uint64_t>(k))) * inv_tau;
  const int best = argmax(y, K);
  softmax_inplace(y, K);
  return best;
}

// One-hot row: y[k] = (k == index).
template <typename T>
LGH_HOST_DEVICE inline void one_hot_row(int index, int K, T* y) {
  for (int k = 0; k < K; ++k) y[k] = k == index ? T(1) : T(0);
}

// Backward of Eq. (8) for one row (the noise is a constant of the sample):
//   dtheta_k = (1/tau) * y_k * (dy_k - sum_i dy_i y_i).
template <typename T>
LGH_HOST_DEVICE inline void gumbel_softmax_row_backward(const T* y, const T* dy, int K, T inv_tau, T* dtheta) {
  softmax_backward(y, dy, K, inv_tau, dtheta);
}

}  // namespace math
}  // namespace lgh
