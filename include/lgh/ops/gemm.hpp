// Single-threaded GEMM on row-major raw pointers through Eigen's blocked
// kernels (which use AVX2/AVX-512 when compiled for them). Callers
// parallelise over independent blocks themselves, so Eigen's own threading
// (OpenMP) is never involved.
#pragma once

#include <Eigen/Core>

namespace lgh {
namespace ops {
namespace detail {

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MutMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// C[M,N] (=|+=) op(A) * op(B), where op(A) is [M,K] and op(B) is [K,N].
// A is stored [M,K] (or [K,M] when trans_a), B [K,N] (or [N,K] when trans_b);
// lda/ldb/ldc are the row strides of the stored matrices.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  MutMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (!accumulate) c.setZero();
    return;
  }
  const ConstMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  const ConstMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  // Four explicit cases so that Eigen sees plain (transposed) maps and picks
  // its GEMM kernel without temporaries.
  if (!trans_a && !trans_b) {
    if (accumulate) c.noalias() += a * b; else c.noalias() = a * b;
  } else if (trans_a && !trans_b) {
    if (accumulate) c.noalias() += a.transpose() * b; else c.noalias() = a.transpose() * b;
  } else if (!trans_a && trans_b) {
    if (accumulate) c.noalias() += a * b.transpose(); else c.noalias() = a * b.transpose();
  } else {
    if (accumulate) c.noalias() += a.transpose() * b.transpose(); else c.noalias() = a.transpose() * b.transpose();
  }
}

}  // namespace detail
}  // namespace ops
}  // namespace lgh
