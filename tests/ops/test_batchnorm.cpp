#include "lgh/ops/batchnorm.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

namespace {

TensorD opt_tensor(const nlohmann::json& c, const char* key) {
  return c.contains(key) ? tensor_from_json(c[key]) : TensorD();
}

// Positive running variances for eval-mode checks.
TensorD random_var(int64_t C, uint64_t seed) { return random_tensor({C}, seed, 0.5, 1.5); }

}  // namespace

TEST_CASE("batch_norm2d matches PyTorch (double)", "[ops][batchnorm]") {
  const auto fx = load_fixture("ops_batchnorm.json");
  for (const auto& c : fx["cases"]) {
    const bool training = c["training"], affine = c["affine"];
    const double momentum = c["momentum"], eps = c["eps"];
    INFO("training " << training << ", affine " << affine << ", momentum " << momentum);
    TensorD x = tensor_from_json(c["x"]).set_requires_grad();
    TensorD w = opt_tensor(c, "weight"), b = opt_tensor(c, "bias");
    if (affine) {
      w.set_requires_grad();
      b.set_requires_grad();
    }
    TensorD rm = tensor_from_json(c["running_mean"]), rv = tensor_from_json(c["running_var"]);
    TensorD y = ops::batch_norm2d(x, w, b, rm, rv, training, momentum, eps);
    require_close(y, tensor_from_json(c["y"]), 1e-12, 1e-10, "y");
    require_close(rm, tensor_from_json(c["running_mean_after"]), 1e-14, 1e-12, "running_mean");
    require_close(rv, tensor_from_json(c["running_var_after"]), 1e-14, 1e-12, "running_var");
    y.backward(tensor_from_json(c["gy"]));
    require_close(x.grad(), tensor_from_json(c["gx"]), 1e-12, 1e-9, "gx");
    if (affine) {
      require_close(w.grad(), tensor_from_json(c["gweight"]), 1e-12, 1e-10, "gweight");
      require_close(b.grad(), tensor_from_json(c["gbias"]), 1e-12, 1e-10, "gbias");
    }
  }
}

TEST_CASE("batch_norm2d matches PyTorch (float)", "[ops][batchnorm]") {
  const auto fx = load_fixture("ops_batchnorm.json");
  for (const auto& c : fx["cases"]) {
    const bool training = c["training"], affine = c["affine"];
    INFO("training " << training << ", affine " << affine);
    TensorF x = tensor_from_json(c["x"]).cast<float>().set_requires_grad();
    TensorF w, b;
    if (affine) {
      w = tensor_from_json(c["weight"]).cast<float>().set_requires_grad();
      b = tensor_from_json(c["bias"]).cast<float>().set_requires_grad();
    }
    TensorF rm = tensor_from_json(c["running_mean"]).cast<float>();
    TensorF rv = tensor_from_json(c["running_var"]).cast<float>();
    TensorF y = ops::batch_norm2d(x, w, b, rm, rv, training, double(c["momentum"]), double(c["eps"]));
    require_close(y.cast<double>(), tensor_from_json(c["y"]), 1e-5, 1e-5, "y");
    require_close(rv.cast<double>(), tensor_from_json(c["running_var_after"]), 1e-6, 1e-5, "running_var");
    y.backward(tensor_from_json(c["gy"]).cast<float>());
    require_close(x.grad().cast<double>(), tensor_from_json(c["gx"]), 1e-5, 1e-4, "gx");
    if (affine) require_close(w.grad().cast<double>(), tensor_from_json(c["gweight"]), 1e-5, 1e-5, "gweight");
  }
}

