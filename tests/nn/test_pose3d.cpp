#include <catch2/catch.hpp>

#include "lgh/autograd/gradcheck.hpp"
#include "lgh/nn/pose3d.hpp"
#include "lgh/ops/reduce.hpp"

using namespace lgh;

namespace {

// A synthetic hand: joints around a root at `root` (mm), projected with K.
struct Scene {
  double xyz[21][3];
  double uvd[21][3];
  std::array<double, 4> K{600, 610, 320, 240};
  double s0 = 0;
};

Scene make_scene(uint64_t seed, const double root[3]) {
  PhiloxEngine rng(seed);
  Scene s;
  for (int j = 0; j < 21; ++j)
    for (int c = 0; c < 3; ++c) s.xyz[j][c] = root[c] + rng.uniform(-80, 80);
  for (int c = 0; c < 3; ++c) s.xyz[12][c] = root[c];
  double d2 = 0;
  for (int c = 0; c < 3; ++c) d2 += (s.xyz[12][c] - s.xyz[11][c]) * (s.xyz[12][c] - s.xyz[11][c]);
  s.s0 = std::sqrt(d2);
  for (int j = 0; j < 21; ++j) {
    s.uvd[j][0] = s.K[0] * s.xyz[j][0] / s.xyz[j][2] + s.K[2];
    s.uvd[j][1] = s.K[1] * s.xyz[j][1] / s.xyz[j][2] + s.K[3];
    s.uvd[j][2] = (s.xyz[j][2] - root[2]) / s.s0;
  }
  return s;
}

}  // namespace

TEST_CASE("root depth from 2D, relative depth and the bone length (known answers)", "[nn][pose3d]") {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    PhiloxEngine rng(seed, 1);
    const double root[3] = {rng.uniform(-150, 150), rng.uniform(-150, 150), rng.uniform(300, 1200)};
    const Scene s = make_scene(seed, root);
    const nn::RootRecovery r = nn::recover_root_depth(s.uvd, s.K, s.s0);
    CHECK(r.exact);
    CHECK(r.z_root == Approx(root[2]).epsilon(1e-9));
    // And the whole hand comes back by Eq. (3).
    double xyz[21][3];
    nn::backproject_hand(s.uvd, s.K, r.z_root, s.s0, 21, xyz);
    for (int j = 0; j < 21; ++j)
      for (int c = 0; c < 3; ++c) REQUIRE(xyz[j][c] == Approx(s.xyz[j][c]).margin(1e-6));
  }
}

TEST_CASE("root depth scales with the assumed bone length", "[nn][pose3d]") {
  const double root[3] = {10, -20, 500};
  const Scene s = make_scene(7, root);
  const double z1 = nn::recover_root_depth(s.uvd, s.K, s.s0).z_root;
  const double z2 = nn::recover_root_depth(s.uvd, s.K, 2 * s.s0).z_root;
  CHECK(z2 == Approx(2 * z1));
}

TEST_CASE("inconsistent predictions and degenerate bones", "[nn][pose3d]") {
  const double root[3] = {0, 0, 600};
  Scene s = make_scene(9, root);
  s.uvd[11][2] = s.uvd[12][2] + 1.5;  // a depth step longer than the bone: no real root
  const nn::RootRecovery r = nn::recover_root_depth(s.uvd, s.K, s.s0);
  CHECK_FALSE(r.exact);
  CHECK(std::isfinite(r.z_root));
  s.uvd[11][0] = s.uvd[12][0];
  s.uvd[11][1] = s.uvd[12][1];
  CHECK_THROWS_WITH(nn::recover_root_depth(s.uvd, s.K, s.s0), Catch::Contains("projects to a point"));
  CHECK_THROWS_WITH(nn::recover_root_depth(s.uvd, s.K, -1), Catch::Contains("bone length must be positive"));
}

