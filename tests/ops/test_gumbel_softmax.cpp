#include <cmath>

#include "lgh/ops/gumbel_softmax.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using ops::SelectorMode;
using V = std::vector<TensorD>;

namespace {

// Row sums of a [J,K] tensor.
std::vector<double> row_sums(const TensorD& y) {
  std::vector<double> s(static_cast<size_t>(y.size(0)), 0.0);
  for (int64_t j = 0; j < y.size(0); ++j)
    for (int64_t k = 0; k < y.size(1); ++k) s[static_cast<size_t>(j)] += y.at({j, k});
  return s;
}

}  // namespace

TEST_CASE("gumbel_softmax matches PyTorch's RelaxedOneHotCategorical on the same uniforms", "[ops][gumbel_softmax]") {
  const auto fx = load_fixture("fused_gumbel_softmax.json");
  REQUIRE(fx.at("cases").size() >= 3);
  for (const auto& c : fx.at("cases")) {
    const double tau = c.at("tau").get<double>();
    const TensorD theta0 = tensor_from_json(c.at("theta"));
    const TensorD u = tensor_from_json(c.at("uniforms"));
    const TensorD dy = tensor_from_json(c.at("grad_output"));
    INFO("J = " << theta0.size(0) << ", K = " << theta0.size(1) << ", tau = " << tau);

    TensorD theta = theta0.clone().set_requires_grad();
    TensorD y = ops::gumbel_softmax_from_uniforms(theta, u, tau);
    require_close(y, tensor_from_json(c.at("sample")), 1e-12, 1e-10, "sample forward");
    y.backward(dy);
    require_close(theta.grad(), tensor_from_json(c.at("sample_grad_theta")), 1e-12, 1e-10, "sample backward");

    TensorD theta2 = theta0.clone().set_requires_grad();
    TensorD ys = ops::gumbel_softmax(theta2, tau, SelectorMode::Soft);
    require_close(ys, tensor_from_json(c.at("soft")), 1e-12, 1e-10, "soft forward");
    ys.backward(dy);
    require_close(theta2.grad(), tensor_from_json(c.at("soft_grad_theta")), 1e-12, 1e-10, "soft backward");

    // Float: same math in single precision.
    TensorF yf = ops::gumbel_softmax_from_uniforms(theta0.cast<float>(), u.cast<float>(), tau);
    require_close(yf.cast<double>(), tensor_from_json(c.at("sample")), 1e-5, 1e-4, "float sample forward");
  }
}

TEST_CASE("gumbel_softmax gradients (sample, soft, explicit uniforms)", "[ops][gumbel_softmax]") {
  struct Case { int64_t J, K; double tau; };
  for (const Case c : {Case{21, 3, 5.0}, Case{4, 1, 0.5}, Case{5, 4, 0.3}, Case{3, 2, 1.0}}) {
    INFO("J = " << c.J << ", K = " << c.K << ", tau = " << c.tau);
    const Philox noise(42, 7);
    const TensorD theta = random_tensor({c.J, c.K}, 11, -2.0, 2.0);
    LGH_REQUIRE_GRADCHECK(
        [&](const V& x) { return ops::gumbel_softmax(x[0], c.tau, SelectorMode::Sample, noise); }, V{theta});
    LGH_REQUIRE_GRADCHECK([&](const V& x) { return ops::gumbel_softmax(x[0], c.tau, SelectorMode::Soft); }, V{theta});
    const TensorD u = ops::gumbel_uniforms<double>(c.J, c.K, Philox(3, 1));
    LGH_REQUIRE_GRADCHECK([&](const V& x) { return ops::gumbel_softmax_from_uniforms(x[0], u, c.tau); }, V{theta});
  }
}

