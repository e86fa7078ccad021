#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "lgh/core/dtype.hpp"

using namespace lgh;

TEST_CASE("half <-> float round trips every half value", "[core][dtype]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(half_to_float(float_to_half(f))));
      continue;
    }
    REQUIRE(float_to_half(f) == h);
  }
}

TEST_CASE("float -> half rounds to nearest even", "[core][dtype]") {
  CHECK(half_to_float(float_to_half(1.0f)) == 1.0f);
  CHECK(half_to_float(float_to_half(65504.f)) == 65504.f);
  CHECK(std::isinf(half_to_float(float_to_half(65520.f))));  // rounds up past the max
  CHECK(half_to_float(float_to_half(65519.f)) == 65504.f);
  // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties to even (1).
  CHECK(half_to_float(float_to_half(1.0f + 0.00048828125f)) == 1.0f);
  CHECK(half_to_float(float_to_half(1.0f + 3 * 0.00048828125f)) == 1.0f + 4 * 0.00048828125f);
  // Smallest subnormal 2^-24 and half of it (ties to even -> 0).
  CHECK(half_to_float(float_to_half(5.9604645e-8f)) == 5.9604645e-8f);
  CHECK(float_to_half(2.9802322e-8f) == 0);
  CHECK(float_to_half(-0.0f) == 0x8000);
}

TEST_CASE("bfloat16 conversions", "[core][dtype]") {
  CHECK(bf16_to_float(float_to_bf16(1.0f)) == 1.0f);
  CHECK(bf16_to_float(float_to_bf16(-3.5f)) == -3.5f);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even.
  CHECK(bf16_to_float(float_to_bf16(1.0f + 0.00390625f)) == 1.0f);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST_CASE("dtype names follow safetensors", "[core][dtype]") {
  DType t;
  REQUIRE(dtype_from_name("BF16", &t));
  CHECK(t == DType::BF16);
  CHECK(dtype_size(DType::I64) == 8);
  CHECK_FALSE(dtype_from_name("F8", &t));
}
