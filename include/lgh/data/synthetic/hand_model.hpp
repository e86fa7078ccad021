// The kinematic hand of the synthetic data: an adult right hand with 21
// joints in the canonical order of hand.hpp, its bone lengths, the flesh
// radii the renderer draws around the bones, per-joint limits and forward
// kinematics.
//
// Hand frame (millimetres, origin at the wrist): x points radially (towards
// the thumb), y distally (towards the middle MCP), z out of the palm. For a
// right hand x × y = z, so a mirrored (left) hand would have the opposite
// orientation; the tests use that to check handedness.
//
// Each finger is a chain base -> 1 -> 2 -> tip. The base joint (MCP, or CMC
// for the thumb) sits on the rigid palm and has a rest frame whose local y is
// the bone direction, local z the direction the finger pad faces (flexion
// bends towards +z) and local x = y × z; the two distal joints are hinges
// about local x (flex[1], flex[2]).
//   Fingers: base rotation rest · Rz(-spread) · Rx(flex[0]); positive spread
//   moves the finger radially.
//   Thumb: the CMC moves the metacarpal in the hand frame, as the clinical
//   description of the thumb does: flex[0] swings it about the palm normal
//   across the palm (towards the little finger), spread lifts it out of the
//   palm plane (palmar abduction) and twist pronates it about its own axis;
//   together they make opposition. Base rotation
//   Rot(z, flex[0]) · Rot(y_rest × z, spread) · rest · Ry(twist).
#pragma once

#include <Eigen/Dense>
#include <array>
#include <cmath>

#include "lgh/core/error.hpp"
#include "lgh/data/hand.hpp"

