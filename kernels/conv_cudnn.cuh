// CUDA entries of conv2d and conv_transpose2d (lgh/ops/conv.hpp) through
// cuDNN, forward and backward:
//
//   Conv2dForward          cudnnConvolutionForward, then bias + epilogue
//   Conv2dBackwardData     cudnnConvolutionBackwardData
//   Conv2dBackwardWeight   cudnnConvolutionBackwardFilter (+ the bias's channel sums)
//   ConvTranspose2dForward cudnnConvolutionBackwardData of the adjoint
//                          convolution (its input is dy), then bias + ReLU
//   ConvBiasBackward       channel sums (conv_epilogue.cuh)
//
// The geometry g is always that of a cross-correlation (NCHW, weight [O, C,
// KH, KW]; for a transposed convolution, of the convolution it is the
// adjoint of, whose weight layout [in, out, KH, KW] of PyTorch's
// ConvTranspose2d already is), so one set of descriptors serves all passes.
//
// Algorithms. Each (pass, shape, dtype, math mode, device) asks cuDNN's
// heuristics once (cudnnGet*Algorithm_v7: no trial runs, so the choice does
// not depend on timing noise and costs no memory), and the answer is cached
// (conv_algo_cache.hpp). The backward passes take the best deterministic
// algorithm when one is offered, so a training step is repeatable. The
// workspace is a Storage: it comes from the caching allocator on the current
// stream and returns to it when the call ends, so a steady training step
// does no cudaMalloc for it either.
//
// Precision. Double runs in double. Float convolutions may use TF32 tensor
// cores (cuDNN's default math, as PyTorch's torch.backends.cudnn.allow_tf32
// = True): inputs rounded to a 10-bit mantissa, accumulation in float, so a
// result differs from the CPU's by up to about 1e-3 of the inputs' scale.
// set_conv_tf32(false) (or LGH_CUDA_CONV_TF32=0 in the environment) asks for
// plain FMA math instead (CUDNN_FMA_MATH), as the tests do.
#pragma once

#include <cudnn.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "common.cuh"
#include "conv_algo_cache.hpp"
#include "conv_epilogue.cuh"
#include "handles.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/storage.hpp"
#include "lgh/ops/conv.hpp"
#include "library_checks.cuh"

namespace lgh {
namespace cuda {

// ---- settings ---------------------------------------------------------------------

namespace detail {
inline std::atomic<bool>& conv_tf32_flag() {
  static std::atomic<bool> flag([] {
    const char* v = std::getenv("LGH_CUDA_CONV_TF32");
    return !(v != nullptr && v[0] == '0');
  }());
  return flag;
}
inline std::atomic<size_t>& conv_workspace_limit_bytes() {
  static std::atomic<size_t> limit(size_t(1) << 30);
  return limit;
}
}  // namespace detail

// Whether float convolutions may use TF32 tensor cores (default: yes, as
// PyTorch; LGH_CUDA_CONV_TF32=0 turns it off for the process).
inline bool conv_tf32() { return detail::conv_tf32_flag().load(); }
inline void set_conv_tf32(bool allow) { detail::conv_tf32_flag().store(allow); }

// The largest workspace an algorithm may ask for (default 1 GiB): a faster
// algorithm that needs more is passed over for the next one.
inline size_t conv_workspace_limit() { return detail::conv_workspace_limit_bytes().load(); }
inline void set_conv_workspace_limit(size_t bytes) { detail::conv_workspace_limit_bytes().store(bytes); }

// ---- descriptors ------------------------------------------------------------------

template <typename T>
constexpr cudnnDataType_t cudnn_data_type() {
  return sizeof(T) == sizeof(double) ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
}

// The math a convolution asks cuDNN for: float without TF32 is restricted to
// FMA kernels; float with TF32 and double take the default (which for float
// admits TF32 tensor cores).
template <typename T>
cudnnMathType_t requested_math_type(bool tf32) {
  return sizeof(T) == sizeof(float) && !tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

// The four descriptors of one convolution geometry, destroyed with the object.
template <typename T>
class ConvDescriptors {
 public:
  ConvDescriptors(const char* op, const ops::detail::ConvGeometry& g, bool tf32) : op_(op) {
    try {
      set(op, g, tf32);
    } catch (...) {
      destroy();  // a constructor that throws runs no destructor
      throw;
    }
  }
  ~ConvDescriptors() { destroy(); }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;

  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // the convolution's input and output
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

 private:
  void set(const char* op, const ops::detail::ConvGeometry& g, bool tf32) {
    LGH_CUDNN_OP_CHECK(op, cudnnCreateTensorDescriptor(&x));
    LGH_CUDNN_OP_CHECK(op, cudnnCreateTensorDescriptor(&y));
    LGH_CUDNN_OP_CHECK(op, cudnnCreateFilterDescriptor(&w));
    LGH_CUDNN_OP_CHECK(op, cudnnCreateConvolutionDescriptor(&conv));
    const cudnnDataType_t t = cudnn_data_type<T>();
    LGH_CUDNN_OP_CHECK(op, cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, t, dim(g.N), dim(g.C), dim(g.H), dim(g.W)));
    LGH_CUDNN_OP_CHECK(op,
                       cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, t, dim(g.N), dim(g.O), dim(g.OH), dim(g.OW)));
    LGH_CUDNN_OP_CHECK(op,
                       cudnnSetFilter4dDescriptor(w, t, CUDNN_TENSOR_NCHW, dim(g.O), dim(g.C), dim(g.KH), dim(g.KW)));
    LGH_CUDNN_OP_CHECK(op, cudnnSetConvolution2dDescriptor(conv, dim(g.pad), dim(g.pad), dim(g.stride),
                                                           dim(g.stride), 1, 1, CUDNN_CROSS_CORRELATION, t));
    LGH_CUDNN_OP_CHECK(op, cudnnSetConvolutionMathType(conv, requested_math_type<T>(tf32)));
  }
  void destroy() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
    conv = nullptr;
    w = nullptr;
    x = y = nullptr;
  }
  int dim(int64_t v) const {
    LGH_CHECK(v >= 0 && v <= 2147483647, op_ << ": extent " << v << " exceeds cuDNN's int range");
    return static_cast<int>(v);
  }
  const char* op_;
};

