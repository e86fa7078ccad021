// Single-precision GEMM, C[M,N] (=|+=) op(A)[M,K] op(B)[K,N] on row-major
// raw pointers, single-threaded (callers split the work over threads), with
// the inner kernel chosen at run time (lgh/cpu/isa.hpp).
//
// The convolutions and linear layers spend most of their time here, and a
// header-only library is compiled with the consumer's flags, usually the
// x86-64 baseline: a GEMM written for the compiler's vector width (as Eigen's
// is) would then run 4-wide without FMA on processors that have 16-wide FMA.
// So the one part whose speed depends on the instruction set, the
// micro-kernel, exists once per variant, each compiled for its instructions
// with a target attribute; the packing and loops around it are plain C++.
//
// Method (Goto and van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication", ACM TOMS 34(3), 2008, the loop order of their Fig. 8 as
// in BLIS): for each block of KC rows of op(B) and NC of its columns, the
// block is cut into panels of NR columns (k-major: the NR values of one k
// contiguous); for each block of MC rows of op(A), those rows are packed into
// panels of MR rows (the MR values of one k contiguous); the micro-kernel
// then computes an MR x NR tile of C from one A panel and one B panel, its
// accumulators held in registers for all KC steps. An untransposed B (the
// im2col and Winograd matrices) already has its panels' rows contiguous, so
// its full panels are read in place rather than copied; a transposed B and
// the partial last panel are packed. Packing pads panels with zeros, so the
// kernels always run full tiles and only their stores are masked at the
// edges of C.
//
//   variant   MR x NR   accumulators            per k
//   avx512    8 x 32    16 zmm                  2 loads, 8 broadcasts, 16 FMA
//   avx2      6 x 16    12 ymm                  2 loads, 6 broadcasts, 12 FMA
//   sse2      4 x 8      8 xmm                  2 loads, 4 broadcasts, 8 mul + 8 add
//
// Each sum over k runs in order within a KC block and the blocks' partial
// sums are added to C in order, so the variants differ only by rounding (FMA
// rounds once, SSE2's multiply-add twice): results agree to a few ulp of the
// sum of |a||b| (tests/cpu/test_cpu.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "lgh/core/config.hpp"
#include "lgh/cpu/isa.hpp"

