// Which vector instruction set the CPU kernels run with, chosen once at run
// time from what the processor supports.
//
// lgh is header-only, so its kernels are compiled with whatever flags the
// including program uses, usually none beyond the x86-64 baseline (SSE2). The
// hot kernels (lgh/cpu/sgemm.hpp) are therefore compiled several times, each
// with a per-function target attribute, and one variant is chosen here, once
// per process, from cpuid:
//
//   avx512    AVX-512 F/VL/BW/DQ with FMA (Skylake-SP, Ice Lake, Sapphire
//             Rapids, Zen 4 and later)
//   avx2      AVX2 with FMA (Haswell, Zen 1 and later)
//   sse2      the x86-64 baseline: runs on every x86-64 processor
//             ("generic" elsewhere: plain C++, what the compiler makes of it)
//
// A variant is usable only when the processor has the instructions and the
// operating system saves the wider registers on a context switch (XCR0, read
// with XGETBV): a kernel without that support would see its registers
// clobbered.
//
// The environment variable LGH_CPU_ISA=auto|sse2|avx2|avx512 picks the variant
// (for comparisons and tests); a variant above what the processor supports is
// lowered to the best one it does support, and any other value is an error.
// set_isa() does the same from code. The x86 variants exist where the
// compiler supports target attributes (GCC and Clang on x86-64);
// LGH_CPU_NO_DISPATCH leaves only the baseline.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "lgh/core/error.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LGH_CPU_NO_DISPATCH)
#define LGH_CPU_X86_DISPATCH 1
#include <cpuid.h>
#else
#define LGH_CPU_X86_DISPATCH 0
#endif

#if LGH_CPU_X86_DISPATCH || defined(__SSE2__)
#define LGH_CPU_BASELINE_NAME "sse2"
#else
#define LGH_CPU_BASELINE_NAME "generic"
#endif

#if LGH_CPU_X86_DISPATCH
// The target attributes of the variants' functions. Everything a variant's
// kernel calls with vector arguments carries the same attribute, so that it
// is inlined (GCC and Clang inline only into functions with a superset of the
// callee's target).
#define LGH_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define LGH_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace lgh {
namespace cpu {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return LGH_CPU_BASELINE_NAME;
  }
}

namespace detail {

// What the processor and the operating system support, from cpuid leaves 1
// and 7 and XCR0 (Intel SDM Vol. 1, 13.3 and 15.2: software must check
// OSXSAVE, then that XCR0 enables the SSE and AVX state, and for AVX-512 also
// the opmask and upper-ZMM state, before using those instructions).
struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;
};

inline CpuFeatures probe_cpu() {
  CpuFeatures f;
#if LGH_CPU_X86_DISPATCH
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
  if (!osxsave || !avx) return f;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ __volatile__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const uint64_t xcr0 = (uint64_t(xcr0_hi) << 32) | xcr0_lo;
  const bool os_ymm = (xcr0 & 0x6u) == 0x6u;    // XMM and YMM state
  const bool os_zmm = (xcr0 & 0xE6u) == 0xE6u;  // and opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & (1u << 5);
  const bool avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17), avx512bw = ebx & (1u << 30),
             avx512vl = ebx & (1u << 31);
  f.avx2_fma = os_ymm && avx2 && fma;
  f.avx512 = f.avx2_fma && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
#endif
  return f;
}

inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = probe_cpu();
  return f;
}

}  // namespace detail

// Whether this processor (and operating system) can run the variant.
inline bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::avx512: return detail::cpu_features().avx512;
    case Isa::avx2: return detail::cpu_features().avx2_fma;
    default: return true;
  }
}

// The best variant this processor supports.
inline Isa detected_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::baseline;
}

// The variant to run when `requested` is asked for: it, or the best one below
// it that the processor supports.
inline Isa clamp_isa(Isa requested) {
  const Isa best = detected_isa();
  return static_cast<int>(requested) < static_cast<int>(best) ? requested : best;
}

// Parses a value of LGH_CPU_ISA (`what` names where it came from, for the
// error): auto (the best supported), sse2 (or baseline, or generic off x86),
// avx2, avx512. The result is not yet clamped.
inline Isa parse_isa(const std::string& value, const char* what) {
  if (value == "auto") return detected_isa();
  if (value == "baseline" || value == isa_name(Isa::baseline)) return Isa::baseline;
  if (value == "avx2") return Isa::avx2;
  if (value == "avx512") return Isa::avx512;
  LGH_FAIL(what << "='" << value << "': expected auto, " << isa_name(Isa::baseline) << ", avx2 or avx512");
}

namespace detail {
inline Isa initial_isa() {
  const char* env = std::getenv("LGH_CPU_ISA");
  return clamp_isa(env && *env ? parse_isa(env, "LGH_CPU_ISA") : detected_isa());
}

// The active variant. Initialised at the first use (from LGH_CPU_ISA; a bad
// value throws there, and the next use tries again).
inline std::atomic<int>& isa_state() {
  static std::atomic<int> state{static_cast<int>(initial_isa())};
  return state;
}
}  // namespace detail

// The variant the kernels run with.
inline Isa active_isa() { return static_cast<Isa>(detail::isa_state().load(std::memory_order_relaxed)); }

// Makes the kernels run with `requested`, lowered to what the processor
// supports; returns the variant now active. For tests and comparisons: call
// it while no kernel runs.
inline Isa set_isa(Isa requested) {
  const Isa isa = clamp_isa(requested);
  detail::isa_state().store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

}  // namespace cpu
}  // namespace lgh
