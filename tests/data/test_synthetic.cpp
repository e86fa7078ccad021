#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "lgh/core/parallel.hpp"
#include "lgh/data/freihand.hpp"
#include "lgh/data/synthetic.hpp"
#include "scratch_dir.hpp"

using namespace lgh;
using namespace lgh::data;
using namespace lgh::data::synthetic;

namespace {

SyntheticConfig small_config(uint64_t seed = 1, int size = 128) {
  SyntheticConfig c;
  c.image_size = size;
  c.count = 100000;
  c.seed = seed;
  return c;
}

Vec3 joint(const HandSample& s, int j) { return Vec3(s.xyz[j][0], s.xyz[j][1], s.xyz[j][2]); }

bool same_sample(const HandSample& a, const HandSample& b) {
  return a.rgb.pixels == b.rgb.pixels && a.mask.pixels == b.mask.pixels && a.uv == b.uv && a.xyz == b.xyz &&
         a.visible == b.visible && a.K.fx == b.K.fx && a.K.fy == b.K.fy && a.K.cx == b.K.cx && a.K.cy == b.K.cy &&
         a.id == b.id;
}

// The palm-facing rotation with fingers up (hand x -> camera x, y -> -y, z -> -z).
Mat3 facing_camera() {
  Mat3 R;
  R << 1, 0, 0, 0, -1, 0, 0, 0, -1;
  return R;
}

// An open right hand, palm to the camera, framed in a 160 px image.
struct OpenHandScene {
  HandModel model = HandModel::adult();
  HandSkeleton sk = forward_kinematics(model, key_pose(KeyPose::Open));
  Camera cam;
  Placement place;
  Scene scene;
  std::array<Vec3, kNumJoints> J;
  std::array<double, kNumJoints> radius;

  explicit OpenHandScene(const Mat3& R = facing_camera(), bool forearm = true) {
    cam.width = cam.height = 160;
    cam.K = {300, 300, 79.5, 79.5};
    place.R = R;
    frame_hand(place, model, sk, cam, 0.8, 79.5, 79.5);
    HandSceneOptions opt;
    opt.forearm = forearm;
    J = add_hand(scene, model, sk, place, SkinTone{}, opt);
    for (int j = 0; j < kNumJoints; ++j) radius[j] = model.joint_radius(j);
  }
};

// Signed distance to a round cone (Quilez's closed form), in double: an
// independent description of the shape that the analytic ray intersection
// must agree with.
double sd_round_cone(const Vec3& p, const Vec3& a, const Vec3& b, double r1, double r2) {
  const Vec3 ba = b - a;
  const double l2 = ba.squaredNorm(), rr = r1 - r2, a2 = l2 - rr * rr, il2 = 1.0 / l2;
  const Vec3 pa = p - a;
  const double y = pa.dot(ba), z = y - l2;
  const double x2 = (pa * l2 - ba * y).squaredNorm(), y2 = y * y * l2, z2 = z * z * l2;
  const double k = (rr > 0 ? 1 : (rr < 0 ? -1 : 0)) * rr * rr * x2;
  if ((z > 0 ? 1 : (z < 0 ? -1 : 0)) * a2 * z2 > k) return std::sqrt(x2 + z2) * il2 - r2;
  if ((y > 0 ? 1 : (y < 0 ? -1 : 0)) * a2 * y2 < k) return std::sqrt(x2 + y2) * il2 - r1;
  return (std::sqrt(x2 * a2 * il2) + y * rr) * il2 - r1;
}

// First depth where the ray (dx, dy, 1) enters the SDF's zero set, by
// sphere tracing and bisection; +inf when it misses.
double march(const std::function<double(const Vec3&)>& sdf, double dx, double dy, double z0, double z1) {
  const Vec3 d(dx, dy, 1);
  const double dn = d.norm();
  double t = z0;
  while (t < z1) {
    const double s = sdf(d * t);
    if (s < 1e-7) return t;
    t += std::max(s / dn, 1e-6);
  }
  return std::numeric_limits<double>::infinity();
}

}  // namespace