TEST_CASE("gumbel_softmax rows are distributions; sample mode uses the Philox uniforms at j*K+k",
          "[ops][gumbel_softmax]") {
  const int64_t J = 21, K = 3;
  const double tau = 0.7;
  const TensorD theta = random_tensor({J, K}, 5, -1.0, 1.0);
  const Philox noise(2021, 17);
  const TensorD y = ops::gumbel_softmax(theta, tau, SelectorMode::Sample, noise);
  for (double s : row_sums(y)) CHECK(s == Approx(1.0).epsilon(1e-14));

  // Independently of the op: U from the generator, Eq. (8) written out.
  for (int64_t j = 0; j < J; ++j) {
    double z[3], m = -1e300, sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double u = static_cast<double>(noise.uniform(static_cast<uint64_t>(j * K + k)));
      z[k] = (theta.at({j, k}) - std::log(-std::log(u))) / tau;
      m = std::max(m, z[k]);
    }
    for (int64_t k = 0; k < K; ++k) sum += std::exp(z[k] - m);
    for (int64_t k = 0; k < K; ++k) CHECK(y.at({j, k}) == Approx(std::exp(z[k] - m) / sum).epsilon(1e-12));
  }

  // The same stream gives the same sample; another stream another one.
  CHECK(ops::gumbel_softmax(theta, tau, SelectorMode::Sample, Philox(2021, 17)).to_vector() == y.to_vector());
  CHECK(ops::gumbel_softmax(theta, tau, SelectorMode::Sample, Philox(2021, 18)).to_vector() != y.to_vector());
  // And it equals the explicit-uniform form fed with that stream's uniforms.
  require_close(ops::gumbel_softmax_from_uniforms(theta, ops::gumbel_uniforms<double>(J, K, noise), tau), y, 1e-15,
                1e-13, "sample vs from_uniforms");
  // gumbel_noise is -log(-log U) of the same uniforms.
  const TensorD g = ops::gumbel_noise<double>(J, K, noise);
  for (int64_t i = 0; i < J * K; ++i)
    CHECK(g.data()[i] == Approx(-std::log(-std::log(double(noise.uniform(uint64_t(i)))))).epsilon(1e-14));
}

TEST_CASE("Philox Gumbel noise has the Gumbel(0,1) moments", "[ops][gumbel_softmax]") {
  // Mean = Euler-Mascheroni gamma, variance = pi^2/6. With n = 2e5 draws the
  // standard error of the mean is 1.28/sqrt(n) = 0.003; the bounds are ~5 sigma.
  const int64_t J = 1000, K = 200;
  for (uint64_t stream : {0ull, 1ull, 123456789ull}) {
    const TensorD g = ops::gumbel_noise<double>(J, K, Philox(99, stream));
    double mean = 0, sq = 0;
    for (double v : g.to_vector()) mean += v;
    mean /= double(J * K);
    for (double v : g.to_vector()) sq += (v - mean) * (v - mean);
    const double var = sq / double(J * K - 1);
    INFO("stream " << stream << ": mean " << mean << ", variance " << var);
    CHECK(std::fabs(mean - 0.5772156649) < 0.015);
    CHECK(std::fabs(var - 1.6449340668) < 0.05);
  }
}

TEST_CASE("Gumbel-max: the argmax of a sample is distributed as softmax(theta)", "[ops][gumbel_softmax]") {
  // Row probabilities 0.5, 0.3, 0.2; one sample per stream, as in training.
  const TensorD theta = TensorD::from_data({1, 3}, {std::log(0.5), std::log(0.3), std::log(0.2)});
  const int n = 20000;
  int count[3] = {0, 0, 0};
  for (int s = 0; s < n; ++s) {
    const TensorD y = ops::gumbel_softmax(theta, 0.5, SelectorMode::Sample, Philox(7, uint64_t(s)), true);
    for (int k = 0; k < 3; ++k) count[k] += y.at({0, k}) == 1.0 ? 1 : 0;
  }
  CHECK(count[0] + count[1] + count[2] == n);
  // Standard error sqrt(p(1-p)/n) <= 0.0036.
  CHECK(double(count[0]) / n == Approx(0.5).margin(0.018));
  CHECK(double(count[1]) / n == Approx(0.3).margin(0.018));
  CHECK(double(count[2]) / n == Approx(0.2).margin(0.018));
}

