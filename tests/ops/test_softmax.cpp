#include "lgh/ops/softmax.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("softmax and log_softmax match PyTorch", "[ops][softmax]") {
  const auto fx = load_fixture("ops_softmax.json");
  int n = 0;
  for (const auto& c : fx["cases"]) {
    const std::string op = c["op"];
    const int dim = c["dim"];
    TensorD x = tensor_from_json(c["x"]).set_requires_grad();
    INFO(op << " dim " << dim << " shape " << x.shape().str());
    TensorD y = op == "softmax" ? ops::softmax(x, dim) : ops::log_softmax(x, dim);
    require_close(y, tensor_from_json(c["y"]), 1e-14, 1e-12, "y");
    y.backward(tensor_from_json(c["gy"]));
    require_close(x.grad(), tensor_from_json(c["gx"]), 1e-14, 1e-11, "gx");
    // Float.
    TensorF xf = tensor_from_json(c["x"]).cast<float>().set_requires_grad();
    TensorF yf = op == "softmax" ? ops::softmax(xf, dim) : ops::log_softmax(xf, dim);
    // log_softmax = x - logsumexp(x) inherits the float rounding of x itself
    // (an ulp of 1000 is 6e-5), so the absolute tolerance scales with |x|.
    double xmax = 1;
    for (double v : x.to_vector()) xmax = std::max(xmax, std::fabs(v));
    require_close(yf.cast<double>(), tensor_from_json(c["y"]), 2e-7 * xmax, 1e-5, "y (float)");
    yf.backward(tensor_from_json(c["gy"]).cast<float>());
    require_close(xf.grad().cast<double>(), tensor_from_json(c["gx"]), 1e-5, 1e-4, "gx (float)");
    ++n;
  }
  CHECK(n == 10);
}

TEST_CASE("softmax and log_softmax gradients", "[ops][softmax]") {
  struct Case { Shape s; int dim; };
  const std::vector<Case> cases{{{4, 7}, 1}, {{4, 7}, 0}, {{2, 5, 3}, 1}, {{2, 3, 4, 5}, -3},
                                {{3, 1, 2}, 1}, {{5}, 0}, {{2, 600, 2}, 2}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    INFO("shape " << c.s.str() << " dim " << c.dim);
    autograd::GradCheckOptions opt;
    opt.max_elements_per_input = 200;
    LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::softmax(in[0], c.dim); }, V{random_tensor(c.s, seed++, -3, 3)}, opt);
    LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::log_softmax(in[0], c.dim); }, V{random_tensor(c.s, seed++, -3, 3)}, opt);
  }
  // A block of `inner` wider than one task (inner = 1200 > 512), with D > 1.
  autograd::GradCheckOptions opt;
  opt.max_elements_per_input = 300;
  LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::softmax(in[0], 0); }, V{random_tensor({3, 1200}, 90, -2, 2)}, opt);
}

TEST_CASE("softmax: properties and stability", "[ops][softmax]") {
  TensorD x = random_tensor({3, 4, 5}, 7, -5, 5);
  for (int dim : {0, 1, 2}) {
    TensorD s = ops::sum(ops::softmax(x, dim), {dim});
    for (double v : s.to_vector()) CHECK(v == Approx(1.0).epsilon(1e-14));
    // log_softmax == log(softmax).
    const auto a = ops::log_softmax(x, dim).to_vector(), b = ops::softmax(x, dim).to_vector();
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(std::log(b[i])).epsilon(1e-12));
  }
  // Huge logits in float neither overflow nor lose the log of tiny probabilities.
  TensorF big = TensorF::from_data({1, 3}, {1000.f, 1000.f, 0.f});
  const auto p = ops::softmax(big, 1).to_vector();
  CHECK(p[0] == Approx(0.5f));
  CHECK(p[2] == 0.0f);
  const auto lp = ops::log_softmax(big, 1).to_vector();
  CHECK(lp[2] == Approx(-1000.f - std::log(2.f)));
  // Strided input: the transpose gives the transposed result.
  TensorD m = random_tensor({3, 4}, 8);
  CHECK(max_abs_diff(ops::softmax(m.permute({1, 0}), 0).permute({1, 0}).to_vector(), ops::softmax(m, 1).to_vector()) < 1e-15);
}

TEST_CASE("softmax: argument errors", "[ops][softmax]") {
  CHECK_THROWS_WITH(ops::softmax(random_tensor({2, 3}, 1), 2), Catch::Contains("softmax: dim 2 out of range for 'x' of shape [2, 3]"));
  CHECK_THROWS_WITH(ops::log_softmax(random_tensor({2, 3}, 1), -3), Catch::Contains("log_softmax: dim -3 out of range"));
  CHECK_THROWS_WITH(ops::softmax(TensorD::scalar(1.0), 0), Catch::Contains("at least 1 dimension"));
}