TEST_CASE("synthetic: a sample depends only on (seed, index)", "[data][synthetic]") {
  const SyntheticHands a(small_config(5)), b(small_config(5));
  for (int64_t i : {0, 7, 4321}) {
    const HandSample s = a.get(i);
    CHECK(same_sample(s, a.get(i)));
    CHECK(same_sample(s, b.get(i)));
  }
  // Any thread, any order: the same bytes.
  const int n = 24;
  std::vector<HandSample> par(n);
  parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = hi - 1; i >= lo; --i) par[static_cast<size_t>(i)] = a.get(i);
  });
  for (int i = 0; i < n; ++i) CHECK(same_sample(par[static_cast<size_t>(i)], b.get(i)));
}

TEST_CASE("synthetic: different indices and seeds give different samples", "[data][synthetic]") {
  const SyntheticHands a(small_config(5)), c(small_config(6));
  const HandSample s7 = a.get(7), s8 = a.get(8), c7 = c.get(7);
  CHECK(s7.rgb.pixels != s8.rgb.pixels);
  CHECK(s7.xyz != s8.xyz);
  CHECK(s7.rgb.pixels != c7.rgb.pixels);
  CHECK(s7.xyz != c7.xyz);
  // The pose stream does not depend on the image size.
  const SyntheticHands big(small_config(5, 256));
  SyntheticInfo i128, i256;
  a.generate(7, &i128);
  big.generate(7, &i256);
  CHECK(i128.pose.finger[Index].flex == i256.pose.finger[Index].flex);
}

TEST_CASE("synthetic: sample layout and annotations", "[data][synthetic]") {
  const SyntheticHands ds(small_config(2, 96));
  const HandSample s = ds.get(3);
  CHECK(s.rgb.width == 96);
  CHECK(s.rgb.height == 96);
  CHECK(s.rgb.channels == 3);
  CHECK(s.mask.width == 96);
  CHECK(s.mask.channels == 1);
  CHECK_FALSE(s.is_left);
  CHECK(s.id == "synthetic:2/3");
  CHECK(ds.size() == 100000);
  CHECK_THROWS_AS(ds.get(-1), Error);
  CHECK_THROWS_AS(ds.get(100000), Error);
}

TEST_CASE("synthetic: uv is the exact projection of xyz with K", "[data][synthetic]") {
  const SyntheticHands ds(small_config(3));
  for (int i = 0; i < 60; ++i) {
    const HandSample s = ds.get(i);
    for (int j = 0; j < kNumJoints; ++j) {
      const auto& p = s.xyz[j];
      REQUIRE(p[2] > 0);
      CHECK(std::abs(s.K.fx * p[0] / p[2] + s.K.cx - s.uv[j][0]) < 1e-6);
      CHECK(std::abs(s.K.fy * p[1] / p[2] + s.K.cy - s.uv[j][1]) < 1e-6);
    }
  }
}

TEST_CASE("synthetic: bone lengths are realistic and exactly preserved", "[data][synthetic]") {
  const SyntheticConfig cfg = small_config(4);
  const SyntheticHands ds(cfg);
  const HandModel adult = HandModel::adult();
  // The average adult: middle MCP -> PIP 45 mm, wrist crease -> middle tip
  // 181 mm (adult hand lengths are about 165-205 mm).
  CHECK(adult.bone_length(kRefBoneChild) == Approx(45.0));
  double hand_length = 0;
  for (int j = joint_index(Middle, 0); j != 0; j = kParent[j]) hand_length += adult.bone_length(j);
  CHECK(hand_length == Approx(181.0).margin(1.0));
  // Thumb shortest, middle longest; little shorter than ring.
  const auto finger_length = [&](const HandModel& m, int f) {
    return m.finger[f].length[0] + m.finger[f].length[1] + m.finger[f].length[2];
  };
  CHECK(finger_length(adult, Middle) > finger_length(adult, Ring));
  CHECK(finger_length(adult, Ring) > finger_length(adult, Little));
  CHECK(finger_length(adult, Middle) > finger_length(adult, Index));

  double lo = 1e9, hi = 0;
  for (int i = 0; i < 80; ++i) {
    SyntheticInfo info;
    const HandSample s = ds.generate(i, &info);
    for (int j = 1; j < kNumJoints; ++j) {
      const double len = (joint(s, j) - joint(s, kParent[j])).norm();
      CHECK(len == Approx(info.model.bone_length(j)).epsilon(1e-9));
    }
    const double ref = (joint(s, kRootJoint) - joint(s, kRefBoneChild)).norm();
    CHECK(ref == Approx(info.model.finger[Middle].length[0]).epsilon(1e-9));
    const double rel = ref / 45.0;
    CHECK(rel >= cfg.hand_scale_min * (1 - cfg.proportion_jitter) - 1e-9);
    CHECK(rel <= cfg.hand_scale_max * (1 + cfg.proportion_jitter) + 1e-9);
    lo = std::min(lo, rel);
    hi = std::max(hi, rel);
  }
  // The sizes actually vary over most of the configured range.
  CHECK(lo < 0.92);
  CHECK(hi > 1.08);
}

