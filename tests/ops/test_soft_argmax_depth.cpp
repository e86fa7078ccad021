#include <cmath>

#include "lgh/ops/soft_argmax_depth.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

namespace {

// The unfused computation: pass 1 finds the maximum logit, pass 2 forms the
// probabilities, pass 3 the expectations (in long double).
TensorD naive_soft_argmax(const TensorD& h, const TensorD& dm, const TensorD& beta) {
  const int64_t B = h.size(0), J = h.size(1), H = h.size(2), W = h.size(3);
  TensorD out = TensorD::empty({B, J, 3});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < J; ++j) {
      long double m = -INFINITY;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) m = std::max<long double>(m, beta.at({j}) * h.at({b, j, y, x}));
      long double s = 0, u = 0, v = 0, d = 0;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const long double e = std::exp((long double)(beta.at({j}) * h.at({b, j, y, x})) - m);
          s += e;
          u += e * x;
          v += e * y;
          d += e * dm.at({b, j, y, x});
        }
      out.at({b, j, 0}) = double(u / s);
      out.at({b, j, 1}) = double(v / s);
      out.at({b, j, 2}) = double(d / s);
    }
  return out;
}

}  // namespace

TEST_CASE("soft_argmax_depth matches PyTorch (forward and gradients)", "[ops][soft_argmax_depth]") {
  const auto fx = load_fixture("fused_soft_argmax_depth.json");
  REQUIRE(fx.at("cases").size() >= 3);
  for (const auto& c : fx.at("cases")) {
    TensorD h = tensor_from_json(c.at("heatmaps")).set_requires_grad();
    TensorD dm = tensor_from_json(c.at("depthmaps")).set_requires_grad();
    TensorD beta = tensor_from_json(c.at("beta")).set_requires_grad();
    INFO("heatmaps " << h.shape().str() << ", beta " << beta);
    TensorD y = ops::soft_argmax_depth(h, dm, beta);
    require_close(y, tensor_from_json(c.at("y")), 1e-11, 1e-11, "forward");
    y.backward(tensor_from_json(c.at("grad_output")));
    require_close(h.grad(), tensor_from_json(c.at("grad_heatmaps")), 1e-10, 1e-9, "grad heatmaps");
    require_close(dm.grad(), tensor_from_json(c.at("grad_depthmaps")), 1e-12, 1e-10, "grad depthmaps");
    require_close(beta.grad(), tensor_from_json(c.at("grad_beta")), 1e-10, 1e-9, "grad beta");

    TensorF yf = ops::soft_argmax_depth(h.detach().cast<float>(), dm.detach().cast<float>(), beta.detach().cast<float>());
    require_close(yf.cast<double>(), tensor_from_json(c.at("y")), 2e-4, 2e-4, "float forward");
  }
}

TEST_CASE("soft_argmax_depth gradients", "[ops][soft_argmax_depth]") {
  struct Case { int64_t B, J, H, W; };
  for (const Case c : {Case{2, 3, 4, 5}, Case{1, 1, 1, 1}, Case{3, 2, 7, 3}, Case{1, 21, 2, 2}}) {
    INFO("B " << c.B << " J " << c.J << " H " << c.H << " W " << c.W);
    const V in{random_tensor({c.B, c.J, c.H, c.W}, 1), random_tensor({c.B, c.J, c.H, c.W}, 2, -2, 2),
               random_tensor({c.J}, 3, 0.5, 2.0)};
    LGH_REQUIRE_GRADCHECK([](const V& x) { return ops::soft_argmax_depth(x[0], x[1], x[2]); }, in);
    // Each input alone (the others need no gradient and are not computed).
    for (size_t i = 0; i < 3; ++i) {
      std::vector<bool> only(3, false);
      only[i] = true;
      LGH_REQUIRE_GRADCHECK([](const V& x) { return ops::soft_argmax_depth(x[0], x[1], x[2]); }, in,
                            autograd::GradCheckOptions{}, only);
    }
  }
  // A negative beta is a valid (if unusual) sharpness.
  LGH_REQUIRE_GRADCHECK([](const V& x) { return ops::soft_argmax_depth(x[0], x[1], x[2]); },
                        V{random_tensor({2, 2, 3, 4}, 4), random_tensor({2, 2, 3, 4}, 5),
                          TensorD::from_data({2}, {-1.5, 0.7})});
}

TEST_CASE("soft_argmax_depth single pass equals the two-pass softmax on large logits", "[ops][soft_argmax_depth]") {
  // Logits up to |beta h| = 2e4: exp() of them overflows in any precision;
  // the online softmax never exponentiates a positive number.
  const TensorD h = random_tensor({2, 3, 16, 24}, 11, -100.0, 100.0);
  const TensorD dm = random_tensor({2, 3, 16, 24}, 12, -3.0, 3.0);
  const TensorD beta = TensorD::from_data({3}, {200.0, 50.0, 1.0});
  const TensorD want = naive_soft_argmax(h, dm, beta);
  const TensorD got = ops::soft_argmax_depth(h, dm, beta);
  require_close(got, want, 1e-12, 1e-12, "double");
  const TensorF gotf = ops::soft_argmax_depth(h.cast<float>(), dm.cast<float>(), beta.cast<float>());
  for (float v : gotf.to_vector()) REQUIRE(std::isfinite(v));
  require_close(gotf.cast<double>(), want, 2e-4, 1e-4, "float");

  // The maximum sits at the last pixel, so every row rescales the running
  // sums (the worst case for the online update).
  TensorD ramp = TensorD::empty({1, 1, 9, 11});
  for (int64_t i = 0; i < ramp.numel(); ++i) ramp.data()[i] = 30.0 * double(i);
  const TensorD dr = random_tensor({1, 1, 9, 11}, 13);
  const TensorD b1 = TensorD::from_data({1}, {1.0});
  require_close(ops::soft_argmax_depth(ramp, dr, b1), naive_soft_argmax(ramp, dr, b1), 1e-12, 1e-12, "ramp");
}

