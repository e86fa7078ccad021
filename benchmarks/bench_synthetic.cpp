// Synthetic hands: samples per second on one thread (items_per_second).
//
//   bench_synthetic --benchmark_filter=Sample   # whole samples, 128 px crops and 256 px
//   bench_synthetic                             # plus the stages one by one
//
// SyntheticHands::get never uses the thread pool, so these are one-core
// figures; the loader or `lgh synth` run one sample per worker thread.
#include <benchmark/benchmark.h>

#include "lgh/data/synthetic.hpp"

using namespace lgh;
using namespace lgh::data;
using namespace lgh::data::synthetic;

namespace {

SyntheticConfig config_for(int size, bool crop) {
  SyntheticConfig c;
  c.image_size = size;
  c.count = int64_t{1} << 40;
  c.seed = 1;
  if (crop) {  // a ready crop: the hand fills most of the image
    c.fill_min = 0.75;
    c.fill_max = 0.95;
  }
  return c;
}

void BM_Sample(benchmark::State& state) {
  const SyntheticHands hands(config_for(static_cast<int>(state.range(0)), state.range(1) != 0));
  int64_t i = 0;
  for (auto _ : state) {
    HandSample s = hands.get(i++);
    benchmark::DoNotOptimize(s.rgb.pixels.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(1) ? "crop" : "default framing");
}
BENCHMARK(BM_Sample)->ArgNames({"size", "crop"})->Args({128, 1})->Args({128, 0})->Args({256, 1})->Args({256, 0})
    ->Unit(benchmark::kMicrosecond);

// Stages of one sample, to see where the time goes.
void BM_PoseAndKinematics(benchmark::State& state) {
  const HandModel m = HandModel::adult();
  const PoseLimits L = anatomical_limits();
  uint64_t i = 0;
  for (auto _ : state) {
    PhiloxEngine rng(1, i++);
    const HandSkeleton sk = forward_kinematics(m, sample_pose(rng, L, PoseSamplerConfig{}));
    benchmark::DoNotOptimize(sk.joint[1].data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoseAndKinematics)->Unit(benchmark::kMicrosecond);

void BM_Background(benchmark::State& state) {
  const int S = static_cast<int>(state.range(0));
  uint64_t i = 0;
  for (auto _ : state) {
    PhiloxEngine rng(1, i);
    Image img = make_background(static_cast<BackgroundKind>(i++ % kNumBackgroundKinds), rng, S, S);
    add_sensor_noise(img, 3.f, 7);
    benchmark::DoNotOptimize(img.pixels.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Background)->Arg(128)->Arg(256)->Unit(benchmark::kMicrosecond);

// The z-buffer render and the visibility rays of a fixed scene (a relaxed
// hand with forearm, 3/4 view, filling 85% of the image).
void BM_RenderHand(benchmark::State& state) {
  const int S = static_cast<int>(state.range(0));
  const HandModel m = HandModel::adult();
  const HandSkeleton sk = forward_kinematics(m, key_pose(KeyPose::Relaxed));
  Camera cam;
  cam.width = cam.height = S;
  cam.K = {1.2 * S, 1.2 * S, 0.5 * (S - 1), 0.5 * (S - 1)};
  Placement place;
  Mat3 facing;
  facing << 1, 0, 0, 0, -1, 0, 0, 0, -1;
  place.R = rot_y(0.6) * rot_x(0.3) * facing;
  frame_hand(place, m, sk, cam, 0.85, 0.5 * (S - 1), 0.5 * (S - 1));
  Scene scene;
  const auto J = add_hand(scene, m, sk, place, SkinTone{});
  std::array<double, kNumJoints> radius;
  for (int j = 0; j < kNumJoints; ++j) radius[j] = m.joint_radius(j);
  const Image background(S, S, 3, 90);
  for (auto _ : state) {
    Image rgb = background, mask;
    const Rasterizer r(scene, cam);
    r.render(Lighting{}, rgb, &mask);
    const auto vis = r.joint_visibility(J, radius);
    benchmark::DoNotOptimize(vis.data());
    benchmark::DoNotOptimize(rgb.pixels.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["primitives"] = static_cast<double>(scene.primitives.size());
}
BENCHMARK(BM_RenderHand)->Arg(128)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
