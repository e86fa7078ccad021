#include "lgh/ops/pooling.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

namespace {

// Distinct values in random order (a shuffled grid), so that no max-pool
// window holds a tie and the gradient is smooth around every point.
TensorD tie_free(const Shape& s, uint64_t seed) {
  TensorD t = TensorD::empty(s);
  const int64_t n = t.numel();
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = -1.0 + 2.0 * double(i) / double(n);
  PhiloxEngine rng(seed, 3);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(v[static_cast<size_t>(i)], v[static_cast<size_t>(rng.uniform(0.0, 1.0) * double(i + 1)) % size_t(i + 1)]);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

}  // namespace

TEST_CASE("max_pool2d and upsample_nearest2x match PyTorch", "[ops][pooling]") {
  const auto fx = load_fixture("ops_pooling.json");
  int pools = 0, ups = 0;
  for (const auto& c : fx["cases"]) {
    TensorD x = tensor_from_json(c["x"]).set_requires_grad();
    TensorD y;
    if (c["op"] == "max_pool2d") {
      const int64_t k = c["kernel"], s = c["stride"], p = c["padding"];
      INFO("max_pool2d kernel " << k << " stride " << s << " padding " << p << " input " << x.shape().str());
      auto r = ops::max_pool2d_with_indices(x, k, s, p);
      y = r.first;
      std::vector<double> idx;
      for (int64_t v : r.second.to_vector()) idx.push_back(double(v));
      CHECK(idx == tensor_from_json(c["indices"]).to_vector());
      // Without a graph the values-only path runs: the same values.
      require_close(ops::max_pool2d(x.detach(), k, s, p), tensor_from_json(c["y"]), 0, 0, "y (no grad)");
      ++pools;
    } else {
      y = ops::upsample_nearest2x(x);
      ++ups;
    }
    require_close(y, tensor_from_json(c["y"]), 0, 0, "y");
    y.backward(tensor_from_json(c["gy"]));
    require_close(x.grad(), tensor_from_json(c["gx"]), 1e-15, 1e-14, "gx");
  }
  CHECK(pools == 5);
  CHECK(ups == 2);
}

TEST_CASE("max_pool2d in float", "[ops][pooling]") {
  const auto fx = load_fixture("ops_pooling.json");
  const auto& c = fx["cases"][0];
  TensorF x = tensor_from_json(c["x"]).cast<float>().set_requires_grad();
  TensorF y = ops::max_pool2d(x);
  require_close(y.cast<double>(), tensor_from_json(c["y"]), 1e-7, 1e-6, "y");
  y.backward(tensor_from_json(c["gy"]).cast<float>());
  require_close(x.grad().cast<double>(), tensor_from_json(c["gx"]), 1e-6, 1e-6, "gx");
}

TEST_CASE("max_pool2d gradients", "[ops][pooling]") {
  struct Case { Shape s; int64_t k, stride, pad; };
  const std::vector<Case> cases{{{2, 3, 6, 8}, 2, 2, 0},  {{1, 2, 7, 5}, 2, 2, 0}, {{3, 1, 5, 5}, 3, 2, 1},
                                {{2, 2, 5, 6}, 3, 1, 1},  {{1, 1, 4, 4}, 4, 4, 2}, {{2, 1, 9, 7}, 3, 3, 0}};
  uint64_t seed = 20;
  for (const Case& c : cases) {
    INFO("shape " << c.s.str() << " kernel " << c.k << " stride " << c.stride << " padding " << c.pad);
    LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::max_pool2d(in[0], c.k, c.stride, c.pad); },
                          V{tie_free(c.s, seed++)});
  }
}

TEST_CASE("max_pool2d semantics: ties, padding, NaN", "[ops][pooling]") {
  // Ties go to the first element of the window (row-major).
  TensorD x = TensorD::from_data({1, 1, 2, 2}, {3, 3, 3, 3});
  auto r = ops::max_pool2d_with_indices(x);
  CHECK(r.second.to_vector() == std::vector<int64_t>{0});
  // Padded positions never win, even against negative values.
  TensorD neg = TensorD::from_data({1, 1, 2, 2}, {-5, -4, -3, -2});
  auto rp = ops::max_pool2d_with_indices(neg, 2, 2, 1);
  CHECK(rp.first.to_vector() == std::vector<double>{-5, -4, -3, -2});
  CHECK(rp.second.to_vector() == std::vector<int64_t>{0, 1, 2, 3});
  // A NaN propagates (as PyTorch).
  TensorD nan = TensorD::from_data({1, 1, 2, 2}, {1, std::nan(""), 2, 0});
  CHECK(std::isnan(ops::max_pool2d(nan).item()));
  // Overlapping windows sum their gradients into a shared maximum.
  TensorD peak = TensorD::from_data({1, 1, 3, 3}, {0, 0, 0, 0, 9, 0, 0, 0, 0}).set_requires_grad();
  TensorD y = ops::max_pool2d(peak, 2, 1, 0);
  REQUIRE(y.shape() == Shape{1, 1, 2, 2});
  y.backward(TensorD::from_data({1, 1, 2, 2}, {1, 2, 3, 4}));
  CHECK(peak.grad().to_vector() == std::vector<double>{0, 0, 0, 0, 10, 0, 0, 0, 0});
  // A strided (non-contiguous) input gives the same result as its copy.
  TensorD big = random_tensor({1, 2, 4, 6}, 5);
  TensorD view = big.narrow(3, 1, 5);
  CHECK(ops::max_pool2d(view).to_vector() == ops::max_pool2d(view.clone()).to_vector());
}

TEST_CASE("max_pool2d: argument errors", "[ops][pooling]") {
  TensorD x = random_tensor({1, 2, 4, 4}, 1);
  CHECK_THROWS_WITH(ops::max_pool2d(random_tensor({2, 4, 4}, 1)),
                    Catch::Contains("max_pool2d") && Catch::Contains("'x' must be 4-d") && Catch::Contains("[2, 4, 4]"));
  CHECK_THROWS_WITH(ops::max_pool2d(x, 2, 0), Catch::Contains("kernel and stride must be >= 1"));
  CHECK_THROWS_WITH(ops::max_pool2d(x, 2, 2, 2), Catch::Contains("padding must be in [0, kernel / 2]"));
  CHECK_THROWS_WITH(ops::max_pool2d(random_tensor({1, 1, 1, 5}, 1)),
                    Catch::Contains("[1, 1, 1, 5] is smaller than the kernel 2"));
}

TEST_CASE("upsample_nearest2x forward and gradient", "[ops][pooling]") {
  TensorD x = TensorD::from_data({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(ops::upsample_nearest2x(x).to_vector() ==
        std::vector<double>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6});
  for (const Shape& s : std::vector<Shape>{{2, 3, 4, 5}, {1, 1, 1, 1}, {3, 2, 3, 1}}) {
    INFO("shape " << s.str());
    LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::upsample_nearest2x(in[0]); }, V{random_tensor(s, 30)});
  }
  CHECK_THROWS_WITH(ops::upsample_nearest2x(random_tensor({3, 4}, 1)),
                    Catch::Contains("upsample_nearest2x") && Catch::Contains("'x' must be 4-d"));
}
