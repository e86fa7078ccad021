// The one translation unit that compiles lgh's CUDA kernels (the lgh::cuda
// target). Linking it installs the CUDA device backend at program start, so
// that tensors can live on Device::cuda().
#include "backend.cuh"
#include "handles.cuh"
#include "philox.cuh"

namespace lgh {
namespace cuda {
namespace {

struct Registrar {
  Registrar() {
    static CudaBackend* backend = new CudaBackend();  // lives until exit, like the CPU backend
    register_backend(DeviceType::CUDA, backend);
  }
};
const Registrar registrar;

}  // namespace
}  // namespace cuda
}  // namespace lgh
