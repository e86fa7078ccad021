#include <catch2/catch.hpp>

#include "lgh/core/tensor.hpp"

using namespace lgh;

TEST_CASE("Shape basics", "[core]") {
  Shape s{2, 3, 4};
  CHECK(s.ndim() == 3);
  CHECK(s.numel() == 24);
  CHECK(s.str() == "[2, 3, 4]");
  CHECK(s.axis(-1) == 2);
  CHECK_THROWS_AS(s.axis(3), Error);
  CHECK(s.contiguous_strides() == Shape{12, 4, 1});
  CHECK(Shape{}.numel() == 1);
  CHECK_THROWS_WITH(Shape({2, -1}), Catch::Contains("negative extent"));
}

TEST_CASE("Tensor creation and element access", "[core]") {
  auto t = TensorF::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.is_contiguous());
  CHECK(t.at({1, 2}) == 6);
  CHECK(TensorF::zeros({4}).to_vector() == std::vector<float>(4, 0.f));
  CHECK(TensorD::full({2}, 2.5).to_vector() == std::vector<double>{2.5, 2.5});
  CHECK(TensorF::scalar(3.f).item() == 3.f);
  CHECK_THROWS_WITH(TensorF::from_data({2, 2}, {1, 2, 3}), Catch::Contains("3 values for shape [2, 2]"));
  CHECK_THROWS_WITH(t.item(), Catch::Contains("expected 1"));
  CHECK_THROWS_WITH(t.at({2, 0}), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(TensorF().shape(), Catch::Contains("undefined tensor"));
}

TEST_CASE("Views share storage", "[core]") {
  auto t = TensorF::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  auto v = t.view({3, -1});
  CHECK(v.shape() == Shape{3, 2});
  CHECK(v.shares_storage(t));
  v.at({0, 0}) = 10;
  CHECK(t.at({0, 0}) == 10);

  auto n = t.narrow(1, 1, 3);  // columns 1..2
  CHECK(n.shape() == Shape{2, 2});
  CHECK_FALSE(n.is_contiguous());
  CHECK(n.to_vector() == std::vector<float>{2, 3, 5, 6});
  CHECK(n.contiguous().is_contiguous());
  CHECK_THROWS_WITH(n.view({4}), Catch::Contains("not contiguous"));

  auto p = t.permute({1, 0});
  CHECK(p.shape() == Shape{3, 2});
  CHECK(p.to_vector() == std::vector<float>{10, 4, 2, 5, 3, 6});
  CHECK_THROWS_WITH(t.view({5}), Catch::Contains("does not match"));
}

TEST_CASE("In-place data operations honour strides", "[core]") {
  auto t = TensorD::zeros({3, 4});
  t.narrow(1, 1, 3).fill_(2.0);
  CHECK(t.to_vector() == std::vector<double>{0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0});
  auto src = TensorD::from_data({3, 2}, {1, 2, 3, 4, 5, 6});
  t.narrow(1, 0, 2).copy_(src);
  CHECK(t.to_vector() == std::vector<double>{1, 2, 2, 0, 3, 4, 2, 0, 5, 6, 2, 0});
  t.narrow(1, 2, 4).add_(src, 10.0);
  CHECK(t.to_vector() == std::vector<double>{1, 2, 12, 20, 3, 4, 32, 40, 5, 6, 52, 60});
  t.mul_(0.5);
  CHECK(t.at({2, 3}) == 30);
  CHECK_THROWS_WITH(t.copy_(TensorD::zeros({2})), Catch::Contains("source shape [2]"));
}

TEST_CASE("Casting and cloning", "[core]") {
  auto t = TensorF::from_data({3}, {1.5f, -2.f, 3.25f});
  auto d = t.cast<double>();
  CHECK(d.to_vector() == std::vector<double>{1.5, -2.0, 3.25});
  auto c = t.clone();
  CHECK_FALSE(c.shares_storage(t));
  c.fill_(0);
  CHECK(t.at({0}) == 1.5f);
}

TEST_CASE("from_blob wraps external memory and releases it once", "[core]") {
  std::vector<float> buf{1, 2, 3, 4};
  int released = 0;
  {
    auto t = TensorF::from_blob(buf.data(), {2, 2}, Device::cpu(), [&](void*) { ++released; });
    auto v = t.view({4});
    v.at({3}) = 9;
  }
  CHECK(buf[3] == 9);
  CHECK(released == 1);
}

TEST_CASE("CPU caching allocator reuses blocks and tracks use", "[core]") {
  auto& be = cpu_backend();
  const size_t before = be.bytes_in_use();
  void* first;
  {
    auto t = TensorF::empty({1000});
    first = t.data();
    CHECK(be.bytes_in_use() >= before + 4000);
  }
  CHECK(be.bytes_in_use() == before);
  auto t2 = TensorF::empty({1000});
  CHECK(t2.data() == first);  // same size class: the cached block comes back
  CHECK(reinterpret_cast<uintptr_t>(t2.data()) % CpuBackend::kAlignment == 0);
}

TEST_CASE("PoisonScope fills new tensors with NaN", "[core]") {
  {
    debug::PoisonScope poison;
    auto t = TensorF::empty({8});
    for (float v : t.to_vector()) CHECK(std::isnan(v));
    CHECK(TensorF::zeros({2}).to_vector() == std::vector<float>{0, 0});
  }
  auto t = TensorF::empty({8});
  t.fill_(1);
  CHECK(t.to_vector() == std::vector<float>(8, 1.f));
}

TEST_CASE("CUDA tensors without the CUDA backend give a clear error", "[core]") {
  if (cuda_available()) return;
  CHECK_THROWS_WITH(TensorF::empty({4}, Device::cuda()), Catch::Contains("without CUDA support"));
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK_THROWS_WITH(Device::parse("gpu"), Catch::Contains("invalid device 'gpu'"));
}
