#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "lgh/data/draw.hpp"

using namespace lgh;
using namespace lgh::data;

namespace {

Rgb pixel(const Image& img, int x, int y) {
  const uint8_t* p = img.at(x, y);
  return Rgb{p[0], p[1], p[2]};
}

int count_changed(const Image& img, uint8_t background) {
  int n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = img.at(x, y);
      bool changed = false;
      for (int c = 0; c < img.channels; ++c) changed |= p[c] != background;
      n += changed;
    }
  return n;
}

}  // namespace

TEST_CASE("draw_line covers the segment and nothing far from it", "[data][draw]") {
  Image img(40, 30, 3, 0);
  const Rgb red{255, 0, 0};
  draw_line(img, 5, 5, 30, 20, red, 3.0);
  // On the segment: full colour.
  for (double t : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    const int x = static_cast<int>(std::lround(5 + 25 * t)), y = static_cast<int>(std::lround(5 + 15 * t));
    CHECK(pixel(img, x, y) == red);
  }
  // Farther than half the width plus the one-pixel ramp: untouched.
  const double nx = -15 / std::hypot(25.0, 15.0), ny = 25 / std::hypot(25.0, 15.0);  // unit normal
  for (double t : {0.2, 0.5, 0.8}) {
    const double cx = 5 + 25 * t, cy = 5 + 15 * t;
    for (double side : {-1.0, 1.0}) {
      const int x = static_cast<int>(std::lround(cx + side * 4 * nx)), y = static_cast<int>(std::lround(cy + side * 4 * ny));
      CHECK(pixel(img, x, y) == Rgb{0, 0, 0});
    }
  }
  CHECK(pixel(img, 35, 5) == Rgb{0, 0, 0});
  CHECK(pixel(img, 0, 29) == Rgb{0, 0, 0});
  // Roughly width x length pixels are touched.
  const int changed = count_changed(img, 0);
  CHECK(changed > 3 * 29 * 0.8);
  CHECK(changed < (3 + 2) * (29 + 5));
}

TEST_CASE("drawing clips at the border and ignores non-finite coordinates", "[data][draw]") {
  Image img(16, 16, 3, 10);
  draw_line(img, -100, -100, -50, -40, Rgb{255, 255, 255}, 5);
  draw_disc(img, 1000, 5, 4, Rgb{255, 255, 255});
  draw_line(img, std::nan(""), 3, 5, 5, Rgb{255, 255, 255});
  CHECK(count_changed(img, 10) == 0);
  draw_line(img, -10, 8, 30, 8, Rgb{255, 255, 255}, 1);  // crosses the whole image
  for (int x = 0; x < 16; ++x) CHECK(pixel(img, x, 8) == Rgb{255, 255, 255});
  CHECK(pixel(img, 5, 5) == Rgb{10, 10, 10});
  Image empty;
  CHECK_THROWS_AS(draw_line(empty, 0, 0, 1, 1, Rgb{}), Error);
}

TEST_CASE("discs and rings", "[data][draw]") {
  Image img(64, 64, 3, 0);
  const Rgb c{0, 200, 100};
  draw_disc(img, 31.5, 31.5, 10, c);
  int full = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) full += pixel(img, x, y) == c;
  CHECK(full == Approx(3.14159265 * 9.5 * 9.5).epsilon(0.05));  // full coverage within r - 1/2
  CHECK(pixel(img, 31, 31) == c);
  CHECK(pixel(img, 31, 18) == Rgb{0, 0, 0});

  Image ring(64, 64, 3, 0);
  draw_circle(ring, 32, 32, 12, c, 2);
  CHECK(pixel(ring, 32, 32) == Rgb{0, 0, 0});  // hollow
  CHECK(pixel(ring, 44, 32) == c);            // on the circle
  CHECK(pixel(ring, 32, 20) == c);
  CHECK(pixel(ring, 32, 27) == Rgb{0, 0, 0});
}

TEST_CASE("one-channel images receive the colour's luma", "[data][draw]") {
  Image g(8, 8, 1, 0);
  draw_disc(g, 4, 4, 2, Rgb{255, 255, 255});
  CHECK(g.at(4, 4)[0] == 255);
  draw_disc(g, 4, 4, 2, Rgb{0, 255, 0});
  CHECK(g.at(4, 4)[0] == 150);  // 0.587 * 255
}

