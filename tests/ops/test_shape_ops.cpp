#include "lgh/ops/shape_ops.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using V = std::vector<TensorD>;

TEST_CASE("concat, permute and slice match PyTorch", "[ops][shape]") {
  const auto fx = load_fixture("ops_shape_ops.json");
  int n = 0;
  for (const auto& c : fx["cases"]) {
    const std::string op = c["op"];
    INFO(op);
    if (op == "concat") {
      V xs;
      for (const auto& j : c["inputs"]) xs.push_back(tensor_from_json(j).set_requires_grad());
      TensorD y = ops::concat(xs, c["dim"].get<int>());
      require_close(y, tensor_from_json(c["y"]), 0, 0, "y");
      y.backward(tensor_from_json(c["gy"]));
      for (size_t k = 0; k < xs.size(); ++k) require_close(xs[k].grad(), tensor_from_json(c["grads"][k]), 0, 0, "grad");
    } else {
      TensorD x = tensor_from_json(c["x"]).set_requires_grad();
      TensorD y = op == "permute" ? ops::permute(x, c["order"].get<std::vector<int>>())
                                  : ops::slice(x, c["dim"].get<int>(), c["start"].get<int64_t>(), c["end"].get<int64_t>());
      require_close(y, tensor_from_json(c["y"]), 0, 0, "y");
      y.backward(tensor_from_json(c["gy"]));
      require_close(x.grad(), tensor_from_json(c["gx"]), 0, 0, "gx");
    }
    ++n;
  }
  CHECK(n == 4);
}

TEST_CASE("reshape", "[ops][shape]") {
  TensorD x = TensorD::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  TensorD y = ops::reshape(x, {3, -1});
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.to_vector() == x.to_vector());
  CHECK(y.shares_storage(x));  // a view of a contiguous input
  // A non-contiguous input is copied in row-major order of its elements.
  TensorD t = x.permute({1, 0});
  CHECK(ops::reshape(t, {-1}).to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
  for (const Shape& s : std::vector<Shape>{{2, 3, 4}, {5, 1}, {7}}) {
    LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::reshape(in[0], {-1, 1}); }, V{random_tensor(s, 1)});
    // Through a permuted (strided) input.
    LGH_REQUIRE_GRADCHECK(
        [](const V& in) { return ops::reshape(ops::permute(in[0], {-1, 0}), {1, -1}); }, V{random_tensor({s[0], s.numel() / s[0]}, 2)});
  }
  CHECK_THROWS_WITH(ops::reshape(x, {4, -1}), Catch::Contains("reshape") && Catch::Contains("cannot infer"));
  CHECK_THROWS_WITH(ops::reshape(x, {-1, -1}), Catch::Contains("more than one -1"));
  CHECK_THROWS_WITH(ops::reshape(x, {5}),
                    Catch::Contains("new shape [5] (5 elements) does not match input shape [2, 3] (6 elements)"));
}

