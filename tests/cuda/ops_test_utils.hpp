// Shared by the op tests on the GPU (test_cuda_ops.cu, test_cuda_ops_libs.cu):
// random inputs, outputs pre-filled differently on each side, and the
// comparison |gpu - cpu| <= abs + |cpu| * rel with abs = rel * max|cpu|.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lgh/core/philox.hpp"
#include "lgh/core/tensor.hpp"

namespace lgh_test {

inline const lgh::Device kGpu = lgh::Device::cuda(0);

// Relative tolerance of a kernel whose sums the GPU orders differently from
// the CPU (block trees, double partials): the rounding of a few additions.
template <typename T>
constexpr double op_rel_tol() {
  return sizeof(T) == sizeof(float) ? 2e-5 : 1e-12;
}

template <typename T>
lgh::Tensor<T> random(const lgh::Shape& s, uint64_t seed, double lo = -2.0, double hi = 2.0) {
  lgh::PhiloxEngine rng(seed);
  return lgh::Tensor<T>::uniform(s, lo, hi, rng);
}

// An output pair: the CPU's pre-filled with 7, the GPU's with NaN, so that an
// element either side leaves unwritten fails the comparison.
template <typename T>
struct OutPair {
  lgh::Tensor<T> cpu, gpu;
};
template <typename T>
OutPair<T> outputs(const lgh::Shape& s) {
  return OutPair<T>{lgh::Tensor<T>::full(s, T(7)),
                    lgh::Tensor<T>::full(s, std::numeric_limits<T>::quiet_NaN(), kGpu)};
}

// The first offender is reported; a NaN on the GPU side never passes unless
// the CPU has a NaN at the same place.
template <typename T>
void require_close(const lgh::Tensor<T>& gpu, const lgh::Tensor<T>& cpu, double rel, const std::string& what) {
  REQUIRE(gpu.shape() == cpu.shape());
  const std::vector<T> g = gpu.to(lgh::Device::cpu()).to_vector(), c = cpu.to_vector();
  double max_ref = 0;
  for (T v : c)
    if (std::isfinite(static_cast<double>(v))) max_ref = std::max(max_ref, std::fabs(static_cast<double>(v)));
  const double abs_tol = rel * max_ref;
  for (size_t i = 0; i < g.size(); ++i) {
    const double gv = static_cast<double>(g[i]), cv = static_cast<double>(c[i]);
    if (std::isnan(cv) && std::isnan(gv)) continue;
    const bool ok = std::fabs(gv - cv) <= abs_tol + std::fabs(cv) * rel;
    if (!ok) {
      INFO(what << ": element " << i << " of " << g.size() << ": gpu " << gv << ", cpu " << cv << " (abs tol "
                << abs_tol << ", rel " << rel << ")");
      REQUIRE(ok);
    }
  }
}

template <typename T>
void require_equal(const lgh::Tensor<T>& gpu, const lgh::Tensor<T>& cpu, const std::string& what) {
  require_close(gpu, cpu, 0.0, what);
}

}  // namespace lgh_test