namespace lgh {
namespace data {
namespace synthetic {

using Vec3 = Eigen::Vector3d;
using Mat3 = Eigen::Matrix3d;

constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = kPi / 180.0;

inline Mat3 rot_x(double a) { return Eigen::AngleAxisd(a, Vec3::UnitX()).toRotationMatrix(); }
inline Mat3 rot_y(double a) { return Eigen::AngleAxisd(a, Vec3::UnitY()).toRotationMatrix(); }
inline Mat3 rot_z(double a) { return Eigen::AngleAxisd(a, Vec3::UnitZ()).toRotationMatrix(); }

// Degrees of freedom of one finger, in radians.
struct FingerPose {
  double spread = 0;                 // base abduction (towards local +x)
  std::array<double, 3> flex{};      // base, middle and distal flexion (towards the pad)
  double twist = 0;                  // axial rotation of the base bone (thumb pronation)
};

struct HandPose {
  std::array<FingerPose, 5> finger{};
  double wrist_flex = 0;       // palm bends towards +z relative to the forearm
  double wrist_deviation = 0;  // radial (+) / ulnar (-) deviation
};

struct Range {
  double lo = 0, hi = 0;
  double clamp(double v) const { return v < lo ? lo : (v > hi ? hi : v); }
  bool contains(double v, double tol = 0) const { return v >= lo - tol && v <= hi + tol; }
};

struct FingerLimits {
  Range spread, twist;
  std::array<Range, 3> flex;
};

struct PoseLimits {
  std::array<FingerLimits, 5> finger;
  Range wrist_flex, wrist_deviation;
};

// Anatomical active ranges of motion (degrees converted to radians), close
// to the usual clinical tables; the little finger spreads most, the PIP
// joints bend most, the thumb's CMC carries opposition (flex + spread +
// twist).
inline PoseLimits anatomical_limits() {
  const auto r = [](double lo, double hi) { return Range{lo * kDeg, hi * kDeg}; };
  PoseLimits L;
  //           spread            twist        flex: base          middle        distal
  L.finger[Thumb] = {r(-10, 60), r(-10, 45), {r(-25, 50), r(-10, 65), r(-15, 85)}};
  L.finger[Index] = {r(-12, 22), r(-5, 5), {r(-25, 90), r(-2, 105), r(-10, 80)}};
  L.finger[Middle] = {r(-14, 14), r(-5, 5), {r(-25, 90), r(-2, 105), r(-10, 80)}};
  L.finger[Ring] = {r(-20, 10), r(-5, 5), {r(-25, 90), r(-2, 105), r(-10, 80)}};
  L.finger[Little] = {r(-30, 10), r(-5, 5), {r(-30, 90), r(-2, 105), r(-10, 80)}};
  L.wrist_flex = r(-60, 60);
  L.wrist_deviation = r(-25, 20);
  return L;
}

inline HandPose clamp_pose(HandPose p, const PoseLimits& L) {
  for (int f = 0; f < 5; ++f) {
    FingerPose& q = p.finger[f];
    const FingerLimits& l = L.finger[f];
    q.spread = l.spread.clamp(q.spread);
    q.twist = l.twist.clamp(q.twist);
    for (int k = 0; k < 3; ++k) q.flex[k] = l.flex[k].clamp(q.flex[k]);
  }
  p.wrist_flex = L.wrist_flex.clamp(p.wrist_flex);
  p.wrist_deviation = L.wrist_deviation.clamp(p.wrist_deviation);
  return p;
}

inline bool pose_within(const HandPose& p, const PoseLimits& L, double tol = 1e-9) {
  for (int f = 0; f < 5; ++f) {
    const FingerPose& q = p.finger[f];
    const FingerLimits& l = L.finger[f];
    if (!l.spread.contains(q.spread, tol) || !l.twist.contains(q.twist, tol)) return false;
    for (int k = 0; k < 3; ++k)
      if (!l.flex[k].contains(q.flex[k], tol)) return false;
  }
  return L.wrist_flex.contains(p.wrist_flex, tol) && L.wrist_deviation.contains(p.wrist_deviation, tol);
}

struct FingerAnatomy {
  Vec3 base;                     // base joint in the hand frame
  Mat3 rest;                     // columns: local x, y (bone), z (pad)
  std::array<double, 3> length;  // base->1, 1->2, 2->tip (joint centre to joint centre; tip = skin tip)
  std::array<double, 4> radius;  // flesh radius at base, 1, 2 and tip
};

// An adult right hand. Lengths and radii scale together (scaled()).
struct HandModel {
  std::array<FingerAnatomy, 5> finger;
  // The palm is a rigid convex slab: a planar polygon (z = 0, counter-
  // clockwise seen from the palm side) grown by palm_half_thickness.
  std::array<Vec3, 7> palm_outline;
  double palm_half_thickness = 12;
  double wrist_radius = 14;    // the wrist joint's nominal radius (for visibility)
  double forearm_radius = 17;  // half thickness of the forearm ...
  double forearm_offset = 11;  // ... and half width of its flat part at the wrist
  double forearm_length = 220;
  double scale = 1;            // relative to the average adult
  PoseLimits limits = anatomical_limits();

  // Average adult hand: wrist crease to middle fingertip 181 mm, palm
  // breadth about 80 mm, middle-finger MCP -> PIP 45 mm. The phalanx
  // lengths follow radiographic means (e.g. Buryanov & Kotiuk 2010, Alexander
  // & Viktor 2010); the distal segment runs to the skin tip, pulp included.
  static HandModel adult() {
    HandModel m;
    const auto fan = [](double deg) {
      const double a = deg * kDeg;
      Mat3 R;
      R.col(0) = Vec3(std::cos(a), -std::sin(a), 0);
      R.col(1) = Vec3(std::sin(a), std::cos(a), 0);
      R.col(2) = Vec3(0, 0, 1);
      return R;
    };
    m.finger[Index] = {Vec3(22, 82, 0), fan(6), {40, 23, 21}, {10.0, 9.0, 8.0, 7.0}};
    m.finger[Middle] = {Vec3(0, 86, 0), fan(0), {45, 27, 23}, {10.5, 9.5, 8.3, 7.3}};
    m.finger[Ring] = {Vec3(-19, 81, 0), fan(-6), {42, 26, 23}, {9.8, 8.8, 7.8, 6.9}};
    m.finger[Little] = {Vec3(-35, 72, 0), fan(-13), {33, 19, 21}, {8.8, 7.8, 7.0, 6.2}};
    // Thumb: the CMC lies palmar to the radial border of the palm; at rest
    // the metacarpal points radially-distally, 40 degrees from the middle
    // finger, nearly in the palm plane, and its pad faces mostly across the
    // palm (the thumb nail is seen side-on when the palm faces the camera).
    {
      const Vec3 y = Vec3(std::sin(40 * kDeg), std::cos(40 * kDeg), 0.1).normalized();
      const Vec3 ulnar(-1, 0, 0);
      const Vec3 across = (ulnar - y * ulnar.dot(y)).normalized();  // ulnar, orthogonal to y
      const double b = 60 * kDeg;
      Vec3 z = std::cos(b) * Vec3(0, 0, 1) + std::sin(b) * across;
      z = (z - y * z.dot(y)).normalized();
      Mat3 R;
      R.col(0) = y.cross(z);
      R.col(1) = y;
      R.col(2) = z;
      m.finger[Thumb] = {Vec3(24, 26, 5), R, {46, 32, 28}, {13.5, 11.0, 10.0, 8.5}};
    }
    m.palm_outline = {Vec3(18, 0, 0),  Vec3(31, 30, 0),  m.finger[Index].base, m.finger[Middle].base,
                      m.finger[Ring].base, m.finger[Little].base, Vec3(-24, 2, 0)};
    return m;
  }

