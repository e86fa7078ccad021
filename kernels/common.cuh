// Shared by every CUDA kernel header: error checking that throws lgh::Error
// with file:line (never exit()), and a debug switch that synchronises after
// every launch so that an asynchronous fault is reported at the launch that
// caused it (set LGH_CUDA_DEBUG_SYNC=1 in the environment).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "lgh/core/error.hpp"

namespace lgh {
namespace cuda {

inline bool debug_sync() {
  static const bool on = [] {
    const char* v = std::getenv("LGH_CUDA_DEBUG_SYNC");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    ::lgh::detail::throw_error(file, line,
                               std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                                   ") in " + what);
}

// Number of CUDA devices (0 when no driver or device is present).
inline int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver/device" error
    return 0;
  }
  return n;
}

inline unsigned blocks_for(int64_t n, unsigned threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace cuda
}  // namespace lgh

#define LGH_CUDA_CHECK(expr) ::lgh::cuda::check((expr), #expr, __FILE__, __LINE__)

// After a kernel launch: report launch errors, and with LGH_CUDA_DEBUG_SYNC
// also the errors of its execution.
#define LGH_CUDA_CHECK_LAUNCH(name)                                             \
  do {                                                                          \
    ::lgh::cuda::check(cudaGetLastError(), "launch of " name, __FILE__, __LINE__); \
    if (::lgh::cuda::debug_sync())                                              \
      ::lgh::cuda::check(cudaDeviceSynchronize(), "execution of " name, __FILE__, __LINE__); \
  } while (0)
