// CUDA entries of the dense layers (lgh/ops/linear.hpp) through cuBLAS:
// Gemm (C = op(A) op(B), row-major), LinearForward (y = x w^T + b) and
// LinearBackward (gx = gy w, gw = gy^T x, gb = column sums of gy).
//
// lgh's matrices are row-major and cuBLAS's column-major; a row-major [M, N]
// matrix is the column-major [N, M] one, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: cuBLAS gets B first, the transposition flags as
// given, and the leading dimensions of the row-major storage.
//
// Precision: float GEMMs run in full float (cuBLAS's default math, no TF32:
// PyTorch's default torch.backends.cuda.matmul.allow_tf32 = False), double in
// double. The bias gradient is reduce_forward's column sum (the CPU order).
#pragma once

#include <cublas_v2.h>

#include <cstdint>

#include "common.cuh"
#include "conv_epilogue.cuh"
#include "handles.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/linear.hpp"
#include "library_checks.cuh"
#include "reduce_softmax.cuh"

namespace lgh {
namespace cuda {

// The cuBLAS arguments of a row-major C[M, N] = op(A) op(B) (A [M, K] or, when
// trans_a, [K, M]; B [K, N] or, when trans_b, [N, K]), unit-tested on the host.
struct GemmArgs {
  bool trans_first = false, trans_second = false;  // cuBLAS's transa, transb
  int m = 0, n = 0, k = 0;                         // cuBLAS's m, n, k
  int ld_first = 0, ld_second = 0, ldc = 0;        // leading dimensions of B, A, C
};

inline GemmArgs gemm_args(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  auto to_int = [op](int64_t v) {
    LGH_CHECK(v >= 0 && v <= 2147483647, op << ": GEMM extent " << v << " exceeds cuBLAS's int range");
    return static_cast<int>(v);
  };
  GemmArgs a;
  a.trans_first = trans_b;
  a.trans_second = trans_a;
  a.m = to_int(N);
  a.n = to_int(M);
  a.k = to_int(K);
  a.ld_first = to_int(std::max<int64_t>(1, trans_b ? K : N));
  a.ld_second = to_int(std::max<int64_t>(1, trans_a ? M : K));
  a.ldc = to_int(std::max<int64_t>(1, N));
  return a;
}

// ---- launcher -------------------------------------------------------------------------

inline cublasStatus_t cublas_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float* alpha, const float* A, int lda, const float* B, int ldb,
                                  const float* beta, float* C, int ldc) {
  return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline cublasStatus_t cublas_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const double* alpha, const double* A, int lda, const double* B, int ldb,
                                  const double* beta, double* C, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// C[M, N] = op(A) op(B), all row-major device arrays of the current device,
// on its current stream (the handle is bound to it). C is overwritten (also
// when K = 0: an empty sum).
template <typename T>
inline void gemm(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, const T* B,
                 T* C) {
  const GemmArgs a = gemm_args(op, trans_a, trans_b, M, N, K);
  if (M == 0 || N == 0) return;
  LGH_CHECK(C && (K == 0 || (A && B)), op << ": null operand of a " << M << "x" << N << "x" << K << " GEMM");
  const cublasHandle_t h = cublas_handle();
  LGH_CUBLAS_OP_CHECK(op, cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  const T one = T(1), zero = T(0);
  LGH_CUBLAS_OP_CHECK(op, cublas_gemm(h, a.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N,
                                      a.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N, a.m, a.n, a.k, &one, B, a.ld_first,
                                      A, a.ld_second, &zero, C, a.ldc));
  int device = 0;
  LGH_CUDA_CHECK(cudaGetDevice(&device));
  sync_if_debug(op, current_cuda_stream(Device::cuda(device)));
}

// ---- entries (the signatures of ops::entries in lgh/ops/linear.hpp) ---------------------
namespace gemm_entries {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor<T>& A, const Tensor<T>& B,
          const Tensor<T>& C) {
  cuda::gemm("gemm", trans_a, trans_b, M, N, K, A.numel() ? A.data() : nullptr, B.numel() ? B.data() : nullptr,
             C.numel() ? C.data() : nullptr);
}

// y[R, out] = x[R, in] w^T, then + b per column.
template <typename T>
void linear_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const Tensor<T>& y) {
  const int64_t out = w.size(0), in = w.size(1), R = x.numel() / std::max<int64_t>(1, in);
  if (R == 0 || out == 0) return;
  cuda::gemm("linear_forward", false, true, R, out, in, x.numel() ? x.data() : nullptr,
             w.numel() ? w.data() : nullptr, y.data());
  if (b.defined())
    cuda::conv_epilogue(y.data(), b.data(), static_cast<const T*>(nullptr), R, out, int64_t(1), false, false,
                        current_cuda_stream(y.device()));
}

template <typename T>
void linear_backward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& gy, const Tensor<T>& gx,
                     const Tensor<T>& gw, const Tensor<T>& gb) {
  const int64_t out = w.size(0), in = w.size(1), R = gy.numel() / std::max<int64_t>(1, out);
  const T* pgy = gy.numel() ? gy.data() : nullptr;
  if (gx.defined()) cuda::gemm("linear_backward", false, false, R, in, out, pgy, w.numel() ? w.data() : nullptr,
                               gx.numel() ? gx.data() : nullptr);
  if (gw.defined()) cuda::gemm("linear_backward", true, false, out, in, R, pgy, x.numel() ? x.data() : nullptr,
                               gw.numel() ? gw.data() : nullptr);
  if (gb.defined())
    cuda::reduce_forward(pgy, int64_t(1), R, out, T(1), gb.numel() ? gb.data() : nullptr,
                         current_cuda_stream(gb.device()));
}

template <typename T>
void register_for() {
  dispatch::set_entry<ops::entries::Gemm, T>(DeviceType::CUDA, &gemm<T>);
  dispatch::set_entry<ops::entries::LinearForward, T>(DeviceType::CUDA, &linear_forward<T>);
  dispatch::set_entry<ops::entries::LinearBackward, T>(DeviceType::CUDA, &linear_backward<T>);
}

}  // namespace gemm_entries

// Installs the GEMM and linear entries for float and double.
inline void register_gemm_entries() {
  gemm_entries::register_for<float>();
  gemm_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
