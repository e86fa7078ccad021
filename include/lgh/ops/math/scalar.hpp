// Scalar functions for the host/device math of the fused ops.
//
// Everything under lgh/ops/math is plain functions on scalars and raw
// pointers, marked LGH_HOST_DEVICE, so that the CPU loops of lgh/ops and the
// CUDA kernels call the very same code: no exceptions, no allocation, no
// standard containers. The overloads below resolve to the C library's
// expf/exp and logf/log, which nvcc provides in device code as well.
#pragma once

#include <math.h>

#include "lgh/core/config.hpp"

namespace lgh {
namespace math {

LGH_HOST_DEVICE inline float exp(float x) { return ::expf(x); }
LGH_HOST_DEVICE inline double exp(double x) { return ::exp(x); }
LGH_HOST_DEVICE inline float log(float x) { return ::logf(x); }
LGH_HOST_DEVICE inline double log(double x) { return ::log(x); }

template <typename T>
LGH_HOST_DEVICE inline T max(T a, T b) {
  return a < b ? b : a;
}

}  // namespace math
}  // namespace lgh