TEST_CASE("synthetic: poses respect the joint limits, bend towards the palm, and the hand is a right hand",
          "[data][synthetic]") {
  const SyntheticHands ds(small_config(9));
  const PoseLimits L = anatomical_limits();
  std::set<int> key_poses;
  double max_pip = 0;
  for (int i = 0; i < 150; ++i) {
    SyntheticInfo info;
    const HandSample s = ds.generate(i, &info);
    REQUIRE(pose_within(info.pose, L));
    key_poses.insert(static_cast<int>(info.key_pose));
    // Recover the hand frame from the joints alone: for a right hand the
    // palm normal is (index MCP - wrist) × (little MCP - wrist).
    const Vec3 w = joint(s, 0), im = joint(s, joint_index(Index, 3)), lm = joint(s, joint_index(Little, 3));
    const Vec3 palmar = (im - w).cross(lm - w).normalized();
    const Vec3 radial = (im - lm).normalized();
    // The camera-space rotation has the same palm normal: handedness holds.
    CHECK(palmar.dot(info.placement.R.col(2)) > 0.9);
    for (int f = Index; f <= Little; ++f) {
      // PIP and DIP are hinges: the angle between consecutive bones, signed
      // by the bend direction (towards the pad = flexion), lies in the limits.
      for (int k = 1; k <= 2; ++k) {
        const Vec3 a = joint(s, joint_index(f, 3 - k + 1)), b = joint(s, joint_index(f, 3 - k)),
                   c = joint(s, joint_index(f, 3 - k - 1));
        const Vec3 b1 = (b - a).normalized(), b2 = (c - b).normalized();
        double angle = std::acos(std::max(-1.0, std::min(1.0, b1.dot(b2))));
        const Vec3 axis = b1.cross(b2);
        if (axis.norm() > 1e-6 && axis.dot(radial) < 0) angle = -angle;
        CHECK(angle >= L.finger[f].flex[k].lo - 1e-6);
        CHECK(angle <= L.finger[f].flex[k].hi + 1e-6);
        CHECK(angle == Approx(info.pose.finger[f].flex[k]).margin(1e-6));
        if (k == 1) max_pip = std::max(max_pip, angle);
      }
    }
  }
  CHECK(key_poses.size() >= 10);  // the vocabulary is used
  CHECK(max_pip > 80 * kDeg);     // and includes strongly bent fingers

  // A fist bends every fingertip to the palm side; the open hand stays flat.
  for (const KeyPose k : {KeyPose::Fist, KeyPose::Open}) {
    const HandSkeleton sk = forward_kinematics(HandModel::adult(), key_pose(k));
    for (int f = Index; f <= Little; ++f) {
      const Vec3& tip = sk.joint[joint_index(f, 0)];
      if (k == KeyPose::Fist) {
        CHECK(tip.z() > 5);                               // in front of the palm
        CHECK(tip.y() < sk.joint[joint_index(f, 3)].y());  // curled back below the knuckles
      } else {
        CHECK(std::abs(tip.z()) < 10);
      }
    }
  }
  for (int k = 0; k < kNumKeyPoses; ++k) CHECK(pose_within(key_pose(static_cast<KeyPose>(k)), L));
  // Pinch and OK bring the thumb and index tips together.
  for (const KeyPose k : {KeyPose::Pinch, KeyPose::Ok}) {
    const HandSkeleton sk = forward_kinematics(HandModel::adult(), key_pose(k));
    CHECK((sk.joint[joint_index(Thumb, 0)] - sk.joint[joint_index(Index, 0)]).norm() < 15);
  }
}

