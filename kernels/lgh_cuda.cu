// The one translation unit that compiles lgh's CUDA kernels (the lgh::cuda
// target). Linking it installs, at program start, the CUDA device backend
// (memory, copies, streams), so that tensors can live on Device::cuda(), and
// the CUDA entries of the dispatch registry (core/dispatch.hpp): the
// data-level tensor methods and the ops ported so far. An op without a CUDA
// entry fails on a CUDA tensor with an error naming it.
#include "backend.cuh"
#include "elementwise.cuh"
#include "handles.cuh"
#include "philox.cuh"
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
  }
};
const Registrar registrar;

}  // namespace
}  // namespace cuda
}  // namespace lgh
