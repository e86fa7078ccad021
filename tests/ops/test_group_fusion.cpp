#include <cmath>

#include "lgh/ops/group_fusion.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

namespace {

std::vector<TensorD> tensors_from_json(const nlohmann::json& j) {
  std::vector<TensorD> out;
  for (const auto& t : j) out.push_back(tensor_from_json(t));
  return out;
}

// Eq. (9) written the unfused way: materialise the concatenation [F_1..F_K]
// (K*P channels), then one plain 1x1 convolution per group.
std::vector<TensorD> naive_fusion(const std::vector<TensorD>& f, const std::vector<TensorD>& w,
                                  const std::vector<TensorD>& b) {
  const int64_t K = int64_t(f.size()), B = f[0].size(0), P = f[0].size(1), H = f[0].size(2), W = f[0].size(3);
  TensorD cat = TensorD::empty({B, K * P, H, W});
  for (int64_t m = 0; m < K; ++m)
    for (int64_t n = 0; n < B; ++n)
      for (int64_t c = 0; c < P; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) cat.at({n, m * P + c, y, x}) = f[size_t(m)].at({n, c, y, x});
  std::vector<TensorD> out;
  for (int64_t k = 0; k < K; ++k) {
    TensorD g = TensorD::empty({B, P, H, W});
    for (int64_t n = 0; n < B; ++n)
      for (int64_t o = 0; o < P; ++o)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            double acc = b[size_t(k)].at({o});
            for (int64_t i = 0; i < K * P; ++i) acc += w[size_t(k)].at({o, i, 0, 0}) * cat.at({n, i, y, x});
            g.at({n, o, y, x}) = acc;
          }
    out.push_back(g);
  }
  return out;
}

struct FusionInputs {
  std::vector<TensorD> f, w, b;
};

FusionInputs random_fusion(int64_t K, int64_t B, int64_t P, int64_t H, int64_t W, uint64_t seed) {
  FusionInputs in;
  for (int64_t k = 0; k < K; ++k) {
    in.f.push_back(random_tensor({B, P, H, W}, seed + 10 * uint64_t(k)));
    in.w.push_back(random_tensor({P, K * P, 1, 1}, seed + 10 * uint64_t(k) + 1, -0.5, 0.5));
    in.b.push_back(random_tensor({P}, seed + 10 * uint64_t(k) + 2, -0.5, 0.5));
  }
  return in;
}

}  // namespace

TEST_CASE("group_fusion matches PyTorch's concat + conv2d (+ eval BatchNorm + ReLU)", "[ops][group_fusion]") {
  const auto fx = load_fixture("fused_group_fusion.json");
  REQUIRE(fx.at("cases").size() >= 3);
  for (const auto& c : fx.at("cases")) {
    std::vector<TensorD> f = tensors_from_json(c.at("features")), w = tensors_from_json(c.at("weights")),
                         b = tensors_from_json(c.at("biases"));
    const size_t K = f.size();
    INFO("K = " << K << ", features " << f[0].shape().str());
    for (size_t k = 0; k < K; ++k) f[k].set_requires_grad(), w[k].set_requires_grad(), b[k].set_requires_grad();
    std::vector<TensorD> g = ops::group_fusion(f, w, b);
    const std::vector<TensorD> expected = tensors_from_json(c.at("outputs"));
    for (size_t k = 0; k < K; ++k) require_close(g[k], expected[k], 1e-12, 1e-12, "forward G_k");
    autograd::backward(g, tensors_from_json(c.at("grad_outputs")));
    const auto gf = tensors_from_json(c.at("grad_features")), gw = tensors_from_json(c.at("grad_weights")),
               gb = tensors_from_json(c.at("grad_biases"));
    for (size_t k = 0; k < K; ++k) {
      require_close(f[k].grad(), gf[k], 1e-12, 1e-12, "grad F_m");
      require_close(w[k].grad(), gw[k], 1e-12, 1e-12, "grad W_k");
      require_close(b[k].grad(), gb[k], 1e-12, 1e-12, "grad b_k");
    }

    // Eval: fold the BatchNorm running statistics into scale and shift.
    const double eps = c.at("bn_eps").get<double>();
    std::vector<TensorD> scale, shift;
    for (const auto& bn : c.at("bn")) {
      const TensorD gamma = tensor_from_json(bn.at("gamma")), beta = tensor_from_json(bn.at("beta")),
                    mean = tensor_from_json(bn.at("running_mean")), var = tensor_from_json(bn.at("running_var"));
      TensorD s = TensorD::empty(gamma.shape()), t = TensorD::empty(gamma.shape());
      for (int64_t p = 0; p < gamma.numel(); ++p) {
        s.data()[p] = gamma.data()[p] / std::sqrt(var.data()[p] + eps);
        t.data()[p] = beta.data()[p] - mean.data()[p] * s.data()[p];
      }
      scale.push_back(s);
      shift.push_back(t);
    }
    autograd::NoGradGuard no_grad;
    const std::vector<TensorD> ge = ops::group_fusion_eval(f, w, b, scale, shift);
    const std::vector<TensorD> expected_eval = tensors_from_json(c.at("eval_outputs"));
    for (size_t k = 0; k < K; ++k) require_close(ge[k], expected_eval[k], 1e-12, 1e-11, "eval G_k");
  }
}

