// The ChannelAffine entry (kernels/channel_affine.cuh, a BN on its own in the
// fused inference path) against the CPU through ops::channel_affine_inference,
// on odd shapes, outputs starting as NaN.
#include <catch2/catch.hpp>

#include "cuda_test_utils.cuh"

#include <cmath>
#include <vector>

#include "channel_affine.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/inference.hpp"

using namespace lgh;

namespace {
const Device kGpu = Device::cuda(0);

std::vector<float> uniforms(size_t n, uint64_t seed, double lo, double hi) {
  PhiloxEngine rng(seed);
  return TensorF::uniform({static_cast<int64_t>(n)}, lo, hi, rng).to_vector();
}
}  // namespace

TEST_CASE("linking lgh::cuda registers the eval-mode channel affine", "[cuda-host]") {
  CHECK(dispatch::supports<ops::entries::ChannelAffine, float>(kGpu));
  CHECK(dispatch::supports<ops::entries::ChannelAffine, double>(kGpu));
}

TEST_CASE("CUDA channel affine (a BN in eval mode) matches the CPU", "[cuda][inference]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t N = GENERATE(1, 3), C = GENERATE(5, 1024), HW = 7;
  const bool relu = GENERATE(false, true);
  PhiloxEngine rng(1);
  const TensorF x = TensorF::uniform({N, C, 1, HW}, -2, 2, rng);
  const std::vector<float> scale = uniforms(static_cast<size_t>(C), 2, 0.5, 1.5);
  const std::vector<float> shift = uniforms(static_cast<size_t>(C), 3, -1, 1);
  debug::PoisonScope poison;
  autograd::NoGradGuard no_grad;
  const std::vector<float> want = ops::channel_affine_inference(x, scale, shift, relu).to_vector();
  const std::vector<float> got = ops::channel_affine_inference(x.to(kGpu), scale, shift, relu).to_vector();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i);
    REQUIRE(std::abs(got[i] - want[i]) <= 1e-6f + 1e-6f * std::abs(want[i]));
  }
}

TEST_CASE("CUDA channel affine refuses more channels than its table holds", "[cuda][inference]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const std::vector<float> v(static_cast<size_t>(cuda::kMaxAffineChannels + 1), 1.f);
  lgh_test::DeviceBuffer<float> x(v.size()), y(v.size());
  CHECK_THROWS_WITH(cuda::channel_affine(x.get(), v.data(), v.data(), 1, cuda::kMaxAffineChannels + 1, 1, false,
                                         y.get(), nullptr),
                    Catch::Contains("1025 channels; the CUDA kernel takes at most 1024"));
}
