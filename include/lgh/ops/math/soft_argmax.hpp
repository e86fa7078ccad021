// Host/device math of the soft-argmax with depth (the 2.5D recovery of each
// group, DESIGN §2): for one (b, j) with logits z_i = beta * h_i over the H*W
// pixels i = (y, x),
//   p_i = exp(z_i) / sum_l exp(z_l),
//   u = sum_i p_i x_i,   v = sum_i p_i y_i,   d = sum_i p_i dm_i.
//
// The forward is one pass with an online softmax: SoftArgmaxState keeps the
// running maximum m of the logits and every running sum relative to it,
//   s = sum exp(z_i - m), sx = sum exp(z_i - m) x_i, sy = ..., sd = ...,
// rescaling them by exp(m_old - m_new) when a larger logit arrives. merge()
// combines two partial states (disjoint pixel sets) the same way; it is what a
// CUDA block reduction uses, and what the CPU uses to combine image rows.
// The backward recomputes p_i from the saved (m, s); see docs/fused_ops.md.
#pragma once

#include <stdint.h>

#include "lgh/ops/math/scalar.hpp"

namespace lgh {
namespace math {

// A plain aggregate (so that CUDA can hold it in shared memory): value-
// initialise it, SoftArgmaxState<T> st{}, for the empty state.
template <typename T>
struct SoftArgmaxState {
  T m;   // running maximum of the logits (meaningless while s == 0)
  T s;   // sum of exp(z - m); 0 means "no pixel yet", else >= 1
  T sx;  // sum of exp(z - m) * x
  T sy;  // sum of exp(z - m) * y
  T sd;  // sum of exp(z - m) * depth

  // Adds pixel (x, y) with logit z and depth value dm.
  LGH_HOST_DEVICE void push(T z, T x, T y, T dm) {
    if (s == T(0)) {
      m = z;
      s = T(1);
      sx = x;
      sy = y;
      sd = dm;
    } else if (z > m) {
      // New maximum: rescale what was accumulated relative to the old one.
      const T c = exp(m - z);
      s = s * c + T(1);
      sx = sx * c + x;
      sy = sy * c + y;
      sd = sd * c + dm;
      m = z;
    } else {
      const T e = exp(z - m);
      s += e;
      sx += e * x;
      sy += e * y;
      sd += e * dm;
    }
  }

  // Adds the pixels of another state: the state with the smaller maximum is
  // rescaled by exp(m_small - m_large) <= 1.
  LGH_HOST_DEVICE void merge(const SoftArgmaxState& o) {
    if (o.s == T(0)) return;
    if (s == T(0)) {
      *this = o;
      return;
    }
    if (o.m > m) {
      const T c = exp(m - o.m);
      s = s * c + o.s;
      sx = sx * c + o.sx;
      sy = sy * c + o.sy;
      sd = sd * c + o.sd;
      m = o.m;
    } else {
      const T c = exp(o.m - m);
      s += o.s * c;
      sx += o.sx * c;
      sy += o.sy * c;
      sd += o.sd * c;
    }
  }

  // (u, v, d) = the softmax expectations of x, y and depth.
  LGH_HOST_DEVICE void result(T* uvd) const {
    const T inv = T(1) / s;
    uvd[0] = sx * inv;
    uvd[1] = sy * inv;
    uvd[2] = sd * inv;
  }
};

// The state of a run of n >= 1 pixels of image row y starting at column x0
// (h, dm: n contiguous values): the run's maximum first, then the sums, so
// the run costs one exp per pixel and needs no rescaling inside it. The CPU
// takes whole rows (x0 = 0, n = W); a CUDA thread takes the few pixels of one
// vector load. Merging the runs in any order gives the whole map.
template <typename T>
LGH_HOST_DEVICE inline SoftArgmaxState<T> soft_argmax_span_state(const T* h, const T* dm, int64_t n, T beta, T x0,
                                                                 T y) {
  SoftArgmaxState<T> st{};
  if (n <= 0) return st;
  T m = beta * h[0];
  for (int64_t x = 1; x < n; ++x) m = max(m, beta * h[x]);
  T s = T(0), sx = T(0), sd = T(0);
  for (int64_t x = 0; x < n; ++x) {
    const T e = exp(beta * h[x] - m);
    s += e;
    sx += e * (x0 + static_cast<T>(x));
    sd += e * dm[x];
  }
  st.m = m;
  st.s = s;
  st.sx = sx;
  st.sy = s * y;
  st.sd = sd;
  return st;
}

// The state of one whole image row y (W pixels, contiguous).
template <typename T>
LGH_HOST_DEVICE inline SoftArgmaxState<T> soft_argmax_row_state(const T* h, const T* dm, int64_t W, T beta, T y) {
  return soft_argmax_span_state(h, dm, W, beta, T(0), y);
}

// What the backward of one (b, j) needs besides the pixels: the forward's
// beta, max and 1/sum (to recompute p_i), the output gradient and
// dot = du*u + dv*v + dd*d.
template <typename T>
struct SoftArgmaxBackwardCoeffs {
  T beta, m, inv_s;
  T du, dv, dd;
  T dot;
};

template <typename T>
LGH_HOST_DEVICE inline SoftArgmaxBackwardCoeffs<T> soft_argmax_backward_coeffs(T beta, T m, T s, const T* uvd,
                                                                               const T* duvd) {
  SoftArgmaxBackwardCoeffs<T> c;
  c.beta = beta;
  c.m = m;
  c.inv_s = T(1) / s;
  c.du = duvd[0];
  c.dv = duvd[1];
  c.dd = duvd[2];
  c.dot = duvd[0] * uvd[0] + duvd[1] * uvd[1] + duvd[2] * uvd[2];
  return c;
}

// Backward at pixel (x, y) with heatmap value h and depth value dm:
//   p = exp(beta h - m) / s,  g = du x + dv y + dd dm,  ds = p (g - dot),
//   dh = beta ds,  ddm = dd p;  returns h ds, this pixel's share of dbeta.
template <typename T>
LGH_HOST_DEVICE inline T soft_argmax_backward_point(const SoftArgmaxBackwardCoeffs<T>& c, T h, T dm, T x, T y,
                                                    T* dh, T* ddm) {
  const T p = exp(c.beta * h - c.m) * c.inv_s;
  const T ds = p * (c.du * x + c.dv * y + c.dd * dm - c.dot);
  *dh = c.beta * ds;
  *ddm = c.dd * p;
  return h * ds;
}

}  // namespace math
}  // namespace lgh
