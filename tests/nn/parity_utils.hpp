// Comparison helpers for the PyTorch parity tests.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "lgh/io/weights.hpp"

namespace parity {
using namespace lgh;

// max |a - b| / max |b|: the error relative to the tensor's largest magnitude.
inline double relative_to_max(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return scale > 0 ? err / scale : err;
}

template <typename T>
std::vector<double> values(const Tensor<T>& t) {
  const auto v = t.contiguous().to_vector();
  return std::vector<double>(v.begin(), v.end());
}

// Requires `ours` to match the reference tensor `name` of `file` within
// tol x its largest magnitude; returns the error found.
template <typename T>
double require_match(const Tensor<T>& ours, const io::SafetensorsReader& file, const std::string& name, double tol) {
  INFO("reference tensor '" << name << "'");
  REQUIRE(file.contains(name));
  const TensorD ref = file.load<double>(name);
  REQUIRE(ours.numel() == ref.numel());
  const double err = relative_to_max(values(ours), ref.to_vector());
  INFO("error relative to the largest magnitude: " << err << " (tolerance " << tol << ")");
  CHECK(err <= tol);
  return err;
}

}  // namespace parity
