// JointGroupSelector inside a model of your own: the paper's learnable joint
// groups (Eq. 8) are not tied to the hand network. Any model with K branches
// that each predict every joint can let a selector choose, per joint, the
// branch it takes its prediction from, and learn that choice by gradient
// descent through the Gumbel-softmax relaxation.
//
// The toy problem: 6 "joints" whose targets come in two families, joints
// 0-2 proportional to one projection of the input (u·x) and joints 3-5 to
// another (v·x). Each of the K = 2 branches of the model can express one
// projection only (a scalar feature w_k·x times a per-joint gain), so a
// branch that serves joints of both families fits neither: the selector has
// to discover the two groups. After training, the hard selector (argmax of
// θ) should put joints 0-2 in one group and 3-5 in the other.
//
//   joint_groups_in_your_model [--steps N] [--seed N]
#include <lgh/lgh.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace lgh;

namespace {

constexpr int64_t kJoints = 6, kGroups = 2, kInputs = 8;

// Branch k predicts joint j as a_kj (w_k · x); the selector mixes branches
// per joint: y_j = Σ_k S̃_jk a_kj (w_k · x)  (Eq. 5 with the relaxed S̃ of Eq. 8).
class TwoFamilyRegressor : public nn::Module<float> {
 public:
  explicit TwoFamilyRegressor(PhiloxEngine& rng) {
    selector = register_module("selector", std::make_shared<nn::JointGroupSelector<float>>(kJoints, kGroups));
    for (int k = 0; k < kGroups; ++k) {
      w.push_back(register_parameter("w" + std::to_string(k), TensorF::normal({1, kInputs}, 0, 0.3, rng)));
      a.push_back(register_parameter("a" + std::to_string(k), TensorF::normal({1, kJoints}, 0, 0.3, rng)));
    }
  }

  // x [B, D] -> y [B, J].
  TensorF forward(const TensorF& x, const nn::SelectorOptions& options) {
    const int64_t B = x.size(0);
    std::vector<TensorF> branches;
    for (int k = 0; k < kGroups; ++k) {
      const TensorF feature = ops::linear(x, w[k]);      // [B, 1]
      const TensorF out = ops::mul(feature, a[k]);       // [B, J]
      branches.push_back(ops::reshape(out, {B, 1, kJoints, 1}));
    }
    // The selected prediction of each joint: [B, J, 1].
    const TensorF y = ops::group_select(selector->forward(options), ops::concat(branches, 1));
    return ops::reshape(y, {B, kJoints});
  }

  std::shared_ptr<nn::JointGroupSelector<float>> selector;
  std::vector<TensorF> w, a;
};

}  // namespace

int main(int argc, char** argv) try {
  int steps = 600;
  uint64_t seed = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--steps") steps = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--seed") seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: joint_groups_in_your_model [--steps N] [--seed N]\n");
      return flag == "--help" || flag == "-h" ? 0 : 2;
    }
  }

  // The data: two random projections u, v and per-joint gains.
  PhiloxEngine rng(seed);
  const TensorF u = TensorF::normal({kInputs}, 0, 1, rng), v = TensorF::normal({kInputs}, 0, 1, rng);
  const TensorF gain = TensorF::uniform({kJoints}, 0.5, 2.0, rng);
  auto make_batch = [&](int64_t B, TensorF& x, TensorF& y) {
    x = TensorF::normal({B, kInputs}, 0, 1, rng);
    y = TensorF::empty({B, kJoints});
    for (int64_t b = 0; b < B; ++b) {
      double pu = 0, pv = 0;
      for (int64_t d = 0; d < kInputs; ++d) {
        pu += u.at({d}) * x.at({b, d});
        pv += v.at({d}) * x.at({b, d});
      }
      for (int64_t j = 0; j < kJoints; ++j) y.at({b, j}) = static_cast<float>(gain.at({j}) * (j < 3 ? pu : pv));
    }
  };

  TwoFamilyRegressor model(rng);
  // θ learns fast (the paper's 1e-1), the branches at 1e-2.
  std::vector<optim::ParamGroup<float>> groups(2);
  groups[0] = {"branches", {}, 1e-2};
  for (int k = 0; k < kGroups; ++k) {
    groups[0].params.push_back(model.w[k]);
    groups[0].params.push_back(model.a[k]);
  }
  groups[1] = {"selector", {model.selector->theta}, 1e-1};
  optim::Adam<float> adam(groups);
  // τ from 5 down to 0.1, quickly: the toy converges in hundreds of steps.
  const optim::TemperatureSchedule tau(5.0, 0.1, std::max(1, steps / 60), 0.1);

  for (int step = 0; step < steps; ++step) {
    TensorF x, y;
    make_batch(32, x, y);
    nn::SelectorOptions sel;
    sel.mode = nn::SelectorMode::Sample;  // Eq. (8): Gumbel noise, relaxed
    sel.temperature = tau.value(step);
    sel.noise = Philox(seed, static_cast<uint64_t>(step));
    adam.zero_grad();
    const TensorF loss = ops::l1_loss(model.forward(x, sel), y);
    loss.backward();
    adam.step();
    if ((step + 1) % 100 == 0 || step + 1 == steps)
      std::printf("step %4d  loss %.4f  tau %.2f\n", step + 1, loss.item(), sel.temperature);
  }

  // Evaluation with the hard selector (the argmax of θ).
  TensorF x, y;
  make_batch(256, x, y);
  double err = 0;
  {
    autograd::NoGradGuard no_grad;
    const TensorF pred = model.forward(x, nn::SelectorOptions{});
    err = ops::l1_loss(pred, y).item();
  }
  const std::vector<int> group = model.selector->assignment();
  std::printf("learned groups (joint: group):");
  for (int64_t j = 0; j < kJoints; ++j) std::printf(" %lld:%d", static_cast<long long>(j), group[j]);
  std::printf("\nheld-out error with the hard selector: %.4f\n", err);
  const bool found = group[0] == group[1] && group[1] == group[2] && group[3] == group[4] && group[4] == group[5] &&
                     group[0] != group[3];
  std::printf(found ? "the selector recovered the two families of joints\n"
                    : "the selector did not separate the two families of joints\n");
  return 0;
} catch (const lgh::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
