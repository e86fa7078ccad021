// Status checks of cuBLAS and cuDNN calls that name the op they serve: an
// error reads "cuDNN error CUDNN_STATUS_... in conv2d_forward:
// cudnnConvolutionForward(...)" with the file and line of the call; and the
// debug switch for library calls, which (like launch_kernel's) waits for the
// call's stream under LGH_CUDA_DEBUG_SYNC=1 so that a fault inside the
// library is reported at the op that queued it.
#pragma once

#include <string>

#include "handles.cuh"

#define LGH_CUDNN_OP_CHECK(op, expr) \
  ::lgh::cuda::check_cudnn((expr), (std::string(op) + ": " #expr).c_str(), __FILE__, __LINE__)
#define LGH_CUBLAS_OP_CHECK(op, expr) \
  ::lgh::cuda::check_cublas((expr), (std::string(op) + ": " #expr).c_str(), __FILE__, __LINE__)

namespace lgh {
namespace cuda {

inline void sync_if_debug(const char* op, cudaStream_t stream) {
  if (debug_sync()) check(cudaStreamSynchronize(stream), (std::string("execution of ") + op).c_str(), __FILE__, __LINE__);
}

}  // namespace cuda
}  // namespace lgh
