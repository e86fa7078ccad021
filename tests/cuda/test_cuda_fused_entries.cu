// The fused ops' CUDA entries (kernels/fused_entries.cuh) through the public
// ops, forward and backward, against the same ops on the CPU: Gumbel-softmax
// (Philox noise equal to the CPU's for the same seed and stream), masked
// group selection, concat + 1x1 fusion (training and eval epilogue),
// soft-argmax with depth, and the 1/s0 normalisation of the Eq. (10) loss,
// on random shapes with odd sizes. New buffers are NaN on both sides (debug::PoisonScope), so an element
// an entry forgets to write fails; tolerance abs + |ref| * rel.
//
// The same file runs on the host emulation (tests/cuda_emulation), where the
// kernels execute on the CPU through lgh::cuda::launch_kernel.
#include <catch2/catch.hpp>

#include "cuda_test_utils.cuh"

#include <cmath>
#include <functional>
#include <vector>

#include "fused_entries.cuh"
#include "model_entries.cuh"
#include "lgh/autograd/engine.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/group_fusion.hpp"
#include "lgh/ops/group_select.hpp"
#include "lgh/ops/gumbel_softmax.hpp"
#include "lgh/nn/pose3d.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"

using namespace lgh;

namespace {

const Device kGpu = Device::cuda(0);

template <typename T>
Tensor<T> random_tensor(const Shape& s, uint64_t seed, double lo = -2.0, double hi = 2.0) {
  PhiloxEngine rng(seed);
  return Tensor<T>::uniform(s, lo, hi, rng);
}

template <typename T>
void require_close(const Tensor<T>& got, const Tensor<T>& want, double abs_tol, double rel_tol, const char* what) {
  INFO(what << ": shape " << want.shape().str());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.device() == kGpu);
  const std::vector<T> g = got.to_vector(), w = want.to_vector();
  for (size_t i = 0; i < w.size(); ++i) {
    INFO("element " << i << ": got " << g[i] << ", want " << w[i]);
    REQUIRE(std::isfinite(static_cast<double>(g[i])));
    REQUIRE(std::abs(static_cast<double>(g[i]) - static_cast<double>(w[i])) <=
            abs_tol + rel_tol * std::abs(static_cast<double>(w[i])));
  }
}

// Runs `f` on CPU copies and on device copies of `inputs` (all leaves that
// require grad), back-propagates the same random output gradients on both
// sides, and compares the outputs and every input's gradient.
template <typename T>
void check_against_cpu(const std::vector<Tensor<T>>& inputs,
                       const std::function<std::vector<Tensor<T>>(const std::vector<Tensor<T>>&)>& f,
                       double abs_tol, double rel_tol, uint64_t seed) {
  debug::PoisonScope poison;
  std::vector<Tensor<T>> cpu_in, gpu_in;
  for (const Tensor<T>& t : inputs) {
    cpu_in.push_back(t.clone().set_requires_grad(true));
    gpu_in.push_back(t.to(kGpu).set_requires_grad(true));
  }
  const std::vector<Tensor<T>> want = f(cpu_in), got = f(gpu_in);
  REQUIRE(got.size() == want.size());
  std::vector<Tensor<T>> gw, gg;
  for (size_t i = 0; i < want.size(); ++i) {
    require_close(got[i], want[i], abs_tol, rel_tol, "forward output");
    gw.push_back(random_tensor<T>(want[i].shape(), seed + 100 + i));
    gg.push_back(gw.back().to(kGpu));
  }
  autograd::backward(want, gw);
  autograd::backward(got, gg);
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of input " << i);
    REQUIRE(cpu_in[i].grad().defined());
    require_close(gpu_in[i].grad(), cpu_in[i].grad(), abs_tol, rel_tol, "input gradient");
  }
}

}  // namespace

