// One optimisation step of either training stage of the paper
// (Implementation details; DESIGN.md §2), and the parameter groups and
// learning rates each stage uses. The trainer, `lgh bench --mode train` and
// any program of a user run their steps through TrainStep.
//
//   stage 1 ("2d"):   the backbone alone learns 2D joints: ℓ1 between the
//                     soft-argmax of its heatmaps H0 and the ground-truth uv
//                     (crop pixels); Adam, lr 1e-3 on the backbone.
//   stage 2 ("full"): everything, with Eq. (10) on camera-space joints
//                     divided by s0 (β = 20); Adam with lr 1e-1 for the
//                     selector θ, 1e-2 for the fusion layers (Eq. 9) and 1e-4
//                     for the rest; the selector is sampled (Eq. 8) at the
//                     temperature τ of the schedule, with Gumbel noise from the
//                     counter-based stream (seed, step), so a step's noise does
//                     not depend on what ran before it.
// With fixed (manual) groups the selector is the hard one-hot of θ, and θ is
// neither sampled nor trained.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/loader.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/nn/pose3d.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/optim/adam.hpp"
#include "lgh/optim/schedule.hpp"

namespace lgh {
namespace train {

enum class Stage { Backbone2D, Full };

inline const char* stage_name(Stage s) { return s == Stage::Backbone2D ? "2d" : "full"; }

inline Stage parse_stage(const std::string& s) {
  if (s == "2d") return Stage::Backbone2D;
  if (s == "full") return Stage::Full;
  LGH_FAIL("unknown training stage '" << s << "' (expected 2d or full)");
}

// The paper's learning rates (Implementation details).
struct LearningRates {
  double backbone_2d = 1e-3;  // stage 1
  double selector = 1e-1;     // θ, stage 2
  double fusion = 1e-2;       // the fusion layers of Eq. (9), stage 2
  double rest = 1e-4;         // everything else, stage 2

  nlohmann::json to_json() const {
    return {{"backbone_2d", backbone_2d}, {"selector", selector}, {"fusion", fusion}, {"rest", rest}};
  }
};

enum class GroupMode {
  Learned,  // θ trained through the Gumbel-softmax selector (the paper's method)
  Fixed,    // θ frozen at a given grouping, selected hard (the manual baseline)
};

// The manual grouping of the paper's Table 2 (after Zhou et al. 2018): the
// thumb, the index finger and the other fingers. The wrist joins the other
// fingers (it belongs to no finger; the palm's group holds the root).
inline std::vector<int> manual_groups() {
  std::vector<int> g(data::kNumJoints, 2);
  for (int d = 0; d < 4; ++d) {
    g[static_cast<size_t>(data::joint_index(data::Thumb, d))] = 0;
    g[static_cast<size_t>(data::joint_index(data::Index, d))] = 1;
  }
  return g;
}

// Sets θ to the grouping `group` (joint j -> group[j]): 1 on the joint's
// group, 0 elsewhere, so the hard selector (argmax) reproduces it.
template <typename T>
void set_groups(nn::LearnableGroupsModel<T>& model, const std::vector<int>& group) {
  const int64_t J = model.config().num_joints, K = model.config().num_groups;
  LGH_CHECK(static_cast<int64_t>(group.size()) == J, "set_groups: " << group.size() << " entries for " << J << " joints");
  autograd::NoGradGuard no_grad;
  Tensor<T> theta = model.selector->theta.detach();
  for (int64_t j = 0; j < J; ++j) {
    const int k = group[static_cast<size_t>(j)];
    LGH_CHECK(k >= 0 && k < K, "set_groups: joint " << j << " in group " << k << ", but the model has K = " << K);
    for (int64_t l = 0; l < K; ++l) theta.at({j, l}) = T(l == k ? 1 : 0);
  }
  model.parameters_changed();
}

// The parameter groups of a stage: the only place where they are chosen.
template <typename T>
std::vector<optim::ParamGroup<T>> parameter_groups(const nn::LearnableGroupsModel<T>& model, Stage stage,
                                                   const LearningRates& lr, GroupMode groups = GroupMode::Learned) {
  std::vector<optim::ParamGroup<T>> out;
  auto add = [&](const char* name, std::vector<Tensor<T>> params, double rate) {
    if (params.empty()) return;
    optim::ParamGroup<T> g;
    g.name = name;
    g.params = std::move(params);
    g.lr = rate;
    out.push_back(std::move(g));
  };
  if (stage == Stage::Backbone2D) {
    add("backbone", model.backbone->trainable_parameters(), lr.backbone_2d);
  } else {
    add("rest", model.parameters(nn::ParamGroup::Backbone), lr.rest);
    if (groups == GroupMode::Learned) add("selector", model.parameters(nn::ParamGroup::Selector), lr.selector);
    add("fusion", model.parameters(nn::ParamGroup::Fusion), lr.fusion);
  }
  return out;
}

// β of Eq. (10): the weight of the depth term.
constexpr double kPaperBeta = 20.0;

// The loss of a step and its parts.
struct StepLoss {
  double total = 0;
  double xy = 0, z = 0;  // Eq. (10)'s two terms (stage 2); xy is the 2D ℓ1 in stage 1
};

// A loss or a gradient that is NaN or infinite: training stops before the
// update (the trainer keeps the last good checkpoint).
class NonFiniteLoss : public Error {
 public:
  using Error::Error;
};

class TrainStep {
 public:
  // `model` must outlive the step; its parameters should be flattened
  // (nn::flatten) first, so that Adam updates each group in one pass.
  // `beta` weighs the depth term of Eq. (10) (the paper's 20).
  TrainStep(nn::LearnableGroupsModel<float>& model, Stage stage, const LearningRates& lr = {},
            GroupMode groups = GroupMode::Learned, optim::TemperatureSchedule tau = {}, uint64_t seed = 0,
            double beta = kPaperBeta)
      : model_(model), stage_(stage), groups_(groups), tau_(tau), seed_(seed), beta_(beta),
        adam_(parameter_groups(model, stage, lr, groups)) {
    LGH_CHECK(std::isfinite(beta) && beta >= 0, "TrainStep: beta must be finite and >= 0, got " << beta);
  }