TEST_CASE("synthetic: clamp_pose enforces limits", "[data][synthetic]") {
  const PoseLimits L = anatomical_limits();
  HandPose p;
  p.finger[Index].flex[1] = 3.0;  // 172 degrees
  p.finger[Little].spread = -1.0;
  p.wrist_flex = 2.0;
  CHECK_FALSE(pose_within(p, L));
  const HandPose q = clamp_pose(p, L);
  CHECK(pose_within(q, L));
  CHECK(q.finger[Index].flex[1] == Approx(L.finger[Index].flex[1].hi));
  CHECK(q.finger[Little].spread == Approx(L.finger[Little].spread.lo));
}

TEST_CASE("synthetic: the hand is framed in view", "[data][synthetic]") {
  const SyntheticConfig cfg = small_config(11);
  const SyntheticHands ds(cfg);
  int inside = 0, total = 0;
  for (int i = 0; i < 60; ++i) {
    SyntheticInfo info;
    const HandSample s = ds.generate(i, &info);
    // No closer than min_distance_mm, and never a wider view than fov_max_deg.
    for (int j = 0; j < kNumJoints; ++j) CHECK(s.xyz[j][2] - info.model.joint_radius(j) > 0.97 * cfg.min_distance_mm);
    const double fov = 2 * std::atan(0.5 * cfg.image_size / s.K.fy) / kDeg;
    CHECK(fov <= cfg.fov_max_deg + 1e-9);
    double u0 = 1e9, u1 = -1e9, v0 = 1e9, v1 = -1e9;
    for (int j = 0; j < kNumJoints; ++j) {
      const bool in = s.uv[j][0] >= -0.5 && s.uv[j][0] < cfg.image_size - 0.5 && s.uv[j][1] >= -0.5 &&
                      s.uv[j][1] < cfg.image_size - 0.5;
      inside += in;
      ++total;
      if (!in) CHECK_FALSE(s.visible[j]);  // outside the image is never visible
      u0 = std::min(u0, s.uv[j][0]);
      u1 = std::max(u1, s.uv[j][0]);
      v0 = std::min(v0, s.uv[j][1]);
      v1 = std::max(v1, s.uv[j][1]);
    }
    // Joint centres span a good part of the image, flesh radii aside.
    CHECK(std::max(u1 - u0, v1 - v0) > 0.3 * cfg.image_size);
  }
  CHECK(inside >= total * 99 / 100);
}

TEST_CASE("synthetic: masks cover the hand and the visible joints", "[data][synthetic]") {
  const SyntheticHands ds(small_config(12));
  int visible = 0, covered = 0, occluded = 0;
  for (int i = 0; i < 100; ++i) {
    SyntheticInfo info;
    const HandSample s = ds.generate(i, &info);
    const int W = s.mask.width, H = s.mask.height;
    const auto n = std::count(s.mask.pixels.begin(), s.mask.pixels.end(), uint8_t(255));
    CHECK(n > W * H / 50);
    CHECK(static_cast<size_t>(n + std::count(s.mask.pixels.begin(), s.mask.pixels.end(), uint8_t(0))) ==
          s.mask.pixels.size());
    for (int j = 0; j < kNumJoints; ++j) {
      occluded += !s.visible[j];
      if (!s.visible[j]) continue;
      ++visible;
      const int x = static_cast<int>(std::lround(s.uv[j][0])), y = static_cast<int>(std::lround(s.uv[j][1]));
      bool hit = false;  // the joint's pixel or a neighbour (tips sit on the silhouette)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int X = x + dx, Y = y + dy;
          if (X >= 0 && Y >= 0 && X < W && Y < H && s.mask.pixels[static_cast<size_t>(Y) * W + X] == 255) hit = true;
        }
      covered += hit;
    }
  }
  CHECK(covered >= visible * 95 / 100);
  // Self-occlusion is common in natural poses and views.
  CHECK(occluded > 100 * kNumJoints / 10);
  CHECK(visible > 100 * kNumJoints / 2);
}