TEST_CASE("batch_norm2d gradients, training and eval, with and without affine", "[ops][batchnorm]") {
  const std::vector<Shape> shapes{{2, 3, 4, 5}, {3, 2, 3, 1}, {1, 3, 5, 7}, {4, 1, 1, 1}};
  uint64_t seed = 10;
  for (const Shape& s : shapes) {
    const int64_t C = s[1];
    for (bool training : {true, false}) {
      INFO("shape " << s.str() << ", training " << training);
      TensorD rm = random_tensor({C}, seed++, -0.5, 0.5), rv = random_var(C, seed++);
      const TensorD x = random_tensor(s, seed++, -2.0, 3.0);
      const TensorD w = random_tensor({C}, seed++, 0.5, 1.5), b = random_tensor({C}, seed++);
      // Affine: gradients to x, weight and bias.
      LGH_REQUIRE_GRADCHECK(
          [&](const V& in) { return ops::batch_norm2d(in[0], in[1], in[2], rm, rv, training); }, V{x, w, b});
      // affine = false: only x.
      LGH_REQUIRE_GRADCHECK(
          [&](const V& in) { return ops::batch_norm2d(in[0], TensorD(), TensorD(), rm, rv, training); }, V{x});
    }
  }
  // Training without running statistics (track_running_stats = false).
  LGH_REQUIRE_GRADCHECK(
      [](const V& in) { return ops::batch_norm2d(in[0], in[1], TensorD(), TensorD(), TensorD(), true); },
      V{random_tensor({2, 2, 3, 3}, 77), random_tensor({2}, 78)});
}

TEST_CASE("batch_norm2d: running statistics and modes", "[ops][batchnorm]") {
  // One channel, values 1..4: batch mean 2.5, biased var 1.25, unbiased 5/3.
  TensorD x = TensorD::from_data({2, 1, 1, 2}, {1, 2, 3, 4});
  TensorD rm = TensorD::from_data({1}, {1.0}), rv = TensorD::from_data({1}, {2.0});
  TensorD y = ops::batch_norm2d(x, TensorD(), TensorD(), rm, rv, true, 0.1, 1e-5);
  CHECK(rm.item() == Approx(0.9 * 1.0 + 0.1 * 2.5).epsilon(1e-14));
  CHECK(rv.item() == Approx(0.9 * 2.0 + 0.1 * 5.0 / 3.0).epsilon(1e-14));
  CHECK(y.at({0, 0, 0, 0}) == Approx(-1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-12));

  // Eval uses the running statistics and leaves them alone.
  const double m0 = rm.item(), v0 = rv.item();
  TensorD w = TensorD::from_data({1}, {2.0}), b = TensorD::from_data({1}, {0.5});
  TensorD ye = ops::batch_norm2d(x, w, b, rm, rv, false);
  CHECK(rm.item() == m0);
  CHECK(rv.item() == v0);
  CHECK(ye.at({1, 0, 0, 1}) == Approx((4 - m0) / std::sqrt(v0 + 1e-5) * 2.0 + 0.5).epsilon(1e-12));

  // Training with undefined running statistics normalises with the batch's.
  TensorD yn = ops::batch_norm2d(x, TensorD(), TensorD(), TensorD(), TensorD(), true);
  CHECK(max_abs_diff(yn.to_vector(), y.to_vector()) == 0.0);
}

