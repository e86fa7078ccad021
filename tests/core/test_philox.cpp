#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "lgh/core/philox.hpp"

using namespace lgh;

// Known-answer vectors of Philox4x32-10 from the Random123 distribution.
TEST_CASE("Philox4x32-10 known answers", "[core][philox]") {
  struct Kat {
    PhiloxBlock ctr;
    uint32_t k0, k1;
    PhiloxBlock expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    const PhiloxBlock r = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) CHECK(r.v[i] == k.expected.v[i]);
  }
}

TEST_CASE("Philox streams are addressable and distinct", "[core][philox]") {
  Philox a(42, 0), b(42, 1), c(43, 0);
  CHECK(a.bits(5) == Philox(42, 0).bits(5));
  CHECK(a.bits(5) != b.bits(5));
  CHECK(a.bits(5) != c.bits(5));
  // Index i is word i%4 of block i/4.
  CHECK(a.bits(6) == a.block(1).v[2]);
}

TEST_CASE("Uniforms lie in the open unit interval with the right moments", "[core][philox]") {
  Philox g(7, 3);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  float lo = 1, hi = 0;
  for (int i = 0; i < n; ++i) {
    const float u = g.uniform(static_cast<uint64_t>(i));
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
    sum2 += double(u) * u;
  }
  CHECK(lo > 0.f);
  CHECK(hi < 1.f);
  CHECK(sum / n == Approx(0.5).margin(0.005));
  CHECK(sum2 / n - (sum / n) * (sum / n) == Approx(1.0 / 12).margin(0.002));
  CHECK(uint_to_open_unit_float(0) > 0.f);
  CHECK(uint_to_open_unit_float(0xffffffffu) < 1.f);
}

TEST_CASE("PhiloxEngine is resumable from its position", "[core][philox]") {
  PhiloxEngine e(11, 2);
  for (int i = 0; i < 5; ++i) e.next_u32();
  PhiloxEngine f(11, 2);
  f.set_position(e.position());
  CHECK(e.next_u64() == f.next_u64());
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = e.below(10);
    CHECK(v < 10);
    seen.insert(v);
  }
  CHECK(seen.size() == 10);
  double s = 0;
  for (int i = 0; i < 20000; ++i) s += e.normal();
  CHECK(s / 20000 == Approx(0).margin(0.03));
}