TEST_CASE("synthetic: an occluder in front of a joint hides it; the hand's own surfaces do not", "[data][synthetic]") {
  OpenHandScene h;
  {
    const Rasterizer r(h.scene, h.cam);
    const auto vis = r.joint_visibility(h.J, h.radius);
    // Palm to the camera, fingers spread: every joint is in view.
    for (int j = 0; j < kNumJoints; ++j) CHECK(vis[j]);
  }
  const int tip = joint_index(Middle, 0);
  Material red;
  red.albedo = red.albedo_palm = {1.f, 0.f, 0.f};
  const int mat = h.scene.add_material(red);
  const Vec3 P = h.J[tip];
  h.scene.add_sphere(P * 0.8, 6.0, mat);  // on the line of sight, well in front
  const Rasterizer r(h.scene, h.cam);
  const auto vis = r.joint_visibility(h.J, h.radius);
  CHECK_FALSE(vis[tip]);
  for (int j : {0, joint_index(Thumb, 0), joint_index(Index, 0), joint_index(Little, 0), kRootJoint}) CHECK(vis[j]);

  Image rgb(h.cam.width, h.cam.height, 3, 0), mask;
  Lighting light;
  light.to_light = Vec3(0, 0, -1);
  r.render(light, rgb, &mask);
  const auto uv = h.cam.project(P);
  const int x = static_cast<int>(std::lround(uv[0])), y = static_cast<int>(std::lround(uv[1]));
  const uint8_t* px = rgb.at(x, y);
  CHECK(px[0] > 150);  // the red ball, not skin
  CHECK(px[1] < 30);
  CHECK(mask.at(x, y)[0] == 0);  // occluders are not in the mask
  const auto wuv = h.cam.project(h.J[kRootJoint]);
  CHECK(mask.at(static_cast<int>(std::lround(wuv[0])), static_cast<int>(std::lround(wuv[1])))[0] == 255);

  // Out of the image: not visible, whatever is in front.
  auto J = h.J;
  J[tip] = Vec3(1e4, 0, 500);
  CHECK_FALSE(r.joint_visibility(J, h.radius)[tip]);
}

TEST_CASE("synthetic: self-occlusion seen from the side", "[data][synthetic]") {
  // Look along the row of knuckles from the thumb side: the index finger
  // hides the little finger's joints, never the other way round.
  const Mat3 side = rot_y(kPi / 2) * facing_camera();  // hand x (radial) -> camera -z
  OpenHandScene h(side, false);
  const Rasterizer r(h.scene, h.cam);
  const auto vis = r.joint_visibility(h.J, h.radius);
  CHECK(h.J[joint_index(Index, 1)].z() < h.J[joint_index(Little, 1)].z());  // index is the nearer finger
  CHECK(vis[joint_index(Index, 1)]);
  CHECK(vis[joint_index(Index, 2)]);
  CHECK_FALSE(vis[joint_index(Little, 1)]);
  CHECK_FALSE(vis[joint_index(Little, 2)]);
}

