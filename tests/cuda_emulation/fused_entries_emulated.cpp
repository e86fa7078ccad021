// tests/cuda/test_cuda_fused_entries.cu on the host emulation, with the
// emulated lgh::cuda of emulated_cuda.hpp: the public ops run on
// Device::cuda() with their kernels executed on the CPU.
#include "emulated_cuda.hpp"

namespace {
struct Install {
  Install() { lgh_test::install_emulated_cuda(); }
};
const Install install;
}  // namespace

#include "test_cuda_fused_entries.cu"
