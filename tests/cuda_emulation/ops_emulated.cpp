// tests/cuda/test_cuda_ops.cu on the host emulation (cuda_runtime.h here):
// the CUDA device backend over emulated (host) memory and the hand-written
// op entries are installed as lgh_cuda.cu installs them, so the op tests run
// their kernels' indexing, barriers and block sums through the dispatch
// registry against the CPU entries. The cuDNN and cuBLAS entries
// (test_cuda_ops_libs.cu) need the real libraries and are not emulated.
#include "adam_multi.cuh"
#include "backend.cuh"
#include "backproject_op.cuh"
#include "batchnorm.cuh"
#include "broadcast_ops.cuh"
#include "concat.cuh"
#include "conv_epilogue.cuh"
#include "elementwise.cuh"
#include "loss.cuh"
#include "pool_upsample.cuh"
#include "reduce_softmax.cuh"
#include "tensor_ops.cuh"

namespace {

struct EmulatedRegistrar {
  EmulatedRegistrar() {
    using namespace lgh::cuda;
    static CudaBackend* backend = new CudaBackend();
    lgh::register_backend(lgh::DeviceType::CUDA, backend);
    register_tensor_entries();
    register_elementwise_entries();
    register_broadcast_entries();
    register_conv_bias_entries();
    register_batchnorm_entries();
    register_pool_upsample_entries();
    register_concat_entries();
    register_reduce_softmax_entries();
    register_loss_entries();
    register_adam_entries();
    register_backproject_entries();
  }
};
const EmulatedRegistrar registrar;

}  // namespace

#include "test_cuda_ops.cu"
