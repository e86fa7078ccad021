// From a posed hand to renderable primitives: the hand's flesh (palm slab,
// tapering finger bones, knuckles, nails, optional forearm), occluders in
// front of it, skin tones, lighting, and the framing that puts the hand in
// view of a camera.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>

#include "lgh/core/philox.hpp"
#include "lgh/data/synthetic/background.hpp"
#include "lgh/data/synthetic/hand_model.hpp"
#include "lgh/data/synthetic/raster.hpp"
#include "lgh/data/synthetic/scene.hpp"

namespace lgh {
namespace data {
namespace synthetic {

// A rigid placement of the hand frame in camera space: p_cam = R p + t.
struct Placement {
  Mat3 R = Mat3::Identity();
  Vec3 t = Vec3::Zero();
  Vec3 apply(const Vec3& p) const { return R * p + t; }
};

struct SkinTone {
  Rgbf dorsal{0.86f, 0.66f, 0.55f};
  Rgbf palm{0.92f, 0.72f, 0.64f};
  Rgbf nail{0.93f, 0.80f, 0.78f};
};

// Skin tones spanning very light to very dark (sRGB in [0, 1]); palms and
// nails are lighter and pinker, markedly so on dark skin.
inline SkinTone random_skin(PhiloxEngine& rng) {
  static const float tones[7][3] = {{1.00f, 0.88f, 0.77f}, {0.95f, 0.76f, 0.65f}, {0.88f, 0.67f, 0.54f},
                                    {0.78f, 0.53f, 0.40f}, {0.63f, 0.40f, 0.29f}, {0.44f, 0.28f, 0.20f},
                                    {0.31f, 0.20f, 0.15f}};
  const double x = rng.uniform(0, 6);
  const int i = std::min(5, static_cast<int>(x));
  const float f = static_cast<float>(x - i);
  SkinTone s;
  for (int c = 0; c < 3; ++c) {
    const float tint = static_cast<float>(1 + 0.05 * rng.normal());
    s.dorsal[c] = std::min(1.f, (tones[i][c] + f * (tones[i + 1][c] - tones[i][c])) * tint);
  }
  const float darkness = 1.f - (s.dorsal[0] + s.dorsal[1] + s.dorsal[2]) / 3.f;
  const Rgbf pink{0.95f, 0.72f, 0.66f};
  for (int c = 0; c < 3; ++c) {
    s.palm[c] = s.dorsal[c] + (0.15f + 0.45f * darkness) * (pink[c] - s.dorsal[c]);
    s.nail[c] = s.dorsal[c] + (0.25f + 0.2f * darkness) * (Rgbf{0.96f, 0.86f, 0.84f}[c] - s.dorsal[c]);
  }
  return s;
}

// A distant light from the camera's side of the scene, mostly.
inline Lighting random_lighting(PhiloxEngine& rng) {
  Lighting L;
  Vec3 d(rng.normal(), rng.normal(), rng.normal());
  d.z() = -std::abs(d.z()) - 0.3;  // towards the camera: the lit side is the seen side
  L.to_light = d.normalized();
  L.ambient = static_cast<float>(rng.uniform(0.25, 0.6));
  const float exposure = static_cast<float>(rng.uniform(0.8, 1.15));
  L.diffuse = (1.f - L.ambient) * exposure;
  L.ambient *= exposure;
  for (float& c : L.colour) c = static_cast<float>(1 + 0.06 * rng.normal());
  return L;
}

struct HandSceneOptions {
  bool forearm = true;
  // The forearm is cut short where it would come closer to the camera than
  // this fraction of the wrist's depth (it would otherwise fill the view).
  double forearm_min_depth_fraction = 0.8;
};

// Adds the hand's primitives to `scene`. Joints come from forward
// kinematics in the hand frame; `place` maps them to camera space. Returns
// the joints in camera space (canonical order).
inline std::array<Vec3, kNumJoints> add_hand(Scene& scene, const HandModel& m, const HandSkeleton& sk,
                                             const Placement& place, const SkinTone& skin,
                                             const HandSceneOptions& opt = {}) {
  Material flesh;
  flesh.albedo = skin.dorsal;
  flesh.albedo_palm = skin.palm;
  flesh.hand = true;
  flesh.grain = 0.04f;
  const int skin_id = scene.add_material(flesh);
  Material nail = flesh;
  nail.albedo = nail.albedo_palm = skin.nail;
  nail.grain = 0.02f;
  const int nail_id = scene.add_material(nail);
  Material arm = flesh;
  arm.hand = false;  // the mask covers the hand up to the wrist, as FreiHAND's does
  const int arm_id = scene.add_material(arm);

  std::array<Vec3, kNumJoints> J;
  for (int j = 0; j < kNumJoints; ++j) J[j] = place.apply(sk.joint[j]);
  const Vec3 palmar = place.R.col(2);

  std::array<Vec3, 7> outline;
  for (size_t i = 0; i < outline.size(); ++i) outline[i] = place.apply(m.palm_outline[i]);
  scene.add_slab(outline.data(), static_cast<int>(outline.size()), m.palm_half_thickness, skin_id, palmar);

  for (int f = 0; f < 5; ++f) {
    const FingerAnatomy& a = m.finger[f];
    std::array<Vec3, 4> p = {J[joint_index(f, 3)], J[joint_index(f, 2)], J[joint_index(f, 1)], J[joint_index(f, 0)]};
    const Mat3 tip_frame = place.R * sk.bone_frame[f][2];
    // The tip keypoint is the skin tip: the last sphere sits one radius back.
    const Vec3 tip_centre = p[3] - tip_frame.col(1) * a.radius[3];
    p[3] = tip_centre;
    for (int k = 0; k < 3; ++k) {
      const Vec3 pad = place.R * sk.bone_frame[f][k].col(2);
      scene.add_round_cone(p[k], a.radius[k], p[k + 1], a.radius[k + 1], skin_id, pad);
      if (k > 0) scene.add_sphere(p[k], 1.06 * a.radius[k], skin_id, pad);  // knuckle
    }
    if (f == Thumb) scene.add_sphere(p[0], a.radius[0], skin_id, palmar);  // thenar
    // Nail: a capsule just under the skin of the back of the distal
    // phalanx, so that only a thin plate of it breaks the surface.
    const double r = a.radius[3];
    const Vec3 back = -tip_frame.col(2) * (0.4 * r);
    scene.add_round_cone(tip_centre + back - tip_frame.col(1) * (0.9 * r), 0.66 * r,
                         tip_centre + back - tip_frame.col(1) * (0.1 * r), 0.66 * r, nail_id);
  }

  if (opt.forearm) {
    // A flat slab with rounded edges (a stadium cross-section), widening
    // towards the elbow.
    const Mat3 F = place.R * sk.forearm_frame;
    const Vec3 up = -F.col(1);  // from the wrist towards the elbow
    const Vec3 wrist = J[0];
    const double r = m.forearm_radius;
    double length = m.forearm_length;
    const double min_z = opt.forearm_min_depth_fraction * wrist.z();
    if (up.z() < 0) length = std::min(length, (wrist.z() - min_z - 2 * r) / -up.z());
    if (length > 2 * r) {
      const Vec3 side = F.col(0) * m.forearm_offset, wide = side * (1 + 0.4 * length / m.forearm_length);
      const Vec3 corners[4] = {wrist + side, wrist - side, wrist - wide + up * length, wrist + wide + up * length};
      scene.add_slab(corners, 4, r, arm_id, F.col(2));
    }
  }
  return J;
}

// Chooses the translation that puts the hand's bounding box (joints grown by
// their radii) at `fill` times the image's smaller side, centred on pixel
// (cu, cv). The hand frame's rotation is fixed in `place.R`.
inline void frame_hand(Placement& place, const HandModel& m, const HandSkeleton& sk, const Camera& cam,
                       double fill, double cu, double cv) {
  std::array<Vec3, kNumJoints> q;
  Vec3 c = Vec3::Zero();
  double extent = 0;
  for (int j = 0; j < kNumJoints; ++j) {
    q[j] = place.R * sk.joint[j];
    c += q[j] / kNumJoints;
  }
  for (int j = 0; j < kNumJoints; ++j) extent = std::max(extent, (q[j] - c).norm() + m.joint_radius(j));
  const double side = fill * std::min(cam.width, cam.height);
  const double f = std::sqrt(cam.K.fx * cam.K.fy);
  double Z = std::max(f * 2 * extent / side, 2.0 * extent);
  Vec3 ray((cu - cam.K.cx) / cam.K.fx, (cv - cam.K.cy) / cam.K.fy, 1);
  for (int it = 0; it < 6; ++it) {
    place.t = ray * Z - c;
    double u0 = 1e300, u1 = -1e300, v0 = 1e300, v1 = -1e300;
    for (int j = 0; j < kNumJoints; ++j) {
      const Vec3 p = q[j] + place.t;
      const auto uv = cam.project(p);
      const double r = m.joint_radius(j) * f / p.z();
      u0 = std::min(u0, uv[0] - r);
      u1 = std::max(u1, uv[0] + r);
      v0 = std::min(v0, uv[1] - r);
      v1 = std::max(v1, uv[1] + r);
    }
    const double size = std::max(u1 - u0, v1 - v0);
    // Projected size goes as 1/depth; the box centre drifts with perspective.
    Z = std::max(Z * size / side, 1.5 * extent);
    ray.x() += (cu - 0.5 * (u0 + u1)) / cam.K.fx;
    ray.y() += (cv - 0.5 * (v0 + v1)) / cam.K.fy;
  }
  place.t = ray * Z - c;
}

struct OccluderOptions {
  double min_size = 0.08, max_size = 0.25;  // relative to the hand's length
  double nearest = 0.7;  // nearest depth, relative to the hand's front (limits the magnification)
};

// Adds an occluder (ball, stick or card) somewhere between the camera and
// joint `target`, entirely in front of the hand's nearest point, so that it
// may hide joints but never intersects the hand. Returns false when the hand
// is too close to the camera to fit one.
inline bool add_occluder(Scene& scene, PhiloxEngine& rng, const std::array<Vec3, kNumJoints>& J, const HandModel& m,
                         int target, const OccluderOptions& opt = {}) {
  double hand_front = 1e300;
  for (int j = 0; j < kNumJoints; ++j) hand_front = std::min(hand_front, J[j].z() - m.joint_radius(j));
  const double hand_length = 181.0 * m.scale;
  const double size = hand_length * rng.uniform(opt.min_size, opt.max_size);
  const int kind = static_cast<int>(rng.below(3));
  Material mat;
  mat.albedo = detail::random_colour(rng);
  mat.albedo_palm = mat.albedo;
  mat.grain = 0.03f;
  if (rng.uniform() < 0.3) {
    mat.stripe_period = static_cast<float>(size * rng.uniform(0.1, 0.5));
    mat.stripe_dir = Vec3(rng.normal(), rng.normal(), rng.normal()).normalized();
    mat.stripe_albedo = detail::random_colour(rng);
  }
  // The shape about its centre first, so that its depth span is known.
  Vec3 stick_dir, card_corner[4];
  double stick_len = 0, stick_r0 = 0, stick_r1 = 0, depth_extent = size / 2;
  if (kind == 1) {  // a stick lying roughly across the view
    const double a = rng.uniform(0, 2 * kPi);
    stick_dir = Vec3(std::cos(a), std::sin(a), rng.uniform(-0.15, 0.15)).normalized();
    stick_len = size * rng.uniform(1.5, 3.5);
    stick_r0 = size * rng.uniform(0.08, 0.2);
    stick_r1 = stick_r0 * rng.uniform(0.6, 1.0);
    depth_extent = 0.5 * stick_len * std::abs(stick_dir.z()) + stick_r0;
  } else if (kind == 2) {  // a card: a thin rounded rectangle, tilted by at most ~26 degrees
    const auto tilt = [&] { return std::max(-0.35, std::min(0.35, 0.3 * rng.normal())); };
    const Vec3 n = Vec3(tilt(), tilt(), 1).normalized();
    const Vec3 e1 = Eigen::AngleAxisd(rng.uniform(0, kPi), n) * n.cross(Vec3::UnitY()).normalized();
    const Vec3 e2 = n.cross(e1);
    const double hw = size / 2, hh = hw * rng.uniform(0.4, 1.0);
    const Vec3 rel[4] = {e1 * hw + e2 * hh, -e1 * hw + e2 * hh, -e1 * hw - e2 * hh, e1 * hw - e2 * hh};
    depth_extent = 0;
    for (int i = 0; i < 4; ++i) {
      card_corner[i] = rel[i];
      depth_extent = std::max(depth_extent, std::abs(rel[i].z()));
    }
    depth_extent += 1.5 * m.scale;
  }
  const double z_hi = hand_front - depth_extent - 3.0 * m.scale;
  const double z_lo = std::max(opt.nearest * hand_front + depth_extent, Rasterizer::kNear + depth_extent + 10);
  if (z_hi <= z_lo) return false;
  const double z = rng.uniform(z_lo, z_hi);
  const Vec3& P = J[target];
  Vec3 c = P * (z / P.z()) + Vec3(rng.normal(), rng.normal(), 0) * (0.25 * size * z / P.z());
  c.z() = z;
  const int id = scene.add_material(mat);
  if (kind == 0) {
    scene.add_sphere(c, size / 2, id);
  } else if (kind == 1) {
    scene.add_round_cone(c - stick_dir * (stick_len / 2), stick_r0, c + stick_dir * (stick_len / 2), stick_r1, id);
  } else {
    for (auto& corner : card_corner) corner += c;
    scene.add_slab(card_corner, 4, 1.5 * m.scale, id);
  }
  return true;
}

}  // namespace synthetic
}  // namespace data
}  // namespace lgh
