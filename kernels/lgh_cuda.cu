// The one translation unit that compiles lgh's CUDA kernels (the lgh::cuda
// target). Linking it installs, at program start, the CUDA device backend
// (memory, copies, streams), so that tensors can live on Device::cuda(), and
// the CUDA entries of the dispatch registry (core/dispatch.hpp): the
// data-level tensor methods and the ops ported so far. An op without a CUDA
// entry fails on a CUDA tensor with an error naming it.
#include "adam_multi.cuh"
#include "backend.cuh"
#include "backproject_op.cuh"
#include "batchnorm.cuh"
#include "broadcast_ops.cuh"
#include "channel_affine.cuh"
#include "concat.cuh"
#include "conv_cudnn.cuh"
#include "elementwise.cuh"
#include "fused_entries.cuh"
#include "gemm_cublas.cuh"
#include "handles.cuh"
#include "loss.cuh"
#include "model_entries.cuh"
#include "philox.cuh"
#include "pool_upsample.cuh"
#include "reduce_softmax.cuh"
#include "tensor_ops.cuh"

namespace lgh {
namespace cuda {
namespace {

struct Registrar {
  Registrar() {
    static CudaBackend* backend = new CudaBackend();  // lives until exit, like the CPU backend
    register_backend(DeviceType::CUDA, backend);
    register_tensor_entries();
    register_elementwise_entries();
    register_broadcast_entries();
    register_conv_entries();
    register_batchnorm_entries();
    register_gemm_entries();
    register_pool_upsample_entries();
    register_concat_entries();
    register_reduce_softmax_entries();
    register_loss_entries();
    register_adam_entries();
    register_backproject_entries();
    register_fused_entries();
    register_model_entries();
    register_channel_affine_entries();
  }
};
const Registrar registrar;

}  // namespace
}  // namespace cuda
}  // namespace lgh
