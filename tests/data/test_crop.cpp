#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "lgh/data/augment.hpp"
#include "lgh/data/crop.hpp"

using namespace lgh;
using namespace lgh::data;

namespace {

constexpr double kPi = 3.141592653589793;

// The test's own pinhole projection (independent of crop.hpp).
std::array<double, 2> pinhole(const Intrinsics& K, const std::array<double, 3>& p) {
  return {K.fx * p[0] / p[2] + K.cx, K.fy * p[1] / p[2] + K.cy};
}

// A hand in front of a camera with non-square pixels, labels consistent.
HandSample random_sample(std::mt19937& rng, int width = 160, int height = 120) {
  std::uniform_real_distribution<double> u(-1, 1);
  HandSample s;
  s.rgb = Image(width, height, 3, 40);
  s.K.fx = 150 + 10 * u(rng);
  s.K.fy = s.K.fx * (1.0 + 0.05 * u(rng));  // fx != fy, as in Dexter+Object and STB
  s.K.cx = width / 2.0 + 7.3 * u(rng);
  s.K.cy = height / 2.0 + 5.1 * u(rng);
  const std::array<double, 3> centre = {40 * u(rng), 30 * u(rng), 550 + 100 * u(rng)};
  for (int j = 0; j < kNumJoints; ++j) {
    for (int r = 0; r < 3; ++r) s.xyz[j][r] = centre[r] + 70 * u(rng);
    s.uv[j] = pinhole(s.K, s.xyz[j]);
    s.visible[j] = u(rng) > -0.5;
  }
  s.is_left = u(rng) > 0;
  s.id = "test/random";
  return s;
}

Augmentation random_augmentation(std::mt19937& rng, int size) {
  PhiloxEngine eng(rng(), rng());
  AugmentOptions o;
  o.scale_min = 0.8;  // also exercise zooming in
  o.scale_max = 1.5;
  o.translation_max = 40;
  return draw_augmentation(o, size, eng);
}

void require_reprojection(const CropSample& c, double tol = 1e-6) {
  for (int j = 0; j < kNumJoints; ++j) {
    const auto p = pinhole(c.K, c.xyz[j]);
    INFO("joint " << j);
    REQUIRE(std::abs(p[0] - c.uv[j][0]) < tol);
    REQUIRE(std::abs(p[1] - c.uv[j][1]) < tol);
  }
}

double norm3(const std::array<double, 3>& a) { return std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]); }
std::array<double, 3> sub(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  return {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
}
double triple(const std::array<double, 3>& a, const std::array<double, 3>& b, const std::array<double, 3>& c) {
  return a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
}

}  // namespace

TEST_CASE("after every crop transform uv is the projection of xyz with the crop intrinsics", "[data][crop]") {
  std::mt19937 rng(11);
  CropOptions o;
  o.size = 64;
  o.box_source = BoxSource::kKeypoints;
  for (int trial = 0; trial < 300; ++trial) {
    HandSample s = random_sample(rng);
    const Augmentation full = random_augmentation(rng, o.size);
    // Each transform alone, then all together, mirrored or not.
    std::vector<Augmentation> augs(6);
    augs[1].scale = full.scale;
    augs[2].rotation = full.rotation;
    augs[3].tx = full.tx;
    augs[3].ty = full.ty;
    augs[4].hue = full.hue;
    augs[5] = full;
    for (const Augmentation& a : augs) {
      INFO("trial " << trial << " scale " << a.scale << " rotation " << a.rotation << " shift " << a.tx << ","
                    << a.ty << " left " << s.is_left);
      const CropSample c = crop_hand(s, o, a);
      require_reprojection(c);
      CHECK(c.K.fx > 0);
      CHECK(c.K.fy > 0);
      CHECK(c.mirrored == s.is_left);
      // Distances, depth of the root and the reference bone are unchanged.
      CHECK(c.s0 == Approx(norm3(sub(s.xyz[kRootJoint], s.xyz[kRefBoneChild]))).epsilon(1e-12));
      CHECK(c.z_root == Approx(s.xyz[kRootJoint][2]).epsilon(1e-12));
      CHECK(norm3(sub(c.xyz[3], c.xyz[17])) == Approx(norm3(sub(s.xyz[3], s.xyz[17]))).epsilon(1e-12));
      // The inverse map takes crop coordinates back to the original image.
      for (int j = 0; j < kNumJoints; ++j) {
        const auto back = c.to_original.apply(c.uv[j][0], c.uv[j][1]);
        REQUIRE(back[0] == Approx(s.uv[j][0]).margin(1e-9));
        REQUIRE(back[1] == Approx(s.uv[j][1]).margin(1e-9));
      }
    }
  }
}

