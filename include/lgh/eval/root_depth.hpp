// Measuring root-depth recovery without ground truth (nn::RootMethod) on
// synthetic hands: the exact 2D joints and relative depths of each hand's
// crop, disturbed by noise like a network's prediction errors, are given to
// each method with the hand's true reference-bone length; the error is the
// distance between the recovered and the true root depth, in mm.
// benchmarks/root_depth_study.cpp prints the comparison that docs/model.md
// records; tests/eval check its ordering.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "lgh/core/philox.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/nn/pose3d.hpp"

namespace lgh {
namespace eval {

// Prediction-like errors: Gaussian on every joint's (u, v) (crop pixels) and
// relative depth d (units of the reference bone), plus a fraction of joints
// that are far off (a finger mistaken for another, an occluded tip).
struct RootNoise {
  double uv_px = 0;            // s.d. of u and v, crop pixels
  double depth = 0;            // s.d. of d
  double outlier_fraction = 0; // joints displaced by up to `outlier_px` (uniform in a disc) and 3 s.d. in depth
  double outlier_px = 0;
};

struct RootErrors {
  std::vector<double> mm;  // |recovered - true| per hand
  double median() const { return percentile(0.5); }
  double p90() const { return percentile(0.9); }
  // Linear interpolation between order statistics (numpy's default).
  double percentile(double q) const {
    LGH_CHECK(!mm.empty(), "RootErrors: no measurements");
    std::vector<double> s = mm;
    std::sort(s.begin(), s.end());
    const double pos = q * (s.size() - 1);
    const size_t i = static_cast<size_t>(std::floor(pos));
    const double f = pos - i;
    return i + 1 < s.size() ? s[i] * (1 - f) + s[i + 1] * f : s[i];
  }
};

// One synthetic hand as the network sees it: crop-pixel (u, v), relative
// depth d, the crop's intrinsics and the truth.
struct RootCase {
  double uvd[data::kNumJoints][3];
  std::array<double, 4> K;
  double z_root, s0;
};

inline RootCase root_case(const data::HandSample& s, int crop_size) {
  data::CropOptions co;
  co.size = crop_size;
  const data::CropSample c = data::crop_hand(s, co);
  RootCase r;
  r.K = {c.K.fx, c.K.fy, c.K.cx, c.K.cy};
  r.z_root = c.z_root;
  r.s0 = c.s0;
  for (int j = 0; j < data::kNumJoints; ++j) {
    r.uvd[j][0] = c.uv[j][0];
    r.uvd[j][1] = c.uv[j][1];
    r.uvd[j][2] = (c.xyz[j][2] - c.z_root) / c.s0;
  }
  return r;
}

inline void add_noise(RootCase& c, const RootNoise& n, PhiloxEngine& rng) {
  for (int j = 0; j < data::kNumJoints; ++j) {
    c.uvd[j][0] += n.uv_px * rng.normal();
    c.uvd[j][1] += n.uv_px * rng.normal();
    c.uvd[j][2] += n.depth * rng.normal();
    if (n.outlier_fraction > 0 && rng.uniform() < n.outlier_fraction) {
      const double r = n.outlier_px * std::sqrt(rng.uniform()), a = 6.283185307179586 * rng.uniform();
      c.uvd[j][0] += r * std::cos(a);
      c.uvd[j][1] += r * std::sin(a);
      c.uvd[j][2] += 3 * n.depth * rng.normal();
    }
  }
}

// The root-depth error of `method` on `count` synthetic hands (seed `seed`)
// cropped to `crop_size`, with noise `noise` drawn from `noise_seed`. Hands
// whose recovery throws (a reference bone seen end-on) count as failures.
struct RootStudy {
  RootErrors errors;
  int64_t failures = 0;
};

inline RootStudy measure_root_recovery(nn::RootMethod method, int64_t count, const RootNoise& noise, uint64_t seed = 5,
                                       uint64_t noise_seed = 1, int crop_size = 128,
                                       const nn::AllBonesOptions& all_bones = {}) {
  data::SyntheticConfig sc;
  sc.image_size = crop_size;
  sc.seed = seed;
  sc.count = count;
  const data::SyntheticHands hands(sc);
  RootStudy out;
  for (int64_t i = 0; i < count; ++i) {
    RootCase c = root_case(hands.get(i), crop_size);
    PhiloxEngine rng(noise_seed, static_cast<uint64_t>(i));  // the same noise for every method
    add_noise(c, noise, rng);
    try {
      const nn::RootRecovery r = method == nn::RootMethod::AllBones
                                     ? nn::recover_root_depth_all_bones(c.uvd, c.K, c.s0, all_bones)
                                     : nn::recover_root_depth(c.uvd, c.K, c.s0);
      out.errors.mm.push_back(std::fabs(r.z_root - c.z_root));
    } catch (const Error&) {
      ++out.failures;
    }
  }
  return out;
}

}  // namespace eval
}  // namespace lgh