TEST_CASE("raster: analytic round cone matches sphere tracing of its distance field", "[data][synthetic]") {
  PhiloxEngine rng(77, 0);
  Camera cam;
  cam.width = cam.height = 64;
  cam.K = {80, 80, 31.5, 31.5};
  int hits = 0, cases = 0;
  for (int trial = 0; trial < 40; ++trial) {
    Scene sc;
    const int m = sc.add_material(Material{});
    const Vec3 a(rng.uniform(-20, 20), rng.uniform(-20, 20), rng.uniform(120, 200));
    // Every orientation, including along the view axis (rays steeper than
    // the cone's generators), and both taper directions.
    const Vec3 dir = Vec3(rng.normal(), rng.normal(), trial % 4 == 0 ? 6 * rng.normal() : rng.normal()).normalized();
    const Vec3 b = a + dir * rng.uniform(5, 60);
    const double ra = rng.uniform(2, 15), rb = rng.uniform(2, 15);
    sc.add_round_cone(a, ra, b, rb, m);
    if (sc.primitives[0].kind != PrimKind::RoundCone) continue;
    const Rasterizer r(sc, cam);
    const auto sdf = [&](const Vec3& p) { return sd_round_cone(p, a, b, ra, rb); };
    for (int k = 0; k < 40; ++k) {
      // Half the rays anywhere, half aimed near the cone (around its silhouette too).
      double dx = rng.uniform(-0.4, 0.4), dy = rng.uniform(-0.4, 0.4);
      if (k % 2) {
        const Vec3 p = a + (b - a) * rng.uniform() + Vec3(rng.normal(), rng.normal(), 0) * (0.7 * std::max(ra, rb));
        dx = p.x() / p.z();
        dy = p.y() / p.z();
      }
      const double expected = march(sdf, dx, dy, 50, 300);
      const double got = r.first_hit(dx, dy);
      ++cases;
      if (std::isinf(expected)) {
        // A miss, unless the ray grazes the surface within tracing precision.
        if (!std::isinf(got)) CHECK(std::abs(sdf(Vec3(dx, dy, 1) * got)) < 1e-2);
      } else {
        ++hits;
        REQUIRE_FALSE(std::isinf(got));
        CHECK(got == Approx(expected).margin(2e-3 * expected));
      }
    }
  }
  CHECK(hits > cases / 10);
}

TEST_CASE("raster: screen-space boxes lose no pixel; depth and coverage are exact", "[data][synthetic]") {
  OpenHandScene h;
  Material ball;
  const int m = h.scene.add_material(ball);
  h.scene.add_sphere(h.J[joint_index(Index, 0)] * 0.7 + Vec3(5, 0, 0), 9.0, m);
  const Vec3 card[4] = {Vec3(-30, -10, 260), Vec3(-10, -12, 262), Vec3(-8, 10, 265), Vec3(-28, 12, 263)};
  h.scene.add_slab(card, 4, 1.5, m);
  const Rasterizer r(h.scene, h.cam);
  Image rgb(h.cam.width, h.cam.height, 3, 0);
  RenderBuffers buf;
  r.render(Lighting{}, rgb, nullptr, &buf);
  int drawn = 0;
  for (int y = 0; y < h.cam.height; ++y)
    for (int x = 0; x < h.cam.width; ++x) {
      int who = -1;
      const float z = r.first_hit((x - h.cam.K.cx) / h.cam.K.fx, (y - h.cam.K.cy) / h.cam.K.fy, &who);
      const size_t i = static_cast<size_t>(y) * h.cam.width + x;
      REQUIRE(buf.depth[i] == z);
      drawn += who >= 0;
    }
  CHECK(drawn > h.cam.width * h.cam.height / 8);

  // A lone sphere: depth at its centre pixel and its projected area.
  Scene sc;
  sc.add_sphere(Vec3(0, 0, 400), 50, sc.add_material(Material{}));
  Camera cam;
  cam.width = cam.height = 101;
  cam.K = {200, 200, 50, 50};
  RenderBuffers b2;
  Image img(101, 101, 3, 0);
  Rasterizer(sc, cam).render(Lighting{}, img, nullptr, &b2);
  CHECK(b2.depth[50 * 101 + 50] == Approx(350.0).margin(1e-3));
  const auto covered = std::count_if(b2.primitive.begin(), b2.primitive.end(), [](int v) { return v >= 0; });
  // Projected disc radius f r / sqrt(z^2 - r^2).
  const double rad = 200 * 50 / std::sqrt(400.0 * 400 - 50 * 50);
  CHECK(covered == Approx(kPi * rad * rad).epsilon(0.02));
}

TEST_CASE("raster: primitives behind the camera are refused", "[data][synthetic]") {
  Scene sc;
  sc.add_sphere(Vec3(0, 0, 5), 10, sc.add_material(Material{}));
  Camera cam;
  cam.width = cam.height = 32;
  cam.K = {30, 30, 16, 16};
  CHECK_THROWS_AS(Rasterizer(sc, cam), Error);
  CHECK_THROWS_AS(sc.add_sphere(Vec3(0, 0, 100), 1, 5), Error);  // no such material
}

