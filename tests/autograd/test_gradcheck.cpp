#include <catch2/catch.hpp>

#include "lgh/autograd/gradcheck.hpp"
#include "test_nodes.hpp"

using namespace lgh;
using autograd::gradcheck;

static TensorD sample(Shape s, uint64_t seed) {
  PhiloxEngine rng(seed);
  return TensorD::uniform(s, -2, 2, rng);
}

TEST_CASE("gradcheck accepts a correct backward", "[autograd][gradcheck]") {
  auto r = gradcheck([](const std::vector<TensorD>& in) { return testops::mul(testops::square(in[0]), in[1]); },
                     {sample({6}, 1), sample({6}, 2)});
  INFO(r);
  CHECK(r.ok);
  CHECK(r.checked == 12);
}

TEST_CASE("gradcheck rejects a wrong backward", "[autograd][gradcheck]") {
  auto r = gradcheck([](const std::vector<TensorD>& in) { return testops::square(in[0], 1.0, 1.01); },
                     {sample({5}, 3)});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.message, Catch::Contains("analytic"));
}

TEST_CASE("gradcheck catches a gradient element never written", "[autograd][gradcheck]") {
  auto r = gradcheck([](const std::vector<TensorD>& in) { return testops::square(in[0], 1.0, 1.0, true); },
                     {sample({5}, 4)});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.message, Catch::Contains("never written"));
}

TEST_CASE("gradcheck skips points at kinks", "[autograd][gradcheck]") {
  TensorD x = TensorD::from_data({4}, {0.0, 1.0, -1.0, 2.0});  // |x| has a kink at 0
  autograd::GradCheckOptions opt;
  opt.max_skipped_fraction = 0.25;
  auto r = gradcheck([](const std::vector<TensorD>& in) { return testops::abs(in[0]); }, {x}, opt);
  INFO(r);
  CHECK(r.ok);
  CHECK(r.skipped == 1);
  CHECK(r.checked == 3);
}

TEST_CASE("gradcheck checks only the flagged inputs", "[autograd][gradcheck]") {
  auto r = gradcheck([](const std::vector<TensorD>& in) { return testops::mul(in[0], in[1]); },
                     {sample({3}, 5), sample({3}, 6)}, {}, {false, true});
  CHECK(r.ok);
  CHECK(r.checked == 3);
}
