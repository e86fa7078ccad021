// tests/cuda/test_cuda_train.cpp on the host emulation: train::Trainer,
// eval::evaluate and eval::estimate_hand on Device::cuda() with the real CUDA
// backend, caching allocator and hand-written data-level kernels (copies,
// casts, the sums the trainer reads once per log interval), the
// library-backed ops as their CPU loops (emulated_cuda.hpp), against the
// CPU, at a tiny config (the emulated kernels are CPU loops).
#include "emulated_cuda.hpp"

namespace {
struct Install {
  Install() { lgh_test::install_emulated_cuda(); }
};
const Install install;
}  // namespace

#define LGH_TRAIN_TEST_TINY_CONFIG
#include "test_cuda_train.cpp"
