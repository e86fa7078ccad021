// Drawing on Images: anti-aliased lines, discs and rings, the hand skeleton
// overlay with one colour per finger, contact sheets (tiled images) and a
// small 5x7 bitmap font for labels. Everything clips at the image border, so
// callers may draw partly (or wholly) outside it.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/hand.hpp"
#include "lgh/data/image.hpp"
#include "lgh/data/sample.hpp"

namespace lgh {
namespace data {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

// Skeleton colours: thumb red, index orange, middle green, ring blue,
// little magenta (finger = 0..4); the wrist is white.
inline Rgb finger_colour(int finger) {
  static const Rgb c[5] = {{230, 40, 40}, {250, 160, 20}, {40, 200, 60}, {40, 120, 240}, {200, 60, 220}};
  return finger >= 0 && finger < 5 ? c[finger] : Rgb{255, 255, 255};
}

// Colour of joint j on the skeleton overlay.
inline Rgb joint_colour(int j) { return j == 0 ? Rgb{255, 255, 255} : finger_colour((j - 1) / 4); }

namespace detail {

inline void check_drawable(const Image& img, const char* what) {
  LGH_CHECK(!img.empty() && (img.channels == 1 || img.channels == 3 || img.channels == 4),
            what << ": expected a 1-, 3- or 4-channel image, got " << img.width << "x" << img.height << "x"
                 << img.channels);
}

// Blends colour c into pixel (x, y) with coverage a in [0, 1]; 1-channel
// images receive the colour's luma.
inline void blend(Image& img, int x, int y, const Rgb& c, float a) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height || a <= 0.f) return;
  a = std::min(a, 1.f);
  uint8_t* p = img.at(x, y);
  const auto mix = [a](uint8_t dst, uint8_t src) {
    return static_cast<uint8_t>(std::lround(dst + a * (static_cast<float>(src) - dst)));
  };
  if (img.channels == 1) {
    const uint8_t luma = static_cast<uint8_t>(std::lround(0.299 * c.r + 0.587 * c.g + 0.114 * c.b));
    p[0] = mix(p[0], luma);
  } else {
    p[0] = mix(p[0], c.r);
    p[1] = mix(p[1], c.g);
    p[2] = mix(p[2], c.b);
  }
}

// Visits the pixels within `reach` of the box [x0, x1] x [y0, y1], clipped.
template <typename F>
void for_pixels_near(const Image& img, double x0, double y0, double x1, double y1, double reach, F&& f) {
  const int ix0 = std::max(0, static_cast<int>(std::floor(std::min(x0, x1) - reach)));
  const int ix1 = std::min(img.width - 1, static_cast<int>(std::ceil(std::max(x0, x1) + reach)));
  const int iy0 = std::max(0, static_cast<int>(std::floor(std::min(y0, y1) - reach)));
  const int iy1 = std::min(img.height - 1, static_cast<int>(std::ceil(std::max(y0, y1) + reach)));
  for (int y = iy0; y <= iy1; ++y)
    for (int x = ix0; x <= ix1; ++x) f(x, y);
}

inline bool finite2(double a, double b) { return std::isfinite(a) && std::isfinite(b); }

}  // namespace detail

// A line of the given width (pixels) with round ends; pixel (x, y) has its
// centre at (x, y). Coverage falls off linearly over one pixel at the edge.
inline void draw_line(Image& img, double x0, double y0, double x1, double y1, const Rgb& c, double width = 1.0) {
  detail::check_drawable(img, "draw_line");
  if (!detail::finite2(x0, y0) || !detail::finite2(x1, y1)) return;
  const double half = 0.5 * width;
  const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  detail::for_pixels_near(img, x0, y0, x1, y1, half + 1, [&](int x, int y) {
    double t = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
    t = std::min(1.0, std::max(0.0, t));
    const double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
    const double dist = std::sqrt(ex * ex + ey * ey);
    detail::blend(img, x, y, c, static_cast<float>(half + 0.5 - dist));
  });
}

// A filled disc of radius r.
inline void draw_disc(Image& img, double cx, double cy, double r, const Rgb& c) {
  detail::check_drawable(img, "draw_disc");
  if (!detail::finite2(cx, cy)) return;
  detail::for_pixels_near(img, cx, cy, cx, cy, r + 1, [&](int x, int y) {
    const double dist = std::hypot(x - cx, y - cy);
    detail::blend(img, x, y, c, static_cast<float>(r + 0.5 - dist));
  });
}

