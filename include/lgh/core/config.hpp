// Compile-time configuration shared by every lgh header.
//
// LGH_HOST_DEVICE marks the per-element math that both the CPU loops and the
// CUDA kernels call, so that the CPU tests verify the GPU math too. It is empty
// unless the translation unit is compiled by nvcc.
#pragma once

#if defined(__CUDACC__)
#define LGH_HOST_DEVICE __host__ __device__
#define LGH_DEVICE_COMPILE 1
#else
#define LGH_HOST_DEVICE
#define LGH_DEVICE_COMPILE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LGH_LIKELY(x) __builtin_expect(!!(x), 1)
#define LGH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LGH_RESTRICT __restrict__
#else
#define LGH_LIKELY(x) (x)
#define LGH_UNLIKELY(x) (x)
#define LGH_RESTRICT
#endif

#define LGH_VERSION_MAJOR 0
#define LGH_VERSION_MINOR 1
#define LGH_VERSION_PATCH 0
#define LGH_VERSION_STRING "0.1.0"
