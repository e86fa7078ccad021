// The whole model on a non-CPU device, without a GPU: a fake "cuda" backend
// whose memory is host memory (through the caching allocator) and whose
// entries are the CPU loops stands in for one, so that Module::to, the
// forward, the Eq. (10) loss, backward and Adam run on Device::cuda() exactly
// as on a GPU, through the dispatch registry. What it checks is the model's
// device-awareness:
//   * every op of a training step and of inference finds its device's entry
//     (an op that silently computed on the host would mix devices and throw);
//   * the results equal the CPU model's, to the bit (the same loops on
//     equally aligned data);
//   * a steady-state training step copies nothing back to the host (the loss
//     is read only when logged) and makes no raw allocation (the caching
//     allocator serves every request from its cache);
//   * inference reads the folded BN back once, at the first forward after a
//     parameter change, and never again.
// Its own executable: it installs a backend for DeviceType::CUDA for the
// whole process.
#include <catch2/catch.hpp>

#include "fake_device.hpp"
#include "lgh/train/step.hpp"

using namespace lgh;

namespace {

using namespace lgh_fake_device;

// A model, its flat buffers and Adam with the paper's three groups, on `device`.
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

// Forward, Eq. (10) loss and backward of a training step (sampled selector);
// returns the loss tensor (on the model's device, not read).
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

TensorF train_step(Trainee& t, const Batch& b, uint64_t step) {
  TensorF loss = forward_backward(t, b, step);
  t.adam->step();
  return loss;
}

}  // namespace

TEST_CASE("model on a device: training steps stay on the device and equal the CPU's", "[nn][device]") {
  install_fake_device();
  Trainee cpu(Device::cpu()), dev(kDev);
  const Batch host = make_batch(2);
  const Batch batch = host.to(kDev);
  REQUIRE(dev.model.device() == kDev);
  REQUIRE(dev.flat.values.device() == kDev);

  // The first step against the CPU's: the same loops on the same (equally
  // aligned) data, so loss, gradients, parameters and BN statistics are
  // equal to the bit.
  const TensorF loss_dev = forward_backward(dev, batch, 0), loss_cpu = forward_backward(cpu, host, 0);
  CHECK(loss_dev.item() == loss_cpu.item());
  CHECK(dev.flat.grads.to_vector() == cpu.flat.grads.to_vector());
  cpu.adam->step();
  dev.adam->step();
  CHECK(dev.flat.values.to_vector() == cpu.flat.values.to_vector());

  // Steady state: the cache is warm, so steps allocate no raw memory, and
  // nothing goes to the host or comes back.
  const int d2h = counts().calls["copy_to_host"], h2d = counts().calls["copy_from_host"];
  const int raw = counts().raw_allocations;
  std::vector<TensorF> losses;
  for (uint64_t s = 1; s <= 3; ++s) losses.push_back(train_step(dev, batch, s));
  CHECK(counts().calls["copy_to_host"] == d2h);
  CHECK(counts().calls["copy_from_host"] == h2d);
  CHECK(counts().raw_allocations == raw);
  CHECK(memory_stats(kDev).raw_allocations == static_cast<uint64_t>(raw));

  // The losses, read when logged, and the state after four steps equal the CPU's.
  for (uint64_t s = 1; s <= 3; ++s) {
    const float want = train_step(cpu, host, s).item();
    CHECK(losses[s - 1].item() == want);
  }
  CHECK(dev.flat.values.to_vector() == cpu.flat.values.to_vector());
  for (const auto& b : cpu.model.named_buffers())
    for (const auto& d : dev.model.named_buffers())
      if (d.first == b.first) {
        INFO(b.first);
        CHECK(d.second.to_vector() == b.second.to_vector());
      }
  CHECK(dev.model.selector->assignment() == cpu.model.selector->assignment());
}

TEST_CASE("model on a device: the fused inference path reads the folds back once", "[nn][device]") {
  install_fake_device();
  nn::LearnableGroupsModel<float> cpu(tiny(), 3), dev(tiny(), 3);
  // Non-trivial BN statistics, so the folds matter.
  {
    PhiloxEngine rng(4);
    autograd::NoGradGuard ng;
    for (auto* m : {&cpu, &dev}) {
      PhiloxEngine r = rng;
      for (auto& b : m->named_buffers()) {
        const bool var = b.first.find("running_var") != std::string::npos;
        Tensor<float>(b.second).copy_(
            TensorF::uniform(b.second.shape(), var ? 0.5 : -0.3, var ? 1.5 : 0.3, r));
      }
      m->parameters_changed();
    }
  }
  cpu.eval();
  dev.eval();
  dev.to(kDev);
  const TensorF image = make_batch(2).image;
  const TensorF image_dev = image.to(kDev);
  autograd::NoGradGuard no_grad;
  const auto want = cpu.forward(image);
  const auto first = dev.forward(image_dev);
  CHECK(first.uvd.to_vector() == want.uvd.to_vector());
  const int d2h = counts().calls["copy_to_host"], h2d = counts().calls["copy_from_host"];
  const auto second = dev.forward(image_dev);
  CHECK(counts().calls["copy_to_host"] == d2h);
  CHECK(counts().calls["copy_from_host"] == h2d);
  CHECK(second.uvd.to_vector() == want.uvd.to_vector());
  CHECK(second.selector.to_vector() == want.selector.to_vector());
}

TEST_CASE("model on a device: the Eq. (10) normalisation runs where s0 lives", "[nn][device]") {
  install_fake_device();
  const Batch host = make_batch(3);
  PhiloxEngine rng(8);
  const TensorF uvd = TensorF::uniform({3, 21, 3}, 0, 64, rng);
  const auto want = nn::pose_loss(uvd, host.k, host.z_root, host.s0, host.xyz);
  const Batch b = host.to(kDev);
  const int d2h = counts().calls["copy_to_host"];
  const auto got = nn::pose_loss(uvd.to(kDev), b.k, b.z_root, b.s0, b.xyz);
  CHECK(counts().calls["copy_to_host"] == d2h);
  CHECK(got.total.device() == kDev);
  CHECK(got.total.item() == want.total.item());
  // A non-positive s0 is refused by name on the CPU.
  TensorF bad = host.s0.clone();
  bad.fill_(0.f);
  CHECK_THROWS_WITH(nn::pose_loss(uvd, host.k, host.z_root, bad, host.xyz),
                    Catch::Contains("pose_loss: s0[0] = 0, expected > 0"));
}

