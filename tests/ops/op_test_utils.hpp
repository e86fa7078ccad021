// Helpers shared by the op tests.
#pragma once

#include <catch2/catch.hpp>

#include "lgh/autograd/gradcheck.hpp"

namespace lgh_test {
using namespace lgh;

inline TensorD random_tensor(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  PhiloxEngine rng(seed, 99);
  return TensorD::uniform(s, lo, hi, rng);
}

inline TensorF random_tensor_f(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  PhiloxEngine rng(seed, 99);
  return TensorF::uniform(s, lo, hi, rng);
}

// Runs the gradient checker and fails the test case with its report.
#define LGH_REQUIRE_GRADCHECK(...)                              \
  do {                                                          \
    const auto lgh_gc_result_ = ::lgh::autograd::gradcheck(__VA_ARGS__); \
    INFO(lgh_gc_result_);                                       \
    REQUIRE(lgh_gc_result_.ok);                                 \
  } while (0)

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace lgh_test