TEST_CASE("slice", "[ops][shape]") {
  TensorD x = TensorD::from_data({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(ops::slice(x, 1, 1, 3).to_vector() == std::vector<double>{1, 2, 5, 6});
  CHECK(ops::slice(x, -1, -2, 4).to_vector() == std::vector<double>{2, 3, 6, 7});
  CHECK(ops::slice(x, 0, 1, 2).to_vector() == std::vector<double>{4, 5, 6, 7});
  CHECK(ops::slice(x, 1, 2, 2).numel() == 0);
  for (int dim : {0, 1, 2, -1})
    LGH_REQUIRE_GRADCHECK([dim](const V& in) { return ops::slice(in[0], dim, 1, 3); }, V{random_tensor({3, 4, 5}, 3)});
  CHECK_THROWS_WITH(ops::slice(x, 1, 2, 5), Catch::Contains("slice") && Catch::Contains("[2, 5) out of bounds for dimension 1 of shape [2, 4]"));
  CHECK_THROWS_WITH(ops::slice(x, 1, 3, 2), Catch::Contains("out of bounds"));
  CHECK_THROWS_WITH(ops::slice(x, 2, 0, 1), Catch::Contains("dim 2 out of range for a 2-d tensor"));
}

TEST_CASE("concat", "[ops][shape]") {
  TensorD a = TensorD::from_data({2, 1}, {1, 2}), b = TensorD::from_data({2, 2}, {3, 4, 5, 6});
  CHECK(ops::concat(V{a, b}, 1).to_vector() == std::vector<double>{1, 3, 4, 2, 5, 6});
  CHECK(ops::concat(V{b, b}, 0).to_vector() == std::vector<double>{3, 4, 5, 6, 3, 4, 5, 6});
  // Every dim, odd sizes, batch > 1; a strided input too.
  for (int dim : {0, 1, 2, 3}) {
    Shape s1{2, 3, 4, 5}, s2{2, 3, 4, 5};
    s2[dim] = 3;
    INFO("dim " << dim);
    LGH_REQUIRE_GRADCHECK([dim](const V& in) { return ops::concat(in, dim); },
                          V{random_tensor(s1, 4), random_tensor(s2, 5), random_tensor(s1, 6)});
  }
  LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::concat(V{ops::permute(in[0], {1, 0}), in[1]}, 0); },
                        V{random_tensor({3, 2}, 7), random_tensor({1, 3}, 8)});
  // Only the inputs that need a gradient get one.
  TensorD p = random_tensor({2, 2}, 9).set_requires_grad(), q = random_tensor({2, 3}, 10);
  ops::concat(V{p, q}, 1).backward(TensorD::ones({2, 5}));
  CHECK(p.grad().to_vector() == std::vector<double>(4, 1.0));
  CHECK_FALSE(q.grad().defined());
  CHECK_THROWS_WITH(ops::concat(V{}, 0), Catch::Contains("concat: no tensors"));
  CHECK_THROWS_WITH(ops::concat(V{a, TensorD::zeros({3, 2})}, 1),
                    Catch::Contains("tensor 1 has shape [3, 2], expected 2-d with the shape of tensor 0 [2, 1] except along dim 1"));
  CHECK_THROWS_WITH(ops::concat(V{a, TensorD::zeros({2})}, 0), Catch::Contains("tensor 1 has shape [2]"));
  CHECK_THROWS_WITH(ops::concat(V{a, TensorD()}, 0), Catch::Contains("tensor 1 is undefined"));
  CHECK_THROWS_WITH(ops::concat(V{a}, 2), Catch::Contains("dim 2 out of range"));
}

TEST_CASE("permute and contiguous", "[ops][shape]") {
  TensorD x = TensorD::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  TensorD t = ops::permute(x, {1, 0});
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
  LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::permute(in[0], {2, 0, 3, 1}); }, V{random_tensor({2, 3, 4, 5}, 11)});
  LGH_REQUIRE_GRADCHECK([](const V& in) { return ops::contiguous(ops::permute(in[0], {1, 0})); }, V{random_tensor({3, 5}, 12)});
  TensorD c = ops::contiguous(t);
  CHECK(c.is_contiguous());
  CHECK(c.to_vector() == t.to_vector());
  CHECK(ops::contiguous(x).same(x));  // already contiguous: the tensor itself
  CHECK_THROWS_WITH(ops::permute(x, {0}), Catch::Contains("permute: 1 axes given for a tensor of shape [2, 3]"));
  CHECK_THROWS_WITH(ops::permute(x, {1, 1}), Catch::Contains("axis 1 repeated"));
  CHECK_THROWS_WITH(ops::permute(x, {0, 2}), Catch::Contains("dim 2 out of range"));
}

TEST_CASE("shape ops record nothing without grad", "[ops][shape]") {
  const int64_t before = autograd::live_node_count();
  TensorD x = random_tensor({2, 3}, 13).set_requires_grad();
  {
    autograd::NoGradGuard no_grad;
    TensorD y = ops::concat(V{ops::reshape(x, {3, 2}), ops::permute(x, {1, 0})}, 0);
    TensorD z = ops::slice(y, 0, 1, 4);
    CHECK_FALSE(z.requires_grad());
    CHECK(autograd::live_node_count() == before);
  }
}