TEST_CASE("linking lgh::cuda registers the fused ops' entries", "[cuda-host]") {
  using namespace ops::entries;
  CHECK(dispatch::supports<GumbelSoftmaxForward, float>(kGpu));
  CHECK(dispatch::supports<GumbelSoftmaxBackward, double>(kGpu));
  CHECK(dispatch::supports<SelectorOneHot, float>(kGpu));
  CHECK(dispatch::supports<GroupSelectForward, float>(kGpu));
  CHECK(dispatch::supports<GroupSelectBackward, double>(kGpu));
  CHECK(dispatch::supports<GroupFusionForward, float>(kGpu));
  CHECK(dispatch::supports<GroupFusionBackward, double>(kGpu));
  CHECK(dispatch::supports<SoftArgmaxDepthForward, float>(kGpu));
  CHECK(dispatch::supports<SoftArgmaxDepthBackward, double>(kGpu));
  CHECK(dispatch::supports<nn::entries::InverseScale, float>(kGpu));
}

TEST_CASE("CUDA Gumbel-softmax draws the CPU's Philox noise and matches its gradient", "[cuda][fused][philox]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t J = GENERATE(21, 37), K = GENERATE(3, 5);
  const bool straight_through = GENERATE(false, true);
  const Philox noise(0x5eed + static_cast<uint64_t>(J), 11 + static_cast<uint64_t>(K));
  const TensorF theta = random_tensor<float>({J, K}, 1);
  // Sample: noise from (seed, stream); Soft: none; the relaxed gradient under straight-through too.
  for (ops::SelectorMode mode : {ops::SelectorMode::Sample, ops::SelectorMode::Soft}) {
    INFO("mode " << ops::selector_mode_name(mode) << ", straight_through " << straight_through);
    check_against_cpu<float>(
        {theta},
        [&](const std::vector<TensorF>& in) {
          return std::vector<TensorF>{ops::gumbel_softmax(in[0], 0.7, mode, noise, straight_through)};
        },
        1e-6, 1e-5, 3);
  }
  // Hard (Eq. 7): the one-hot argmax, a constant.
  debug::PoisonScope poison;
  const TensorF hard_cpu = ops::gumbel_softmax(theta, 1.0, ops::SelectorMode::Hard);
  const TensorF hard_gpu = ops::gumbel_softmax(theta.to(kGpu), 1.0, ops::SelectorMode::Hard);
  require_close(hard_gpu, hard_cpu, 0.0, 0.0, "hard selector");
}

TEST_CASE("CUDA masked group selection matches the CPU", "[cuda][fused]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t B = GENERATE(1, 5), K = GENERATE(1, 3), J = 21, C = 3;
  const std::vector<double> scale = GENERATE(std::vector<double>{}, std::vector<double>{4.0, 4.0, 1.0});
  const TensorF s = random_tensor<float>({J, K}, 2, 0.0, 1.0), x = random_tensor<float>({B, K, J, C}, 3);
  check_against_cpu<float>(
      {s, x},
      [&](const std::vector<TensorF>& in) { return std::vector<TensorF>{ops::group_select(in[0], in[1], scale)}; },
      1e-5, 1e-5, 4);
}

