// The GPU tests' skip rule, in host C++ (included by cuda_test_utils.cuh, and
// by GPU tests written as host code, which cannot include the kernels'
// headers).
#pragma once

#include <catch2/catch.hpp>
#include <cuda_runtime.h>

namespace lgh_test {

// The exit code ctest reads as SKIPPED (SKIP_RETURN_CODE): cuda_main.cu
// returns it when test cases were skipped for want of a device and nothing
// failed, so a run without a GPU never reads as passed.
constexpr int kSkipReturnCode = 77;

// Test cases that found no device (counted by LGH_REQUIRE_DEVICE_OR_SKIP).
inline int& skipped_for_no_device() {
  static int n = 0;
  return n;
}

// CUDA devices visible here (0 without a driver or device).
inline int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver/device" error
    return 0;
  }
  return n;
}

}  // namespace lgh_test

// Every GPU test starts with this: without a device the test says so, is
// counted as skipped, and passes nothing off as checked.
#define LGH_REQUIRE_DEVICE_OR_SKIP()                                                                 \
  do {                                                                                               \
    if (lgh_test::cuda_device_count() == 0) {                                                        \
      WARN("no CUDA device available: skipping " << Catch::getResultCapture().getCurrentTestName()); \
      ++lgh_test::skipped_for_no_device();                                                           \
      return;                                                                                        \
    }                                                                                                \
  } while (0)
