#include "lgh/ops/conv.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

namespace {

struct RefResult {
  TensorD y, gx, gw, gb;
};

template <typename T>
RefResult run_case(const nlohmann::json& c) {
  const bool transposed = c.at("kind") == "convT";
  Tensor<T> x = tensor_from_json(c.at("x")).cast<T>().set_requires_grad();
  Tensor<T> w = tensor_from_json(c.at("weight")).cast<T>().set_requires_grad();
  Tensor<T> b;
  if (c.contains("bias")) b = tensor_from_json(c.at("bias")).cast<T>().set_requires_grad();
  const int64_t s = c.at("stride"), p = c.at("padding"), op = c.at("output_padding");
  Tensor<T> y = transposed ? ops::conv_transpose2d(x, w, b, s, p, op) : ops::conv2d(x, w, b, s, p);
  y.backward(tensor_from_json(c.at("gy")).cast<T>());
  RefResult r{y.detach().template cast<double>(), x.grad().template cast<double>(), w.grad().template cast<double>(), {}};
  if (b.defined()) r.gb = b.grad().template cast<double>();
  return r;
}

void check_against_torch(double atol, double rtol, bool use_float) {
  const auto fixture = load_fixture("conv_reference.json");
  int i = 0;
  for (const auto& c : fixture.at("cases")) {
    const std::string what = std::string(c.at("kind")) + " case " + std::to_string(i++);
    const RefResult r = use_float ? run_case<float>(c) : run_case<double>(c);
    require_close(r.y, tensor_from_json(c.at("y")), atol, rtol, what + " output");
    require_close(r.gx, tensor_from_json(c.at("gx")), atol, rtol, what + " grad input");
    require_close(r.gw, tensor_from_json(c.at("gweight")), atol, rtol, what + " grad weight");
    if (c.contains("gbias")) require_close(r.gb, tensor_from_json(c.at("gbias")), atol, rtol, what + " grad bias");
  }
}

}  // namespace

TEST_CASE("conv2d and conv_transpose2d match PyTorch (double)", "[ops][conv]") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    check_against_torch(1e-10, 1e-10, false);
  }
}

TEST_CASE("conv2d and conv_transpose2d match PyTorch (float)", "[ops][conv]") {
  check_against_torch(2e-4, 2e-4, true);
}

TEST_CASE("conv2d gradients", "[ops][conv]") {
  struct Cfg { Shape x; Shape w; int64_t s, p; };
  for (const Cfg& c : {Cfg{{2, 3, 6, 5}, {4, 3, 3, 3}, 1, 1}, Cfg{{1, 2, 7, 7}, {3, 2, 3, 3}, 2, 1},
                       Cfg{{2, 4, 3, 4}, {2, 4, 1, 1}, 1, 0}, Cfg{{1, 2, 5, 6}, {2, 2, 1, 1}, 2, 0},
                       Cfg{{1, 1, 9, 9}, {2, 1, 7, 7}, 2, 3}}) {
    const int64_t o = c.w[0];
    LGH_REQUIRE_GRADCHECK(
        [&](const V& in) { return ops::conv2d(in[0], in[1], in[2], c.s, c.p); },
        V{random_tensor(c.x, 1), random_tensor(c.w, 2), random_tensor({o}, 3)});
    // Without bias.
    LGH_REQUIRE_GRADCHECK([&](const V& in) { return ops::conv2d(in[0], in[1], TensorD(), c.s, c.p); },
                          V{random_tensor(c.x, 4), random_tensor(c.w, 5)});
  }
}

TEST_CASE("conv_transpose2d gradients", "[ops][conv]") {
  struct Cfg { Shape x; Shape w; int64_t s, p, op; };
  for (const Cfg& c : {Cfg{{2, 3, 3, 4}, {3, 2, 4, 4}, 2, 1, 0}, Cfg{{1, 2, 3, 3}, {2, 3, 3, 3}, 2, 1, 1},
                       Cfg{{2, 3, 2, 3}, {3, 2, 1, 1}, 1, 0, 0}, Cfg{{1, 2, 3, 2}, {2, 2, 3, 3}, 1, 1, 0}}) {
    const int64_t o = c.w[1];
    LGH_REQUIRE_GRADCHECK(
        [&](const V& in) { return ops::conv_transpose2d(in[0], in[1], in[2], c.s, c.p, c.op); },
        V{random_tensor(c.x, 6), random_tensor(c.w, 7), random_tensor({o}, 8)});
  }
}

