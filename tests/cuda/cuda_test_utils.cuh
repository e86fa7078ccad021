// Shared by the GPU tests.
#pragma once

#include <catch2/catch.hpp>

#include "common.cuh"

// Every GPU test starts with this: without a device the test says so and
// passes nothing off as checked.
#define LGH_REQUIRE_DEVICE_OR_SKIP()                                                                 \
  do {                                                                                               \
    if (lgh::cuda::device_count() == 0) {                                                            \
      WARN("no CUDA device available: skipping " << Catch::getResultCapture().getCurrentTestName()); \
      return;                                                                                        \
    }                                                                                                \
  } while (0)