  HandModel scaled(double s) const {
    LGH_CHECK(s > 0 && std::isfinite(s), "HandModel::scaled: the scale must be positive, got " << s);
    HandModel m = *this;
    for (auto& f : m.finger) {
      f.base *= s;
      for (double& l : f.length) l *= s;
      for (double& r : f.radius) r *= s;
    }
    for (auto& p : m.palm_outline) p *= s;
    m.palm_half_thickness *= s;
    m.wrist_radius *= s;
    m.forearm_radius *= s;
    m.forearm_offset *= s;
    m.forearm_length *= s;
    m.scale *= s;
    return m;
  }

  // Nominal flesh radius around joint j (canonical order).
  double joint_radius(int j) const {
    if (j == 0) return wrist_radius;
    const int f = (j - 1) / 4, d = (j - 1) % 4;  // d = 0 at the tip
    return finger[f].radius[3 - d];
  }

  // Length of the bone from joint j to its parent (0 for the wrist).
  double bone_length(int j) const {
    if (j == 0) return 0;
    const int f = (j - 1) / 4, d = (j - 1) % 4;
    if (d == 3) return finger[f].base.norm();  // base joint -> wrist, fixed by the palm
    return finger[f].length[2 - d];
  }
};

// Result of forward kinematics, in the hand frame.
struct HandSkeleton {
  std::array<Vec3, kNumJoints> joint;            // canonical order
  std::array<std::array<Mat3, 3>, 5> bone_frame;  // per finger, frame of bone base->1, 1->2, 2->tip
  Mat3 forearm_frame;                             // local -y points up the forearm
};

inline HandSkeleton forward_kinematics(const HandModel& m, const HandPose& p) {
  HandSkeleton s;
  s.joint[0] = Vec3::Zero();
  for (int f = 0; f < 5; ++f) {
    const FingerAnatomy& a = m.finger[f];
    const FingerPose& q = p.finger[f];
    Mat3 R;
    if (f == Thumb) {
      const Vec3 lift = a.rest.col(1).cross(Vec3::UnitZ()).normalized();
      R = rot_z(q.flex[0]) * Eigen::AngleAxisd(q.spread, lift).toRotationMatrix() * a.rest * rot_y(q.twist);
    } else {
      R = a.rest * rot_z(-q.spread) * rot_x(q.flex[0]) * rot_y(q.twist);
    }
    Vec3 x = a.base;
    s.joint[joint_index(f, 3)] = x;
    for (int k = 0; k < 3; ++k) {
      if (k > 0) R = R * rot_x(q.flex[k]);
      s.bone_frame[f][k] = R;
      x = x + R.col(1) * a.length[k];
      s.joint[joint_index(f, 2 - k)] = x;
    }
  }
  // The forearm hangs off the wrist; flexing the wrist bends the palm towards
  // +z relative to it, so the forearm rotates the other way in the hand frame.
  s.forearm_frame = rot_x(-p.wrist_flex) * rot_z(p.wrist_deviation);
  return s;
}

}  // namespace synthetic
}  // namespace data
}  // namespace lgh
