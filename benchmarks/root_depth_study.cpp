// Root depth without ground truth: Iqbal et al.'s closed form on the
// reference bone against the robust fit to every bone
// (nn::RootMethod::{ReferenceBone, AllBones}), on synthetic hands with
// prediction-like noise on (u, v) and d, and optionally on a model's real
// predictions for held-out synthetic hands. Prints the median and 90th
// percentile of |z_root - true z_root| in mm (the table of docs/model.md,
// "Root depth without ground truth").
//
//   root_depth_study [--hands N] [--weights W] [--model-hands N]
#include <lgh/lgh.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "lgh/eval/root_depth.hpp"

using namespace lgh;

namespace {

void row(const char* label, const eval::RootStudy& a, const eval::RootStudy& b, const eval::RootStudy& c) {
  std::printf("| %-44s | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f |%s\n", label, a.errors.median(), a.errors.p90(),
              b.errors.median(), b.errors.p90(), c.errors.median(), c.errors.p90(),
              a.failures + b.failures + c.failures ? " (failures)" : "");
}

}  // namespace

int main(int argc, char** argv) try {
  int64_t hands = 2000, model_hands = 512;
  std::string weights;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--hands") hands = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--model-hands") model_hands = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--weights") weights = argv[++i];
    else {
      std::fprintf(stderr, "usage: root_depth_study [--hands N] [--weights W] [--model-hands N]\n");
      return flag == "--help" || flag == "-h" ? 0 : 2;
    }
  }
  struct Level {
    const char* label;
    eval::RootNoise noise;
  };
  const Level levels[] = {
      {"exact 2D and depth", {}},
      {"uv 1 px, d 0.05", {1, 0.05, 0, 0}},
      {"uv 2 px, d 0.10", {2, 0.10, 0, 0}},
      {"uv 4 px, d 0.20", {4, 0.20, 0, 0}},
      {"uv 2 px, d 0.10, 10% joints off by <= 15 px", {2, 0.10, 0.10, 15}},
      {"uv 4 px, d 0.20, 10% joints off by <= 25 px", {4, 0.20, 0.10, 25}},
  };
  std::printf("%lld synthetic hands (seed 5), 128-pixel crops, the true bone length given to both methods;\n"
              "root depth error |z - z_true| in mm\n\n",
              static_cast<long long>(hands));
  std::printf("reference bone: Iqbal et al.'s closed form; all bones, LS: least squares over the 20 bones;\n"
              "all bones, robust: the Cauchy loss of nn::AllBonesOptions (the default)\n\n");
  std::printf("| %-44s | %8s | %8s | %8s | %8s | %8s | %8s |\n", "noise (crop pixels; d in reference bones)", "ref med",
              "ref p90", "LS med", "LS p90", "robust med", "robust p90");
  std::printf("|%s|----------|----------|----------|----------|----------|----------|\n", std::string(46, '-').c_str());
  nn::AllBonesOptions least_squares;
  least_squares.robust_scale = 0;
  for (const Level& l : levels)
    row(l.label, eval::measure_root_recovery(nn::RootMethod::ReferenceBone, hands, l.noise),
        eval::measure_root_recovery(nn::RootMethod::AllBones, hands, l.noise, 5, 1, 128, least_squares),
        eval::measure_root_recovery(nn::RootMethod::AllBones, hands, l.noise));

  if (!weights.empty()) {
    // The model's own predictions on held-out synthetic hands.
    auto model = io::load_model<float>(weights);
    model->eval();
    const int S = static_cast<int>(model->config().input_size);
    const auto heldout = eval::synthetic_heldout(model_hands, S + S / 4);
    eval::RootStudy ref, ls, all;
    double err_uv = 0, err_d = 0;
    nn::AllBonesOptions least_squares;
    least_squares.robust_scale = 0;
    for (int64_t i = 0; i < model_hands; ++i) {
      const data::HandSample sample = heldout->get(i);
      const eval::RootCase truth = eval::root_case(sample, S);
      data::CropOptions co;
      co.size = S;
      const data::CropSample c = data::crop_hand(sample, co);
      nn::ModelOutput<float> out;
      {
        autograd::NoGradGuard no_grad;
        out = model->forward(TensorF::from_data({1, 3, S, S}, c.image));
      }
      eval::RootCase pred = truth;
      for (int j = 0; j < data::kNumJoints; ++j) {
        for (int k = 0; k < 3; ++k) pred.uvd[j][k] = out.uvd.at({0, j, k});
        err_uv += std::hypot(pred.uvd[j][0] - truth.uvd[j][0], pred.uvd[j][1] - truth.uvd[j][1]) / data::kNumJoints;
        err_d += std::fabs(pred.uvd[j][2] - truth.uvd[j][2]) / data::kNumJoints;
      }
      auto measure = [&](eval::RootStudy& s, auto&& recover) {
        try {
          s.errors.mm.push_back(std::fabs(recover().z_root - pred.z_root));
        } catch (const Error&) {
          ++s.failures;
        }
      };
      measure(ref, [&] { return nn::recover_root_depth(pred.uvd, pred.K, pred.s0); });
      measure(ls, [&] { return nn::recover_root_depth_all_bones(pred.uvd, pred.K, pred.s0, least_squares); });
      measure(all, [&] { return nn::recover_root_depth_all_bones(pred.uvd, pred.K, pred.s0); });
    }
    char label[64];
    std::snprintf(label, sizeof label, "model (2D %.1f px, |d| %.2f, means)", err_uv / model_hands, err_d / model_hands);
    row(label, ref, ls, all);
  }
  return 0;
} catch (const lgh::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