TEST_CASE("the crop's image content moves with the labels", "[data][crop]") {
  std::mt19937 rng(5);
  CropOptions o;
  o.size = 96;
  o.box_source = BoxSource::kKeypoints;
  for (int trial = 0; trial < 40; ++trial) {
    HandSample s = random_sample(rng);
    // Mark one pixel near the hand in pure red; everything else black.
    s.rgb = Image(s.rgb.width, s.rgb.height, 3, 0);
    const int mx = static_cast<int>(std::round(s.uv[5][0])), my = static_cast<int>(std::round(s.uv[5][1]));
    REQUIRE(mx >= 0);
    REQUIRE(my >= 0);
    REQUIRE(mx < s.rgb.width);
    REQUIRE(my < s.rgb.height);
    s.rgb.at(mx, my)[0] = 255;
    Augmentation a = trial % 4 == 0 ? Augmentation{} : random_augmentation(rng, o.size);
    a.hue = 0;  // colour is checked below; hue is tested on its own
    const CropSample c = crop_hand(s, o, a);
    // Centroid of the red response; green and blue stay dark.
    const int64_t plane = int64_t(o.size) * o.size;
    double w = 0, cx = 0, cy = 0, other = 0;
    for (int y = 0; y < o.size; ++y)
      for (int x = 0; x < o.size; ++x) {
        const float r = c.image[static_cast<size_t>(y * o.size + x)];
        w += r;
        cx += r * x;
        cy += r * y;
        other += c.image[static_cast<size_t>(plane + y * o.size + x)];
      }
    const auto want = c.to_crop.apply(mx, my);
    INFO("trial " << trial << " mirrored " << c.mirrored << " zoom " << c.scale);
    if (want[0] < 2 || want[1] < 2 || want[0] > o.size - 3 || want[1] > o.size - 3) continue;  // pushed out
    REQUIRE(w > 0);
    CHECK(other == 0);
    CHECK(cx / w == Approx(want[0]).margin(0.15));
    CHECK(cy / w == Approx(want[1]).margin(0.15));
  }
}

TEST_CASE("mirroring a left hand flips the image, u and x and turns it into a right hand", "[data][crop]") {
  std::mt19937 rng(3);
  HandSample s = random_sample(rng);
  // A textured image so that the mirror is visible.
  for (int y = 0; y < s.rgb.height; ++y)
    for (int x = 0; x < s.rgb.width; ++x) {
      uint8_t* p = s.rgb.at(x, y);
      p[0] = static_cast<uint8_t>(x * 3);
      p[1] = static_cast<uint8_t>(y * 5);
      p[2] = static_cast<uint8_t>((x * y) & 0xFF);
    }
  CropOptions o;
  o.size = 48;
  o.box_source = BoxSource::kKeypoints;
  s.is_left = false;
  const CropSample plain = crop_hand(s, o);
  s.is_left = true;
  const CropSample flipped = crop_hand(s, o);
  REQUIRE(flipped.mirrored);
  REQUIRE_FALSE(plain.mirrored);
  for (int j = 0; j < kNumJoints; ++j) {
    CHECK(flipped.uv[j][0] == Approx(o.size - 1 - plain.uv[j][0]).margin(1e-9));
    CHECK(flipped.uv[j][1] == Approx(plain.uv[j][1]).margin(1e-9));
    CHECK(flipped.xyz[j][0] == Approx(-plain.xyz[j][0]).margin(1e-9));
    CHECK(flipped.xyz[j][1] == Approx(plain.xyz[j][1]).margin(1e-9));
    CHECK(flipped.xyz[j][2] == Approx(plain.xyz[j][2]).margin(1e-9));
  }
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < o.size; ++y)
      for (int x = 0; x < o.size; ++x) {
        const size_t a = static_cast<size_t>((c * o.size + y) * o.size + x);
        const size_t b = static_cast<size_t>((c * o.size + y) * o.size + (o.size - 1 - x));
        REQUIRE(flipped.image[a] == Approx(plain.image[b]).margin(1e-5));
      }
  // Handedness: the orientation of three hand vectors reverses.
  const auto orient = [](const CropSample& c) {
    return triple(sub(c.xyz[8], c.xyz[0]), sub(c.xyz[20], c.xyz[0]), sub(c.xyz[9], c.xyz[0]));
  };
  CHECK(orient(plain) * orient(flipped) < 0);
  const Mat3& R = flipped.rotation;
  const double det = R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) - R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
                     R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]);
  CHECK(det == Approx(-1.0));
  // Turning mirroring off keeps left hands as they are.
  o.mirror_left = false;
  CHECK_FALSE(crop_hand(s, o).mirrored);
}

