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
// The epilogue (SgemmEpilogue) is applied as the last depth block's tile is
// stored, while it is in registers: a bias per row of C, ReLU, a residual
// added, ReLU again (the inference path's folded convolutions). A caller that
// applies the same operations in a pass of its own reads and writes C twice
// more.
//
// op(A) can also be packed once ahead of the call (SgemmPackedA: the
// convolution weights, the Winograd kernels) and then shared by every GEMM
// that multiplies it, on any thread.
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
#include "lgh/core/error.hpp"
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

// Rows of B (untransposed) at least this many floats apart are packed even
// for full panels: read in place, each of a panel's kc rows would sit in a
// page of its own (16 KB apart for the 1x1 convolutions of a 64x64 image),
// past what the TLB and the prefetchers follow; a 128 x 4096 x 128 product
// ran at 70 GFLOP/s that way and at 82 packed, with no change for rows 1 KB
// apart (measured on one Zen 4 core).
constexpr int64_t kSgemmPackLdb = 2048;

}  // namespace detail

// What is applied to each element of C as it is finished, in this order:
//   c = c + bias[i]                 (bias: one value per row of C, or null)
//   c = max(c, 0)                   (relu)
//   c = c + residual[i * ldr + j]   (residual: [M, N] with row stride ldr, or null)
//   c = max(c, 0)                   (relu_after_residual)
// where c is the product (plus C's old value when accumulating).
template <typename T>
struct GemmEpilogue {
  const T* bias = nullptr;
  bool relu = false;
  const T* residual = nullptr;
  int64_t ldr = 0;
  bool relu_after_residual = false;

  bool active() const { return bias || relu || residual || relu_after_residual; }
  T finish(int64_t i, int64_t j, T c) const {
    if (bias) c += bias[i];
    if (relu) c = c > T(0) ? c : T(0);
    if (residual) c += residual[i * ldr + j];
    if (relu_after_residual) c = c > T(0) ? c : T(0);
    return c;
  }
};
using SgemmEpilogue = GemmEpilogue<float>;

namespace detail {

// A micro-kernel: c[0..m, 0..n] (row stride ldc) (=|+=) the product of the
// packed panel a (kc x MR) and the panel b (kc x NR, its rows ldb apart);
// m <= MR, n <= NR. e: the epilogue with its pointers at this tile's first
// row and column (bias + i0, residual + i0 * ldr + j0), or null.
using SgemmKernel = void (*)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                             int64_t m, int64_t n, bool accumulate, const SgemmEpilogue* e);

// Row r of a tile: the values t[0..n) finished by e (when there is one) and
// stored. The scalar tail of every variant.
inline void sgemm_store_row_scalar(float* c, const float* t, int64_t n, bool accumulate, const SgemmEpilogue* e,
                                   int64_t r) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = accumulate ? c[j] + t[j] : t[j];
    c[j] = e ? e->finish(r, j, v) : v;
  }
}

// ---- the baseline kernel: SSE2 on x86-64, plain C++ elsewhere ----------------

#if LGH_CPU_X86_DISPATCH || defined(__SSE2__)
constexpr int kSse2MR = 4, kSse2NR = 8;

inline void sgemm_store_row_sse2(float* c, __m128 x0, __m128 x1, int64_t n, bool accumulate, const SgemmEpilogue* e,
                                 int64_t r) {
  if (n == 8) {
    if (accumulate) {
      x0 = _mm_add_ps(x0, _mm_loadu_ps(c));
      x1 = _mm_add_ps(x1, _mm_loadu_ps(c + 4));
    }
    if (e) {
      const __m128 zero = _mm_setzero_ps();
      if (e->bias) {
        const __m128 b = _mm_set1_ps(e->bias[r]);
        x0 = _mm_add_ps(x0, b);
        x1 = _mm_add_ps(x1, b);
      }
      if (e->relu) {
        x0 = _mm_max_ps(x0, zero);
        x1 = _mm_max_ps(x1, zero);
      }
      if (e->residual) {
        const float* q = e->residual + r * e->ldr;
        x0 = _mm_add_ps(x0, _mm_loadu_ps(q));
        x1 = _mm_add_ps(x1, _mm_loadu_ps(q + 4));
      }
      if (e->relu_after_residual) {
        x0 = _mm_max_ps(x0, zero);
        x1 = _mm_max_ps(x1, zero);
      }
    }
    _mm_storeu_ps(c, x0);
    _mm_storeu_ps(c + 4, x1);
    return;
  }
  alignas(16) float t[8];
  _mm_store_ps(t, x0);
  _mm_store_ps(t + 4, x1);
  sgemm_store_row_scalar(c, t, n, accumulate, e, r);
}