  Stage stage() const { return stage_; }
  optim::Adam<float>& optimizer() { return adam_; }
  const optim::Adam<float>& optimizer() const { return adam_; }
  // τ at `stage_step` steps into this stage (stage 2; 0 in stage 1).
  double temperature(int64_t stage_step) const { return stage_ == Stage::Full ? tau_.value(stage_step) : 0.0; }
  // The learning rate of the bulk of the parameters (the backbone in stage
  // 1, "the rest" in stage 2), for progress reports.
  double main_lr() const { return adam_.lr(0); }

  // One step on `batch`: forward in train mode, loss, backward, Adam.
  // `global_step` addresses the Gumbel noise; `stage_step` sets τ. Throws
  // NonFiniteLoss (before touching the parameters) when the loss or a
  // gradient is not finite.
  //
  // With `read_loss` false the step reads nothing back: on a device it stays
  // there whole (no synchronisation), the returned StepLoss is zero, the
  // finiteness checks are skipped, and last_loss() holds the loss on the
  // device for whoever logs it later (its two terms in last_loss_xy() and
  // last_loss_z()).
  StepLoss run(const data::Batch& batch, int64_t global_step, int64_t stage_step, bool read_loss = true) {
    model_.train();
    model_.zero_grad();
    StepLoss out;
    Tensor<float> loss;
    last_z_ = Tensor<float>();
    if (stage_ == Stage::Backbone2D) {
      const TensorF uv = nn::heatmap_keypoints(model_.backbone->forward(batch.image).heatmaps);
      loss = ops::l1_loss(uv, batch.uv);  // mean |error| in crop pixels
      last_xy_ = loss.detach();
      if (read_loss) out.total = out.xy = loss.item();
    } else {
      nn::SelectorOptions sel;
      if (groups_ == GroupMode::Learned) {
        sel.mode = nn::SelectorMode::Sample;
        sel.temperature = tau_.value(stage_step);
        sel.noise = Philox(seed_, static_cast<uint64_t>(global_step));  // Eq. (8)'s g for this step
      }
      const auto o = model_.forward(batch.image, sel);
      const auto l = nn::pose_loss(o.uvd, batch.K, batch.z_root, batch.s0, batch.xyz, beta_);
      loss = l.total;
      last_xy_ = l.xy.detach();
      last_z_ = l.z.detach();
      if (read_loss) {
        out.total = l.total.item();
        out.xy = l.xy.item();
        out.z = l.z.item();
      }
    }
    last_loss_ = loss.detach();
    if (!read_loss) {
      loss.backward();
      adam_.step();
      model_.parameters_changed();
      return out;
    }
    if (!std::isfinite(out.total))
      throw NonFiniteLoss("step " + std::to_string(global_step) + " (" + stage_name(stage_) + "): the loss is " +
                          std::to_string(out.total) + "; training stopped before the update");
    loss.backward();
    // A finite loss can still have a non-finite gradient (e.g. a NaN weight
    // whose activations a ReLU zeroes): check before the update as well.
    for (const auto& g : adam_.groups())
      for (size_t i = 0; i < g.params.size(); ++i) {
        const Tensor<float> grad = g.params[i].grad();
        if (!grad.defined()) continue;
        if (!all_finite(grad))
            throw NonFiniteLoss("step " + std::to_string(global_step) + " (" + stage_name(stage_) +
                                "): the gradient of parameter " + std::to_string(i) + " of group '" + g.name +
                                "' (shape " + g.params[i].shape().str() + ") is not finite, with a loss of " +
                                std::to_string(out.total) + "; training stopped before the update");
      }
    adam_.step();
    model_.parameters_changed();
    return out;
  }

  // The loss of the last step, where the step ran (a scalar tensor).
  const Tensor<float>& last_loss() const { return last_loss_; }
  // Its two terms (StepLoss::xy and z), where the step ran; z is undefined
  // in stage 1, which has no depth term.
  const Tensor<float>& last_loss_xy() const { return last_xy_; }
  const Tensor<float>& last_loss_z() const { return last_z_; }

 private:
  // Whether every element of `t` is finite. On the CPU a scan; on a device
  // one reduction there and a single scalar read back (a sum is finite iff
  // every term is, short of an overflow no gradient reaches).
  static bool all_finite(const Tensor<float>& t) {
    if (t.device().is_cpu()) {
      const Tensor<float> c = t.contiguous();
      for (int64_t k = 0; k < c.numel(); ++k)
        if (!std::isfinite(c.data()[k])) return false;
      return true;
    }
    autograd::NoGradGuard no_grad;
    return std::isfinite(ops::sum(t).item());
  }

  nn::LearnableGroupsModel<float>& model_;
  Stage stage_;
  GroupMode groups_;
  optim::TemperatureSchedule tau_;
  uint64_t seed_;
  double beta_;
  optim::Adam<float> adam_;
  Tensor<float> last_loss_, last_xy_, last_z_;
};

}  // namespace train
}  // namespace lgh
