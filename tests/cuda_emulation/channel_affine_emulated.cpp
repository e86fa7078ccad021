// tests/cuda/test_cuda_channel_affine.cu on the host emulation (emulated_cuda.hpp).
#include "emulated_cuda.hpp"

namespace {
struct Install {
  Install() { lgh_test::install_emulated_cuda(); }
};
const Install install;
}  // namespace

#include "test_cuda_channel_affine.cu"
