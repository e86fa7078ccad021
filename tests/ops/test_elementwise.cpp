#include "lgh/ops/elementwise.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("add/sub/mul forward with broadcasting", "[ops][elementwise]") {
  auto a = TensorD::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  auto b = TensorD::from_data({3}, {10, 20, 30});
  CHECK((a + b).to_vector() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK((a - b).to_vector() == std::vector<double>{-9, -18, -27, -6, -15, -24});
  auto c = TensorD::from_data({2, 1}, {2, 3});
  CHECK((a * c).to_vector() == std::vector<double>{2, 4, 6, 12, 15, 18});
  CHECK((a * 2.0 + 1.0).to_vector() == std::vector<double>{3, 5, 7, 9, 11, 13});
  CHECK((-a).at({1, 2}) == -6);
  CHECK_THROWS_WITH(a + TensorD::zeros({2}), Catch::Contains("cannot be broadcast"));
  // Strided inputs.
  auto n = a.narrow(1, 1, 3);
  CHECK((n + n).to_vector() == std::vector<double>{4, 6, 10, 12});
}

TEST_CASE("add/sub/mul gradients", "[ops][elementwise]") {
  for (auto op : {ops::BinaryOp::Add, ops::BinaryOp::Sub, ops::BinaryOp::Mul}) {
    LGH_REQUIRE_GRADCHECK([op](const V& x) { return ops::binary(op, x[0], x[1]); },
                          V{random_tensor({2, 3, 4}, 1), random_tensor({2, 3, 4}, 2)});
    // Broadcast both ways: gradients are summed back to the input shapes.
    LGH_REQUIRE_GRADCHECK([op](const V& x) { return ops::binary(op, x[0], x[1]); },
                          V{random_tensor({2, 1, 4}, 3), random_tensor({3, 1}, 4)});
  }
}

TEST_CASE("scalar ops and relu gradients", "[ops][elementwise]") {
  LGH_REQUIRE_GRADCHECK([](const V& x) { return ops::affine(x[0], -1.5, 0.25); }, V{random_tensor({7}, 5)});
  LGH_REQUIRE_GRADCHECK([](const V& x) { return ops::neg(x[0]); }, V{random_tensor({3, 2}, 6)});
  LGH_REQUIRE_GRADCHECK([](const V& x) { return ops::relu(x[0]); }, V{random_tensor({4, 5}, 7)});
  auto y = ops::relu(TensorD::from_data({4}, {-1, 0, 2, -3}));
  CHECK(y.to_vector() == std::vector<double>{0, 0, 2, 0});
}

TEST_CASE("a tensor used twice through ops accumulates", "[ops][elementwise]") {
  auto x = TensorD::from_data({2}, {3, -4}).set_requires_grad();
  auto y = x * x + x;  // dy/dx = 2x + 1
  y.backward(TensorD::ones({2}));
  CHECK(x.grad().to_vector() == std::vector<double>{7, -7});
}