#if LGH_CPU_X86_DISPATCH || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace lgh {
namespace cpu {
namespace detail {

// Block sizes. KC: a KC x NR panel of B (32 KB at 32 columns) and a KC x MR
// panel of A stay in L1 while the kernel runs. MC: the packed MC x KC block
// of A (192 KB) stays in L2. NC: the KC x NC block of B (1 MB; packed only
// when B is transposed) in the L2/L3. The convolutions pass N of a few
// hundred columns, so one B block.
constexpr int64_t kSgemmKC = 256;
constexpr int64_t kSgemmMC = 192;  // a multiple of every MR (8, 6, 4)
constexpr int64_t kSgemmNC = 1024;  // a multiple of every NR (32, 16, 8)

// A micro-kernel: c[0..m, 0..n] (row stride ldc) (=|+=) the product of the
// packed panel a (kc x MR) and the panel b (kc x NR, its rows ldb apart);
// m <= MR, n <= NR.
using SgemmKernel = void (*)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                             int64_t m, int64_t n, bool accumulate);

// ---- the baseline kernel: SSE2 on x86-64, plain C++ elsewhere ----------------

#if LGH_CPU_X86_DISPATCH || defined(__SSE2__)
constexpr int kSse2MR = 4, kSse2NR = 8;

inline void sgemm_store_row_sse2(float* c, __m128 x0, __m128 x1, int64_t n, bool accumulate) {
  if (n == 8) {
    if (accumulate) {
      x0 = _mm_add_ps(x0, _mm_loadu_ps(c));
      x1 = _mm_add_ps(x1, _mm_loadu_ps(c + 4));
    }
    _mm_storeu_ps(c, x0);
    _mm_storeu_ps(c + 4, x1);
    return;
  }
  alignas(16) float t[8];
  _mm_store_ps(t, x0);
  _mm_store_ps(t + 4, x1);
  for (int64_t j = 0; j < n; ++j) c[j] = accumulate ? c[j] + t[j] : t[j];
}

inline void sgemm_kernel_sse2(int64_t kc, const float* LGH_RESTRICT a, const float* LGH_RESTRICT b, int64_t ldb,
                              float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  __m128 c0a = _mm_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
  for (int64_t k = 0; k < kc; ++k, a += kSse2MR, b += ldb) {
    const __m128 b0 = _mm_loadu_ps(b), b1 = _mm_loadu_ps(b + 4);
    __m128 x = _mm_set1_ps(a[0]);
    c0a = _mm_add_ps(c0a, _mm_mul_ps(x, b0));
    c0b = _mm_add_ps(c0b, _mm_mul_ps(x, b1));
    x = _mm_set1_ps(a[1]);
    c1a = _mm_add_ps(c1a, _mm_mul_ps(x, b0));
    c1b = _mm_add_ps(c1b, _mm_mul_ps(x, b1));
    x = _mm_set1_ps(a[2]);
    c2a = _mm_add_ps(c2a, _mm_mul_ps(x, b0));
    c2b = _mm_add_ps(c2b, _mm_mul_ps(x, b1));
    x = _mm_set1_ps(a[3]);
    c3a = _mm_add_ps(c3a, _mm_mul_ps(x, b0));
    c3b = _mm_add_ps(c3b, _mm_mul_ps(x, b1));
  }
  sgemm_store_row_sse2(c, c0a, c0b, n, accumulate);
  if (m > 1) sgemm_store_row_sse2(c + ldc, c1a, c1b, n, accumulate);
  if (m > 2) sgemm_store_row_sse2(c + 2 * ldc, c2a, c2b, n, accumulate);
  if (m > 3) sgemm_store_row_sse2(c + 3 * ldc, c3a, c3b, n, accumulate);
}
#else
constexpr int kSse2MR = 4, kSse2NR = 8;

inline void sgemm_kernel_sse2(int64_t kc, const float* LGH_RESTRICT a, const float* LGH_RESTRICT b, int64_t ldb,
                              float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  float acc[kSse2MR][kSse2NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += kSse2MR, b += ldb)
    for (int i = 0; i < kSse2MR; ++i)
      for (int j = 0; j < kSse2NR; ++j) acc[i][j] += a[i] * b[j];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}
#endif

#if LGH_CPU_X86_DISPATCH
// ---- avx2: 6 x 16, FMA -----------------------------------------------------------

constexpr int kAvx2MR = 6, kAvx2NR = 16;

LGH_TARGET_AVX2 inline void sgemm_store_row_avx2(float* c, __m256 x0, __m256 x1, int64_t n, bool accumulate) {
  if (n == 16) {
    if (accumulate) {
      x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c));
      x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
    }
    _mm256_storeu_ps(c, x0);
    _mm256_storeu_ps(c + 8, x1);
    return;
  }
  alignas(32) float t[16];
  _mm256_store_ps(t, x0);
  _mm256_store_ps(t + 8, x1);
  for (int64_t j = 0; j < n; ++j) c[j] = accumulate ? c[j] + t[j] : t[j];
}

LGH_TARGET_AVX2 inline void sgemm_kernel_avx2(int64_t kc, const float* LGH_RESTRICT a, const float* LGH_RESTRICT b,
                                              int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                                              bool accumulate) {
  __m256 c0a = _mm256_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
  __m256 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a;
  for (int64_t k = 0; k < kc; ++k, a += kAvx2MR, b += ldb) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a);
    c0a = _mm256_fmadd_ps(x, b0, c0a);
    c0b = _mm256_fmadd_ps(x, b1, c0b);
    x = _mm256_broadcast_ss(a + 1);
    c1a = _mm256_fmadd_ps(x, b0, c1a);
    c1b = _mm256_fmadd_ps(x, b1, c1b);
    x = _mm256_broadcast_ss(a + 2);
    c2a = _mm256_fmadd_ps(x, b0, c2a);
    c2b = _mm256_fmadd_ps(x, b1, c2b);
    x = _mm256_broadcast_ss(a + 3);
    c3a = _mm256_fmadd_ps(x, b0, c3a);
    c3b = _mm256_fmadd_ps(x, b1, c3b);
    x = _mm256_broadcast_ss(a + 4);
    c4a = _mm256_fmadd_ps(x, b0, c4a);
    c4b = _mm256_fmadd_ps(x, b1, c4b);
    x = _mm256_broadcast_ss(a + 5);
    c5a = _mm256_fmadd_ps(x, b0, c5a);
    c5b = _mm256_fmadd_ps(x, b1, c5b);
  }
  sgemm_store_row_avx2(c, c0a, c0b, n, accumulate);
  if (m > 1) sgemm_store_row_avx2(c + ldc, c1a, c1b, n, accumulate);
  if (m > 2) sgemm_store_row_avx2(c + 2 * ldc, c2a, c2b, n, accumulate);
  if (m > 3) sgemm_store_row_avx2(c + 3 * ldc, c3a, c3b, n, accumulate);
  if (m > 4) sgemm_store_row_avx2(c + 4 * ldc, c4a, c4b, n, accumulate);
  if (m > 5) sgemm_store_row_avx2(c + 5 * ldc, c5a, c5b, n, accumulate);
}