TEST_CASE("group_fusion gradients", "[ops][group_fusion]") {
  struct Case { int64_t K, B, P, H, W; };
  for (const Case c : {Case{1, 2, 3, 2, 3}, Case{2, 2, 3, 3, 2}, Case{3, 2, 2, 2, 3}, Case{3, 1, 4, 1, 5}}) {
    INFO("K " << c.K << " B " << c.B << " P " << c.P << " H " << c.H << " W " << c.W);
    const FusionInputs in = random_fusion(c.K, c.B, c.P, c.H, c.W, 100);
    V inputs;
    for (const auto* group : {&in.f, &in.w, &in.b}) inputs.insert(inputs.end(), group->begin(), group->end());
    const size_t K = size_t(c.K);
    LGH_REQUIRE_GRADCHECK(
        [K](const V& x) {
          return ops::group_fusion(V(x.begin(), x.begin() + long(K)), V(x.begin() + long(K), x.begin() + long(2 * K)),
                                   V(x.begin() + long(2 * K), x.end()));
        },
        inputs);
  }
  // Spatial size over one chunk (2 chunks of 256 + a remainder), sampled.
  const FusionInputs in = random_fusion(2, 2, 3, 20, 27, 200);
  autograd::GradCheckOptions opt;
  opt.max_elements_per_input = 60;
  LGH_REQUIRE_GRADCHECK(
      [](const V& x) { return ops::group_fusion(V{x[0], x[1]}, V{x[2], x[3]}, V{x[4], x[5]}); },
      V{in.f[0], in.f[1], in.w[0], in.w[1], in.b[0], in.b[1]}, opt);
}

TEST_CASE("group_fusion equals explicit concat + 1x1 conv, also across spatial chunks", "[ops][group_fusion]") {
  struct Case { int64_t K, B, P, H, W; };
  for (const Case c : {Case{3, 2, 5, 17, 19}, Case{2, 3, 4, 1, 600}, Case{1, 1, 2, 3, 3}, Case{4, 1, 3, 16, 16}}) {
    INFO("K " << c.K << " B " << c.B << " P " << c.P << " H " << c.H << " W " << c.W);
    const FusionInputs in = random_fusion(c.K, c.B, c.P, c.H, c.W, 7);
    const auto got = ops::group_fusion(in.f, in.w, in.b);
    const auto want = naive_fusion(in.f, in.w, in.b);
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < got.size(); ++k) require_close(got[k], want[k], 1e-13, 1e-13, "G_k");

    // Eval epilogue: relu(scale * conv + shift) per channel.
    std::vector<TensorD> scale, shift;
    for (int64_t k = 0; k < c.K; ++k) {
      scale.push_back(random_tensor({c.P}, 50 + uint64_t(k), 0.5, 2.0));
      shift.push_back(random_tensor({c.P}, 60 + uint64_t(k), -0.5, 0.5));
    }
    const auto ev = ops::group_fusion_eval(in.f, in.w, in.b, scale, shift);
    const auto lin = ops::group_fusion_eval(in.f, in.w, in.b, scale, shift, false);
    int64_t zeros = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      const int64_t plane = c.H * c.W;
      for (int64_t i = 0; i < want[k].numel(); ++i) {
        const int64_t p = (i / plane) % c.P;
        const double affine = scale[k].data()[p] * want[k].data()[i] + shift[k].data()[p];
        REQUIRE(lin[k].data()[i] == Approx(affine).margin(1e-13));
        REQUIRE(ev[k].data()[i] == Approx(std::max(affine, 0.0)).margin(1e-13));
        zeros += ev[k].data()[i] == 0.0;
      }
    }
    CHECK(zeros > 0);  // the ReLU was exercised

    // Float runs the same kernels in single precision.
    std::vector<TensorF> ff, wf, bf;
    for (int64_t k = 0; k < c.K; ++k) {
      ff.push_back(in.f[size_t(k)].cast<float>());
      wf.push_back(in.w[size_t(k)].cast<float>());
      bf.push_back(in.b[size_t(k)].cast<float>());
    }
    const auto gf = ops::group_fusion(ff, wf, bf);
    for (size_t k = 0; k < gf.size(); ++k) require_close(gf[k].cast<double>(), want[k], 1e-5, 1e-5, "float G_k");
  }
}

