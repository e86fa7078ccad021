#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "lgh/data/augment.hpp"
#include "lgh/data/color.hpp"
#include "lgh/data/crop.hpp"

using namespace lgh;
using namespace lgh::data;

TEST_CASE("augmentation draws cover the paper's ranges", "[data][augment]") {
  const AugmentOptions o;  // scale [1, 1.2], rotation [-pi, pi], 20 px at 256, hue [-0.1, 0.1]
  double lo[5] = {1e9, 1e9, 1e9, 1e9, 1e9}, hi[5] = {-1e9, -1e9, -1e9, -1e9, -1e9};
  for (int64_t i = 0; i < 5000; ++i) {
    PhiloxEngine rng = augmentation_engine(9, 0, i);
    const Augmentation a = draw_augmentation(o, 128, rng);
    const double v[5] = {a.scale, a.rotation, a.tx, a.ty, a.hue};
    for (int k = 0; k < 5; ++k) {
      lo[k] = std::min(lo[k], v[k]);
      hi[k] = std::max(hi[k], v[k]);
    }
  }
  // Inside the ranges, and close to both ends of each.
  const double want_lo[5] = {1.0, -3.141592653589793, -10, -10, -0.1};
  const double want_hi[5] = {1.2, 3.141592653589793, 10, 10, 0.1};  // 20 px of 256 = 10 px of 128
  for (int k = 0; k < 5; ++k) {
    INFO("parameter " << k);
    CHECK(lo[k] >= want_lo[k]);
    CHECK(hi[k] <= want_hi[k]);
    const double span = want_hi[k] - want_lo[k];
    CHECK(lo[k] < want_lo[k] + 0.01 * span);
    CHECK(hi[k] > want_hi[k] - 0.01 * span);
  }
}

TEST_CASE("augmentation depends only on seed, epoch and sample index", "[data][augment]") {
  const AugmentOptions o;
  auto draw = [&](uint64_t seed, int64_t epoch, int64_t index) {
    PhiloxEngine rng = augmentation_engine(seed, epoch, index);
    return draw_augmentation(o, 256, rng);
  };
  const Augmentation a = draw(1, 2, 3), b = draw(1, 2, 3);
  CHECK(a.scale == b.scale);
  CHECK(a.rotation == b.rotation);
  CHECK(a.tx == b.tx);
  CHECK(a.ty == b.ty);
  CHECK(a.hue == b.hue);
  CHECK(draw(1, 2, 4).rotation != a.rotation);
  CHECK(draw(1, 3, 3).rotation != a.rotation);
  CHECK(draw(2, 2, 3).rotation != a.rotation);
  CHECK_THROWS(augmentation_engine(0, -1, 0));
  AugmentOptions bad;
  bad.scale_min = 2;
  PhiloxEngine rng(0);
  CHECK_THROWS_WITH(draw_augmentation(bad, 64, rng), Catch::Contains("scale range"));
}