// A ring of radius r (to the middle of the stroke) and the given stroke width.
inline void draw_circle(Image& img, double cx, double cy, double r, const Rgb& c, double width = 1.0) {
  detail::check_drawable(img, "draw_circle");
  if (!detail::finite2(cx, cy)) return;
  const double half = 0.5 * width;
  detail::for_pixels_near(img, cx, cy, cx, cy, r + half + 1, [&](int x, int y) {
    const double dist = std::abs(std::hypot(x - cx, y - cy) - r);
    detail::blend(img, x, y, c, static_cast<float>(half + 0.5 - dist));
  });
}

// An axis-aligned rectangle outline (corners inclusive).
inline void draw_rect(Image& img, double x0, double y0, double x1, double y1, const Rgb& c, double width = 1.0) {
  draw_line(img, x0, y0, x1, y0, c, width);
  draw_line(img, x1, y0, x1, y1, c, width);
  draw_line(img, x1, y1, x0, y1, c, width);
  draw_line(img, x0, y1, x0, y0, c, width);
}

struct SkeletonStyle {
  double line_width = 0;    // 0: about 1/128 of the image side, at least 1
  double joint_radius = 0;  // 0: about 1/90 of the image side, at least 1.5
  bool show_hidden = true;  // draw occluded joints as hollow rings (else skip them)
  float hidden_bone_alpha = 0.45f;  // bones with a hidden end are drawn fainter
};

// Draws the 21-joint skeleton (canonical order): bones in their finger's
// colour, visible joints as dots with a dark rim, occluded ones as rings.
inline void draw_skeleton(Image& img, const std::array<std::array<double, 2>, kNumJoints>& uv,
                          const std::array<bool, kNumJoints>& visible, const SkeletonStyle& style = {}) {
  detail::check_drawable(img, "draw_skeleton");
  const double side = std::min(img.width, img.height);
  const double lw = style.line_width > 0 ? style.line_width : std::max(1.0, side / 128);
  const double jr = style.joint_radius > 0 ? style.joint_radius : std::max(1.5, side / 90);
  for (int j = 1; j < kNumJoints; ++j) {
    const int p = kParent[j];
    Rgb c = finger_colour((j - 1) / 4);
    if (!(visible[j] && visible[p])) {
      // Faded: blend the colour towards grey instead of alpha, so the line
      // stays legible over any background.
      const float a = style.hidden_bone_alpha;
      c = Rgb{static_cast<uint8_t>(128 + a * (c.r - 128)), static_cast<uint8_t>(128 + a * (c.g - 128)),
              static_cast<uint8_t>(128 + a * (c.b - 128))};
    }
    draw_line(img, uv[p][0], uv[p][1], uv[j][0], uv[j][1], c, lw);
  }
  for (int j = 0; j < kNumJoints; ++j) {
    const Rgb c = joint_colour(j);
    if (visible[j]) {
      draw_disc(img, uv[j][0], uv[j][1], jr + 0.7, Rgb{20, 20, 20});
      draw_disc(img, uv[j][0], uv[j][1], jr, c);
    } else if (style.show_hidden) {
      draw_circle(img, uv[j][0], uv[j][1], jr, Rgb{20, 20, 20}, 2.2);
      draw_circle(img, uv[j][0], uv[j][1], jr, c, 1.2);
    }
  }
}

inline void draw_skeleton(Image& img, const HandSample& s, const SkeletonStyle& style = {}) {
  draw_skeleton(img, s.uv, s.visible, style);
}

// ---- text ---------------------------------------------------------------------