// ---- avx512: 8 x 32, FMA, masked edge stores ------------------------------------

constexpr int kAvx512MR = 8, kAvx512NR = 32;

LGH_TARGET_AVX512 inline void sgemm_store_row_avx512(float* c, __m512 x0, __m512 x1, __mmask16 k0, __mmask16 k1,
                                                     bool accumulate) {
  // Masked-off lanes are neither read nor written (no fault past C's edge).
  if (accumulate) {
    x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(k0, c));
    x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(k1, c + 16));
  }
  _mm512_mask_storeu_ps(c, k0, x0);
  _mm512_mask_storeu_ps(c + 16, k1, x1);
}

LGH_TARGET_AVX512 inline void sgemm_kernel_avx512(int64_t kc, const float* LGH_RESTRICT a,
                                                  const float* LGH_RESTRICT b, int64_t ldb, float* c, int64_t ldc,
                                                  int64_t m, int64_t n, bool accumulate) {
  __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
  __m512 c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
  for (int64_t k = 0; k < kc; ++k, a += kAvx512MR, b += ldb) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    __m512 x = _mm512_set1_ps(a[0]);
    c0a = _mm512_fmadd_ps(x, b0, c0a);
    c0b = _mm512_fmadd_ps(x, b1, c0b);
    x = _mm512_set1_ps(a[1]);
    c1a = _mm512_fmadd_ps(x, b0, c1a);
    c1b = _mm512_fmadd_ps(x, b1, c1b);
    x = _mm512_set1_ps(a[2]);
    c2a = _mm512_fmadd_ps(x, b0, c2a);
    c2b = _mm512_fmadd_ps(x, b1, c2b);
    x = _mm512_set1_ps(a[3]);
    c3a = _mm512_fmadd_ps(x, b0, c3a);
    c3b = _mm512_fmadd_ps(x, b1, c3b);
    x = _mm512_set1_ps(a[4]);
    c4a = _mm512_fmadd_ps(x, b0, c4a);
    c4b = _mm512_fmadd_ps(x, b1, c4b);
    x = _mm512_set1_ps(a[5]);
    c5a = _mm512_fmadd_ps(x, b0, c5a);
    c5b = _mm512_fmadd_ps(x, b1, c5b);
    x = _mm512_set1_ps(a[6]);
    c6a = _mm512_fmadd_ps(x, b0, c6a);
    c6b = _mm512_fmadd_ps(x, b1, c6b);
    x = _mm512_set1_ps(a[7]);
    c7a = _mm512_fmadd_ps(x, b0, c7a);
    c7b = _mm512_fmadd_ps(x, b1, c7b);
  }
  const __mmask16 k0 = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
  const __mmask16 k1 = n >= 32 ? __mmask16(0xFFFF) : n <= 16 ? __mmask16(0) : __mmask16((1u << (n - 16)) - 1);
  sgemm_store_row_avx512(c, c0a, c0b, k0, k1, accumulate);
  if (m > 1) sgemm_store_row_avx512(c + ldc, c1a, c1b, k0, k1, accumulate);
  if (m > 2) sgemm_store_row_avx512(c + 2 * ldc, c2a, c2b, k0, k1, accumulate);
  if (m > 3) sgemm_store_row_avx512(c + 3 * ldc, c3a, c3b, k0, k1, accumulate);
  if (m > 4) sgemm_store_row_avx512(c + 4 * ldc, c4a, c4b, k0, k1, accumulate);
  if (m > 5) sgemm_store_row_avx512(c + 5 * ldc, c5a, c5b, k0, k1, accumulate);
  if (m > 6) sgemm_store_row_avx512(c + 6 * ldc, c6a, c6b, k0, k1, accumulate);
  if (m > 7) sgemm_store_row_avx512(c + 7 * ldc, c7a, c7b, k0, k1, accumulate);
}
#endif