TEST_CASE("synthetic: config validation names the field", "[data][synthetic]") {
  const auto fails_with = [](SyntheticConfig c, const std::string& word) {
    try {
      SyntheticHands h(c);
    } catch (const Error& e) {
      return std::string(e.what()).find(word) != std::string::npos;
    }
    return false;
  };
  SyntheticConfig c;
  c.image_size = 4;
  CHECK(fails_with(c, "image_size"));
  c = {};
  c.count = 0;
  CHECK(fails_with(c, "count"));
  c = {};
  c.fill_min = 0.9;
  c.fill_max = 0.5;
  CHECK(fails_with(c, "fill_min"));
  c = {};
  c.p_occluder = 1.5;
  CHECK(fails_with(c, "probabilities"));
}

TEST_CASE("synthetic: occluders and backgrounds occur", "[data][synthetic]") {
  const SyntheticHands ds(small_config(13, 64));
  int occluded = 0;
  std::set<int> backgrounds;
  for (int i = 0; i < 80; ++i) {
    SyntheticInfo info;
    ds.generate(i, &info);
    occluded += info.occluders > 0;
    backgrounds.insert(static_cast<int>(info.background));
  }
  CHECK(occluded > 8);
  CHECK(occluded < 45);
  CHECK(backgrounds.size() == static_cast<size_t>(kNumBackgroundKinds));
}

TEST_CASE("synthetic: writes FreiHAND's layout", "[data][synthetic]") {
  namespace fs = std::filesystem;
  const lgh_test::ScratchDir scratch("test_freihand");
  const fs::path dir = scratch.path();
  SyntheticConfig cfg = small_config(21, 64);
  cfg.count = 20;
  const SyntheticHands ds(cfg);
  std::atomic<int64_t> last_done{-1}, bad_total{0};
  FreiHandWriteOptions opt;
  opt.contact_sheet_samples = 6;
  opt.contact_sheet_columns = 3;
  opt.progress_interval_s = 0;
  opt.progress = [&](int64_t done, int64_t total, double) {  // may run on a worker: no CHECK here
    if (total != 20) ++bad_total;
    last_done = done;
  };
  const auto report = write_freihand_layout(ds, 20, dir.string(), opt);
  CHECK(report.samples == 20);
  CHECK(last_done == 20);
  CHECK(bad_total == 0);

  const auto load = [&](const char* name) {
    std::ifstream in(dir / name);
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  };
  const auto K = load("training_K.json"), xyz = load("training_xyz.json"), scale = load("training_scale.json"),
             vis = load("training_vis.json");
  REQUIRE(K.size() == 20);
  REQUIRE(xyz.size() == 20);
  REQUIRE(scale.size() == 20);
  REQUIRE(vis.size() == 20);
  for (int i : {0, 13, 19}) {
    const HandSample s = ds.get(i);
    CHECK(K[i][0][0].get<double>() == s.K.fx);
    CHECK(K[i][1][2].get<double>() == s.K.cy);
    CHECK(K[i][2][2].get<double>() == 1.0);
    REQUIRE(xyz[i].size() == 21);
    for (int j = 0; j < kNumJoints; ++j) {
      const int f = freihand_from_canonical(j);
      for (int c = 0; c < 3; ++c) CHECK(xyz[i][f][c].get<double>() == Approx(s.xyz[j][c] / 1000).epsilon(1e-12));
      CHECK(vis[i][f].get<bool>() == s.visible[j]);
    }
    // FreiHAND order: 0 wrist, 1-4 thumb CMC -> tip, 9 middle MCP, 10 middle PIP.
    CHECK(xyz[i][9][0].get<double>() == Approx(s.xyz[kRootJoint][0] / 1000).epsilon(1e-12));
    CHECK(xyz[i][4][2].get<double>() == Approx(s.xyz[joint_index(Thumb, 0)][2] / 1000).epsilon(1e-12));
    const double bone = (joint(s, kRootJoint) - joint(s, kRefBoneChild)).norm() / 1000;
    CHECK(scale[i].get<double>() == Approx(bone).epsilon(1e-12));
    CHECK(scale[i].get<double>() > 0.03);
    CHECK(scale[i].get<double>() < 0.06);

    char name[32];
    std::snprintf(name, sizeof(name), "%08d.jpg", i);
    const Image rgb = read_image((dir / "training" / "rgb" / name).string(), 3);
    CHECK(rgb.width == 64);
    CHECK(rgb.height == 64);
    const Image mask = read_image((dir / "training" / "mask" / name).string(), 1);
    REQUIRE(mask.pixels.size() == s.mask.pixels.size());
    size_t agree = 0;
    for (size_t p = 0; p < mask.pixels.size(); ++p) agree += (mask.pixels[p] >= 128) == (s.mask.pixels[p] == 255);
    CHECK(agree >= mask.pixels.size() * 97 / 100);
  }
  const Image sheet = read_image((dir / "contact_sheet.png").string(), 3);
  CHECK(sheet.width == 3 * 64 + 4 * 2);
  CHECK(sheet.height == 2 * 64 + 3 * 2);
  // No temporary files are left behind.
  for (const auto& e : fs::recursive_directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);

  // A path that is a file is refused before anything is written.
  const fs::path file = dir / "not_a_dir";
  std::ofstream(file) << "x";
  CHECK_THROWS_AS(write_freihand_layout(ds, 2, file.string()), Error);
  CHECK_THROWS_AS(write_freihand_layout(ds, 0, (dir / "other").string()), Error);
  CHECK_FALSE(fs::exists(dir / "other"));
}

