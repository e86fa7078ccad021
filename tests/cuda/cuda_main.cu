// The main of the GPU test executables: Catch2's session, then SKIPPED
// (lgh_test::kSkipReturnCode, the tests' SKIP_RETURN_CODE) when test cases
// were skipped for want of a device and none failed. Host-only checks in the
// same executable (argument errors of the launchers) still run and can fail.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "cuda_test_utils.cuh"

int main(int argc, char* argv[]) {
  const int failed = Catch::Session().run(argc, argv);
  if (failed == 0 && lgh_test::skipped_for_no_device() > 0) {
    std::printf("SKIPPED: %d GPU test cases need a CUDA device and none is available\n",
                lgh_test::skipped_for_no_device());
    return lgh_test::kSkipReturnCode;
  }
  return failed;
}