// ---- packing and the loops around the kernel ----------------------------------

struct SgemmVariant {
  SgemmKernel kernel;
  int64_t mr, nr;
};

inline SgemmVariant sgemm_variant(Isa isa) {
#if LGH_CPU_X86_DISPATCH
  if (isa == Isa::avx512) return {&sgemm_kernel_avx512, kAvx512MR, kAvx512NR};
  if (isa == Isa::avx2) return {&sgemm_kernel_avx2, kAvx2MR, kAvx2NR};
#endif
  (void)isa;
  return {&sgemm_kernel_sse2, kSse2MR, kSse2NR};
}

// dst[k * width + i] = src[(r0 + i) * ld + k0 + k] for i < n, k < kc, and
// zero for n <= i < width: rows of a row-major matrix become the columns of
// a panel. Four rows at a time by 4x4 transposes where SSE is there (twice
// as fast as element by element).
inline void sgemm_pack_transposed(const float* src, int64_t ld, int64_t r0, int64_t n, int64_t k0, int64_t kc,
                                  int64_t width, float* LGH_RESTRICT dst) {
  int64_t i = 0;
#if LGH_CPU_X86_DISPATCH || defined(__SSE2__)
  for (; i + 4 <= n; i += 4) {
    const float* s0 = src + (r0 + i) * ld + k0;
    const float *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
    float* d = dst + i;
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
      __m128 x0 = _mm_loadu_ps(s0 + k), x1 = _mm_loadu_ps(s1 + k), x2 = _mm_loadu_ps(s2 + k),
             x3 = _mm_loadu_ps(s3 + k);
      _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
      _mm_storeu_ps(d + k * width, x0);
      _mm_storeu_ps(d + (k + 1) * width, x1);
      _mm_storeu_ps(d + (k + 2) * width, x2);
      _mm_storeu_ps(d + (k + 3) * width, x3);
    }
    for (; k < kc; ++k) {
      d[k * width] = s0[k];
      d[k * width + 1] = s1[k];
      d[k * width + 2] = s2[k];
      d[k * width + 3] = s3[k];
    }
  }
#endif
  for (; i < n; ++i) {
    const float* LGH_RESTRICT s = src + (r0 + i) * ld + k0;
    for (int64_t k = 0; k < kc; ++k) dst[k * width + i] = s[k];
  }
  for (; i < width; ++i)
    for (int64_t k = 0; k < kc; ++k) dst[k * width + i] = 0.0f;
}

// dst[k * width + i] = src[(k0 + k) * ld + c0 + i] for i < n, zero past n:
// rows of the panel copied from rows of the matrix.
inline void sgemm_pack_rows(const float* src, int64_t ld, int64_t c0, int64_t n, int64_t k0, int64_t kc,
                            int64_t width, float* LGH_RESTRICT dst) {
  for (int64_t k = 0; k < kc; ++k) {
    const float* LGH_RESTRICT s = src + (k0 + k) * ld + c0;
    float* LGH_RESTRICT d = dst + k * width;
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    for (int64_t i = n; i < width; ++i) d[i] = 0.0f;
  }
}

// The rows i0..i0+m (m <= mr) and depths k0..k0+kc of op(A) as one panel:
// ap[k * mr + i] = op(A)[i0 + i, k0 + k], rows past m zero.
inline void sgemm_pack_a(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t k0, int64_t kc,
                         int64_t mr, float* ap) {
  if (trans_a) sgemm_pack_rows(A, lda, i0, m, k0, kc, mr, ap);  // A is [K, M]
  else sgemm_pack_transposed(A, lda, i0, m, k0, kc, mr, ap);    // A is [M, K]
}