TEST_CASE("group_fusion_init: 0.9 I on the own group, 0.1/(K-1) I elsewhere", "[ops][group_fusion]") {
  for (int64_t K : {1, 2, 3, 5}) {
    const int64_t P = 4;
    INFO("K = " << K);
    const auto params = ops::group_fusion_init<double>(K, P);
    REQUIRE(int64_t(params.weights.size()) == K);
    REQUIRE(int64_t(params.biases.size()) == K);
    const double own = K == 1 ? 1.0 : 0.9, other = K == 1 ? 0.0 : 0.1 / double(K - 1);
    for (int64_t k = 0; k < K; ++k) {
      REQUIRE(params.weights[size_t(k)].shape() == Shape{P, K * P, 1, 1});
      for (int64_t o = 0; o < P; ++o)
        for (int64_t i = 0; i < K * P; ++i) {
          const double expected = (i % P != o) ? 0.0 : (i / P == k ? own : other);
          REQUIRE(params.weights[size_t(k)].at({o, i, 0, 0}) == expected);
        }
      CHECK(params.biases[size_t(k)].to_vector() == std::vector<double>(size_t(P), 0.0));
    }

    // Initially G_k = 0.9 F_k + 0.1/(K-1) sum_{m != k} F_m (to rounding).
    const FusionInputs in = random_fusion(K, 2, P, 3, 5, 300);
    const auto g = ops::group_fusion(in.f, params.weights, params.biases);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < g[size_t(k)].numel(); ++i) {
        double expected = own * in.f[size_t(k)].data()[i];
        for (int64_t m = 0; m < K; ++m)
          if (m != k) expected += other * in.f[size_t(m)].data()[i];
        if (K == 1)
          REQUIRE(g[0].data()[i] == in.f[0].data()[i]);  // identity: exact
        else
          REQUIRE(g[size_t(k)].data()[i] == Approx(expected).epsilon(0).margin(4e-16));
      }
  }
}

TEST_CASE("group_fusion_eval has no gradient and says so", "[ops][group_fusion]") {
  FusionInputs in = random_fusion(2, 1, 2, 2, 2, 9);
  std::vector<TensorD> scale{TensorD::ones({2}), TensorD::ones({2})}, shift{TensorD::zeros({2}), TensorD::zeros({2})};
  in.w[1].set_requires_grad();
  CHECK_THROWS_WITH(ops::group_fusion_eval(in.f, in.w, in.b, scale, shift),
                    Catch::Contains("group_fusion_eval") && Catch::Contains("NoGradGuard"));
  autograd::NoGradGuard no_grad;
  const auto out = ops::group_fusion_eval(in.f, in.w, in.b, scale, shift);
  CHECK_FALSE(out[0].requires_grad());
}

TEST_CASE("group_fusion argument errors", "[ops][group_fusion]") {
  const FusionInputs in = random_fusion(2, 2, 3, 2, 2, 1);
  CHECK_THROWS_WITH(ops::group_fusion(V{}, V{}, V{}), Catch::Contains("'features' is empty"));
  CHECK_THROWS_WITH(ops::group_fusion(in.f, V{in.w[0]}, in.b),
                    Catch::Contains("2 features but 1 weights and 2 biases"));
  CHECK_THROWS_WITH(ops::group_fusion(V{in.f[0], random_tensor({2, 3, 2, 3}, 1)}, in.w, in.b),
                    Catch::Contains("'features[1]' has shape [2, 3, 2, 3], expected [2, 3, 2, 2]"));
  CHECK_THROWS_WITH(ops::group_fusion(in.f, V{in.w[0], random_tensor({3, 3, 1, 1}, 1)}, in.b),
                    Catch::Contains("'weights[1]' has shape [3, 3, 1, 1], expected [3, 6, 1, 1]"));
  CHECK_THROWS_WITH(ops::group_fusion(in.f, in.w, V{in.b[0], random_tensor({2}, 1)}),
                    Catch::Contains("'biases[1]' has shape [2], expected [3]"));
  CHECK_THROWS_WITH(ops::group_fusion(V{random_tensor({2, 3, 2}, 1)}, V{in.w[0]}, V{in.b[0]}),
                    Catch::Contains("'features[0]' must be 4-d"));
  autograd::NoGradGuard no_grad;
  CHECK_THROWS_WITH(ops::group_fusion_eval(in.f, in.w, in.b, V{TensorD::ones({3})}, V{TensorD::ones({3})}),
                    Catch::Contains("2 groups but 1 scales"));
  CHECK_THROWS_WITH(
      ops::group_fusion_eval(in.f, in.w, in.b, V{TensorD::ones({3}), TensorD::ones({4})}, V{TensorD::ones({3}), TensorD::ones({3})}),
      Catch::Contains("'scale[1]' has shape [4], expected [3]"));
}