TEST_CASE("synthetic: sensor noise has the requested spread and no bias", "[data][synthetic]") {
  for (const float sigma : {2.f, 6.f}) {
    Image img(128, 128, 3, 128);
    add_sensor_noise(img, sigma, 99);
    double sum = 0, sum2 = 0;
    for (const uint8_t v : img.pixels) {
      sum += v - 128.0;
      sum2 += (v - 128.0) * (v - 128.0);
    }
    const double n = static_cast<double>(img.pixels.size()), mean = sum / n;
    CHECK(std::abs(mean) < 0.05);
    CHECK(std::sqrt(sum2 / n - mean * mean) == Approx(sigma).epsilon(0.05));
  }
  Image a(8, 8, 3, 100), b(8, 8, 3, 100);
  add_sensor_noise(a, 0.f, 1);
  CHECK(a.pixels == b.pixels);  // sigma 0: untouched
  add_sensor_noise(a, 3.f, 1);
  add_sensor_noise(b, 3.f, 2);
  CHECK(a.pixels != b.pixels);  // the seed matters
}

TEST_CASE("synthetic: the FreiHAND reader reads the written layout back", "[data][synthetic]") {
  namespace fs = std::filesystem;
  const lgh_test::ScratchDir scratch("test_freihand_rt");
  const fs::path dir = scratch.path();
  SyntheticConfig cfg = small_config(22, 64);
  cfg.count = 6;
  const SyntheticHands ds(cfg);
  write_freihand_layout(ds, 6, dir.string());
  FreiHandOptions opt;
  opt.image_size = 64;
  const FreiHandDataset back(dir.string(), opt);
  REQUIRE(back.size() == 6);
  REQUIRE(back.has_masks());
  for (int i = 0; i < 6; ++i) {
    const HandSample a = ds.get(i), b = back.get(i);
    for (int j = 0; j < kNumJoints; ++j) {
      for (int c = 0; c < 3; ++c) CHECK(b.xyz[j][c] == Approx(a.xyz[j][c]).epsilon(1e-12));
      for (int c = 0; c < 2; ++c) CHECK(b.uv[j][c] == Approx(a.uv[j][c]).margin(1e-6));
      CHECK(b.visible[j] == a.visible[j]);
    }
    CHECK(b.K.fx == a.K.fx);
    size_t agree = 0;
    for (size_t p = 0; p < a.mask.pixels.size(); ++p) agree += a.mask.pixels[p] == b.mask.pixels[p];
    CHECK(agree >= a.mask.pixels.size() * 97 / 100);
  }
}