TEST_CASE("conv2d thread partitions give the same result", "[ops][conv]") {
  // Shapes that exercise column blocks, output-channel splits (batch 1, small
  // image) and the per-chunk weight-gradient reduction.
  for (const auto& shapes : std::vector<std::pair<Shape, Shape>>{{{1, 64, 8, 8}, {96, 64, 3, 3}},
                                                                 {{3, 16, 40, 40}, {8, 16, 3, 3}},
                                                                 {{1, 32, 64, 64}, {16, 32, 1, 1}}}) {
    std::vector<std::vector<double>> results;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      TensorD x = random_tensor(shapes.first, 11).set_requires_grad();
      TensorD w = random_tensor(shapes.second, 12).set_requires_grad();
      TensorD b = random_tensor({shapes.second[0]}, 13).set_requires_grad();
      TensorD y = ops::conv2d(x, w, b, 1, shapes.second[2] / 2);
      y.backward(random_tensor(y.shape(), 14));
      std::vector<double> all = y.to_vector();
      for (const TensorD& g : {x.grad(), w.grad(), b.grad()}) {
        const auto v = g.to_vector();
        all.insert(all.end(), v.begin(), v.end());
      }
      results.push_back(all);
    }
    CHECK(max_abs_diff(results[0], results[1]) < 1e-9);
    CHECK(max_abs_diff(results[0], results[2]) < 1e-9);
  }
  set_num_threads(2);
}

TEST_CASE("conv backward when only some inputs require grad", "[ops][conv]") {
  // Each combination must produce exactly the wanted gradients; the nodes
  // save x and w only when needed, so shapes must not come from them.
  const TensorD x0 = random_tensor({2, 3, 5, 5}, 21), w0 = random_tensor({4, 3, 3, 3}, 22), b0 = random_tensor({4}, 23);
  const TensorD wt0 = random_tensor({3, 4, 4, 4}, 24);
  for (int mask = 1; mask < 8; ++mask) {
    TensorD x = x0.clone(), w = w0.clone(), b = b0.clone(), wt = wt0.clone();
    if (mask & 1) x.set_requires_grad();
    if (mask & 2) { w.set_requires_grad(); wt.set_requires_grad(); }
    if (mask & 4) b.set_requires_grad();
    TensorD y = ops::conv2d(x, w, b, 1, 1);
    y.backward(TensorD::ones(y.shape()));
    CHECK(x.grad().defined() == bool(mask & 1));
    CHECK(w.grad().defined() == bool(mask & 2));
    CHECK(b.grad().defined() == bool(mask & 4));
    if (mask & 4) CHECK(b.grad().to_vector() == std::vector<double>(4, 50.0));  // 2 images x 5x5 outputs

    TensorD x2 = x0.clone(), b2 = b0.clone();
    if (mask & 1) x2.set_requires_grad();
    if (mask & 4) b2.set_requires_grad();
    TensorD yt = ops::conv_transpose2d(x2, wt, b2, 2, 1);
    yt.backward(TensorD::ones(yt.shape()));
    CHECK(x2.grad().defined() == bool(mask & 1));
    CHECK(wt.grad().defined() == bool(mask & 2));
    CHECK(b2.grad().defined() == bool(mask & 4));
  }
}

TEST_CASE("conv argument errors name the problem", "[ops][conv]") {
  TensorF x = TensorF::zeros({1, 3, 8, 8});
  CHECK_THROWS_WITH(ops::conv2d(x, TensorF::zeros({4, 2, 3, 3})),
                    Catch::Contains("has 3 channels but weight [4, 2, 3, 3] expects 2"));
  CHECK_THROWS_WITH(ops::conv2d(x, TensorF::zeros({4, 3, 3, 3}), TensorF::zeros({5})),
                    Catch::Contains("'bias' has shape [5], expected [4]"));
  CHECK_THROWS_WITH(ops::conv2d(TensorF::zeros({3, 8, 8}), TensorF::zeros({4, 3, 3, 3})),
                    Catch::Contains("'input' must be 4-d"));
  CHECK_THROWS_WITH(ops::conv2d(x, TensorF::zeros({4, 3, 11, 11})), Catch::Contains("larger than the padded input"));
  CHECK_THROWS_WITH(ops::conv2d(x, TensorF::zeros({4, 3, 3, 3}), TensorF(), 0), Catch::Contains("stride must be >= 1"));
  CHECK_THROWS_WITH(ops::conv_transpose2d(x, TensorF::zeros({3, 2, 4, 4}), TensorF(), 2, 1, 2),
                    Catch::Contains("output_padding"));
}
