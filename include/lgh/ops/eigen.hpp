// Eigen, included once for every op header that uses it, with the
// diagnostics its headers raise silenced, so that real warnings stay visible:
//   * GCC 12 flags Eigen's AVX-512 packet math (the _mm512_undefined_* idiom
//     of its own intrinsics headers) as using uninitialised values, a false
//     positive fixed in GCC 13;
//   * nvcc (CUDA 12 and later) warns that the __host__ __device__ marks of
//     Eigen's explicitly defaulted members are ignored (diagnostic 20012),
//     when a CUDA translation unit includes an op header to register its
//     entries.
#pragma once

#if defined(__NVCC__)
#pragma nv_diag_suppress 20012
#endif

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop
#else
#include <Eigen/Core>
#endif

#if defined(__NVCC__)
#pragma nv_diag_default 20012
#endif
