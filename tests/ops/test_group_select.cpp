#include "lgh/ops/group_select.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("group_select matches PyTorch (forward and gradients)", "[ops][group_select]") {
  const auto fx = load_fixture("fused_group_select.json");
  REQUIRE(fx.at("cases").size() >= 3);
  for (const auto& c : fx.at("cases")) {
    TensorD s = tensor_from_json(c.at("selector")).set_requires_grad();
    TensorD x = tensor_from_json(c.at("x")).set_requires_grad();
    const auto scale = c.at("scale").get<std::vector<double>>();
    INFO("x " << x.shape().str() << ", " << scale.size() << " channel scales");
    TensorD y = ops::group_select(s, x, scale);
    require_close(y, tensor_from_json(c.at("y")), 1e-12, 1e-12, "forward");
    y.backward(tensor_from_json(c.at("grad_output")));
    require_close(s.grad(), tensor_from_json(c.at("grad_selector")), 1e-12, 1e-12, "grad selector");
    require_close(x.grad(), tensor_from_json(c.at("grad_x")), 1e-12, 1e-12, "grad x");

    TensorF yf = ops::group_select(s.detach().cast<float>(), x.detach().cast<float>(), scale);
    require_close(yf.cast<double>(), tensor_from_json(c.at("y")), 1e-5, 1e-5, "float forward");
  }
}

TEST_CASE("group_select gradients", "[ops][group_select]") {
  struct Case { int64_t B, K, J, C; std::vector<double> scale; };
  for (const Case& c : {Case{2, 3, 21, 3, {4, 4, 1}}, Case{1, 1, 5, 3, {}}, Case{3, 2, 4, 1, {}},
                        Case{2, 4, 3, 2, {-0.5, 2}}}) {
    INFO("B " << c.B << " K " << c.K << " J " << c.J << " C " << c.C);
    LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::group_select(in[0], in[1], c.scale); },
                          V{random_tensor({c.J, c.K}, 1, 0, 1), random_tensor({c.B, c.K, c.J, c.C}, 2, -3, 3)});
  }
}

TEST_CASE("group_select with a one-hot selector picks each joint's group", "[ops][group_select]") {
  // J = 3 joints, K = 2 groups: joints 0 and 2 in group 1, joint 1 in group 0.
  const TensorD s = TensorD::from_data({3, 2}, {0, 1, 1, 0, 0, 1});
  TensorD x = TensorD::empty({2, 2, 3, 3});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t k = 0; k < 2; ++k)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t c = 0; c < 3; ++c) x.at({b, k, j, c}) = double(1000 * b + 100 * k + 10 * j + c);
  const TensorD y = ops::group_select(s, x, {4, 4, 1});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t k = j == 1 ? 0 : 1;
      for (int64_t c = 0; c < 3; ++c)
        CHECK(y.at({b, j, c}) == (c < 2 ? 4.0 : 1.0) * double(1000 * b + 100 * k + 10 * j + c));
    }
  // A strided (permuted) x gives the same result as its contiguous copy.
  TensorD xp = x.permute({1, 0, 2, 3}).contiguous().permute({1, 0, 2, 3});
  REQUIRE_FALSE(xp.is_contiguous());
  CHECK(ops::group_select(s, xp, {4, 4, 1}).to_vector() == y.to_vector());
}

TEST_CASE("group_select argument errors", "[ops][group_select]") {
  const TensorD x = random_tensor({2, 3, 5, 3}, 1);
  CHECK_THROWS_WITH(ops::group_select(random_tensor({5, 2}, 1), x),
                    Catch::Contains("group_select") && Catch::Contains("'selector' has shape [5, 2]") &&
                        Catch::Contains("[5, 3]"));
  CHECK_THROWS_WITH(ops::group_select(random_tensor({5, 3}, 1), random_tensor({2, 3, 5}, 1)),
                    Catch::Contains("'x' must be 4-d"));
  CHECK_THROWS_WITH(ops::group_select(random_tensor({5, 3}, 1), x, {4, 4}),
                    Catch::Contains("'channel_scale' has 2 values, expected 0 or C = 3"));
}