TEST_CASE("Eq. (10) loss: value and gradient", "[nn][pose3d]") {
  // Two samples, 21 joints: prediction = ground truth except known offsets.
  const int B = 2;
  TensorD K = TensorD::from_data({B, 4}, {500, 500, 64, 64, 400, 420, 60, 70});
  TensorD z_root = TensorD::from_data({B}, {600, 450});
  TensorD s0 = TensorD::from_data({B}, {40, 30});
  TensorD uvd = TensorD::zeros({B, 21, 3});
  PhiloxEngine rng(3);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < 21; ++j) {
      uvd.at({b, j, 0}) = rng.uniform(20, 100);
      uvd.at({b, j, 1}) = rng.uniform(20, 100);
      uvd.at({b, j, 2}) = rng.uniform(-2, 2);
    }
  TensorD gt = ops::backproject(uvd, K, z_root, s0);
  // Perturb the prediction's depth of one joint by +0.5 (units of s0): only z
  // and (through z) x, y of that joint move.
  TensorD pred = uvd.clone();
  pred.at({1, 5, 2}) += 0.5;
  pred.set_requires_grad();
  const auto loss = nn::pose_loss(pred, K, z_root, s0, gt, 20.0);
  // z term: |Δz|/s0 = 0.5 for one of B*J entries.
  CHECK(loss.z.item() == Approx(0.5 / (B * 21)));
  // xy term: Δx = 0.5 s0 (u - cx)/fx, divided by s0.
  const double dx = 0.5 * (uvd.at({1, 5, 0}) - 60) / 400, dy = 0.5 * (uvd.at({1, 5, 1}) - 70) / 420;
  CHECK(loss.xy.item() == Approx((std::fabs(dx) + std::fabs(dy)) / (B * 21 * 2)));
  CHECK(loss.total.item() == Approx(loss.xy.item() + 20 * loss.z.item()));
  loss.total.backward();
  // Only the perturbed joint receives gradient.
  const auto g = pred.grad().to_vector();
  for (size_t i = 0; i < g.size(); ++i)
    if (i < static_cast<size_t>((21 + 5) * 3) || i >= static_cast<size_t>((21 + 6) * 3)) REQUIRE(g[i] == 0.0);
  CHECK(pred.grad().at({1, 5, 2}) > 0);
}

TEST_CASE("Eq. (10) loss gradients (gradcheck)", "[nn][pose3d]") {
  TensorD K = TensorD::from_data({1, 4}, {500, 520, 64, 60});
  TensorD z_root = TensorD::from_data({1}, {600});
  TensorD s0 = TensorD::from_data({1}, {40});
  PhiloxEngine rng(5);
  TensorD uvd = TensorD::uniform({1, 21, 3}, 10, 100, rng);
  TensorD gt = TensorD::uniform({1, 21, 3}, -100, 700, rng);
  const auto r = autograd::gradcheck(
      [&](const std::vector<TensorD>& x) { return nn::pose_loss(x[0], K, z_root, s0, gt).total; }, {uvd});
  INFO(r);
  CHECK(r.ok);
}

TEST_CASE("stage-1 keypoints: the soft-argmax of the backbone heatmaps in input pixels", "[nn][pose3d]") {
  // A heatmap sharply peaked at (column 5, row 9) of a 16x16 map -> (20, 36) pixels.
  TensorD h = TensorD::full({1, 2, 16, 16}, -50.0);
  h.at({0, 0, 9, 5}) = 50.0;
  h.at({0, 1, 2, 11}) = 50.0;
  const TensorD kp = nn::heatmap_keypoints(h);
  REQUIRE(kp.shape() == Shape{1, 2, 2});
  CHECK(kp.at({0, 0, 0}) == Approx(20.0));
  CHECK(kp.at({0, 0, 1}) == Approx(36.0));
  CHECK(kp.at({0, 1, 0}) == Approx(44.0));
  CHECK(kp.at({0, 1, 1}) == Approx(8.0));
  // A flat heatmap averages the grid: the centre of the 0..15 indices, x4.
  const TensorD flat = nn::heatmap_keypoints(TensorD::zeros({1, 1, 16, 16}));
  CHECK(flat.at({0, 0, 0}) == Approx(30.0));
  PhiloxEngine rng(9);
  const auto r = autograd::gradcheck([](const std::vector<TensorD>& x) { return nn::heatmap_keypoints(x[0]); },
                                     {TensorD::uniform({2, 3, 8, 8}, -2, 2, rng)});
  INFO(r);
  CHECK(r.ok);
}
