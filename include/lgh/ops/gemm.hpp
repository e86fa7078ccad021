// Single-threaded GEMM on row-major raw pointers. Callers parallelise over
// independent blocks themselves, so no GEMM library's own threading is
// involved.
//
// float, the type of every model computation, runs lgh's own GEMM, whose
// micro-kernel is chosen at run time for the processor (lgh/cpu/sgemm.hpp),
// so that a program compiled for the x86-64 baseline still runs AVX2 or
// AVX-512 code there. Other types (double: the gradient checks) run Eigen's
// blocked kernels, vectorised for whatever the program is compiled for.
#pragma once

#include <cstdlib>
#include <mutex>
#include <new>
#include <type_traits>

#include "lgh/cpu/sgemm.hpp"
#include "lgh/ops/eigen.hpp"

namespace lgh {
namespace ops {
namespace detail {

// Eigen sizes its GEMM blocks from the cache sizes it detects. On virtual
// machines the last-level cache reported is often the whole host's (hundreds
// of MB), far more than one core can use, and blocks sized for it spill: a
// 128x1152x224 float GEMM ran at ~115 GFLOP/s per core that way and at
// ~165 GFLOP/s with the last level capped at the L2 size. Callers split work
// so that each thread runs its own GEMM, so the share of cache a GEMM can
// count on is about one core's L2.
inline void configure_gemm_blocking() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::ptrdiff_t l1 = 0, l2 = 0, l3 = 0;
    Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
    if (l2 > 0 && l3 > l2) Eigen::setCpuCacheSizes(l1, l2, l2);
  });
}

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstMap = Eigen::Map<const RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MutMap = Eigen::Map<RowMajorMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Eigen's GEMM packs blocks of both operands into buffers that its product
// expressions allocate on every call; large ones come from fresh pages, so
// every call paid page faults (8% of a 3x3 convolution's time). This blocking
// hands Eigen per-thread buffers that are allocated once and only grow.
template <typename T>
class ReusedBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  // For the column-major product of `rows` x `cols` with inner size `depth`.
  ReusedBlocking(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth) {
    this->m_mc = rows;
    this->m_nc = cols;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc, Eigen::Index(1));
    this->m_blockA = buffer(0, static_cast<size_t>(this->m_mc * this->m_kc));
    this->m_blockB = buffer(1, static_cast<size_t>(this->m_kc * this->m_nc));
  }

 private:
  struct Arena {
    T* data[2] = {nullptr, nullptr};
    size_t size[2] = {0, 0};
    ~Arena() {
      std::free(data[0]);
      std::free(data[1]);
    }
  };
  static T* buffer(int slot, size_t n) {
    static thread_local Arena arena;
    if (arena.size[slot] < n) {
      std::free(arena.data[slot]);
      const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
      arena.data[slot] = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!arena.data[slot]) throw std::bad_alloc();
      arena.size[slot] = n;
    }
    return arena.data[slot];
  }
};

// C[M,N] (=|+=) op(A) * op(B), where op(A) is [M,K] and op(B) is [K,N].
// A is stored [M,K] (or [K,M] when trans_a), B [K,N] (or [N,K] when trans_b);
// lda/ldb/ldc are the row strides of the stored matrices.
template <typename T>
void eigen_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  using Eigen::ColMajor;
  using Eigen::Index;
  using Eigen::RowMajor;
  if (M == 0 || N == 0) return;
  MutMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (!accumulate) c.setZero();
  if (K == 0) return;
  configure_gemm_blocking();
  // Row-major C is computed as the column-major product C^T = op(B)^T op(A)^T
  // (N x M, inner size K), which is how Eigen runs row-major results.
  ReusedBlocking<T> blocking(N, M, K);
  const T one(1);
  auto run = [&](auto lhs_order, auto rhs_order) {
    Eigen::internal::general_matrix_matrix_product<Index, T, decltype(lhs_order)::value, false, T,
                                                   decltype(rhs_order)::value, false, RowMajor, 1>::run(
        M, N, K, A, lda, B, ldb, C, 1, ldc, one, blocking, nullptr);
  };
  using RM = std::integral_constant<int, RowMajor>;
  using CM = std::integral_constant<int, ColMajor>;
  // A stored row-major [M,K] is op(A) in row-major order; stored [K,M] with
  // trans_a, op(A) = A^T is the same memory read column-major.
  if (!trans_a && !trans_b) run(RM{}, RM{});
  else if (trans_a && !trans_b) run(CM{}, RM{});
  else if (!trans_a && trans_b) run(RM{}, CM{});
  else run(CM{}, CM{});
}

// C[M,N] (=|+=) op(A) * op(B), then the epilogue (lgh::cpu::GemmEpilogue: bias
// per row, ReLU, residual, ReLU), as eigen_gemm; float through
// lgh::cpu::sgemm, which applies the epilogue as it stores each tile, other
// types in a pass after the product.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate, const ::lgh::cpu::GemmEpilogue<T>& epilogue = {}) {
  if constexpr (std::is_same_v<T, float>) {
    ::lgh::cpu::sgemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, epilogue);
  } else {
    eigen_gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    if (epilogue.active())
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = epilogue.finish(i, j, C[i * ldc + j]);
  }
}

}  // namespace detail
}  // namespace ops
}  // namespace lgh
