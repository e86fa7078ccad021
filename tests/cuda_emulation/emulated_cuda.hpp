// lgh::cuda on the host emulation (cuda_runtime.h here): the CUDA backend of
// kernels/backend.cuh over the emulated cudaMalloc, and as the CUDA entries
//   * the hand-written kernels that lgh::cuda registers for the data-level
//     methods (tensor_ops.cuh), the elementwise ops (elementwise.cuh), the
//     fused ops (fused_entries.cuh), the loss normalisation
//     (model_entries.cuh) and the eval-mode channel affine
//     (channel_affine.cuh), executed on the CPU through launch_kernel;
//   * for every other descriptor, its CPU loop: emulated device memory is
//     host memory, and the library-backed entries (cuDNN, cuBLAS) have no
//     emulation.
// So a whole model step runs on Device::cuda() here with the real backend,
// allocator and hand-written kernels, and the rest of the ops on the CPU.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend.cuh"
#include "elementwise.cuh"
#include "fused_entries.cuh"
#include "channel_affine.cuh"
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/inference.hpp"
#include "lgh/ops/linear.hpp"
#include "lgh/ops/loss.hpp"
#include "lgh/ops/pooling.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/softmax.hpp"
#include "lgh/optim/adam.hpp"
#include "model_entries.cuh"
#include "tensor_ops.cuh"

namespace lgh_test {

template <typename Op, typename T, typename Fn>
struct CpuLoopEntry;
template <typename Op, typename T, typename... A>
struct CpuLoopEntry<Op, T, void (*)(A...)> {
  static void call(A... a) { Op::template cpu_entry<T>(std::forward<A>(a)...); }
};
template <typename T, typename... Ops>
void register_cpu_loops() {
  (lgh::dispatch::set_entry<Ops, T>(lgh::DeviceType::CUDA,
                                    &CpuLoopEntry<Ops, T, typename Ops::template Fn<T>>::call),
   ...);
}

template <typename T>
void register_library_ops_as_cpu_loops() {
  using namespace lgh::ops::entries;
  register_cpu_loops<T, BinaryForward, SumToShape, Conv2dForward, Conv2dBackwardData, Conv2dBackwardWeight,
                     ConvTranspose2dForward, ConvBiasBackward, BatchNorm2dForward, BatchNorm2dBackward, FoldBatchNorm,
                     LinearForward, LinearBackward, Gemm, MaxPool2dForward, MaxPool2dBackward,
                     UpsampleNearest2xForward, UpsampleNearest2xBackward, ReduceAllForward, ReduceForward,
                     ReduceBackward, ConcatForward, ConcatBackward, SoftmaxForward, SoftmaxBackward,
                     RegressionLossForward, RegressionLossBackward, BackprojectForward, BackprojectBackward,
                     lgh::optim::entries::AdamUpdate>();
}

// Installs the emulated CUDA device once per process.
inline void install_emulated_cuda() {
  static const bool once = [] {
    static lgh::cuda::CudaBackend* backend = new lgh::cuda::CudaBackend();
    lgh::register_backend(lgh::DeviceType::CUDA, backend);
    register_library_ops_as_cpu_loops<float>();
    register_library_ops_as_cpu_loops<double>();
    lgh::cuda::register_tensor_entries();
    lgh::cuda::register_elementwise_entries();
    lgh::cuda::register_fused_entries();
    lgh::cuda::register_model_entries();
    lgh::cuda::register_channel_affine_entries();
    return true;
  }();
  (void)once;
}

}  // namespace lgh_test
