#include "lgh/ops/reduce.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("sum and mean match PyTorch", "[ops][reduce]") {
  const auto fx = load_fixture("ops_reduce.json");
  int n = 0;
  for (const auto& c : fx["cases"]) {
    const std::string op = c["op"];
    const TensorD x = tensor_from_json(c["x"]);
    TensorD y;
    if (c["dims"].is_null()) {
      INFO(op << " over all elements");
      y = op == "sum" ? ops::sum(x) : ops::mean(x);
    } else {
      const auto dims = c["dims"].get<std::vector<int>>();
      const bool keepdim = c["keepdim"];
      y = op == "sum" ? ops::sum(x, dims, keepdim) : ops::mean(x, dims, keepdim);
    }
    INFO(op << " " << c["dims"].dump() << " keepdim " << c["keepdim"].dump());
    require_close(y, tensor_from_json(c["y"]), 1e-14, 1e-13, "y");
    // The same in float.
    const TensorF xf = x.cast<float>();
    const TensorF yf = c["dims"].is_null() ? (op == "sum" ? ops::sum(xf) : ops::mean(xf))
                                           : (op == "sum" ? ops::sum(xf, c["dims"].get<std::vector<int>>(), c["keepdim"])
                                                          : ops::mean(xf, c["dims"].get<std::vector<int>>(), c["keepdim"]));
    require_close(yf.cast<double>(), tensor_from_json(c["y"]), 1e-5, 1e-5, "y (float)");
    ++n;
  }
  CHECK(n == 12);
}

TEST_CASE("sum and mean gradients", "[ops][reduce]") {
  LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::sum(in[0]); }, V{random_tensor({3, 5, 2}, 1)});
  LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::mean(in[0]); }, V{random_tensor({7}, 2)});
  const std::vector<std::vector<int>> dim_sets{{0}, {1}, {3}, {1, 2}, {0, 2}, {-1, 1}, {0, 1, 2, 3}, {2, 0, 3}};
  uint64_t seed = 3;
  for (const auto& dims : dim_sets)
    for (bool keepdim : {false, true}) {
      INFO("dims " << dims.size() << " first " << dims[0] << " keepdim " << keepdim);
      LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::sum(in[0], dims, keepdim); },
                            V{random_tensor({2, 3, 5, 3}, seed++)});
      LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::mean(in[0], dims, keepdim); },
                            V{random_tensor({3, 1, 4, 5}, seed++)});
    }
}

TEST_CASE("reductions: shapes, values and strided inputs", "[ops][reduce]") {
  TensorD x = TensorD::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(ops::sum(x).shape() == Shape{});
  CHECK(ops::sum(x).item() == 21);
  CHECK(ops::mean(x).item() == 3.5);
  CHECK(ops::sum(x, {0}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(ops::sum(x, {1}, true).shape() == Shape{2, 1});
  CHECK(ops::mean(x, {-1}).to_vector() == std::vector<double>{2, 5});
  // Strided input (the transpose): the same values as its copy.
  TensorD t = x.permute({1, 0});
  CHECK(ops::sum(t, {1}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(ops::sum(t).item() == 21);
  // Non-adjacent dims of a 4-d tensor against a plain loop.
  TensorD y = random_tensor({2, 3, 4, 5}, 50);
  TensorD s = ops::sum(y, {0, 2});
  REQUIRE(s.shape() == Shape{3, 5});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t w = 0; w < 5; ++w) {
      double e = 0;
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t h = 0; h < 4; ++h) e += y.at({n, c, h, w});
      CHECK(s.at({c, w}) == Approx(e).epsilon(1e-14));
    }
  // Empty tensors: the sum is 0, the mean NaN (as PyTorch).
  TensorD e = TensorD::zeros({0, 3});
  CHECK(ops::sum(e).item() == 0);
  CHECK(std::isnan(ops::mean(e).item()));
  CHECK(ops::sum(e, {0}).to_vector() == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(ops::mean(e, {0}).to_vector()[0]));
}

TEST_CASE("reductions of many float values keep their precision and are deterministic", "[ops][reduce]") {
  // 3e6 values of 0.1f: a float running sum drifts by percents; chunked
  // double accumulation stays at float rounding of the result.
  const int64_t n = 3000000;
  TensorF x = TensorF::full({n}, 0.1f);
  const double expected = double(0.1f) * double(n);
  const float s = ops::sum(x).item();
  CHECK(std::fabs(double(s) - expected) <= 1e-6 * expected);
  const float m = ops::mean(x).item();
  CHECK(std::fabs(double(m) - double(0.1f)) <= 1e-7);
  // Same result on one thread as on all.
  const int threads = num_threads();
  set_num_threads(1);
  const float s1 = ops::sum(x).item();
  set_num_threads(threads);
  CHECK(s1 == s);
}

TEST_CASE("reductions: argument errors", "[ops][reduce]") {
  TensorD x = random_tensor({2, 3}, 1);
  CHECK_THROWS_WITH(ops::sum(x, {2}), Catch::Contains("sum: dim 2 out of range for input of shape [2, 3]"));
  CHECK_THROWS_WITH(ops::mean(x, {1, -1}), Catch::Contains("mean: dim -1 repeated"));
  CHECK_THROWS_WITH(ops::sum(x, std::vector<int>{}), Catch::Contains("empty list of dims"));
  CHECK_THROWS_WITH(ops::sum(TensorD()), Catch::Contains("sum: argument 'x' is an undefined tensor"));
}
