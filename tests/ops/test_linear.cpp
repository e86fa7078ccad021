#include "lgh/ops/linear.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("linear and matmul match PyTorch", "[ops][linear]") {
  const auto fx = load_fixture("ops_linear.json");
  int n = 0;
  for (const auto& c : fx["cases"]) {
    if (c["op"] == "linear") {
      TensorD x = tensor_from_json(c["x"]).set_requires_grad();
      TensorD w = tensor_from_json(c["w"]).set_requires_grad();
      TensorD b = c.contains("b") ? tensor_from_json(c["b"]).set_requires_grad() : TensorD();
      INFO("linear x " << x.shape().str() << " w " << w.shape().str() << " bias " << b.defined());
      TensorD y = ops::linear(x, w, b);
      require_close(y, tensor_from_json(c["y"]), 1e-14, 1e-12, "y");
      y.backward(tensor_from_json(c["gy"]));
      require_close(x.grad(), tensor_from_json(c["gx"]), 1e-14, 1e-12, "gx");
      require_close(w.grad(), tensor_from_json(c["gw"]), 1e-14, 1e-12, "gw");
      if (b.defined()) require_close(b.grad(), tensor_from_json(c["gb"]), 1e-14, 1e-12, "gb");
      // Float.
      TensorF yf = ops::linear(x.detach().cast<float>(), w.detach().cast<float>(),
                               b.defined() ? b.detach().cast<float>() : TensorF());
      require_close(yf.cast<double>(), tensor_from_json(c["y"]), 1e-5, 1e-5, "y (float)");
    } else {
      TensorD a = tensor_from_json(c["a"]).set_requires_grad();
      TensorD b = tensor_from_json(c["b"]).set_requires_grad();
      TensorD y = ops::matmul(a, b);
      require_close(y, tensor_from_json(c["y"]), 1e-14, 1e-12, "y");
      y.backward(tensor_from_json(c["gy"]));
      require_close(a.grad(), tensor_from_json(c["ga"]), 1e-14, 1e-12, "ga");
      require_close(b.grad(), tensor_from_json(c["gb"]), 1e-14, 1e-12, "gb");
    }
    ++n;
  }
  CHECK(n == 4);
}

TEST_CASE("linear and matmul gradients", "[ops][linear]") {
  struct Case { Shape x; int64_t out; bool bias; };
  const std::vector<Case> cases{{{4, 6}, 3, true}, {{1, 5}, 7, false}, {{2, 3, 5}, 4, true}, {{3, 1}, 1, true}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    INFO("x " << c.x.str() << " out " << c.out << " bias " << c.bias);
    const int64_t in = c.x[c.x.ndim() - 1];
    V inputs{random_tensor(c.x, seed++), random_tensor({c.out, in}, seed++)};
    if (c.bias) inputs.push_back(random_tensor({c.out}, seed++));
    LGH_REQUIRE_GRADCHECK([](const V& v) { return ops::linear(v[0], v[1], v.size() > 2 ? v[2] : TensorD()); }, inputs);
  }
  for (const auto& mkn : std::vector<std::array<int64_t, 3>>{{3, 4, 5}, {1, 7, 2}, {6, 1, 3}, {5, 3, 1}})
    LGH_REQUIRE_GRADCHECK([](const V& v) { return ops::matmul(v[0], v[1]); },
                          V{random_tensor({mkn[0], mkn[1]}, seed++), random_tensor({mkn[1], mkn[2]}, seed++)});
  // Strided operands (transposed views).
  LGH_REQUIRE_GRADCHECK([](const V& v) { return ops::matmul(v[0].detach().permute({1, 0}), v[1]); },
                        V{random_tensor({4, 3}, 90), random_tensor({4, 2}, 91)}, {}, {false, true});
}

namespace {
// Plain triple loop: C = A B.
std::vector<double> naive_matmul(const TensorD& a, const TensorD& b) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  std::vector<double> c(static_cast<size_t>(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) c[static_cast<size_t>(i * N + j)] += a.at({i, k}) * b.at({k, j});
  return c;
}
}  // namespace

TEST_CASE("multithreaded GEMM splits agree with a plain loop", "[ops][linear]") {
  // Large enough to be split over threads, by rows (M >= N) and by columns (M < N).
  for (const auto& mkn : std::vector<std::array<int64_t, 3>>{{97, 61, 83}, {3, 130, 900}, {700, 40, 9}}) {
    INFO("M " << mkn[0] << " K " << mkn[1] << " N " << mkn[2]);
    TensorD a = random_tensor({mkn[0], mkn[1]}, 5), b = random_tensor({mkn[1], mkn[2]}, 6);
    CHECK(max_abs_diff(ops::matmul(a, b).to_vector(), naive_matmul(a, b)) < 1e-12);
    // linear(x, w) = x w^T; with w = b^T.
    TensorD wt = b.permute({1, 0}).contiguous();
    CHECK(max_abs_diff(ops::linear(a, wt).to_vector(), naive_matmul(a, b)) < 1e-12);
    // Backward through the split products: d sum(A B) / dA = 1 B^T.
    TensorD ar = a.clone().set_requires_grad();
    ops::matmul(ar, b).backward(TensorD::ones({mkn[0], mkn[2]}));
    const auto ga = ar.grad();
    for (int64_t k = 0; k < mkn[1]; k += 17) {
      double e = 0;
      for (int64_t j = 0; j < mkn[2]; ++j) e += b.at({k, j});
      CHECK(ga.at({mkn[0] - 1, k}) == Approx(e).epsilon(1e-12));
    }
  }
}

TEST_CASE("linear and matmul: argument errors", "[ops][linear]") {
  TensorD x = random_tensor({2, 3}, 1), w = random_tensor({4, 3}, 2);
  CHECK_THROWS_WITH(ops::linear(random_tensor({2, 5}, 1), w),
                    Catch::Contains("linear: 'x' has shape [2, 5], expected [..., 3] to match 'w' of shape [4, 3]"));
  CHECK_THROWS_WITH(ops::linear(x, random_tensor({4}, 1)), Catch::Contains("linear: 'w' must be 2-d, got shape [4]"));
  CHECK_THROWS_WITH(ops::linear(x, w, TensorD::zeros({3})), Catch::Contains("linear: 'b' has shape [3], expected [4]"));
  CHECK_THROWS_WITH(ops::matmul(x, random_tensor({2, 3}, 3)),
                    Catch::Contains("matmul: inner dimensions differ: 'a' has shape [2, 3], 'b' has shape [2, 3]"));
  CHECK_THROWS_WITH(ops::matmul(random_tensor({2, 3, 1}, 1), w), Catch::Contains("matmul: 'a' must be 2-d"));
}