TEST_CASE("batch_norm2d: strided per-channel tensors", "[ops][batchnorm]") {
  // Buffers interleaved in one flat array (running_mean at even, running_var
  // at odd positions), as when they are views of a larger buffer.
  TensorD buf = TensorD::from_data({4}, {0.0, 1.0, 0.0, 1.0});
  auto strided = [&](int64_t offset) {
    auto impl = std::make_shared<lgh::detail::TensorImpl<double>>();
    impl->storage = buf.storage();
    impl->shape = Shape{2};
    impl->strides = Shape{2};
    impl->offset = offset;
    return TensorD(impl);
  };
  TensorD rm = strided(0), rv = strided(1);
  REQUIRE_FALSE(rm.is_contiguous());
  // Channel 0: values 1, 3 (mean 2, unbiased var 2); channel 1: 10, 20 (mean 15, var 50).
  TensorD x = TensorD::from_data({2, 2, 1, 1}, {1, 10, 3, 20});
  ops::batch_norm2d(x, TensorD(), TensorD(), rm, rv, true);
  const std::vector<double> expected{0.2, 0.9 + 0.2, 1.5, 0.9 + 5.0};
  CHECK(max_abs_diff(buf.to_vector(), expected) < 1e-14);
  // Eval with a strided weight (gamma 2 and 3 at stride 2).
  TensorD wbuf = TensorD::from_data({4}, {2.0, -7.0, 3.0, -7.0});
  auto wimpl = std::make_shared<lgh::detail::TensorImpl<double>>();
  wimpl->storage = wbuf.storage();
  wimpl->shape = Shape{2};
  wimpl->strides = Shape{2};
  TensorD w(wimpl);
  TensorD y = ops::batch_norm2d(x, w, TensorD(), rm, rv, false);
  CHECK(y.at({1, 1, 0, 0}) == Approx((20 - 1.5) / std::sqrt(5.9 + 1e-5) * 3.0));
}

TEST_CASE("batch_norm2d: argument errors", "[ops][batchnorm]") {
  TensorD x = random_tensor({2, 3, 4, 4}, 1);
  TensorD rm = TensorD::zeros({3}), rv = TensorD::ones({3});
  CHECK_THROWS_WITH(ops::batch_norm2d(random_tensor({2, 3, 4}, 2), TensorD(), TensorD(), rm, rv, true),
                    Catch::Contains("batch_norm2d") && Catch::Contains("'x' must be 4-d") &&
                        Catch::Contains("[2, 3, 4]"));
  CHECK_THROWS_WITH(ops::batch_norm2d(x, TensorD::ones({4}), TensorD(), rm, rv, true),
                    Catch::Contains("'weight' has shape [4], expected [3]"));
  CHECK_THROWS_WITH(ops::batch_norm2d(x, TensorD(), TensorD::ones({2}), rm, rv, true),
                    Catch::Contains("'bias' has shape [2], expected [3]"));
  CHECK_THROWS_WITH(ops::batch_norm2d(x, TensorD(), TensorD(), TensorD::zeros({5}), TensorD::ones({5}), true),
                    Catch::Contains("'running_mean' has shape [5], expected [3]"));
  CHECK_THROWS_WITH(ops::batch_norm2d(x, TensorD(), TensorD(), rm, TensorD(), true),
                    Catch::Contains("both be defined"));
  CHECK_THROWS_WITH(ops::batch_norm2d(x, TensorD(), TensorD(), TensorD(), TensorD(), false),
                    Catch::Contains("eval mode needs running_mean"));
  CHECK_THROWS_WITH(ops::batch_norm2d(random_tensor({1, 3, 1, 1}, 3), TensorD(), TensorD(), rm, rv, true),
                    Catch::Contains("more than 1 value per channel") && Catch::Contains("[1, 3, 1, 1]"));
  TensorD rg = TensorD::zeros({3}).set_requires_grad();
  CHECK_THROWS_WITH(ops::batch_norm2d(x, TensorD(), TensorD(), rg, rv, true), Catch::Contains("buffers"));
  // A single value per channel is fine in eval.
  CHECK_NOTHROW(ops::batch_norm2d(random_tensor({1, 3, 1, 1}, 3), TensorD(), TensorD(), rm, rv, false));
}

namespace {

// Reference 1x1 convolution: y[n, o, h, w] = sum_i W[o, i] x[n, i, h, w] + b[o].
TensorD conv1x1(const TensorD& x, const TensorD& W, const TensorD& b) {
  const int64_t N = x.size(0), I = x.size(1), H = x.size(2), Wd = x.size(3), O = W.size(0);
  TensorD y = TensorD::zeros({N, O, H, Wd});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < Wd; ++w) {
          double s = b.defined() ? b.at({o}) : 0.0;
          for (int64_t i = 0; i < I; ++i) s += W.at({o, i, 0, 0}) * x.at({n, i, h, w});
          y.at({n, o, h, w}) = s;
        }
  return y;
}

}  // namespace