TEST_CASE("the hand box comes from the keypoints or the mask, square with the margin", "[data][crop]") {
  HandSample s;
  s.rgb = Image(200, 100, 3, 0);
  s.K = Intrinsics{100, 100, 100, 50};
  s.id = "test/box";
  for (int j = 0; j < kNumJoints; ++j) {
    s.uv[j] = {50.0 + 2 * j, 40.0 + 0.5 * j};  // extent 40 x 10
    s.xyz[j] = {(s.uv[j][0] - 100) * 5, (s.uv[j][1] - 50) * 5, 500};
    s.visible[j] = true;
  }
  CropOptions o;
  o.size = 64;
  const HandBox kb = box_from_keypoints(s, 1.2, 1);
  CHECK(kb.cx == Approx(70));
  CHECK(kb.cy == Approx(45));
  CHECK(kb.side == Approx(48));
  // Without a mask the automatic choice uses the keypoints; the extreme
  // joints land 1/1.2 of the half-side from the centre.
  const CropSample c = crop_hand(s, o);
  CHECK(c.box.side == Approx(48));
  CHECK(c.uv[0][0] == Approx(31.5 - 20.0 * 64.0 / 48.0).margin(1e-9));
  CHECK(c.uv[20][0] == Approx(31.5 + 20.0 * 64.0 / 48.0).margin(1e-9));
  CHECK(c.scale == Approx(64.0 / 48.0));

  // A mask rectangle from (120, 20) to (139, 79) inclusive: 20 x 60 pixels.
  s.mask = Image(200, 100, 1, 0);
  for (int y = 20; y < 80; ++y)
    for (int x = 120; x < 140; ++x) s.mask.at(x, y)[0] = 255;
  HandBox mb;
  REQUIRE(box_from_mask(s.mask, 1.2, 1, &mb));
  CHECK(mb.cx == Approx(129.5));
  CHECK(mb.cy == Approx(49.5));
  CHECK(mb.side == Approx(72));
  CHECK(crop_hand(s, o).box.cx == Approx(129.5));
  o.box_source = BoxSource::kKeypoints;
  CHECK(crop_hand(s, o).box.cx == Approx(70));

  // An empty mask: automatic falls back to the keypoints, kMask refuses.
  s.mask = Image(200, 100, 1, 0);
  o.box_source = BoxSource::kAuto;
  CHECK(crop_hand(s, o).box.cx == Approx(70));
  o.box_source = BoxSource::kMask;
  CHECK_THROWS_WITH(crop_hand(s, o), Catch::Contains("test/box") && Catch::Contains("no hand pixels"));
  // A degenerate extent is widened to the minimum side.
  for (int j = 0; j < kNumJoints; ++j) s.uv[j] = {60, 60};
  CHECK(box_from_keypoints(s, 1.2, 32).side == Approx(32));
}

// The authors' RHD box (datasets/RHD.py:152-213), worked by hand on a 320 x 320 image.
TEST_CASE("the reference box reproduces the authors' RHD crop rule", "[data][crop]") {
  HandSample s;
  s.rgb = Image(320, 320, 3, 0);
  s.id = "test/reference_box";
  auto place = [&](double x0, double x1, double y0, double y1, double rx, double ry) {
    for (int j = 0; j < kNumJoints; ++j) {
      const double t = j / double(kNumJoints - 1);
      s.uv[j] = {x0 + t * (x1 - x0), y1 - t * (y1 - y0)};
      s.visible[j] = true;
    }
    s.uv[kRootJoint] = {rx, ry};
  };
  CropOptions o;
  o.box_source = BoxSource::kReference;
  o.margin = 3.0;  // unused by the reference rule
  SECTION("a hand in the middle") {
    // Extent x [100, 160], y [120, 200], root (130, 150): reach = 2 max(30, 30) = 60
    // in x and 2 max(50, 30) = 100 in y, so side 1.2 * 100 = 120 around the extent's
    // middle (130, 160): corners (70, 100), nothing to clip or push back.
    place(100, 160, 120, 200, 130, 150);
    const HandBox b = hand_box(s, o);
    CHECK(b.side == 120);
    CHECK(b.cx == Approx(70 + 60 - 0.5));
    CHECK(b.cy == Approx(100 + 60 - 0.5));
  }
  SECTION("a hand at the border: clipped to [10, 310], pushed back inside") {
    // Extent x [250, 318], y [20, 60], root (300, 40): reach 2 max(18, 50) = 100,
    // side 120. x: [224, 344] -> [224, 310] (86); y: [-20, 100] -> [10, 100] (90);
    // side = 90. x1 = 224 - (224 + 90 - 320 + 10) = 220, y1 = 10.
    place(250, 318, 20, 60, 300, 40);
    const HandBox b = hand_box(s, o);
    CHECK(b.side == 90);
    CHECK(b.cx == Approx(220 + 45 - 0.5));
    CHECK(b.cy == Approx(10 + 45 - 0.5));
  }
  SECTION("occluded joints do not count unless none is visible") {
    place(100, 160, 120, 200, 130, 150);
    const HandBox visible_only = hand_box(s, o);
    s.uv[5] = {5, 5};  // an inner joint moved far away, but occluded
    s.visible[5] = false;
    const HandBox with_hidden = hand_box(s, o);
    CHECK(with_hidden.side == visible_only.side);
    CHECK(with_hidden.cx == visible_only.cx);
    for (int j = 0; j < kNumJoints; ++j) s.visible[j] = false;
    CHECK(hand_box(s, o).side > visible_only.side);  // now every joint, the far one included
  }
  SECTION("the crop maps the integer box onto the S x S input") {
    place(100, 160, 120, 200, 130, 150);
    s.K = Intrinsics{300, 300, 160, 160};
    o.size = 240;
    const CropSample c = crop_hand(s, o);
    // Pixel x1 = 70 covers [69.5, 70.5]: its left edge lands on the crop's left edge.
    CHECK(c.to_crop.apply(69.5, 99.5)[0] == Approx(-0.5));
    CHECK(c.to_crop.apply(69.5, 99.5)[1] == Approx(-0.5));
    CHECK(c.to_crop.apply(189.5, 219.5)[0] == Approx(239.5));
    CHECK(c.scale == Approx(2.0));
  }
}

