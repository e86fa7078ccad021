// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11): a counter-based generator. Its output is a pure function of a
// 128-bit counter and a 64-bit key, so the CPU and the GPU draw the same
// numbers for the same (seed, stream, index) without sharing any state.
#pragma once

#include <cmath>
#include <cstdint>

#include "lgh/core/config.hpp"

namespace lgh {

struct PhiloxBlock {
  uint32_t v[4];
};

namespace detail {
LGH_HOST_DEVICE inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}
}  // namespace detail

// One Philox4x32-10 block: ten rounds of the Feistel-like multiply network
// with the Weyl key schedule.
LGH_HOST_DEVICE inline PhiloxBlock philox4x32_10(PhiloxBlock ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = detail::mulhilo32(kM0, ctr.v[0], &hi0);
    const uint32_t lo1 = detail::mulhilo32(kM1, ctr.v[2], &hi1);
    ctr = PhiloxBlock{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kW0;
    key1 += kW1;
  }
  return ctr;
}

// 23 random bits mapped to the open interval (0, 1): (k + 1/2) / 2^23 is
// exact in float and lies in [2^-24, 1 - 2^-24], never 0 or 1, so that
// log(U) and log(-log U) of the Gumbel transform stay finite. (With 24 bits
// the top value would round to 1.0f.)
LGH_HOST_DEVICE inline float uint_to_open_unit_float(uint32_t x) {
  return (static_cast<float>(x >> 9) + 0.5f) * (1.0f / 8388608.0f);
}
// 53 random bits (from two words) mapped to (0, 1).
LGH_HOST_DEVICE inline double uint_to_open_unit_double(uint32_t a, uint32_t b) {
  const uint64_t x = (static_cast<uint64_t>(a) << 21) ^ (static_cast<uint64_t>(b) >> 11);
  return (static_cast<double>(x & ((uint64_t(1) << 53) - 1)) + 0.5) * (1.0 / 9007199254740992.0);
}

// A stream of random numbers addressed by index: value i of stream s under
// seed k is word i%4 of block philox(counter = {i/4, s}, key = k). Any index
// can be drawn independently, which is what lets a CUDA thread and a CPU loop
// produce the same noise for the same element.
struct Philox {
  uint64_t seed = 0;
  uint64_t stream = 0;

  LGH_HOST_DEVICE Philox() {}
  LGH_HOST_DEVICE Philox(uint64_t seed_, uint64_t stream_) : seed(seed_), stream(stream_) {}

  LGH_HOST_DEVICE PhiloxBlock block(uint64_t block_index) const {
    PhiloxBlock c{{static_cast<uint32_t>(block_index), static_cast<uint32_t>(block_index >> 32),
                   static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
    return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  }

  LGH_HOST_DEVICE uint32_t bits(uint64_t i) const { return block(i >> 2).v[i & 3]; }

  // Uniform in (0, 1) for element i.
  LGH_HOST_DEVICE float uniform(uint64_t i) const { return uint_to_open_unit_float(bits(i)); }
  LGH_HOST_DEVICE double uniform_double(uint64_t i) const {
    const PhiloxBlock b = block(i >> 1);
    return (i & 1) ? uint_to_open_unit_double(b.v[2], b.v[3]) : uint_to_open_unit_double(b.v[0], b.v[1]);
  }
};

// A sequential generator over a Philox stream, for host-side sampling
// (initialisation, data augmentation). Its whole state is (seed, stream,
// position), so it can be saved in a checkpoint and resumed exactly.
class PhiloxEngine {
 public:
  PhiloxEngine(uint64_t seed = 0, uint64_t stream = 0) : gen_(seed, stream) {}

  uint32_t next_u32() { return gen_.bits(position_++); }
  uint64_t next_u64() {
    const uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }
  // Uniform in (0, 1).
  double uniform() {
    const uint32_t a = next_u32();
    const uint32_t b = next_u32();
    return uint_to_open_unit_double(a, b);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0 (rejection sampling, no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
      const uint64_t x = next_u64();
      if (x < limit) return x % n;
    }
  }
  // Standard normal (Box-Muller).
  double normal() {
    const double u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  uint64_t seed() const { return gen_.seed; }
  uint64_t stream() const { return gen_.stream; }
  uint64_t position() const { return position_; }
  void set_position(uint64_t p) { position_ = p; }

  // For std::shuffle and <random> distributions.
  using result_type = uint32_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return UINT32_MAX; }
  result_type operator()() { return next_u32(); }

 private:
  Philox gen_;
  uint64_t position_ = 0;
};

}  // namespace lgh
