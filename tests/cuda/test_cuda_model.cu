// The whole model on the GPU against the CPU at a small config: the fused
// inference forward, the training forward and one training step (Eq. 10
// loss, backward, Adam with the paper's three groups), and the caching
// allocator's count: after warm-up, training steps make no raw cudaMalloc.
// Without a device every case skips (ctest: SKIPPED).
#include <catch2/catch.hpp>

#include "cuda_test_utils.cuh"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "lgh/core/backend.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/nn/pose3d.hpp"
#include "lgh/optim/adam.hpp"
#include "lgh/train/step.hpp"

using namespace lgh;

namespace {

const Device kGpu = Device::cuda(0);

nn::ModelConfig tiny() {
  nn::ModelConfig c;
  c.input_size = 64;
  c.features = 16;
  c.p0 = 8;
  c.p1 = 8;
  c.num_groups = 3;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  return c;
}

struct Trainee {
  nn::LearnableGroupsModel<float> model;
  nn::FlatParameters<float> flat;
  std::unique_ptr<optim::Adam<float>> adam;

  explicit Trainee(Device device) : model(tiny(), 1) {
    model.to(device);
    flat = nn::flatten(model);
    adam = std::make_unique<optim::Adam<float>>(
        train::parameter_groups(model, train::Stage::Full, train::LearningRates{}));
    model.train();
  }
};

struct Batch {
  TensorF image, k, z_root, s0, xyz;
  Batch to(Device d) const { return {image.to(d), k.to(d), z_root.to(d), s0.to(d), xyz.to(d)}; }
};

Batch make_batch(int64_t B) {
  PhiloxEngine rng(5);
  Batch b;
  b.image = TensorF::uniform({B, 3, 64, 64}, 0, 1, rng);
  b.k = TensorF::uniform({B, 4}, 30, 160, rng);
  b.z_root = TensorF::uniform({B}, 400, 600, rng);
  b.s0 = TensorF::uniform({B}, 30, 50, rng);
  b.xyz = TensorF::uniform({B, 21, 3}, -60, 560, rng);
  return b;
}

// Forward, loss and backward (no optimiser step): the loss, on the model's device.
TensorF forward_backward(Trainee& t, const Batch& b, uint64_t step) {
  nn::SelectorOptions opt;
  opt.mode = nn::SelectorMode::Sample;
  opt.temperature = 5.0;
  opt.noise = Philox(9, step);
  t.model.zero_grad();
  const auto out = t.model.forward(b.image, opt);
  const auto loss = nn::pose_loss(out.uvd, b.k, b.z_root, b.s0, b.xyz);
  loss.total.backward();
  return loss.total.detach();
}

// |got - want| <= abs_scale * max|want| + rel * |want| elementwise: the
// absolute part follows the tensor's magnitude (GEMM and convolution sums
// are reordered on the GPU).
void require_close(const std::vector<float>& got, const std::vector<float>& want, double abs_scale, double rel,
                   const char* what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  double scale = 0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::abs(w)));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i] << " (max |want| " << scale << ")");
    REQUIRE(std::isfinite(got[i]));
    REQUIRE(std::abs(static_cast<double>(got[i]) - want[i]) <= abs_scale * scale + rel * std::abs(want[i]));
  }
}

}  // namespace

TEST_CASE("the model's fused inference forward on the GPU equals the CPU's", "[cuda][model]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  nn::LearnableGroupsModel<float> cpu(tiny(), 3), gpu(tiny(), 3);
  cpu.eval();
  gpu.eval();
  gpu.to(kGpu);
  const TensorF image = make_batch(2).image;
  autograd::NoGradGuard no_grad;
  const auto want = cpu.forward(image);
  for (int pass = 0; pass < 2; ++pass) {  // the second pass reuses the folds cached on the device
    const auto got = gpu.forward(image.to(kGpu));
    REQUIRE(got.uvd.device() == kGpu);
    require_close(got.uvd.to_vector(), want.uvd.to_vector(), 1e-4, 1e-3, "uvd");
    require_close(got.selector.to_vector(), want.selector.to_vector(), 0, 0, "hard selector");
  }
}

TEST_CASE("one training step on the GPU equals the CPU's", "[cuda][model]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  Trainee cpu(Device::cpu()), gpu(kGpu);
  const Batch host = make_batch(2);
  const Batch batch = host.to(kGpu);
  const float want = forward_backward(cpu, host, 0).item();
  const float got = forward_backward(gpu, batch, 0).item();
  CHECK(got == Approx(want).epsilon(1e-3));
  require_close(gpu.flat.grads.to_vector(), cpu.flat.grads.to_vector(), 1e-3, 1e-2, "gradients");
  cpu.adam->step();
  gpu.adam->step();
  // Adam's first step moves each parameter by about lr * sign(g): compare
  // where the gradient is clearly non-zero on the CPU.
  const auto g = cpu.flat.grads.to_vector();
  const auto pc = cpu.flat.values.to_vector(), pg = gpu.flat.values.to_vector();
  double gmax = 0;
  for (float v : g) gmax = std::max(gmax, static_cast<double>(std::abs(v)));
  int compared = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::abs(g[i]) < 1e-2 * gmax) continue;
    ++compared;
    INFO("parameter element " << i);
    REQUIRE(std::abs(pg[i] - pc[i]) <= 1e-5f + 1e-5f * std::abs(pc[i]));
  }
  CHECK(compared > 0);
  for (const auto& b : cpu.model.named_buffers())
    for (const auto& d : gpu.model.named_buffers())
      if (d.first == b.first) require_close(d.second.to_vector(), b.second.to_vector(), 1e-4, 1e-3, b.first.c_str());
}

TEST_CASE("steady-state training steps on the GPU make no cudaMalloc", "[cuda][model][allocator]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  Trainee gpu(kGpu);
  const Batch batch = make_batch(2).to(kGpu);
  for (uint64_t s = 0; s < 2; ++s) {  // warm-up: the cache fills, cuDNN picks its algorithms
    forward_backward(gpu, batch, s);
    gpu.adam->step();
  }
  synchronize(kGpu);
  const uint64_t raw = memory_stats(kGpu).raw_allocations;
  TensorF loss;
  for (uint64_t s = 2; s < 7; ++s) {
    loss = forward_backward(gpu, batch, s);
    gpu.adam->step();
  }
  synchronize(kGpu);
  CHECK(memory_stats(kGpu).raw_allocations == raw);
  CHECK(std::isfinite(loss.item()));  // read once, when logged
}
