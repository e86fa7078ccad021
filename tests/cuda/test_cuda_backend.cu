#include <catch2/catch.hpp>

#include "cuda_test_utils.cuh"

#include "lgh/core/tensor.hpp"
#include "philox.cuh"

using namespace lgh;

TEST_CASE("the CUDA backend is registered by linking lgh::cuda", "[cuda-host]") {
  CHECK(cuda_available());
}

TEST_CASE("host <-> device copies round-trip", "[cuda]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  auto h = TensorF::from_data({2, 3}, {1, 2, 3, 4, 5, 6});
  auto d = h.to(Device::cuda());
  REQUIRE(d.device().is_cuda());
  auto d2 = TensorF::zeros({2, 3}, Device::cuda());
  d2.copy_(d);
  CHECK(d2.to(Device::cpu()).to_vector() == h.to_vector());
  CHECK(d.item() == 1.0f);  // item() of a 1-element view goes through copy_to_host
}

TEST_CASE("Philox uniforms are bit-identical on host and device", "[cuda][philox]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t n = 100003;
  const Philox gen(0x1234abcdULL, 77);
  auto d = TensorF::empty({n}, Device::cuda());
  d.poison_();
  cuda::philox_uniform(gen, 5, n, d.data());
  LGH_CUDA_CHECK(cudaDeviceSynchronize());
  const auto v = d.to_vector();
  for (int64_t i = 0; i < n; ++i) REQUIRE(v[static_cast<size_t>(i)] == gen.uniform(5 + static_cast<uint64_t>(i)));
}