TEST_CASE("joints without annotation stay out of the labels", "[data][crop]") {
  std::mt19937 rng(8);
  HandSample s = random_sample(rng);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Fingertips only, as in Dexter+Object.
  for (int j = 0; j < kNumJoints; ++j) {
    if (j == 1 || j == 5 || j == 9 || j == 13 || j == 17) continue;
    s.xyz[j] = {nan, nan, nan};
    s.uv[j] = {nan, nan};
    s.visible[j] = false;
  }
  s.visible[5] = true;
  CropOptions o;
  o.size = 32;
  const CropSample c = crop_hand(s, o);
  for (int j = 0; j < kNumJoints; ++j) {
    CHECK(std::isfinite(c.uv[j][0]));
    CHECK(std::isfinite(c.xyz[j][2]));
  }
  CHECK(c.visible[5]);
  CHECK_FALSE(c.visible[0]);
  CHECK(c.uv[0][0] == 0);
  CHECK(c.xyz[12][2] == 0);
  CHECK(c.s0 == 0);
  CHECK(c.z_root == 0);
  for (int j : {1, 5, 9, 13, 17}) {
    const auto p = pinhole(c.K, c.xyz[j]);
    CHECK(p[0] == Approx(c.uv[j][0]).margin(1e-6));
    CHECK(p[1] == Approx(c.uv[j][1]).margin(1e-6));
  }
}

TEST_CASE("crop geometry: zoom, rotation about the centre and the principal point", "[data][crop]") {
  Intrinsics K{500, 500, 310, 245};
  const HandBox box{300, 200, 100};
  const CropGeometry g0 = crop_geometry(K, box, 200, false);
  CHECK(g0.scale == Approx(2));
  const auto centre = g0.to_crop.apply(300, 200);
  CHECK(centre[0] == Approx(99.5));
  CHECK(centre[1] == Approx(99.5));
  CHECK(g0.K.cx == Approx(99.5 + 2 * 10));
  CHECK(g0.K.cy == Approx(99.5 + 2 * 45));
  Augmentation a;
  a.rotation = kPi / 2;
  const CropGeometry g1 = crop_geometry(K, box, 200, false, a);
  // A point right of the box centre goes below it (y points down).
  const auto p = g1.to_crop.apply(310, 200);
  CHECK(p[0] == Approx(99.5).margin(1e-9));
  CHECK(p[1] == Approx(119.5).margin(1e-9));
  // The camera turns about its optical axis: a point on the axis stays on it.
  CHECK(g1.rotation[2][2] == 1);
  CHECK(g1.rotation[0][1] == Approx(-1).margin(1e-12));
  CHECK_THROWS_WITH(crop_geometry(Intrinsics{-1, 1, 0, 0}, box, 64, false), Catch::Contains("positive focal"));
}

TEST_CASE("crop errors name the sample", "[data][crop]") {
  HandSample s;
  s.id = "rhd/training/00042";
  CHECK_THROWS_WITH(crop_hand(s, CropOptions{}), Catch::Contains("rhd/training/00042") && Catch::Contains("RGB"));
  std::mt19937 rng(2);
  HandSample t = random_sample(rng);
  t.K.fx = 0;
  CHECK_THROWS_WITH(crop_hand(t, CropOptions{}), Catch::Contains("test/random") && Catch::Contains("intrinsics"));
}
