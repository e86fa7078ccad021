// SyntheticHands: the built-in data set (DESIGN.md §6), a procedural
// renderer of a 21-joint kinematic right hand. Each sample is a function of
// (seed, index) only, so the data set needs no files, any index can be drawn
// on any thread in any order, and a run is reproducible.
//
// The parts live in synthetic/: hand_model (bones, limits, kinematics),
// pose_sampler (natural poses, rotations), scene and raster (primitives, the
// z-buffer renderer, visibility), background, hand_scene (flesh, occluders,
// skin, lighting, framing) and freihand_layout (writing any data set in
// FreiHAND's file layout). docs/synthetic.md describes the model.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include "lgh/core/error.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/data/dataset.hpp"
#include "lgh/data/sample.hpp"
#include "lgh/data/synthetic/background.hpp"
#include "lgh/data/synthetic/freihand_layout.hpp"
#include "lgh/data/synthetic/hand_model.hpp"
#include "lgh/data/synthetic/hand_scene.hpp"
#include "lgh/data/synthetic/pose_sampler.hpp"
#include "lgh/data/synthetic/raster.hpp"
#include "lgh/data/synthetic/scene.hpp"

namespace lgh {
namespace data {

struct SyntheticConfig {
  int image_size = 256;    // square images
  int64_t count = 100000;  // size() of the data set
  uint64_t seed = 0;

  double hand_scale_min = 0.85, hand_scale_max = 1.15;  // relative to the average adult hand
  double proportion_jitter = 0.04;                      // per-finger length and palm width, relative
  // Camera: field of view (degrees across the image) drawn log-uniformly, and
  // the hand's bounding box side as a fraction of the image side. The
  // defaults give a ready crop, as the loader would cut from a photo.
  double fov_min_deg = 12, fov_max_deg = 60;
  double fill_min = 0.6, fill_max = 0.9;
  double min_distance_mm = 250;  // nearest joint to the camera (narrows the field of view if needed)
  double principal_jitter = 0.03;  // principal point offset, fraction of the image size

  double p_palm_facing = 0.5;   // otherwise a uniformly random rotation
  double max_palm_tilt_deg = 70;
  synthetic::PoseSamplerConfig pose;
  double p_forearm = 0.85;
  double p_occluder = 0.3;      // one occluder; half of those get a second one
  double sensor_noise_max = 6;  // grey levels (s.d.), drawn uniformly from [0, max]
  double visibility_tolerance = 0.5;

