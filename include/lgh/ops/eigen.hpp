// Eigen, included once for every op header that uses it.
//
// lgh runs Eigen on the host only (in the CPU entries). A CUDA translation
// unit that includes an op header (to register that op's CUDA entries)
// therefore gets Eigen configured host-only too (EIGEN_NO_CUDA), as in every
// other translation unit: Eigen's inline functions are then the same
// everywhere, and nvcc does not compile them as __host__ __device__ code
// (which needs --expt-relaxed-constexpr and warns about Eigen's defaulted
// members). A translation unit that wants Eigen on the device includes
// Eigen itself before any lgh header.
//
// GCC 12 flags Eigen's AVX-512 packet math (the _mm512_undefined_* idiom of
// its own intrinsics headers) as using uninitialised values, a false positive
// fixed in GCC 13; it is silenced here so that real warnings stay visible.
#pragma once

#if defined(__CUDACC__) && !defined(EIGEN_NO_CUDA)
#define EIGEN_NO_CUDA
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