namespace detail {
// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
inline const uint8_t* glyph(char ch) {
  static const uint8_t digits[10][7] = {
      {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
      {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
      {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
      {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
      {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}};
  static const uint8_t letters[26][7] = {
      {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
      {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
      {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
      {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
      {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
      {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
      {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
      {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
      {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
      {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
      {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
      {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
      {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}};
  static const uint8_t blank[7] = {0, 0, 0, 0, 0, 0, 0};
  static const uint8_t dash[7] = {0, 0, 0, 0x1F, 0, 0, 0};
  static const uint8_t dot[7] = {0, 0, 0, 0, 0, 0x0C, 0x0C};
  static const uint8_t colon[7] = {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0};
  static const uint8_t slash[7] = {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10};
  static const uint8_t under[7] = {0, 0, 0, 0, 0, 0, 0x1F};
  static const uint8_t equal[7] = {0, 0, 0x1F, 0, 0x1F, 0, 0};
  static const uint8_t unknown[7] = {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04};  // '?'
  if (ch >= '0' && ch <= '9') return digits[ch - '0'];
  if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  if (ch >= 'A' && ch <= 'Z') return letters[ch - 'A'];
  switch (ch) {
    case ' ': return blank;
    case '-': return dash;
    case '.': return dot;
    case ':': return colon;
    case '/': return slash;
    case '_': return under;
    case '=': return equal;
    default: return unknown;
  }
}
}  // namespace detail

// Width and height in pixels of `text` drawn at integer `scale`.
inline std::array<int, 2> text_size(const std::string& text, int scale = 1) {
  const int n = static_cast<int>(text.size());
  return {n > 0 ? (6 * n - 1) * scale : 0, 7 * scale};
}

// Draws `text` (digits, letters, space and - . : / _ =; letters in upper
// case) with its top-left corner at (x, y); each font pixel becomes a
// scale x scale block. With `shadow`, a dark outline keeps it readable on
// any background.
inline void draw_text(Image& img, int x, int y, const std::string& text, const Rgb& c, int scale = 1,
                      bool shadow = true) {
  detail::check_drawable(img, "draw_text");
  LGH_CHECK(scale >= 1, "draw_text: scale must be at least 1, got " << scale);
  const auto put = [&](int ox, int oy, const Rgb& col) {
    for (size_t i = 0; i < text.size(); ++i) {
      const uint8_t* g = detail::glyph(text[i]);
      const int gx = x + static_cast<int>(i) * 6 * scale + ox;
      for (int row = 0; row < 7; ++row)
        for (int k = 0; k < 5; ++k)
          if (g[row] & (0x10 >> k))
            for (int sy = 0; sy < scale; ++sy)
              for (int sx = 0; sx < scale; ++sx) detail::blend(img, gx + k * scale + sx, y + oy + row * scale + sy, col, 1.f);
    }
  };
  if (shadow)
    for (const auto& o : {std::array<int, 2>{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}}) put(o[0], o[1], Rgb{0, 0, 0});
  put(0, 0, c);
}

// ---- contact sheets ---------------------------------------------------------

// Tiles images row by row, `columns` per row, `gap` pixels apart on a
// `background` colour. Tiles may differ in size: each cell is as large as
// the largest tile; smaller ones sit at the cell's top-left corner. 1-channel
// tiles are expanded to grey.
inline Image tile_images(const std::vector<Image>& tiles, int columns, int gap = 2, const Rgb& background = {32, 32, 32}) {
  LGH_CHECK(!tiles.empty(), "tile_images: no images to tile");
  LGH_CHECK(columns >= 1, "tile_images: columns must be at least 1, got " << columns);
  LGH_CHECK(gap >= 0, "tile_images: gap must be >= 0, got " << gap);
  int cw = 0, ch = 0;
  for (const Image& t : tiles) {
    LGH_CHECK(!t.empty() && (t.channels == 1 || t.channels == 3 || t.channels == 4),
              "tile_images: tiles must be non-empty 1-, 3- or 4-channel images");
    cw = std::max(cw, t.width);
    ch = std::max(ch, t.height);
  }
  const int n = static_cast<int>(tiles.size());
  const int cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  Image out(cols * cw + (cols + 1) * gap, rows * ch + (rows + 1) * gap, 3);
  for (size_t i = 0; i < out.pixels.size(); i += 3) {
    out.pixels[i] = background.r;
    out.pixels[i + 1] = background.g;
    out.pixels[i + 2] = background.b;
  }
  for (int i = 0; i < n; ++i) {
    const Image& t = tiles[i];
    const int ox = gap + (i % cols) * (cw + gap), oy = gap + (i / cols) * (ch + gap);
    for (int y = 0; y < t.height; ++y)
      for (int x = 0; x < t.width; ++x) {
        const uint8_t* s = t.at(x, y);
        uint8_t* d = out.at(ox + x, oy + y);
        if (t.channels == 1)
          d[0] = d[1] = d[2] = s[0];
        else
          std::copy(s, s + 3, d);
      }
  }
  return out;
}

// Shrinks by an integer factor with a box filter (thumbnails of large
// samples on a contact sheet); factor 1 returns a copy.
inline Image downsample(const Image& img, int factor) {
  LGH_CHECK(factor >= 1, "downsample: factor must be at least 1, got " << factor);
  if (factor == 1) return img;
  Image out(std::max(1, img.width / factor), std::max(1, img.height / factor), img.channels);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      for (int c = 0; c < img.channels; ++c) {
        int sum = 0, cnt = 0;
        for (int sy = 0; sy < factor; ++sy)
          for (int sx = 0; sx < factor; ++sx) {
            const int X = x * factor + sx, Y = y * factor + sy;
            if (X < img.width && Y < img.height) {
              sum += img.at(X, Y)[c];
              ++cnt;
            }
          }
        out.at(x, y)[c] = static_cast<uint8_t>((sum + cnt / 2) / cnt);
      }
    }
  return out;
}

}  // namespace data
}  // namespace lgh