  void validate() const {
    LGH_CHECK(image_size >= 16 && image_size <= 8192,
              "SyntheticConfig: image_size must be in [16, 8192], got " << image_size);
    LGH_CHECK(count >= 1, "SyntheticConfig: count must be at least 1, got " << count);
    LGH_CHECK(hand_scale_min > 0 && hand_scale_min <= hand_scale_max,
              "SyntheticConfig: need 0 < hand_scale_min <= hand_scale_max, got " << hand_scale_min << ", "
                                                                                  << hand_scale_max);
    LGH_CHECK(proportion_jitter >= 0 && proportion_jitter < 0.3,
              "SyntheticConfig: proportion_jitter must be in [0, 0.3), got " << proportion_jitter);
    LGH_CHECK(fov_min_deg > 0 && fov_min_deg <= fov_max_deg && fov_max_deg < 150,
              "SyntheticConfig: need 0 < fov_min_deg <= fov_max_deg < 150, got " << fov_min_deg << ", "
                                                                                 << fov_max_deg);
    LGH_CHECK(fill_min > 0 && fill_min <= fill_max && fill_max <= 1,
              "SyntheticConfig: need 0 < fill_min <= fill_max <= 1, got " << fill_min << ", " << fill_max);
    LGH_CHECK(min_distance_mm >= 0, "SyntheticConfig: min_distance_mm must be >= 0, got " << min_distance_mm);
    LGH_CHECK(principal_jitter >= 0 && principal_jitter < 0.5, "SyntheticConfig: principal_jitter must be in [0, 0.5)");
    for (const double p : {p_palm_facing, p_forearm, p_occluder, pose.p_blend, pose.p_uniform})
      LGH_CHECK(p >= 0 && p <= 1, "SyntheticConfig: probabilities must lie in [0, 1], got " << p);
    LGH_CHECK(sensor_noise_max >= 0, "SyntheticConfig: sensor_noise_max must be >= 0");
    LGH_CHECK(visibility_tolerance >= 0, "SyntheticConfig: visibility_tolerance must be >= 0");
  }
};

// What went into a sample, beyond the HandSample itself.
struct SyntheticInfo {
  synthetic::HandModel model;  // scaled and jittered: its lengths are the sample's bone lengths
  synthetic::HandPose pose;
  synthetic::KeyPose key_pose = synthetic::KeyPose::Open;
  synthetic::Placement placement;  // hand frame -> camera
  synthetic::Lighting lighting;
  synthetic::BackgroundKind background = synthetic::BackgroundKind::Gradient;
  int occluders = 0;
  bool forearm = false;
};

class SyntheticHands : public Dataset {
 public:
  // Offsets of the independent random streams within a sample's Philox
  // stream, so that e.g. the pose of sample i does not depend on the image
  // size or on how many numbers the background consumed.
  enum Stream : uint64_t {
    kPoseStream = 0,
    kShapeStream = 1ull << 20,
    kViewStream = 2ull << 20,
    kLookStream = 3ull << 20,
    kBackgroundStream = 4ull << 20,
    kOccluderStream = 5ull << 20,
  };

  explicit SyntheticHands(SyntheticConfig config = {}) : cfg_(config) { cfg_.validate(); }

  int64_t size() const override { return cfg_.count; }
  std::string name() const override { return "synthetic:seed=" + std::to_string(cfg_.seed); }
  const SyntheticConfig& config() const { return cfg_; }

  HandSample get(int64_t index) const override { return generate(index, nullptr); }