TEST_CASE("gumbel_softmax hard mode: one-hot argmax, lowest k on ties, no gradient", "[ops][gumbel_softmax]") {
  TensorD theta = TensorD::from_data({4, 3}, {0.1, 0.5, 0.2,    //
                                              0.3, 0.3, 0.1,    // tie -> k = 0
                                              -1, -2, -0.5,     //
                                              0.25, 0.25, 0.25});  // all equal (the paper's init) -> k = 0
  theta.set_requires_grad();
  const TensorD y = ops::gumbel_softmax(theta, 1.0, SelectorMode::Hard);
  CHECK(y.to_vector() == std::vector<double>{0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0});
  CHECK_FALSE(y.requires_grad());
  // tau is not used in hard mode.
  CHECK(ops::gumbel_softmax(theta, 0.0, SelectorMode::Hard).to_vector() == y.to_vector());
}

TEST_CASE("gumbel_softmax straight-through: one-hot forward, relaxed backward", "[ops][gumbel_softmax]") {
  for (int64_t K : {1, 3, 5}) {
    const int64_t J = 6;
    const double tau = 0.8;
    const Philox noise(5, 9);
    const TensorD theta0 = random_tensor({J, K}, 3, -1.5, 1.5);
    const TensorD dy = random_tensor({J, K}, 4);
    for (SelectorMode mode : {SelectorMode::Sample, SelectorMode::Soft, SelectorMode::Hard}) {
      INFO("K = " << K << ", mode " << ops::selector_mode_name(mode));
      TensorD a = theta0.clone().set_requires_grad(), b = theta0.clone().set_requires_grad();
      const SelectorMode relaxed = mode == SelectorMode::Hard ? SelectorMode::Soft : mode;
      TensorD hard = ops::gumbel_softmax(a, tau, mode, noise, true);
      TensorD soft = ops::gumbel_softmax(b, tau, relaxed, noise, false);
      for (int64_t j = 0; j < J; ++j) {
        int64_t best = 0;
        for (int64_t k = 1; k < K; ++k)
          if (soft.at({j, k}) > soft.at({j, best})) best = k;
        for (int64_t k = 0; k < K; ++k) CHECK(hard.at({j, k}) == (k == best ? 1.0 : 0.0));
      }
      hard.backward(dy);
      soft.backward(dy);
      require_close(a.grad(), b.grad(), 0, 0, "straight-through gradient = relaxed gradient");
    }
  }
}

TEST_CASE("gumbel_softmax argument errors", "[ops][gumbel_softmax]") {
  const TensorD theta = random_tensor({4, 3}, 1);
  CHECK_THROWS_WITH(ops::gumbel_softmax(random_tensor({12}, 1), 1.0, SelectorMode::Soft),
                    Catch::Contains("gumbel_softmax") && Catch::Contains("'theta' must be 2-d") &&
                        Catch::Contains("[12]"));
  CHECK_THROWS_WITH(ops::gumbel_softmax(theta, 0.0, SelectorMode::Sample, Philox(1, 1)),
                    Catch::Contains("tau") && Catch::Contains("> 0"));
  CHECK_THROWS_WITH(ops::gumbel_softmax(theta, -1.0, SelectorMode::Soft), Catch::Contains("tau"));
  CHECK_THROWS_WITH(ops::gumbel_softmax_from_uniforms(theta, TensorD::full({3, 4}, 0.5), 1.0),
                    Catch::Contains("'uniforms' has shape [3, 4], expected [4, 3]"));
  TensorD bad = TensorD::full({4, 3}, 0.5);
  bad.at({2, 1}) = 1.0;
  CHECK_THROWS_WITH(ops::gumbel_softmax_from_uniforms(theta, bad, 1.0), Catch::Contains("open interval"));
}