// ---- algorithm choice ---------------------------------------------------------------

namespace detail {

// A candidate is admissible when cuDNN can run it and, for FMA-only math (float
// without TF32), it runs under FMA math: the same check as PyTorch's
// ASSERT_CORRECT_PRECISION, made a filter.
template <typename Perf>
ConvAlgoChoice choose(const char* op, const Perf* perf, int count, bool want_deterministic, bool fma_only) {
  const int i = pick_conv_algo(
      perf, count, conv_workspace_limit(), want_deterministic,
      [fma_only](const Perf& p) {
        return p.status == CUDNN_STATUS_SUCCESS && (!fma_only || p.mathType == CUDNN_FMA_MATH);
      },
      [](const Perf& p) { return p.determinism == CUDNN_DETERMINISTIC; });
  LGH_CHECK(i >= 0, op << ": cuDNN offers no algorithm for this shape within the workspace limit of "
                       << conv_workspace_limit() << " bytes" << (fma_only ? " without TF32" : ""));
  return ConvAlgoChoice{static_cast<int>(perf[i].algo), perf[i].memory, static_cast<int>(perf[i].mathType)};
}

}  // namespace detail

template <typename T>
ConvAlgoChoice conv_algo(const char* op, ConvPass pass, const ops::detail::ConvGeometry& g, bool tf32,
                         const ConvDescriptors<T>& d, cudnnHandle_t h) {
  int device = 0;
  LGH_CUDA_CHECK(cudaGetDevice(&device));
  const ConvAlgoKey key = conv_algo_key(pass, g, device, static_cast<int>(sizeof(T)), tf32);
  const bool fma_only = requested_math_type<T>(tf32) == CUDNN_FMA_MATH;
  return conv_algo_cache().get(key, [&]() -> ConvAlgoChoice {
    int returned = 0;
    switch (pass) {
      case ConvPass::Forward: {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        LGH_CUDNN_OP_CHECK(op, cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y,
                                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                                      perf));
        return detail::choose(op, perf, returned, false, fma_only);
      }
      case ConvPass::BackwardData: {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        LGH_CUDNN_OP_CHECK(op, cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x,
                                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                           &returned, perf));
        return detail::choose(op, perf, returned, true, fma_only);
      }
      case ConvPass::BackwardFilter: {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        LGH_CUDNN_OP_CHECK(op, cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w,
                                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                             &returned, perf));
        return detail::choose(op, perf, returned, true, fma_only);
      }
    }
    LGH_FAIL(op << ": unknown convolution pass");
  });
}

// ---- launchers (device pointers, the current device's handle and stream) -------------

// y = conv(x, w) (overwritten; no bias).
template <typename T>
inline void cudnn_conv_forward(const char* op, const T* x, const T* w, const ops::detail::ConvGeometry& g, T* y,
                               Device device) {
  const bool tf32 = conv_tf32();
  const ConvDescriptors<T> d(op, g, tf32);
  const cudnnHandle_t h = cudnn_handle();
  const ConvAlgoChoice a = conv_algo<T>(op, ConvPass::Forward, g, tf32, d, h);
  // cuDNN runs an algorithm under the descriptor's math type: the one it was chosen with.
  LGH_CUDNN_OP_CHECK(op, cudnnSetConvolutionMathType(d.conv, static_cast<cudnnMathType_t>(a.math_type)));
  Storage ws(a.workspace_bytes, device);
  const T one = T(1), zero = T(0);
  LGH_CUDNN_OP_CHECK(op, cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv,
                                                 static_cast<cudnnConvolutionFwdAlgo_t>(a.algo), ws.data(),
                                                 a.workspace_bytes, &zero, d.y, y));
  sync_if_debug(op, current_cuda_stream(device));
}

