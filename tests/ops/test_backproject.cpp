#include "lgh/ops/backproject.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("backproject matches PyTorch's (s0 d + z_root) M^-1 [u v 1]^T", "[ops][backproject]") {
  const auto fx = load_fixture("fused_backproject.json");
  REQUIRE(fx.at("cases").size() >= 2);
  for (const auto& c : fx.at("cases")) {
    TensorD uvd = tensor_from_json(c.at("uvd")).set_requires_grad();
    const TensorD k = tensor_from_json(c.at("intrinsics")), zr = tensor_from_json(c.at("z_root")),
                  s0 = tensor_from_json(c.at("s0"));
    INFO("uvd " << uvd.shape().str());
    TensorD xyz = ops::backproject(uvd, k, zr, s0);
    require_close(xyz, tensor_from_json(c.at("xyz")), 1e-9, 1e-12, "forward");
    xyz.backward(tensor_from_json(c.at("grad_output")));
    require_close(uvd.grad(), tensor_from_json(c.at("grad_uvd")), 1e-12, 1e-11, "grad uvd");

    TensorF xf = ops::backproject(uvd.detach().cast<float>(), k.cast<float>(), zr.cast<float>(), s0.cast<float>());
    require_close(xf.cast<double>(), tensor_from_json(c.at("xyz")), 1e-3, 1e-5, "float forward");
  }
}

TEST_CASE("backproject gradients and worked example", "[ops][backproject]") {
  for (int64_t B : {1, 3}) {
    for (int64_t J : {1, 21}) {
      INFO("B " << B << " J " << J);
      TensorD k = TensorD::empty({B, 4});
      for (int64_t b = 0; b < B; ++b) {
        k.at({b, 0}) = 600.0 + 10 * double(b);
        k.at({b, 1}) = 590.0;
        k.at({b, 2}) = 120.0;
        k.at({b, 3}) = 130.0 - double(b);
      }
      const TensorD zr = random_tensor({B}, 2, 400, 800), s0 = random_tensor({B}, 3, 20, 40);
      // Outputs are ~1e3 (millimetres): a 1e-6 step would lose the
      // difference to rounding. Each output is linear in each of u, v, d
      // alone, so a large step has no truncation error.
      autograd::GradCheckOptions opt;
      opt.step = 1e-2;
      LGH_REQUIRE_GRADCHECK([&](const V& x) { return ops::backproject(x[0], k, zr, s0); },
                            V{random_tensor({B, J, 3}, 1, 0, 2)}, opt);
    }
  }
  // One joint by hand: z = 30 * 0.5 + 500 = 515, x = 515 * (300 - 100) / 600, y = 515 * (50 - 150) / 400.
  const TensorD xyz = ops::backproject(TensorD::from_data({1, 1, 3}, {300, 50, 0.5}),
                                       TensorD::from_data({1, 4}, {600, 400, 100, 150}), TensorD::from_data({1}, {500}),
                                       TensorD::from_data({1}, {30}));
  CHECK(xyz.at({0, 0, 0}) == Approx(515.0 * 200.0 / 600.0));
  CHECK(xyz.at({0, 0, 1}) == Approx(-515.0 * 100.0 / 400.0));
  CHECK(xyz.at({0, 0, 2}) == 515.0);
}

TEST_CASE("backproject argument errors; its data inputs carry no gradient", "[ops][backproject]") {
  const TensorD uvd = random_tensor({2, 21, 3}, 1);
  const TensorD k = TensorD::ones({2, 4}), zr = TensorD::ones({2}), s0 = TensorD::ones({2});
  CHECK_THROWS_WITH(ops::backproject(random_tensor({2, 21, 2}, 1), k, zr, s0),
                    Catch::Contains("backproject") && Catch::Contains("'uvd' has shape [2, 21, 2], expected [B, J, 3]"));
  CHECK_THROWS_WITH(ops::backproject(uvd, TensorD::ones({2, 3}), zr, s0),
                    Catch::Contains("'intrinsics' has shape [2, 3], expected [2, 4]"));
  CHECK_THROWS_WITH(ops::backproject(uvd, k, TensorD::ones({3}), s0), Catch::Contains("'z_root' has shape [3], expected [2]"));
  CHECK_THROWS_WITH(ops::backproject(uvd, k, zr, TensorD::ones({2, 1})), Catch::Contains("'s0' has shape [2, 1], expected [2]"));
  TensorD zg = TensorD::ones({2}).set_requires_grad();
  CHECK_THROWS_WITH(ops::backproject(uvd, k, zg, s0), Catch::Contains("'z_root' requires grad"));
  autograd::NoGradGuard no_grad;
  CHECK_NOTHROW(ops::backproject(uvd, k, zg, s0));
}
