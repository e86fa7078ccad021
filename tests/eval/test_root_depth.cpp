#include <catch2/catch.hpp>

#include "lgh/eval/root_depth.hpp"

using namespace lgh;

TEST_CASE("the bone ratios are the synthetic hand's proportions", "[eval][root]") {
  const auto m = data::synthetic::HandModel::adult();
  const double ref = m.bone_length(data::kRefBoneChild);
  CHECK(ref == 45.0);
  for (int j = 0; j < data::kNumJoints; ++j) {
    INFO("joint " << j);
    CHECK(nn::kMeanBoneRatios[j] == Approx(m.bone_length(j) / ref).epsilon(1e-5));
  }
  // And the mean over the jittered hands of the data set (scale cancels in a ratio).
  data::SyntheticConfig sc;
  sc.count = 400;
  sc.seed = 8;
  const data::SyntheticHands hands(sc);
  std::array<double, data::kNumJoints> mean{};
  for (int64_t i = 0; i < sc.count; ++i) {
    data::SyntheticInfo info;
    hands.generate(i, &info);
    for (int j = 1; j < data::kNumJoints; ++j)
      mean[j] += info.model.bone_length(j) / info.model.bone_length(data::kRefBoneChild) / sc.count;
  }
  for (int j = 1; j < data::kNumJoints; ++j) CHECK(mean[j] == Approx(nn::kMeanBoneRatios[j]).epsilon(0.01));
}

TEST_CASE("all bones: the exact root of hands with the mean proportions", "[eval][root]") {
  data::SyntheticConfig sc;
  sc.image_size = 128;
  sc.count = 40;
  sc.seed = 3;
  sc.proportion_jitter = 0;  // every hand is the adult model, scaled
  const data::SyntheticHands hands(sc);
  nn::AllBonesOptions ls;
  ls.robust_scale = 0;
  for (int64_t i = 0; i < sc.count; ++i) {
    const eval::RootCase c = eval::root_case(hands.get(i), 128);
    for (const auto& o : {nn::AllBonesOptions{}, ls}) {
      const nn::RootRecovery r = nn::recover_root_depth_all_bones(c.uvd, c.K, c.s0, o);
      INFO("hand " << i << ", robust scale " << o.robust_scale);
      CHECK(r.exact);
      CHECK(r.z_root == Approx(c.z_root).epsilon(1e-4));
    }
    // The reference bone alone is exact too (Iqbal et al.'s closed form).
    CHECK(nn::recover_root_depth(c.uvd, c.K, c.s0).z_root == Approx(c.z_root).epsilon(1e-9));
  }
}

TEST_CASE("all bones beats the reference bone under prediction-like noise", "[eval][root]") {
  // docs/model.md records the full table (benchmarks/root_depth_study.cpp).
  for (const eval::RootNoise& noise : {eval::RootNoise{2, 0.1, 0, 0}, eval::RootNoise{4, 0.2, 0.1, 25}}) {
    const auto ref = eval::measure_root_recovery(nn::RootMethod::ReferenceBone, 300, noise);
    const auto all = eval::measure_root_recovery(nn::RootMethod::AllBones, 300, noise);
    INFO("noise " << noise.uv_px << " px, " << noise.depth << ": reference bone median " << ref.errors.median() << " p90 "
                  << ref.errors.p90() << ", all bones median " << all.errors.median() << " p90 " << all.errors.p90());
    CHECK(all.errors.median() < 0.5 * ref.errors.median());
    CHECK(all.errors.p90() < 0.5 * ref.errors.p90());
    CHECK(all.failures == 0);
  }
}

TEST_CASE("all bones: bad input", "[eval][root]") {
  double uvd[21][3] = {};
  for (int j = 0; j < 21; ++j) uvd[j][0] = uvd[j][1] = 10 + j;
  const std::array<double, 4> K{100, 100, 0, 0};
  CHECK_THROWS_WITH(nn::recover_root_depth_all_bones(uvd, K, -1), Catch::Contains("bone length must be positive"));
  uvd[4][2] = std::nan("");
  CHECK_THROWS_WITH(nn::recover_root_depth_all_bones(uvd, K, 40), Catch::Contains("joint 4"));
  uvd[4][2] = 0;
  CHECK(std::isfinite(nn::recover_root_depth_all_bones(uvd, K, 40).z_root));
}