TEST_CASE("draw_skeleton colours bones by finger and marks occluded joints hollow", "[data][draw]") {
  Image img(100, 100, 3, 0);
  std::array<std::array<double, 2>, kNumJoints> uv{};
  std::array<bool, kNumJoints> vis{};
  // A fan: wrist at the bottom, each finger a vertical line of 4 joints.
  uv[0] = {50, 95};
  for (int f = 0; f < 5; ++f)
    for (int d = 0; d < 4; ++d) uv[joint_index(f, d)] = {10.0 + 20 * f, 15.0 + 15 * d};
  vis.fill(true);
  vis[joint_index(Ring, 1)] = false;
  SkeletonStyle style;
  style.line_width = 3;
  style.joint_radius = 3;
  draw_skeleton(img, uv, vis, style);
  // The middle of the middle finger's PIP-DIP bone is green (the finger colour).
  CHECK(pixel(img, 50, 37) == finger_colour(Middle));
  CHECK(pixel(img, 10, 37) == finger_colour(Thumb));
  // Visible joints are filled dots of the finger's colour.
  CHECK(pixel(img, 30, 15) == finger_colour(Index));
  CHECK(pixel(img, 50, 95) == Rgb{255, 255, 255});  // wrist
  // The hidden ring DIP: its centre is not filled; its bones are faded.
  const auto dip = uv[joint_index(Ring, 1)];
  CHECK_FALSE(pixel(img, static_cast<int>(dip[0]), static_cast<int>(dip[1])) == finger_colour(Ring));
  CHECK(pixel(img, 70, 37) != finger_colour(Ring));
  CHECK(pixel(img, 70, 52) == finger_colour(Ring));  // PIP-MCP bone, both ends visible
  // Nothing is drawn far from the skeleton.
  CHECK(pixel(img, 95, 5) == Rgb{0, 0, 0});
}

TEST_CASE("tile_images lays tiles out in a grid", "[data][draw]") {
  std::vector<Image> tiles;
  for (int i = 0; i < 5; ++i) tiles.emplace_back(10, 8, 3, static_cast<uint8_t>(50 * (i + 1)));
  tiles.emplace_back(6, 6, 1, 7);  // smaller, grey
  const Image sheet = tile_images(tiles, 4, 2, Rgb{1, 2, 3});
  CHECK(sheet.width == 4 * 10 + 5 * 2);
  CHECK(sheet.height == 2 * 8 + 3 * 2);
  CHECK(pixel(sheet, 0, 0) == Rgb{1, 2, 3});                // gap
  CHECK(pixel(sheet, 2, 2) == Rgb{50, 50, 50});             // tile 0
  CHECK(pixel(sheet, 2 + 3 * 12 + 9, 2 + 7) == Rgb{200, 200, 200});  // tile 3, bottom-right pixel
  CHECK(pixel(sheet, 2, 2 + 10) == Rgb{250, 250, 250});    // tile 4: second row, first column
  CHECK(pixel(sheet, 2 + 12, 2 + 10) == Rgb{7, 7, 7});      // tile 5 (1 channel) expanded to grey
  CHECK(pixel(sheet, 2 + 12 + 7, 2 + 10) == Rgb{1, 2, 3});  // right of the smaller tile: background
  CHECK_THROWS_AS(tile_images({}, 3), Error);
  CHECK_THROWS_AS(tile_images(tiles, 0), Error);
}

TEST_CASE("draw_text stamps glyphs inside their box", "[data][draw]") {
  Image img(60, 20, 3, 0);
  const auto size = text_size("A1", 2);
  CHECK(size[0] == (6 * 2 - 1) * 2);
  CHECK(size[1] == 14);
  draw_text(img, 3, 3, "A1", Rgb{255, 255, 0}, 2, false);
  int inside = 0, outside = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const bool lit = pixel(img, x, y) == Rgb{255, 255, 0};
      const bool in_box = x >= 3 && x < 3 + size[0] && y >= 3 && y < 3 + size[1];
      (in_box ? inside : outside) += lit;
    }
  CHECK(inside > 20);
  CHECK(outside == 0);
  // 'A': top row of the glyph has its middle three pixels lit, the corners not.
  CHECK(pixel(img, 3 + 2 * 1, 3) == Rgb{255, 255, 0});
  CHECK(pixel(img, 3, 3) == Rgb{0, 0, 0});
  // Lower case maps to upper case; unknown characters draw '?', not nothing.
  Image a(20, 10, 3, 0), b(20, 10, 3, 0), c(20, 10, 3, 0);
  draw_text(a, 0, 0, "a", Rgb{255, 255, 255}, 1, false);
  draw_text(b, 0, 0, "A", Rgb{255, 255, 255}, 1, false);
  draw_text(c, 0, 0, "#", Rgb{255, 255, 255}, 1, false);
  CHECK(a.pixels == b.pixels);
  CHECK(count_changed(c, 0) > 0);
  CHECK_THROWS_AS(draw_text(a, 0, 0, "x", Rgb{}, 0), Error);
}

TEST_CASE("downsample averages blocks", "[data][draw]") {
  Image img(4, 2, 1, 0);
  img.pixels = {0, 100, 10, 20, 200, 100, 30, 40};
  const Image d = downsample(img, 2);
  REQUIRE(d.width == 2);
  REQUIRE(d.height == 1);
  CHECK(d.pixels[0] == 100);  // (0 + 100 + 200 + 100) / 4
  CHECK(d.pixels[1] == 25);   // (10 + 20 + 30 + 40) / 4
  CHECK(downsample(img, 1).pixels == img.pixels);
}
