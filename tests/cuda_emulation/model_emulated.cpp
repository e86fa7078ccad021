// tests/cuda/test_cuda_model.cu on the host emulation: the whole model on
// Device::cuda() with the real CUDA backend and caching allocator, the
// hand-written kernels executed through the emulation and the
// library-backed ops (cuDNN, cuBLAS) as their CPU loops (emulated_cuda.hpp).
#include "emulated_cuda.hpp"

namespace {
struct Install {
  Install() { lgh_test::install_emulated_cuda(); }
};
const Install install;
}  // namespace

#include "test_cuda_model.cu"