// dx = conv^T(dy, w): the input gradient (overwritten).
template <typename T>
inline void cudnn_conv_backward_data(const char* op, const T* dy, const T* w, const ops::detail::ConvGeometry& g,
                                     T* dx, Device device) {
  const bool tf32 = conv_tf32();
  const ConvDescriptors<T> d(op, g, tf32);
  const cudnnHandle_t h = cudnn_handle();
  const ConvAlgoChoice a = conv_algo<T>(op, ConvPass::BackwardData, g, tf32, d, h);
  // cuDNN runs an algorithm under the descriptor's math type: the one it was chosen with.
  LGH_CUDNN_OP_CHECK(op, cudnnSetConvolutionMathType(d.conv, static_cast<cudnnMathType_t>(a.math_type)));
  Storage ws(a.workspace_bytes, device);
  const T one = T(1), zero = T(0);
  LGH_CUDNN_OP_CHECK(op, cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, dy, d.conv,
                                                      static_cast<cudnnConvolutionBwdDataAlgo_t>(a.algo), ws.data(),
                                                      a.workspace_bytes, &zero, d.x, dx));
  sync_if_debug(op, current_cuda_stream(device));
}

// dw = the weight gradient of conv(x, w) for output gradient dy (overwritten).
template <typename T>
inline void cudnn_conv_backward_filter(const char* op, const T* x, const T* dy, const ops::detail::ConvGeometry& g,
                                       T* dw, Device device) {
  const bool tf32 = conv_tf32();
  const ConvDescriptors<T> d(op, g, tf32);
  const cudnnHandle_t h = cudnn_handle();
  const ConvAlgoChoice a = conv_algo<T>(op, ConvPass::BackwardFilter, g, tf32, d, h);
  // cuDNN runs an algorithm under the descriptor's math type: the one it was chosen with.
  LGH_CUDNN_OP_CHECK(op, cudnnSetConvolutionMathType(d.conv, static_cast<cudnnMathType_t>(a.math_type)));
  Storage ws(a.workspace_bytes, device);
  const T one = T(1), zero = T(0);
  LGH_CUDNN_OP_CHECK(op, cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, dy, d.conv,
                                                        static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.algo),
                                                        ws.data(), a.workspace_bytes, &zero, d.w, dw));
  sync_if_debug(op, current_cuda_stream(device));
}

// ---- entries (the signatures of ops::entries in lgh/ops/conv.hpp) ---------------------
namespace conv_entries {

template <typename T>
void conv2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const ops::detail::ConvGeometry& g,
                    const ops::detail::ConvEpilogue<T>& e, const Tensor<T>& y) {
  const Device dev = y.device();
  cudnn_conv_forward("conv2d_forward", x.data(), w.data(), g, y.data(), dev);
  cuda::conv_epilogue(y.data(), b.defined() ? b.data() : static_cast<const T*>(nullptr), e.residual, g.N, g.O,
                      g.OH * g.OW, e.relu, e.relu_after_residual, current_cuda_stream(dev));
}

template <typename T>
void conv2d_backward_data(const Tensor<T>& gy, const Tensor<T>& w, const ops::detail::ConvGeometry& g,
                          const Tensor<T>& gx) {
  cudnn_conv_backward_data("conv2d_backward_data", gy.data(), w.data(), g, gx.data(), gx.device());
}

template <typename T>
void conv2d_backward_weight(const Tensor<T>& x, const Tensor<T>& gy, const ops::detail::ConvGeometry& g,
                            const Tensor<T>& gw, const Tensor<T>& gb) {
  const Device dev = gw.device();
  cudnn_conv_backward_filter("conv2d_backward_weight", x.data(), gy.data(), g, gw.data(), dev);
  if (gb.defined()) cuda::channel_sums(gy.data(), g.N, g.O, g.OH * g.OW, gb.data(), current_cuda_stream(dev));
}

template <typename T>
void conv_transpose2d_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b,
                              const ops::detail::ConvGeometry& g, bool relu, const Tensor<T>& y) {
  const Device dev = y.device();
  cudnn_conv_backward_data("conv_transpose2d_forward", x.data(), w.data(), g, y.data(), dev);
  cuda::conv_epilogue(y.data(), b.defined() ? b.data() : static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                      g.N, g.C, g.H * g.W, relu, false, current_cuda_stream(dev));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::Conv2dForward, T>(DeviceType::CUDA, &conv2d_forward<T>);
  dispatch::set_entry<ops::entries::Conv2dBackwardData, T>(DeviceType::CUDA, &conv2d_backward_data<T>);
  dispatch::set_entry<ops::entries::Conv2dBackwardWeight, T>(DeviceType::CUDA, &conv2d_backward_weight<T>);
  dispatch::set_entry<ops::entries::ConvTranspose2dForward, T>(DeviceType::CUDA, &conv_transpose2d_forward<T>);
}

}  // namespace conv_entries

// Installs the convolution entries (cuDNN, and the hand-written bias
// gradient) for float and double.
inline void register_conv_entries() {
  conv_entries::register_for<float>();
  conv_entries::register_for<double>();
  register_conv_bias_entries();
}

}  // namespace cuda
}  // namespace lgh