inline void sgemm_kernel_sse2(int64_t kc, const float* LGH_RESTRICT a, const float* LGH_RESTRICT b, int64_t ldb,
                              float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate, const SgemmEpilogue* e) {
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
  sgemm_store_row_sse2(c, c0a, c0b, n, accumulate, e, 0);
  if (m > 1) sgemm_store_row_sse2(c + ldc, c1a, c1b, n, accumulate, e, 1);
  if (m > 2) sgemm_store_row_sse2(c + 2 * ldc, c2a, c2b, n, accumulate, e, 2);
  if (m > 3) sgemm_store_row_sse2(c + 3 * ldc, c3a, c3b, n, accumulate, e, 3);
}
#else
constexpr int kSse2MR = 4, kSse2NR = 8;

inline void sgemm_kernel_sse2(int64_t kc, const float* LGH_RESTRICT a, const float* LGH_RESTRICT b, int64_t ldb,
                              float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate, const SgemmEpilogue* e) {
  float acc[kSse2MR][kSse2NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += kSse2MR, b += ldb)
    for (int i = 0; i < kSse2MR; ++i)
      for (int j = 0; j < kSse2NR; ++j) acc[i][j] += a[i] * b[j];
  for (int64_t i = 0; i < m; ++i) sgemm_store_row_scalar(c + i * ldc, acc[i], n, accumulate, e, i);
}
#endif

#if LGH_CPU_X86_DISPATCH
// ---- avx2: 6 x 16, FMA -----------------------------------------------------------

constexpr int kAvx2MR = 6, kAvx2NR = 16;

LGH_TARGET_AVX2 inline void sgemm_store_row_avx2(float* c, __m256 x0, __m256 x1, int64_t n, bool accumulate,
                                                 const SgemmEpilogue* e, int64_t r) {
  if (n == 16) {
    if (accumulate) {
      x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c));
      x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
    }
    if (e) {
      const __m256 zero = _mm256_setzero_ps();
      if (e->bias) {
        const __m256 b = _mm256_set1_ps(e->bias[r]);
        x0 = _mm256_add_ps(x0, b);
        x1 = _mm256_add_ps(x1, b);
      }
      if (e->relu) {
        x0 = _mm256_max_ps(x0, zero);
        x1 = _mm256_max_ps(x1, zero);
      }
      if (e->residual) {
        const float* q = e->residual + r * e->ldr;
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(q));
        x1 = _mm256_add_ps(x1, _mm256_loadu_ps(q + 8));
      }
      if (e->relu_after_residual) {
        x0 = _mm256_max_ps(x0, zero);
        x1 = _mm256_max_ps(x1, zero);
      }
    }
    _mm256_storeu_ps(c, x0);
    _mm256_storeu_ps(c + 8, x1);
    return;
  }
  alignas(32) float t[16];
  _mm256_store_ps(t, x0);
  _mm256_store_ps(t + 8, x1);
  sgemm_store_row_scalar(c, t, n, accumulate, e, r);
}

LGH_TARGET_AVX2 inline void sgemm_kernel_avx2(int64_t kc, const float* LGH_RESTRICT a, const float* LGH_RESTRICT b,
                                              int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                                              bool accumulate, const SgemmEpilogue* e) {
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
  sgemm_store_row_avx2(c, c0a, c0b, n, accumulate, e, 0);
  if (m > 1) sgemm_store_row_avx2(c + ldc, c1a, c1b, n, accumulate, e, 1);
  if (m > 2) sgemm_store_row_avx2(c + 2 * ldc, c2a, c2b, n, accumulate, e, 2);
  if (m > 3) sgemm_store_row_avx2(c + 3 * ldc, c3a, c3b, n, accumulate, e, 3);
  if (m > 4) sgemm_store_row_avx2(c + 4 * ldc, c4a, c4b, n, accumulate, e, 4);
  if (m > 5) sgemm_store_row_avx2(c + 5 * ldc, c5a, c5b, n, accumulate, e, 5);
}

// ---- avx512: 8 x 32, FMA, masked edge stores ------------------------------------

