#include <catch2/catch.hpp>

#include "lgh/nn/model.hpp"

using namespace lgh;

namespace {

nn::ModelConfig tiny(int groups) {
  nn::ModelConfig c;
  c.input_size = 64;
  c.features = 16;
  c.p0 = 8;
  c.p1 = 8;
  c.num_groups = groups;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  return c;
}

// Random parameters and BN statistics (positive variances), so every folded
// term matters.
template <typename T>
void randomise(nn::Module<T>& m, uint64_t seed) {
  PhiloxEngine rng(seed);
  autograd::NoGradGuard ng;
  for (auto& p : m.named_parameters())
    if (p.trainable) p.tensor.copy_(Tensor<T>::uniform(p.tensor.shape(), -0.5, 0.5, rng));
  for (auto& b : m.named_buffers()) {
    const bool var = b.first.find("running_var") != std::string::npos;
    Tensor<T>(b.second).copy_(Tensor<T>::uniform(b.second.shape(), var ? 0.5 : -0.3, var ? 1.5 : 0.3, rng));
  }
  m.parameters_changed();
}

}  // namespace

TEST_CASE("fused inference path equals the differentiable eval path", "[nn][inference]") {
  for (int groups : {1, 3}) {
    nn::LearnableGroupsModel<double> model(tiny(groups), 11);
    randomise(model, 12);
    model.eval();
    PhiloxEngine rng(13);
    const TensorD image = TensorD::uniform({2, 3, 64, 64}, 0, 1, rng);
    nn::SelectorOptions opt;
    opt.mode = nn::SelectorMode::Soft;
    opt.temperature = 0.8;

    nn::ModelOutput<double> slow, fast;
    {
      autograd::EnableGradGuard on;  // eval mode but grad mode on: the plain ops run
      slow = model.forward(image, opt);
    }
    {
      autograd::NoGradGuard off;
      fast = model.forward(image, opt);
    }
    const auto a = slow.uvd.to_vector(), b = fast.uvd.to_vector();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(b[i] == Approx(a[i]).epsilon(1e-10).margin(1e-10));
    for (size_t k = 0; k < slow.groups.size(); ++k) {
      const auto ga = slow.groups[k].to_vector(), gb = fast.groups[k].to_vector();
      for (size_t i = 0; i < ga.size(); ++i) REQUIRE(gb[i] == Approx(ga[i]).epsilon(1e-10).margin(1e-10));
    }
  }
}

TEST_CASE("folded weights follow parameter changes", "[nn][inference]") {
  nn::LearnableGroupsModel<double> model(tiny(3), 21);
  randomise(model, 22);
  model.eval();
  PhiloxEngine rng(23);
  const TensorD image = TensorD::uniform({1, 3, 64, 64}, 0, 1, rng);
  autograd::NoGradGuard ng;
  const auto before = model.forward(image).uvd.to_vector();
  // Change a BN statistic deep in the network; parameters_changed() drops the folds.
  model.branches[1]->down2->bn_b->running_var.fill_(4.0);
  model.parameters_changed();
  const auto after = model.forward(image).uvd.to_vector();
  nn::ModelOutput<double> ref;
  {
    autograd::EnableGradGuard on;
    ref = model.forward(image);
  }
  CHECK(after != before);
  const auto r = ref.uvd.to_vector();
  for (size_t i = 0; i < r.size(); ++i) REQUIRE(after[i] == Approx(r[i]).epsilon(1e-10).margin(1e-10));
  // Switching to training and back also refreshes them.
  model.train();
  model.eval();
  CHECK(model.forward(image).uvd.to_vector() == after);
}