  // The sample and, if `info` is given, how it was made.
  HandSample generate(int64_t index, SyntheticInfo* info) const {
    using namespace synthetic;
    LGH_CHECK(index >= 0 && index < cfg_.count,
              "synthetic: index " << index << " out of range [0, " << cfg_.count << ")");
    const int S = cfg_.image_size;
    PhiloxEngine rng(cfg_.seed, static_cast<uint64_t>(index));
    SyntheticInfo local;
    SyntheticInfo& I = info ? *info : local;

    rng.set_position(kPoseStream);
    I.pose = sample_pose(rng, anatomical_limits(), cfg_.pose, &I.key_pose);

    rng.set_position(kShapeStream);
    I.model = random_model(rng);
    const HandSkeleton sk = forward_kinematics(I.model, I.pose);

    rng.set_position(kViewStream);
    Camera cam;
    cam.width = cam.height = S;
    const double fov = std::exp(rng.uniform(std::log(cfg_.fov_min_deg), std::log(cfg_.fov_max_deg))) * kDeg;
    const double f = 0.5 * S / std::tan(0.5 * fov);
    cam.K.fx = f * (1 + 0.01 * rng.normal());
    cam.K.fy = f;
    cam.K.cx = 0.5 * (S - 1) + cfg_.principal_jitter * S * rng.uniform(-1, 1);
    cam.K.cy = 0.5 * (S - 1) + cfg_.principal_jitter * S * rng.uniform(-1, 1);
    I.placement.R = rng.uniform() < cfg_.p_palm_facing ? palm_facing_rotation(rng, cfg_.max_palm_tilt_deg * kDeg)
                                                       : uniform_rotation(rng);
    const double fill = rng.uniform(cfg_.fill_min, cfg_.fill_max);
    const double room = 0.5 * S * (1 - fill);  // how far the box centre may move and stay in view
    const double cu = 0.5 * (S - 1) + rng.uniform(-room, room), cv = 0.5 * (S - 1) + rng.uniform(-room, room);
    frame_hand(I.placement, I.model, sk, cam, fill, cu, cv);
    // A wide lens would put the hand a hand's length from the camera, with
    // a perspective no hand dataset shows: narrow the view (longer focal
    // length, same framing) until the nearest joint is min_distance_mm away.
    for (int it = 0; it < 4; ++it) {
      double z_near = 1e300;
      for (int j = 0; j < kNumJoints; ++j)
        z_near = std::min(z_near, I.placement.apply(sk.joint[j]).z() - I.model.joint_radius(j));
      if (z_near >= cfg_.min_distance_mm) break;
      const double k = 1.02 * cfg_.min_distance_mm / std::max(z_near, 1.0);
      cam.K.fx *= k;
      cam.K.fy *= k;
      frame_hand(I.placement, I.model, sk, cam, fill, cu, cv);
    }

    rng.set_position(kLookStream);
    const SkinTone skin = random_skin(rng);
    I.lighting = random_lighting(rng);
    I.forearm = rng.uniform() < cfg_.p_forearm;
    const float noise_sigma = static_cast<float>(rng.uniform(0, cfg_.sensor_noise_max));
    const uint32_t noise_seed = rng.next_u32();

    Scene scene;
    scene.texture_seed = rng.next_u32();
    HandSceneOptions hopt;
    hopt.forearm = I.forearm;
    const std::array<Vec3, kNumJoints> J = add_hand(scene, I.model, sk, I.placement, skin, hopt);

    rng.set_position(kOccluderStream);
    I.occluders = 0;
    if (rng.uniform() < cfg_.p_occluder) {
      const int n = rng.uniform() < 0.5 ? 1 : 2;
      for (int k = 0; k < n; ++k)
        I.occluders += add_occluder(scene, rng, J, I.model, static_cast<int>(rng.below(kNumJoints))) ? 1 : 0;
    }

    rng.set_position(kBackgroundStream);
    I.background = static_cast<BackgroundKind>(rng.below(kNumBackgroundKinds));

    HandSample s;
    s.rgb = make_background(I.background, rng, S, S);
    const Rasterizer raster(scene, cam);
    raster.render(I.lighting, s.rgb, &s.mask);
    add_sensor_noise(s.rgb, noise_sigma, noise_seed);

    std::array<double, kNumJoints> radius;
    for (int j = 0; j < kNumJoints; ++j) radius[j] = I.model.joint_radius(j);
    const auto vis = raster.joint_visibility(J, radius, cfg_.visibility_tolerance);
    for (int j = 0; j < kNumJoints; ++j) {
      s.xyz[j] = {J[j].x(), J[j].y(), J[j].z()};
      const auto uv = cam.project(J[j]);
      s.uv[j] = {uv[0], uv[1]};
      s.visible[j] = vis[j];
    }
    s.K = cam.K;
    s.is_left = false;
    s.id = "synthetic:" + std::to_string(cfg_.seed) + "/" + std::to_string(index);
    return s;
  }

 private:
  synthetic::HandModel random_model(PhiloxEngine& rng) const {
    using namespace synthetic;
    HandModel m = HandModel::adult().scaled(rng.uniform(cfg_.hand_scale_min, cfg_.hand_scale_max));
    const double j = cfg_.proportion_jitter;
    const auto jitter = [&] { return 1 + j * rng.uniform(-1, 1); };
    // Palm breadth: the MCPs and the palm outline spread about the middle
    // finger's axis; finger lengths vary per finger.
    const double breadth = jitter();
    for (auto& p : m.palm_outline) p.x() *= breadth;
    for (int f = 0; f < 5; ++f) {
      m.finger[f].base.x() *= breadth;
      const double len = jitter();
      for (double& l : m.finger[f].length) l *= len;
    }
    return m;
  }

  SyntheticConfig cfg_;
};

}  // namespace data
}  // namespace lgh
