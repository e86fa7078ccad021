// Random natural hand poses and global rotations for the synthetic hands.
//
// A pose is drawn from a small vocabulary of key poses (open, relaxed, fist,
// pointing, pinch, OK, counting one to five, thumbs-up, grasp, claw),
// optionally blended with a second one, then perturbed joint by joint with
// Gaussian noise and clamped to the anatomical limits. Occasionally a pose is
// drawn uniformly within the limits (with the DIP coupled to the PIP, as in
// real fingers) so that the network also sees unusual configurations.
#pragma once

#include <array>
#include <cmath>

#include "lgh/core/philox.hpp"
#include "lgh/data/synthetic/hand_model.hpp"

namespace lgh {
namespace data {
namespace synthetic {

enum class KeyPose {
  Open, Relaxed, Fist, Point, Pinch, Ok, Count1, Count2, Count3, Count4, Count5, ThumbsUp, Grasp, Claw
};
constexpr int kNumKeyPoses = 14;

inline const char* key_pose_name(KeyPose k) {
  static const char* names[kNumKeyPoses] = {"open",   "relaxed", "fist",   "point",  "pinch",     "ok",    "count1",
                                            "count2", "count3",  "count4", "count5", "thumbs_up", "grasp", "claw"};
  return names[static_cast<int>(k)];
}

// Key poses in degrees: per finger {spread, flex base, flex middle, flex
// distal, twist}; for the thumb, spread is palmar abduction and the base
// flexion swings it across the palm (see hand_model.hpp).
inline HandPose key_pose(KeyPose k) {
  using F = std::array<double, 5>;
  const F ext_i = {4, 3, 4, 3, 0}, ext_m = {0, 3, 4, 3, 0}, ext_r = {-4, 3, 4, 3, 0}, ext_l = {-9, 3, 4, 3, 0};
  const F fist = {0, 85, 100, 60, 0}, fist_l = {-4, 88, 100, 60, 0};
  const F thumb_over_fist = {40, 5, 55, 45, 0};    // thumb across the middle phalanges
  const F thumb_tucked = {15, 50, 50, 45, 35};     // thumb across the palm
  std::array<F, 5> f{};
  double wrist_flex = 0;
  switch (k) {
    case KeyPose::Open: f = {F{10, -5, 5, 5, 0}, ext_i, ext_m, ext_r, ext_l}; break;
    case KeyPose::Relaxed:
      f = {F{20, 10, 15, 15, 10}, F{4, 20, 30, 15, 0}, F{0, 22, 35, 18, 0}, F{-4, 25, 40, 20, 0},
           F{-8, 28, 45, 22, 0}};
      wrist_flex = 10;
      break;
    case KeyPose::Fist: f = {thumb_over_fist, fist, fist, fist, fist_l}; break;
    case KeyPose::Point:
    case KeyPose::Count1: f = {thumb_over_fist, F{4, 0, 2, 2, 0}, fist, fist, fist_l}; break;
    case KeyPose::Pinch:
      f = {F{25, 20, 20, 25, 5}, F{2, 45, 45, 25, 0}, F{0, 35, 50, 25, 0}, F{-4, 38, 55, 28, 0},
           F{-8, 40, 60, 30, 0}};
      break;
    case KeyPose::Ok: f = {F{25, 20, 20, 25, 5}, F{2, 45, 45, 25, 0}, F{2, 8, 8, 5, 0}, F{-8, 8, 8, 5, 0}, F{-18, 8, 8, 5, 0}}; break;
    case KeyPose::Count2: f = {thumb_tucked, F{12, 0, 2, 2, 0}, F{-6, 0, 2, 2, 0}, fist, fist_l}; break;
    case KeyPose::Count3: f = {thumb_tucked, F{10, 0, 2, 2, 0}, F{0, 0, 2, 2, 0}, F{-10, 0, 2, 2, 0}, fist_l}; break;
    case KeyPose::Count4:
      f = {F{10, 50, 40, 40, 30}, F{10, 0, 2, 2, 0}, F{0, 0, 2, 2, 0}, F{-8, 0, 2, 2, 0}, F{-18, 0, 2, 2, 0}};
      break;
    case KeyPose::Count5:
      f = {F{15, -20, 0, 0, 0}, F{18, -5, 0, 0, 0}, F{2, -5, 0, 0, 0}, F{-12, -5, 0, 0, 0}, F{-25, -5, 0, 0, 0}};
      break;
    case KeyPose::ThumbsUp: f = {F{5, 25, 0, 0, 0}, fist, fist, fist, fist_l}; break;
    case KeyPose::Grasp:
      f = {F{45, 20, 15, 20, 25}, F{4, 45, 55, 30, 0}, F{0, 45, 60, 30, 0}, F{-4, 45, 62, 32, 0},
           F{-8, 45, 65, 32, 0}};
      break;
    case KeyPose::Claw:
      f = {F{25, 5, 30, 50, 10}, F{6, -10, 90, 60, 0}, F{0, -10, 90, 60, 0}, F{-6, -10, 90, 60, 0},
           F{-12, -10, 90, 60, 0}};
      break;
  }
  HandPose p;
  for (int i = 0; i < 5; ++i) {
    p.finger[i].spread = f[i][0] * kDeg;
    for (int j = 0; j < 3; ++j) p.finger[i].flex[j] = f[i][1 + j] * kDeg;
    p.finger[i].twist = f[i][4] * kDeg;
  }
  p.wrist_flex = wrist_flex * kDeg;
  return p;
}

inline HandPose lerp_pose(const HandPose& a, const HandPose& b, double t) {
  const auto mix = [t](double x, double y) { return x + t * (y - x); };
  HandPose p;
  for (int f = 0; f < 5; ++f) {
    p.finger[f].spread = mix(a.finger[f].spread, b.finger[f].spread);
    p.finger[f].twist = mix(a.finger[f].twist, b.finger[f].twist);
    for (int k = 0; k < 3; ++k) p.finger[f].flex[k] = mix(a.finger[f].flex[k], b.finger[f].flex[k]);
  }
  p.wrist_flex = mix(a.wrist_flex, b.wrist_flex);
  p.wrist_deviation = mix(a.wrist_deviation, b.wrist_deviation);
  return p;
}

struct PoseSamplerConfig {
  double p_blend = 0.5;         // blend two key poses
  double p_uniform = 0.1;       // draw uniformly within the limits instead
  double noise_deg = 6;         // per-joint flexion noise (s.d.)
  double spread_noise_deg = 3;  // per-finger spread noise (s.d.)
  double wrist_noise_deg = 20;  // wrist flexion / deviation noise (s.d.)
};

inline HandPose sample_pose(PhiloxEngine& rng, const PoseLimits& L, const PoseSamplerConfig& cfg,
                            KeyPose* drawn = nullptr) {
  HandPose p;
  if (rng.uniform() < cfg.p_uniform) {
    for (int f = 0; f < 5; ++f) {
      const FingerLimits& l = L.finger[f];
      FingerPose& q = p.finger[f];
      q.spread = rng.uniform(l.spread.lo, l.spread.hi);
      q.twist = rng.uniform(l.twist.lo, l.twist.hi);
      q.flex[0] = rng.uniform(l.flex[0].lo, l.flex[0].hi);
      q.flex[1] = rng.uniform(l.flex[1].lo, l.flex[1].hi);
      q.flex[2] = l.flex[2].clamp((f == Thumb ? 0.8 : 0.67) * q.flex[1] + 10 * kDeg * rng.normal());
    }
    if (drawn) *drawn = KeyPose::Relaxed;
  } else {
    const KeyPose a = static_cast<KeyPose>(rng.below(kNumKeyPoses));
    p = key_pose(a);
    if (rng.uniform() < cfg.p_blend) {
      const KeyPose b = static_cast<KeyPose>(rng.below(kNumKeyPoses));
      p = lerp_pose(p, key_pose(b), rng.uniform());
    }
    if (drawn) *drawn = a;
    for (int f = 0; f < 5; ++f) {
      FingerPose& q = p.finger[f];
      q.spread += cfg.spread_noise_deg * kDeg * rng.normal();
      for (double& a_k : q.flex) a_k += cfg.noise_deg * kDeg * rng.normal();
      if (f == Thumb) q.twist += cfg.noise_deg * kDeg * rng.normal();
    }
  }
  p.wrist_flex += cfg.wrist_noise_deg * kDeg * rng.normal();
  p.wrist_deviation += 0.5 * cfg.wrist_noise_deg * kDeg * rng.normal();
  return clamp_pose(p, L);
}

// Uniformly distributed rotation (Shoemake's method from three uniforms).
inline Mat3 uniform_rotation(PhiloxEngine& rng) {
  const double u1 = rng.uniform(), u2 = rng.uniform(0, 2 * kPi), u3 = rng.uniform(0, 2 * kPi);
  const double a = std::sqrt(1 - u1), b = std::sqrt(u1);
  const Eigen::Quaterniond q(b * std::cos(u3), a * std::sin(u2), a * std::cos(u2), b * std::sin(u3));
  return q.normalized().toRotationMatrix();
}

// Hand-to-camera rotation with the palm facing the camera: fingers up, palm
// normal towards the camera (-z), then tilted by up to `max_tilt` (uniform
// over the spherical cap) and rolled by any angle about the view axis.
inline Mat3 palm_facing_rotation(PhiloxEngine& rng, double max_tilt) {
  Mat3 facing;  // hand x -> camera x, y (distal) -> -y (up), z (palmar) -> -z
  facing << 1, 0, 0, 0, -1, 0, 0, 0, -1;
  const double cos_tilt = rng.uniform(std::cos(max_tilt), 1.0);
  const double tilt = std::acos(std::min(1.0, cos_tilt));
  const double axis_angle = rng.uniform(0, 2 * kPi);
  const Vec3 axis(std::cos(axis_angle), std::sin(axis_angle), 0);
  const double roll = rng.uniform(0, 2 * kPi);
  return rot_z(roll) * Eigen::AngleAxisd(tilt, axis).toRotationMatrix() * facing;
}

}  // namespace synthetic
}  // namespace data
}  // namespace lgh
