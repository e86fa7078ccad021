#include "lgh/ops/loss.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

namespace {
ops::Reduction reduction_of(const std::string& s) {
  return s == "mean" ? ops::Reduction::Mean : s == "sum" ? ops::Reduction::Sum : ops::Reduction::None;
}
}  // namespace

TEST_CASE("l1_loss and smooth_l1_loss match PyTorch", "[ops][loss]") {
  const auto fx = load_fixture("ops_loss.json");
  int n = 0;
  for (const auto& c : fx["cases"]) {
    const std::string op = c["op"], red = c["reduction"];
    const double beta = c["beta"];
    INFO(op << " reduction " << red << " beta " << beta);
    TensorD p = tensor_from_json(c["pred"]).set_requires_grad();
    TensorD t = tensor_from_json(c["target"]).set_requires_grad();
    TensorD y = op == "l1_loss" ? ops::l1_loss(p, t, reduction_of(red)) : ops::smooth_l1_loss(p, t, reduction_of(red), beta);
    require_close(y, tensor_from_json(c["y"]), 1e-14, 1e-13, "y");
    y.backward(tensor_from_json(c["gy"]));
    // Includes the exact ties pred == target, where the gradient is 0.
    require_close(p.grad(), tensor_from_json(c["gpred"]), 1e-15, 1e-13, "gpred");
    require_close(t.grad(), tensor_from_json(c["gtarget"]), 1e-15, 1e-13, "gtarget");
    TensorF yf = op == "l1_loss" ? ops::l1_loss(p.detach().cast<float>(), t.detach().cast<float>(), reduction_of(red))
                                 : ops::smooth_l1_loss(p.detach().cast<float>(), t.detach().cast<float>(), reduction_of(red), beta);
    require_close(yf.cast<double>(), tensor_from_json(c["y"]), 1e-5, 1e-5, "y (float)");
    ++n;
  }
  CHECK(n == 9);
}

TEST_CASE("loss gradients", "[ops][loss]") {
  uint64_t seed = 1;
  for (const Shape& s : std::vector<Shape>{{3, 5}, {2, 3, 4, 1}, {7}}) {
    for (auto red : {ops::Reduction::Mean, ops::Reduction::Sum, ops::Reduction::None}) {
      INFO("shape " << s.str() << " reduction " << int(red));
      const V in{random_tensor(s, seed++, -2, 2), random_tensor(s, seed++, -2, 2)};
      LGH_REQUIRE_GRADCHECK([red](const V& v) { return ops::l1_loss(v[0], v[1], red); }, in);
      LGH_REQUIRE_GRADCHECK([red](const V& v) { return ops::smooth_l1_loss(v[0], v[1], red); }, in);
      LGH_REQUIRE_GRADCHECK([red](const V& v) { return ops::smooth_l1_loss(v[0], v[1], red, 0.3); }, in);
    }
  }
  // Gradient to pred only (the target is data).
  LGH_REQUIRE_GRADCHECK([](const V& v) { return ops::l1_loss(v[0], v[1]); },
                        V{random_tensor({4, 2}, 50), random_tensor({4, 2}, 51)}, {}, {true, false});
}

TEST_CASE("loss semantics", "[ops][loss]") {
  TensorD p = TensorD::from_data({4}, {1, 2, 3, 4}).set_requires_grad();
  TensorD t = TensorD::from_data({4}, {1, 0, 3.5, 6});
  TensorD l = ops::l1_loss(p, t);
  CHECK(l.shape() == Shape{});
  CHECK(l.item() == Approx((0 + 2 + 0.5 + 2) / 4.0));
  l.backward();
  // sign(p - t) / n, and exactly 0 where p == t.
  CHECK(p.grad().to_vector() == std::vector<double>{0, 0.25, -0.25, -0.25});
  CHECK(ops::l1_loss(p.detach(), t, ops::Reduction::Sum).item() == 4.5);
  CHECK(ops::l1_loss(p.detach(), t, ops::Reduction::None).to_vector() == std::vector<double>{0, 2, 0.5, 2});
  // smooth l1: 0.5 d^2 / beta below beta, |d| - beta / 2 above.
  CHECK(ops::smooth_l1_loss(p.detach(), t, ops::Reduction::None).to_vector() ==
        std::vector<double>{0, 1.5, 0.125, 1.5});
  // beta = 0 is l1.
  CHECK(ops::smooth_l1_loss(p.detach(), t, ops::Reduction::None, 0.0).to_vector() ==
        std::vector<double>{0, 2, 0.5, 2});
  // Large float input: the mean is accumulated in double across chunks (a
  // running float sum of these 2e6 values would be off by percents).
  TensorF big = TensorF::full({2000000}, 0.3f), zero = TensorF::zeros({2000000});
  CHECK(std::fabs(double(ops::l1_loss(big, zero).item()) - double(0.3f)) < 1e-6 * 0.3);
}

TEST_CASE("loss: argument errors", "[ops][loss]") {
  TensorD p = random_tensor({2, 3}, 1);
  CHECK_THROWS_WITH(ops::l1_loss(p, random_tensor({3, 2}, 2)),
                    Catch::Contains("l1_loss: 'target' has shape [3, 2], expected the shape of 'pred' [2, 3]"));
  CHECK_THROWS_WITH(ops::smooth_l1_loss(p, p, ops::Reduction::Mean, -1.0), Catch::Contains("smooth_l1_loss: beta must be non-negative"));
  CHECK_THROWS_WITH(ops::l1_loss(TensorD(), p), Catch::Contains("l1_loss: argument 'pred' is an undefined tensor"));
}