TEST_CASE("SoftArgmaxState: push and merge in any order give the same expectations", "[ops][soft_argmax_depth]") {
  const int64_t H = 6, W = 7;
  const TensorD h = random_tensor({1, 1, H, W}, 21, -40.0, 40.0);
  const TensorD dm = random_tensor({1, 1, H, W}, 22);
  const double beta = 1.3;
  const TensorD want = naive_soft_argmax(h, dm, TensorD::from_data({1}, {beta}));

  // One element at a time, in reverse order.
  math::SoftArgmaxState<double> a{};
  for (int64_t i = H * W - 1; i >= 0; --i)
    a.push(beta * h.data()[i], double(i % W), double(i / W), dm.data()[i]);
  // Two interleaved partial states (as two CUDA threads), then merged, with
  // empty states merged on both sides.
  math::SoftArgmaxState<double> even{}, odd{}, empty{};
  for (int64_t i = 0; i < H * W; ++i)
    (i % 2 ? odd : even).push(beta * h.data()[i], double(i % W), double(i / W), dm.data()[i]);
  math::SoftArgmaxState<double> b = empty;
  b.merge(odd);
  b.merge(empty);
  b.merge(even);
  // Row states merged bottom-up.
  math::SoftArgmaxState<double> c{};
  for (int64_t y = H - 1; y >= 0; --y)
    c.merge(math::soft_argmax_row_state(h.data() + y * W, dm.data() + y * W, W, beta, double(y)));

  for (const auto* st : {&a, &b, &c}) {
    double uvd[3];
    st->result(uvd);
    for (int k = 0; k < 3; ++k) CHECK(uvd[k] == Approx(want.data()[k]).epsilon(1e-12).margin(1e-13));
    CHECK(st->m == Approx(beta * *std::max_element(h.data(), h.data() + H * W)).epsilon(1e-15));
  }
}

TEST_CASE("soft_argmax_depth of a sharp peak is the peak's position and depth", "[ops][soft_argmax_depth]") {
  TensorD h = TensorD::zeros({2, 2, 5, 8});
  TensorD dm = random_tensor({2, 2, 5, 8}, 31);
  h.at({0, 0, 3, 6}) = 1.0;
  h.at({0, 1, 0, 0}) = 1.0;
  h.at({1, 0, 4, 7}) = 1.0;
  h.at({1, 1, 2, 1}) = 1.0;
  const TensorD y = ops::soft_argmax_depth(h, dm, TensorD::from_data({2}, {100.0, 100.0}));
  const int64_t peaks[4][4] = {{0, 0, 3, 6}, {0, 1, 0, 0}, {1, 0, 4, 7}, {1, 1, 2, 1}};
  for (const auto& p : peaks) {
    CHECK(y.at({p[0], p[1], 0}) == Approx(double(p[3])).margin(1e-10));
    CHECK(y.at({p[0], p[1], 1}) == Approx(double(p[2])).margin(1e-10));
    CHECK(y.at({p[0], p[1], 2}) == Approx(dm.at({p[0], p[1], p[2], p[3]})).margin(1e-10));
  }
  // beta = 0: the uniform distribution, centre of the map and mean depth.
  const TensorD y0 = ops::soft_argmax_depth(h, dm, TensorD::zeros({2}));
  CHECK(y0.at({0, 0, 0}) == Approx(3.5));
  CHECK(y0.at({0, 0, 1}) == Approx(2.0));
}

TEST_CASE("soft_argmax_depth argument errors", "[ops][soft_argmax_depth]") {
  const TensorD h = random_tensor({2, 3, 4, 5}, 1);
  CHECK_THROWS_WITH(ops::soft_argmax_depth(h, random_tensor({2, 3, 5, 4}, 1), TensorD::ones({3})),
                    Catch::Contains("soft_argmax_depth") && Catch::Contains("'depthmaps' has shape [2, 3, 5, 4]") &&
                        Catch::Contains("expected [2, 3, 4, 5]"));
  CHECK_THROWS_WITH(ops::soft_argmax_depth(h, h, TensorD::ones({2})),
                    Catch::Contains("'beta' has shape [2], expected [3]"));
  CHECK_THROWS_WITH(ops::soft_argmax_depth(random_tensor({3, 4, 5}, 1), random_tensor({3, 4, 5}, 1), TensorD::ones({3})),
                    Catch::Contains("'heatmaps' must be 4-d"));
}
