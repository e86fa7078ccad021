// Loops compiled once per instruction set from one body, the variant chosen
// at run time (lgh/cpu/isa.hpp).
//
// A header-only library's loops are compiled with the including program's
// flags, usually the x86-64 baseline, where the compiler vectorises them
// four floats wide. A kernel written as
//
//   struct MyKernel {
//     LGH_ALWAYS_INLINE static void run(const float* x, int64_t n, float* y) {
//       LGH_IVDEP for (int64_t i = 0; i < n; ++i) y[i] = 2 * x[i];
//     }
//   };
//   cpu::Multiversion<MyKernel>::call(cpu::active_isa(), x, n, y);
//
// is compiled three times: inlined into one function per variant, each with
// that variant's target attribute, so that the same loop becomes AVX-512,
// AVX2 or SSE2 code (GCC and Clang inline a function into one whose target
// is a superset of its own, and vectorise it there for the wider target).
// The body must be inlinable: no recursion, no virtual calls.
//
// LGH_IVDEP tells the vectoriser that the next loop's iterations are
// independent (its pointers do not alias in a way that matters), which it
// often cannot prove for pointers computed inside the kernel.
#pragma once

#include <cstdint>

#include "lgh/cpu/isa.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define LGH_ALWAYS_INLINE __attribute__((always_inline)) inline
#define LGH_NOINLINE __attribute__((noinline))
#else
#define LGH_ALWAYS_INLINE inline
#define LGH_NOINLINE
#endif

#if defined(__clang__)
#define LGH_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__) && !defined(__CUDACC__)
#define LGH_IVDEP _Pragma("GCC ivdep")
#else
#define LGH_IVDEP
#endif

namespace lgh {
namespace cpu {

// Kernel::run compiled for each variant; call() runs the one for `isa`
// (callers pass active_isa(), read once per operation).
template <typename Kernel>
struct Multiversion {
#if LGH_CPU_X86_DISPATCH
  template <typename... Args>
  LGH_TARGET_AVX512 LGH_NOINLINE static void avx512(Args... args) {
    Kernel::run(args...);
  }
  template <typename... Args>
  LGH_TARGET_AVX2 LGH_NOINLINE static void avx2(Args... args) {
    Kernel::run(args...);
  }
#endif
  template <typename... Args>
  LGH_NOINLINE static void baseline(Args... args) {
    Kernel::run(args...);
  }

  template <typename... Args>
  static void call(Isa isa, Args... args) {
#if LGH_CPU_X86_DISPATCH
    if (isa == Isa::avx512) return avx512(args...);
    if (isa == Isa::avx2) return avx2(args...);
#endif
    (void)isa;
    baseline(args...);
  }
};

}  // namespace cpu
}  // namespace lgh