// The columns j0..j0+n (n <= nr) and depths k0..k0+kc of op(B) as one panel:
// bp[k * nr + j] = op(B)[k0 + k, j0 + j], columns past n zero. Needed when B
// is transposed or the panel is partial; a full panel of an untransposed B
// is read in place (its rows are already NR contiguous values).
inline void sgemm_pack_b(bool trans_b, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0, int64_t kc,
                         int64_t nr, float* bp) {
  if (trans_b) sgemm_pack_transposed(B, ldb, j0, n, k0, kc, nr, bp);  // B is [N, K]
  else sgemm_pack_rows(B, ldb, j0, n, k0, kc, nr, bp);               // B is [K, N]
}

// Per-thread packing buffers, allocated at the first GEMM of a thread at the
// largest size any variant needs and reused (no allocation in steady state).
struct SgemmBuffers {
  float* a = nullptr;
  float* b = nullptr;
  SgemmBuffers() {
    // Panels are read with aligned vector loads: 64-byte aligned, and every
    // panel a multiple of 64 bytes long (MR, NR and KC make it so).
    a = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kSgemmMC * kSgemmKC));
    b = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kSgemmKC * kSgemmNC));
    if (!a || !b) {
      std::free(a);
      std::free(b);
      throw std::bad_alloc();
    }
  }
  ~SgemmBuffers() {
    std::free(a);
    std::free(b);
  }
  SgemmBuffers(const SgemmBuffers&) = delete;
  SgemmBuffers& operator=(const SgemmBuffers&) = delete;
};

inline SgemmBuffers& sgemm_buffers() {
  static thread_local SgemmBuffers buffers;
  return buffers;
}

}  // namespace detail

// C[M,N] (=|+=) op(A) * op(B), where op(A) is [M,K] and op(B) is [K,N].
// A is stored [M,K] (or [K,M] when trans_a), B [K,N] (or [N,K] when trans_b);
// lda/ldb/ldc are the row strides of the stored matrices. Runs the variant
// `isa` (default: the active one, active_isa()).
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Isa isa = active_isa()) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  const detail::SgemmVariant v = detail::sgemm_variant(isa);
  detail::SgemmBuffers& buf = detail::sgemm_buffers();
  for (int64_t jc = 0; jc < N; jc += detail::kSgemmNC) {
    const int64_t nc = std::min(detail::kSgemmNC, N - jc);
    // Depth blocks of equal size (288 = 144 + 144, not 256 + 32: a short
    // block pays the loads and stores of C for little work).
    const int64_t kblocks = (K + detail::kSgemmKC - 1) / detail::kSgemmKC, kstep = (K + kblocks - 1) / kblocks;
    for (int64_t pc = 0; pc < K; pc += kstep) {
      const int64_t kc = std::min(kstep, K - pc);
      // The first depth block writes C (unless accumulating), the others add.
      const bool add = accumulate || pc > 0;
      for (int64_t jr = 0; jr < nc; jr += v.nr)
        if (trans_b || nc - jr < v.nr)
          detail::sgemm_pack_b(trans_b, B, ldb, jc + jr, std::min(v.nr, nc - jr), pc, kc, v.nr, buf.b + jr * kc);
      for (int64_t ic = 0; ic < M; ic += detail::kSgemmMC) {
        const int64_t mc = std::min(detail::kSgemmMC, M - ic);
        for (int64_t ir = 0; ir < mc; ir += v.mr)
          detail::sgemm_pack_a(trans_a, A, lda, ic + ir, std::min(v.mr, mc - ir), pc, kc, v.mr, buf.a + ir * kc);
        for (int64_t jr = 0; jr < nc; jr += v.nr) {
          const int64_t n = std::min(v.nr, nc - jr);
          const bool packed = trans_b || n < v.nr;
          const float* bp = packed ? buf.b + jr * kc : B + pc * ldb + jc + jr;
          const int64_t bstride = packed ? v.nr : ldb;
          for (int64_t ir = 0; ir < mc; ir += v.mr)
            v.kernel(kc, buf.a + ir * kc, bp, bstride, C + (ic + ir) * ldc + jc + jr, ldc, std::min(v.mr, mc - ir), n,
                     add);
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace lgh