TEST_CASE("RGB to HSV matches the standard definition", "[data][color]") {
  struct Case {
    float r, g, b, h, s, v;
  };
  // Values from the definition (colorsys): hue in turns.
  const Case cases[] = {{1, 0, 0, 0, 1, 1},        {0, 1, 0, 1.0f / 3, 1, 1},  {0, 0, 1, 2.0f / 3, 1, 1},
                        {1, 1, 0, 1.0f / 6, 1, 1}, {0, 1, 1, 0.5f, 1, 1},      {1, 0, 1, 5.0f / 6, 1, 1},
                        {0.5f, 0.25f, 0.25f, 0, 0.5f, 0.5f}, {0.2f, 0.2f, 0.2f, 0, 0, 0.2f}};
  for (const Case& c : cases) {
    float h, s, v;
    rgb_to_hsv(c.r, c.g, c.b, &h, &s, &v);
    INFO(c.r << "," << c.g << "," << c.b);
    CHECK(h == Approx(c.h).margin(1e-6));
    CHECK(s == Approx(c.s).margin(1e-6));
    CHECK(v == Approx(c.v).margin(1e-6));
    float r, g, b;
    hsv_to_rgb(c.h, c.s, c.v, &r, &g, &b);
    CHECK(r == Approx(c.r).margin(1e-6));
    CHECK(g == Approx(c.g).margin(1e-6));
    CHECK(b == Approx(c.b).margin(1e-6));
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < 10000; ++i) {
    const float r0 = u(rng), g0 = u(rng), b0 = u(rng);
    float h, s, v, r, g, b;
    rgb_to_hsv(r0, g0, b0, &h, &s, &v);
    REQUIRE(h >= 0);
    REQUIRE(h < 1);
    hsv_to_rgb(h, s, v, &r, &g, &b);
    REQUIRE(r == Approx(r0).margin(2e-6));
    REQUIRE(g == Approx(g0).margin(2e-6));
    REQUIRE(b == Approx(b0).margin(2e-6));
  }
}

TEST_CASE("hue shift turns colours and keeps grey, saturation and value", "[data][color]") {
  // Three pixels: red, grey, a mid orange.
  std::vector<float> img = {1, 0.5f, 0.8f,   // R plane
                            0, 0.5f, 0.4f,   // G plane
                            0, 0.5f, 0.0f};  // B plane
  std::vector<float> shifted = img;
  shift_hue(shifted.data(), 3, 1.0f / 3);
  // Red becomes green.
  CHECK(shifted[0] == Approx(0).margin(1e-6));
  CHECK(shifted[3] == Approx(1).margin(1e-6));
  CHECK(shifted[6] == Approx(0).margin(1e-6));
  // Grey has no hue.
  CHECK(shifted[1] == 0.5f);
  CHECK(shifted[4] == 0.5f);
  CHECK(shifted[7] == 0.5f);
  // Orange (h = 1/12) goes to h = 5/12 with the same s and v.
  float h, s, v;
  rgb_to_hsv(shifted[2], shifted[5], shifted[8], &h, &s, &v);
  CHECK(h == Approx(1.0 / 12 + 1.0 / 3).margin(1e-6));
  CHECK(s == Approx(1).margin(1e-6));
  CHECK(v == Approx(0.8).margin(1e-6));
  // Negative shifts wrap around.
  std::vector<float> back = img;
  shift_hue(back.data(), 3, -0.1f);
  rgb_to_hsv(back[0], back[3], back[6], &h, &s, &v);
  CHECK(h == Approx(0.9).margin(1e-6));
}

TEST_CASE("the crop applies the drawn hue to its output", "[data][augment]") {
  HandSample s;
  s.rgb = Image(40, 40, 3, 0);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 40; ++x) {
      s.rgb.at(x, y)[0] = static_cast<uint8_t>(200 - 3 * x);
      s.rgb.at(x, y)[1] = static_cast<uint8_t>(50 + 2 * y);
      s.rgb.at(x, y)[2] = 90;
    }
  s.K = Intrinsics{50, 50, 20, 20};
  for (int j = 0; j < kNumJoints; ++j) {
    s.uv[j] = {10.0 + j, 12.0 + 0.5 * j};
    s.xyz[j] = {(s.uv[j][0] - 20) * 10, (s.uv[j][1] - 20) * 10, 500};
  }
  s.id = "test/hue";
  CropOptions o;
  o.size = 32;
  Augmentation a;
  const CropSample plain = crop_hand(s, o, a);
  a.hue = 0.07;
  const CropSample jittered = crop_hand(s, o, a);
  std::vector<float> want = plain.image;
  shift_hue(want.data(), 32 * 32, 0.07f);
  REQUIRE(jittered.image.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) REQUIRE(jittered.image[i] == want[i]);
  CHECK(jittered.image != plain.image);
  CHECK(jittered.hue == 0.07);
}