TEST_CASE("fold_batch_norm: conv then eval BN equals the folded conv", "[ops][batchnorm]") {
  const int64_t I = 3, O = 4;
  TensorD x = random_tensor({2, I, 3, 5}, 40);
  TensorD W = random_tensor({O, I, 1, 1}, 41), cb = random_tensor({O}, 42);
  TensorD gamma = random_tensor({O}, 43, 0.5, 2.0), beta = random_tensor({O}, 44);
  TensorD mean = random_tensor({O}, 45), var = random_var(O, 46);
  for (bool with_bias : {true, false})
    for (bool affine : {true, false}) {
      INFO("conv bias " << with_bias << ", affine " << affine);
      const TensorD b = with_bias ? cb : TensorD();
      const TensorD g = affine ? gamma : TensorD(), be = affine ? beta : TensorD();
      const TensorD expected = ops::batch_norm2d(conv1x1(x, W, b), g, be, mean, var, false);
      const auto folded = ops::fold_batch_norm(W, b, g, be, mean, var);
      REQUIRE(folded.weight.shape() == W.shape());
      REQUIRE(folded.bias.shape() == Shape{O});
      require_close(conv1x1(x, folded.weight, folded.bias), expected, 1e-12, 1e-12, "folded conv");
    }
  // The inputs are untouched.
  CHECK(W.to_vector() == random_tensor({O, I, 1, 1}, 41).to_vector());
}

TEST_CASE("fold_batch_norm: formula for 3x3 and transposed-conv weights", "[ops][batchnorm]") {
  const int64_t O = 3;
  TensorD gamma = random_tensor({O}, 50, 0.5, 2.0), beta = random_tensor({O}, 51);
  TensorD mean = random_tensor({O}, 52), var = random_var(O, 53), cb = random_tensor({O}, 54);
  const double eps = 1e-3;
  // conv2d weight [O, I, 3, 3]: output channel along dim 0.
  TensorD W = random_tensor({O, 2, 3, 3}, 55);
  auto f = ops::fold_batch_norm(W, cb, gamma, beta, mean, var, eps);
  for (int64_t o = 0; o < O; ++o) {
    const double s = gamma.at({o}) / std::sqrt(var.at({o}) + eps);
    CHECK(f.bias.at({o}) == Approx((cb.at({o}) - mean.at({o})) * s + beta.at({o})).epsilon(1e-13));
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t k = 0; k < 9; ++k)
        CHECK(f.weight.at({o, i, k / 3, k % 3}) == Approx(W.at({o, i, k / 3, k % 3}) * s).epsilon(1e-13));
  }
  // conv_transpose2d weight [I, O, 4, 4]: output channel along dim 1.
  TensorD Wt = random_tensor({2, O, 4, 4}, 56);
  auto ft = ops::fold_batch_norm(Wt, TensorD(), gamma, beta, mean, var, eps, 1);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t o = 0; o < O; ++o) {
      const double s = gamma.at({o}) / std::sqrt(var.at({o}) + eps);
      CHECK(ft.bias.at({o}) == Approx(-mean.at({o}) * s + beta.at({o})).epsilon(1e-13));
      for (int64_t k = 0; k < 16; ++k)
        CHECK(ft.weight.at({i, o, k / 4, k % 4}) == Approx(Wt.at({i, o, k / 4, k % 4}) * s).epsilon(1e-13));
    }
  CHECK_THROWS_WITH(ops::fold_batch_norm(Wt, TensorD(), gamma, beta, mean, var, eps, 0),
                    Catch::Contains("fold_batch_norm") && Catch::Contains("'bn_weight' has shape [3], expected [2]"));
  CHECK_THROWS_WITH(ops::fold_batch_norm(W, cb, gamma, beta, mean, var, eps, 2),
                    Catch::Contains("out_channel_dim must be 0 or 1"));
}
