#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

#include "lgh/optim/schedule.hpp"

using namespace lgh::optim;
using Catch::Matchers::Contains;

TEST_CASE("temperature: 5, minus 0.1 every 1,000 steps, down to the floor", "[optim][schedule]") {
  const TemperatureSchedule tau;  // the paper's schedule
  CHECK(tau.value(0) == 5.0);
  CHECK(tau.value(999) == 5.0);
  CHECK(tau.value(1000) == Approx(4.9).epsilon(1e-12));
  CHECK(tau.value(1999) == Approx(4.9).epsilon(1e-12));
  CHECK(tau.value(2000) == Approx(4.8).epsilon(1e-12));
  CHECK(tau.value(25000) == Approx(2.5).epsilon(1e-12));
  CHECK(tau.value(48999) == Approx(0.2).epsilon(1e-12));
  // 5 - 49 * 0.1 = 0.1: from step 49,000 on, τ sits on the floor exactly.
  CHECK(tau.value(49000) == 0.1);
  CHECK(tau.value(60000) == 0.1);
  CHECK(tau.value(std::numeric_limits<int64_t>::max()) == 0.1);
  REQUIRE_THROWS_WITH(tau.value(-1), Contains("step must be >= 0, got -1"));
}

TEST_CASE("temperature: every parameter configurable and validated", "[optim][schedule]") {
  const TemperatureSchedule t(2.0, 0.5, 10, 0.25);
  CHECK(t.value(9) == 2.0);
  CHECK(t.value(10) == 1.5);
  CHECK(t.value(30) == 0.5);
  CHECK(t.value(39) == 0.5);
  CHECK(t.value(40) == 0.25);  // 0 would be below the floor
  CHECK(t.value(1000000) == 0.25);
  const TemperatureSchedule constant(1.0, 0.0, 1, 0.5);
  CHECK(constant.value(123456) == 1.0);

  REQUIRE_THROWS_WITH(TemperatureSchedule(5, 0.1, 1000, 0.0), Contains("floor must be finite and > 0, got 0"));
  REQUIRE_THROWS_WITH(TemperatureSchedule(5, 0.1, 1000, -0.1), Contains("floor must be finite and > 0"));
  REQUIRE_THROWS_WITH(TemperatureSchedule(5, 0.1, 1000, std::nan("")), Contains("floor must be finite and > 0"));
  REQUIRE_THROWS_WITH(TemperatureSchedule(5, 0.1, 0, 0.1), Contains("interval must be >= 1 step, got 0"));
  REQUIRE_THROWS_WITH(TemperatureSchedule(5, -0.1, 1000, 0.1), Contains("decrement must be finite and >= 0"));
  REQUIRE_THROWS_WITH(TemperatureSchedule(0.05, 0.1, 1000, 0.1), Contains("initial temperature must be finite"));
}

TEST_CASE("constant and step-decay learning rates", "[optim][schedule]") {
  const ConstantLR c(1e-4);
  CHECK(c.value(0) == 1e-4);
  CHECK(c.value(1000000) == 1e-4);
  CHECK(c.factor(7) == 1.0);
  REQUIRE_THROWS_WITH(ConstantLR(-1.0), Contains("base_lr must be finite and >= 0, got -1"));

  const StepDecayLR s(1e-2, 0.5, 100);
  CHECK(s.value(0) == 1e-2);
  CHECK(s.value(99) == 1e-2);
  CHECK(s.value(100) == 5e-3);
  CHECK(s.value(199) == 5e-3);
  CHECK(s.value(200) == 2.5e-3);
  CHECK(s.value(1050) == Approx(1e-2 / 1024).epsilon(1e-14));
  CHECK(s.factor(300) == 0.125);
  REQUIRE_THROWS_WITH(StepDecayLR(1e-2, 0.0, 100), Contains("gamma must be finite and > 0, got 0"));
  REQUIRE_THROWS_WITH(StepDecayLR(1e-2, 0.5, 0), Contains("step_size must be >= 1 step, got 0"));
  REQUIRE_THROWS_WITH(s.value(-5), Contains("StepDecayLR::value: step must be >= 0, got -5"));
}

TEST_CASE("cosine learning rate with linear warm-up", "[optim][schedule]") {
  const double pi = 3.14159265358979323846;
  const WarmupCosineLR w(1e-3, 10, 110);
  CHECK(w.value(0) == Approx(1e-4).epsilon(1e-14));  // 1/10 of the base on the first step
  CHECK(w.value(4) == Approx(5e-4).epsilon(1e-14));
  CHECK(w.value(9) == 1e-3);  // warm-up ends at the base rate
  CHECK(w.value(10) == 1e-3);  // cosine starts at the base rate
  CHECK(w.value(35) == Approx(1e-3 * 0.5 * (1 + std::cos(pi * 0.25))).epsilon(1e-14));
  CHECK(w.value(60) == Approx(5e-4).epsilon(1e-14));  // half way down
  CHECK(w.value(109) == Approx(1e-3 * 0.5 * (1 + std::cos(pi * 0.99))).epsilon(1e-12));
  CHECK(w.value(110) == 0.0);
  CHECK(w.value(100000) == 0.0);

  // A floor as a fraction of the base rate, and no warm-up.
  const WarmupCosineLR f(0.1, 0, 100, 0.1);
  CHECK(f.value(0) == Approx(0.1).epsilon(1e-15));
  CHECK(f.factor(50) == Approx(0.55).epsilon(1e-14));
  CHECK(f.value(100) == Approx(0.01).epsilon(1e-15));
  CHECK(f.value(5000) == Approx(0.01).epsilon(1e-15));

  REQUIRE_THROWS_WITH(WarmupCosineLR(1e-3, 10, 10), Contains("total_steps must exceed warmup_steps (10), got 10"));
  REQUIRE_THROWS_WITH(WarmupCosineLR(1e-3, -1, 10), Contains("warmup_steps must be >= 0, got -1"));
  REQUIRE_THROWS_WITH(WarmupCosineLR(1e-3, 0, 10, 1.5), Contains("min_factor must be in [0, 1], got 1.5"));
}

TEST_CASE("LrSchedule holds any learning-rate schedule", "[optim][schedule]") {
  LrSchedule s = StepDecayLR(0.1, 0.1, 1000);
  CHECK(s.base_lr() == 0.1);
  CHECK(s.value(999) == 0.1);
  CHECK(s.value(1000) == Approx(0.01).epsilon(1e-15));
  // Per-group rates from one schedule: base_group * factor(step).
  CHECK(1e-4 * s.factor(2500) == Approx(1e-6).epsilon(1e-14));
  s = WarmupCosineLR(1.0, 4, 8);
  CHECK(s.value(1) == 0.5);
  s = ConstantLR(3e-4);
  CHECK(s.value(123) == 3e-4);
  CHECK(LrSchedule().value(0) == 1e-3);
}