constexpr int kAvx512MR = 8, kAvx512NR = 32;

LGH_TARGET_AVX512 inline void sgemm_store_row_avx512(float* c, __m512 x0, __m512 x1, __mmask16 k0, __mmask16 k1,
                                                     bool accumulate, const SgemmEpilogue* e, int64_t r) {
  // Masked-off lanes are neither read nor written (no fault past C's or the
  // residual's edge).
  if (accumulate) {
    x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(k0, c));
    x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(k1, c + 16));
  }
  if (e) {
    // ReLU as a zero-masked max: GCC 12 warns (wrongly) that the unmasked
    // _mm512_max_ps reads an uninitialised value.
    const __m512 zero = _mm512_setzero_ps();
    if (e->bias) {
      const __m512 b = _mm512_set1_ps(e->bias[r]);
      x0 = _mm512_add_ps(x0, b);
      x1 = _mm512_add_ps(x1, b);
    }
    if (e->relu) {
      x0 = _mm512_maskz_max_ps(0xFFFF, x0, zero);
      x1 = _mm512_maskz_max_ps(0xFFFF, x1, zero);
    }
    if (e->residual) {
      const float* q = e->residual + r * e->ldr;
      x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(k0, q));
      x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(k1, q + 16));
    }
    if (e->relu_after_residual) {
      x0 = _mm512_maskz_max_ps(0xFFFF, x0, zero);
      x1 = _mm512_maskz_max_ps(0xFFFF, x1, zero);
    }
  }
  _mm512_mask_storeu_ps(c, k0, x0);
  _mm512_mask_storeu_ps(c + 16, k1, x1);
}

LGH_TARGET_AVX512 inline void sgemm_kernel_avx512(int64_t kc, const float* LGH_RESTRICT a,
                                                  const float* LGH_RESTRICT b, int64_t ldb, float* c, int64_t ldc,
                                                  int64_t m, int64_t n, bool accumulate, const SgemmEpilogue* e) {
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
  sgemm_store_row_avx512(c, c0a, c0b, k0, k1, accumulate, e, 0);
  if (m > 1) sgemm_store_row_avx512(c + ldc, c1a, c1b, k0, k1, accumulate, e, 1);
  if (m > 2) sgemm_store_row_avx512(c + 2 * ldc, c2a, c2b, k0, k1, accumulate, e, 2);
  if (m > 3) sgemm_store_row_avx512(c + 3 * ldc, c3a, c3b, k0, k1, accumulate, e, 3);
  if (m > 4) sgemm_store_row_avx512(c + 4 * ldc, c4a, c4b, k0, k1, accumulate, e, 4);
  if (m > 5) sgemm_store_row_avx512(c + 5 * ldc, c5a, c5b, k0, k1, accumulate, e, 5);
  if (m > 6) sgemm_store_row_avx512(c + 6 * ldc, c6a, c6b, k0, k1, accumulate, e, 6);
  if (m > 7) sgemm_store_row_avx512(c + 7 * ldc, c7a, c7b, k0, k1, accumulate, e, 7);
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

// Depth blocks of equal size, at most KC each (288 = 144 + 144, not 256 +
// 32: a short block pays the loads and stores of C for little work).
inline int64_t sgemm_depth_step(int64_t K) {
  const int64_t kblocks = (K + kSgemmKC - 1) / kSgemmKC;
  return (K + kblocks - 1) / kblocks;
}

// The panels of op(B) for columns jc..jc+nc and depths pc..pc+kc: packed
// into `packed` where they must be (transposed B, the partial last panel,
// rows far apart), read in place otherwise.
struct SgemmBBlock {
  const float* in_place = nullptr;  // B + pc * ldb + jc, when untransposed
  const float* packed = nullptr;
  int64_t ldb = 0, kc = 0, nc = 0, nr = 0;
  bool pack_all = false;

  bool is_packed(int64_t jr) const { return pack_all || nc - jr < nr; }
  const float* panel(int64_t jr) const { return is_packed(jr) ? packed + jr * kc : in_place + jr; }
  int64_t stride(int64_t jr) const { return is_packed(jr) ? nr : ldb; }
};

inline SgemmBBlock sgemm_prepare_b(bool trans_b, const float* B, int64_t ldb, int64_t jc, int64_t nc, int64_t pc,
                                   int64_t kc, int64_t nr, float* buffer) {
  SgemmBBlock b;
  b.in_place = trans_b ? nullptr : B + pc * ldb + jc;
  b.packed = buffer;
  b.ldb = ldb;
  b.kc = kc;
  b.nc = nc;
  b.nr = nr;
  b.pack_all = trans_b || ldb >= kSgemmPackLdb;
  for (int64_t jr = 0; jr < nc; jr += nr)
    if (b.is_packed(jr)) sgemm_pack_b(trans_b, B, ldb, jc + jr, std::min(nr, nc - jr), pc, kc, nr, buffer + jr * kc);
  return b;
}

// The tiles of C rows i0..i0+mc (C pointing at row i0, column jc) for one
// depth block: a_panels[ir * kc] is the packed panel of rows i0 + ir. The
// epilogue, when given, is applied (this is the last depth block).
inline void sgemm_macro_kernel(const SgemmVariant& v, const float* a_panels, const SgemmBBlock& b, int64_t mc,
                               float* C, int64_t ldc, bool add, const SgemmEpilogue* ep, int64_t i0, int64_t jc) {
  for (int64_t jr = 0; jr < b.nc; jr += v.nr) {
    const int64_t n = std::min(v.nr, b.nc - jr);
    const float* bp = b.panel(jr);
    const int64_t bstride = b.stride(jr);
    for (int64_t ir = 0; ir < mc; ir += v.mr) {
      SgemmEpilogue tile;
      if (ep) {
        tile = *ep;
        if (tile.bias) tile.bias += i0 + ir;
        if (tile.residual) tile.residual += (i0 + ir) * tile.ldr + jc + jr;
      }
      v.kernel(b.kc, a_panels + ir * b.kc, bp, bstride, C + ir * ldc + jr, ldc, std::min(v.mr, mc - ir), n, add,
               ep ? &tile : nullptr);
    }
  }
}

// C = epilogue(C or 0) where the product is empty (K = 0).
inline void sgemm_empty_product(int64_t M, int64_t N, float* C, int64_t ldc, bool accumulate,
                                const SgemmEpilogue& ep, int64_t i0) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const float v = accumulate ? C[i * ldc + j] : 0.0f;
      C[i * ldc + j] = ep.active() ? ep.finish(i0 + i, j, v) : v;
    }
}

}  // namespace detail