TEST_CASE("CUDA concat + 1x1 fusion matches the CPU, training and eval", "[cuda][fused]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t K = GENERATE(2, 3), P = GENERATE(5, 32), B = GENERATE(1, 3);
  const int64_t H = 7, W = 9;  // odd: no vector path
  std::vector<TensorF> in;
  for (int64_t k = 0; k < K; ++k) in.push_back(random_tensor<float>({B, P, H, W}, 10 + static_cast<uint64_t>(k)));
  for (int64_t k = 0; k < K; ++k)
    in.push_back(random_tensor<float>({P, K * P, 1, 1}, 20 + static_cast<uint64_t>(k), -0.3, 0.3));
  for (int64_t k = 0; k < K; ++k) in.push_back(random_tensor<float>({P}, 30 + static_cast<uint64_t>(k)));
  auto split = [K](const std::vector<TensorF>& v, int64_t part) {
    return std::vector<TensorF>(v.begin() + part * K, v.begin() + (part + 1) * K);
  };
  check_against_cpu<float>(
      in, [&](const std::vector<TensorF>& v) { return ops::group_fusion(split(v, 0), split(v, 1), split(v, 2)); },
      1e-4, 1e-4, 5);

  // Eval: the folded BN (scale, shift) and the ReLU in the epilogue.
  debug::PoisonScope poison;
  std::vector<TensorF> sc, sh, sc_gpu, sh_gpu, f_gpu, w_gpu, b_gpu;
  for (int64_t k = 0; k < K; ++k) {
    sc.push_back(random_tensor<float>({P}, 40 + static_cast<uint64_t>(k), 0.5, 1.5));
    sh.push_back(random_tensor<float>({P}, 50 + static_cast<uint64_t>(k)));
    sc_gpu.push_back(sc.back().to(kGpu));
    sh_gpu.push_back(sh.back().to(kGpu));
    f_gpu.push_back(in[static_cast<size_t>(k)].to(kGpu));
    w_gpu.push_back(in[static_cast<size_t>(K + k)].to(kGpu));
    b_gpu.push_back(in[static_cast<size_t>(2 * K + k)].to(kGpu));
  }
  autograd::NoGradGuard no_grad;
  const auto want = ops::group_fusion_eval(split(in, 0), split(in, 1), split(in, 2), sc, sh, true);
  const auto got = ops::group_fusion_eval(f_gpu, w_gpu, b_gpu, sc_gpu, sh_gpu, true);
  for (size_t k = 0; k < want.size(); ++k) require_close(got[k], want[k], 1e-4, 1e-4, "eval fusion");
}

TEST_CASE("CUDA soft-argmax with depth matches the CPU", "[cuda][fused]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t B = GENERATE(1, 3), J = GENERATE(2, 21);
  const int64_t H = GENERATE(8, 13), W = GENERATE(16, 11);  // 16: the vector path; 11: the scalar one
  const TensorF h = random_tensor<float>({B, J, H, W}, 60), d = random_tensor<float>({B, J, H, W}, 61);
  const TensorF beta = random_tensor<float>({J}, 62, 0.5, 2.0);
  check_against_cpu<float>(
      {h, d, beta},
      [&](const std::vector<TensorF>& in) { return std::vector<TensorF>{ops::soft_argmax_depth(in[0], in[1], in[2])}; },
      1e-4, 1e-4, 6);
}

TEST_CASE("CUDA Eq. (10) loss normalisation (1/s0) matches the CPU; a bad s0 gives NaN", "[cuda][fused]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t B = GENERATE(1, 5);
  const TensorF uvd = random_tensor<float>({B, 21, 3}, 80, 0.0, 64.0);
  const TensorF k = random_tensor<float>({B, 4}, 81, 30.0, 200.0), z = random_tensor<float>({B}, 82, 300.0, 700.0);
  const TensorF s0 = random_tensor<float>({B}, 83, 20.0, 60.0), xyz = random_tensor<float>({B, 21, 3}, 84, -60, 560);
  const TensorF kg = k.to(kGpu), zg = z.to(kGpu), sg = s0.to(kGpu), xg = xyz.to(kGpu);
  check_against_cpu<float>(
      {uvd},
      [&](const std::vector<TensorF>& in) {
        const bool gpu = in[0].device().is_cuda();
        const auto l = gpu ? nn::pose_loss(in[0], kg, zg, sg, xg) : nn::pose_loss(in[0], k, z, s0, xyz);
        return std::vector<TensorF>{l.total, l.xy, l.z};
      },
      1e-5, 1e-5, 9);
  TensorF bad = s0.clone();
  bad.fill_(-1.f);
  const auto l = nn::pose_loss(uvd.to(kGpu), kg, zg, bad.to(kGpu), xg);
  CHECK(std::isnan(l.total.item()));
}
