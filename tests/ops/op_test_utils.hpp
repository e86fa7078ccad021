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

// ---- PyTorch reference fixtures ---------------------------------------------
// Fixtures are JSON files under tests/fixtures, written by the scripts in
// tests/reference with Debian's python3-torch. A tensor is stored as
// {"shape": [...], "data": [... row-major ...]}.
#include <fstream>
#include <nlohmann/json.hpp>

namespace lgh_test {

inline nlohmann::json load_fixture(const std::string& name) {
  const std::string path = std::string(LGH_TEST_DATA_DIR) + "/fixtures/" + name;
  std::ifstream in(path);
  REQUIRE(in.good());  // fixture missing: run the generator in tests/reference
  return nlohmann::json::parse(in);
}

inline TensorD tensor_from_json(const nlohmann::json& j) {
  std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  std::vector<double> data = j.at("data").get<std::vector<double>>();
  return TensorD::from_data(Shape(shape), data);
}

// max |a - b| / (atol + rtol * |b|) <= 1 for all elements.
inline void require_close(const TensorD& a, const TensorD& b, double atol, double rtol, const std::string& what) {
  INFO(what << ": shapes " << a.shape().str() << " vs " << b.shape().str());
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector(), vb = b.to_vector();
  for (size_t i = 0; i < va.size(); ++i) {
    INFO(what << " element " << i << ": " << va[i] << " vs expected " << vb[i]);
    REQUIRE(std::fabs(va[i] - vb[i]) <= atol + rtol * std::fabs(vb[i]));
  }
}

}  // namespace lgh_test