// C[M,N] (=|+=) op(A) * op(B), where op(A) is [M,K] and op(B) is [K,N], then
// the epilogue. A is stored [M,K] (or [K,M] when trans_a), B [K,N] (or [N,K]
// when trans_b); lda/ldb/ldc are the row strides of the stored matrices; the
// epilogue's bias has M values and its residual is [M,N]. Runs the variant
// `isa` (default: the active one, active_isa()).
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, const SgemmEpilogue& epilogue,
                  Isa isa = active_isa()) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return detail::sgemm_empty_product(M, N, C, ldc, accumulate, epilogue, 0);
  const detail::SgemmVariant v = detail::sgemm_variant(isa);
  detail::SgemmBuffers& buf = detail::sgemm_buffers();
  const int64_t kstep = detail::sgemm_depth_step(K);
  for (int64_t jc = 0; jc < N; jc += detail::kSgemmNC) {
    const int64_t nc = std::min(detail::kSgemmNC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kstep) {
      const int64_t kc = std::min(kstep, K - pc);
      // The first depth block writes C (unless accumulating), the others
      // add; the last applies the epilogue.
      const bool add = accumulate || pc > 0;
      const SgemmEpilogue* ep = pc + kc == K && epilogue.active() ? &epilogue : nullptr;
      const detail::SgemmBBlock b = detail::sgemm_prepare_b(trans_b, B, ldb, jc, nc, pc, kc, v.nr, buf.b);
      for (int64_t ic = 0; ic < M; ic += detail::kSgemmMC) {
        const int64_t mc = std::min(detail::kSgemmMC, M - ic);
        for (int64_t ir = 0; ir < mc; ir += v.mr)
          detail::sgemm_pack_a(trans_a, A, lda, ic + ir, std::min(v.mr, mc - ir), pc, kc, v.mr, buf.a + ir * kc);
        detail::sgemm_macro_kernel(v, buf.a, b, mc, C + ic * ldc + jc, ldc, add, ep, ic, jc);
      }
    }
  }
}

inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, Isa isa = active_isa()) {
  sgemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, accumulate, SgemmEpilogue{}, isa);
}

// ---- op(A) packed once -----------------------------------------------------------
//
// A matrix multiplied many times (a convolution's weights, for every block
// of output columns and every image) is packed once into the panels the
// variant's kernel reads, and the GEMMs read them from there. Layout: for
// each depth block (sgemm_depth_step(K) deep), for each panel of MR rows,
// kc x MR values, rows past M zero.

// A non-owning view of op(A) [rows, depth] packed for the variant `isa`.
struct SgemmPackedA {
  const float* data = nullptr;
  int64_t rows = 0, depth = 0;
  Isa isa = Isa::baseline;
};

// The rows a panel of the variant holds: a GEMM on packed rows starts at a
// multiple of it.
inline int64_t sgemm_panel_rows(Isa isa = active_isa()) { return detail::sgemm_variant(isa).mr; }

// Floats the packing of an M x K op(A) takes.
inline int64_t sgemm_packed_a_size(int64_t M, int64_t K, Isa isa = active_isa()) {
  const int64_t mr = sgemm_panel_rows(isa);
  return (M + mr - 1) / mr * mr * K;
}

// Packs op(A) (A stored [M,K], or [K,M] when trans_a) into dst
// (sgemm_packed_a_size floats).
inline SgemmPackedA sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, float* dst,
                                 Isa isa = active_isa()) {
  const detail::SgemmVariant v = detail::sgemm_variant(isa);
  const int64_t padded = (M + v.mr - 1) / v.mr * v.mr;
  if (K > 0) {
    const int64_t kstep = detail::sgemm_depth_step(K);
    for (int64_t pc = 0; pc < K; pc += kstep) {
      const int64_t kc = std::min(kstep, K - pc);
      for (int64_t ir = 0; ir < M; ir += v.mr)
        detail::sgemm_pack_a(trans_a, A, lda, ir, std::min(v.mr, M - ir), pc, kc, v.mr, dst + pc * padded + ir * kc);
    }
  }
  return {dst, M, K, isa};
}

// Rows i0..i0+m of op(A) op(B) with op(A) packed: C (pointing at row i0)
// (=|+=) the product, then the epilogue (its bias and residual indexed by
// the rows of this product, i.e. from row i0). i0 is a multiple of
// sgemm_panel_rows(a.isa); B as in sgemm, with N columns.
inline void sgemm_packed(const SgemmPackedA& a, int64_t i0, int64_t m, bool trans_b, int64_t N, const float* B,
                         int64_t ldb, float* C, int64_t ldc, bool accumulate, const SgemmEpilogue& epilogue = {}) {
  const detail::SgemmVariant v = detail::sgemm_variant(a.isa);
  LGH_CHECK(i0 % v.mr == 0 && i0 >= 0 && m >= 0 && i0 + m <= a.rows,
            "sgemm_packed: rows " << i0 << ".." << i0 + m << " of a packed " << a.rows << "-row matrix (panels of "
                                  << v.mr << " rows)");
  const int64_t K = a.depth;
  if (m <= 0 || N <= 0) return;
  if (K <= 0) return detail::sgemm_empty_product(m, N, C, ldc, accumulate, epilogue, 0);
  detail::SgemmBuffers& buf = detail::sgemm_buffers();
  const int64_t padded = (a.rows + v.mr - 1) / v.mr * v.mr, kstep = detail::sgemm_depth_step(K);
  for (int64_t jc = 0; jc < N; jc += detail::kSgemmNC) {
    const int64_t nc = std::min(detail::kSgemmNC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kstep) {
      const int64_t kc = std::min(kstep, K - pc);
      const bool add = accumulate || pc > 0;
      const SgemmEpilogue* ep = pc + kc == K && epilogue.active() ? &epilogue : nullptr;
      const detail::SgemmBBlock b = detail::sgemm_prepare_b(trans_b, B, ldb, jc, nc, pc, kc, v.nr, buf.b);
      for (int64_t ic = 0; ic < m; ic += detail::kSgemmMC)
        detail::sgemm_macro_kernel(v, a.data + pc * padded + (i0 + ic) * kc, b, std::min(detail::kSgemmMC, m - ic),
                                   C + ic * ldc + jc, ldc, add, ep, ic, jc);
    }
  }
}

}  // namespace cpu
}  // namespace lgh
