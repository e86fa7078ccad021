// Status checks of cuBLAS and cuDNN calls that name the op they serve: an
// error reads "cuDNN error CUDNN_STATUS_... in conv2d_forward:
// cudnnConvolutionForward(...)" with the file and line of the call.
#pragma once

#include <string>

#include "handles.cuh"

#define LGH_CUDNN_OP_CHECK(op, expr) \
  ::lgh::cuda::check_cudnn((expr), (std::string(op) + ": " #expr).c_str(), __FILE__, __LINE__)
#define LGH_CUBLAS_OP_CHECK(op, expr) \
  ::lgh::cuda::check_cublas((expr), (std::string(op) + ": " #expr).c_str(), __FILE__, __LINE__)
