#include <catch2/catch.hpp>

#include "test_nodes.hpp"

using namespace lgh;

static TensorD leaf(std::vector<double> v) {
  TensorD t = TensorD::from_data({static_cast<int64_t>(v.size())}, v);
  t.set_requires_grad(true);
  return t;
}

TEST_CASE("backward through a chain", "[autograd]") {
  TensorD x = leaf({1, -2, 3});
  TensorD y = testops::square(testops::square(x));  // x^4
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  y.backward(TensorD::ones({3}));
  CHECK(x.grad().to_vector() == std::vector<double>{4, -32, 108});
}

TEST_CASE("a tensor used more than once accumulates its gradients", "[autograd]") {
  TensorD x = leaf({1, 2});
  TensorD a = testops::square(x);
  TensorD z = testops::mul(a, a);  // x^4 through one node using `a` twice
  z.backward(TensorD::ones({2}));
  CHECK(x.grad().to_vector() == std::vector<double>{4, 32});

  // Diamond: two paths from x meet again.
  TensorD w = leaf({3});
  TensorD p = testops::square(w), q = testops::square(w, 2.0);
  TensorD r = testops::mul(p, q);  // 2 w^4
  r.backward(TensorD::ones({1}));
  CHECK(w.grad().to_vector() == std::vector<double>{8 * 27});
}

TEST_CASE("leaf gradients accumulate across calls until zeroed", "[autograd]") {
  TensorD x = leaf({1, 2});
  testops::square(x).backward(TensorD::ones({2}));
  testops::square(x).backward(TensorD::ones({2}));
  CHECK(x.grad().to_vector() == std::vector<double>{4, 8});
  x.zero_grad();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 0});
}

TEST_CASE("a preset gradient buffer receives the gradient in place", "[autograd]") {
  TensorD flat = TensorD::zeros({5});
  TensorD x = leaf({1, 2});
  x.set_grad(flat.narrow(0, 2, 4));
  testops::square(x).backward(TensorD::ones({2}));
  CHECK(flat.to_vector() == std::vector<double>{0, 0, 2, 4, 0});
  CHECK_THROWS_WITH(x.set_grad(TensorD::zeros({3})), Catch::Contains("shape [3]"));
}

TEST_CASE("inputs that need no gradient get none", "[autograd]") {
  TensorD x = leaf({2, 3});
  TensorD c = TensorD::from_data({2}, {5, 7});  // constant
  testops::mul(x, c).backward(TensorD::ones({2}));
  CHECK(x.grad().to_vector() == std::vector<double>{5, 7});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("no-grad scope records nothing", "[autograd]") {
  TensorD x = leaf({1, 2});
  const int64_t nodes = autograd::live_node_count();
  {
    autograd::NoGradGuard no_grad;
    TensorD y = testops::square(testops::mul(x, x));
    CHECK(autograd::live_node_count() == nodes);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    {
      autograd::EnableGradGuard on;
      TensorD z = testops::square(x);
      CHECK(z.requires_grad());
    }
  }
  CHECK(autograd::live_node_count() == nodes);
  CHECK(autograd::grad_enabled());
}

TEST_CASE("the graph is freed with its outputs", "[autograd]") {
  const int64_t nodes = autograd::live_node_count();
  TensorD x = leaf({1, 2});
  {
    TensorD y = testops::square(testops::square(x));
    CHECK(autograd::live_node_count() == nodes + 2);
  }
  CHECK(autograd::live_node_count() == nodes);
}

TEST_CASE("a second backward needs retain_graph", "[autograd]") {
  TensorD x = leaf({1, 2});
  TensorD y = testops::square(x);
  y.backward(TensorD::ones({2}), /*retain_graph=*/true);
  y.backward(TensorD::ones({2}));
  CHECK(x.grad().to_vector() == std::vector<double>{4, 8});
  CHECK_THROWS_WITH(y.backward(TensorD::ones({2})), Catch::Contains("retain_graph"));
}

TEST_CASE("backward argument errors", "[autograd]") {
  TensorD x = leaf({1, 2});
  TensorD y = testops::square(x);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("single-element"));
  CHECK_THROWS_WITH(y.backward(TensorD::ones({3})), Catch::Contains("shape [3]"));
  TensorD c = TensorD::ones({1});
  CHECK_THROWS_WITH(c.backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("data-level views and in-place writes refuse tensors in the graph", "[autograd]") {
  TensorD x = leaf({1, 2, 3, 4});
  CHECK_THROWS_WITH(x.view({2, 2}), Catch::Contains("cut the autograd graph"));
  CHECK_THROWS_WITH(x.fill_(0), Catch::Contains("in-place"));
  autograd::NoGradGuard no_grad;
  x.fill_(0);  // allowed for optimisers
  CHECK(x.view({2, 2}).shape() == Shape{2, 2});
}
