// cuBLAS and cuDNN handles, created once per thread and device and reused
// (creating a handle costs milliseconds; never do it in the hot path). Each
// call returns the current device's handle bound to the thread's current
// stream of that device, so library calls run in the execution model's order.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <map>
#include <string>

#include "common.cuh"

namespace lgh {
namespace cuda {

inline void check_cublas(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    ::lgh::detail::throw_error(file, line, std::string("cuBLAS error ") + std::to_string(static_cast<int>(s)) + " in " + what);
}
inline void check_cudnn(cudnnStatus_t s, const char* what, const char* file, int line) {
  if (s != CUDNN_STATUS_SUCCESS)
    ::lgh::detail::throw_error(file, line, std::string("cuDNN error ") + cudnnGetErrorString(s) + " in " + what);
}

}  // namespace cuda
}  // namespace lgh

#define LGH_CUBLAS_CHECK(expr) ::lgh::cuda::check_cublas((expr), #expr, __FILE__, __LINE__)
#define LGH_CUDNN_CHECK(expr) ::lgh::cuda::check_cudnn((expr), #expr, __FILE__, __LINE__)

namespace lgh {
namespace cuda {

namespace detail {
struct ThreadHandles {
  std::map<int, cublasHandle_t> cublas;
  std::map<int, cudnnHandle_t> cudnn;
  ~ThreadHandles() {
    for (auto& kv : cublas) cublasDestroy(kv.second);
    for (auto& kv : cudnn) cudnnDestroy(kv.second);
  }
};
inline ThreadHandles& thread_handles() {
  static thread_local ThreadHandles h;
  return h;
}
}  // namespace detail

inline cublasHandle_t cublas_handle() {
  int dev = 0;
  LGH_CUDA_CHECK(cudaGetDevice(&dev));
  auto& m = detail::thread_handles().cublas;
  auto it = m.find(dev);
  cublasHandle_t h;
  if (it != m.end()) {
    h = it->second;
  } else {
    LGH_CUBLAS_CHECK(cublasCreate(&h));
    m[dev] = h;
  }
  LGH_CUBLAS_CHECK(cublasSetStream(h, current_cuda_stream(Device::cuda(dev))));
  return h;
}

inline cudnnHandle_t cudnn_handle() {
  int dev = 0;
  LGH_CUDA_CHECK(cudaGetDevice(&dev));
  auto& m = detail::thread_handles().cudnn;
  auto it = m.find(dev);
  cudnnHandle_t h;
  if (it != m.end()) {
    h = it->second;
  } else {
    LGH_CUDNN_CHECK(cudnnCreate(&h));
    m[dev] = h;
  }
  LGH_CUDNN_CHECK(cudnnSetStream(h, current_cuda_stream(Device::cuda(dev))));
  return h;
}

}  // namespace cuda
}  // namespace lgh
