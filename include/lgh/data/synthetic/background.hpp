// Random backgrounds for the synthetic hands, and sensor noise. Variety
// matters more than realism here: a network that sees smooth gradients,
// cluttered shapes, stripes and noise of any colour behind the hand cannot
// find the hand by its background.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "lgh/core/philox.hpp"
#include "lgh/data/image.hpp"
#include "lgh/data/synthetic/raster.hpp"

namespace lgh {
namespace data {
namespace synthetic {

enum class BackgroundKind { Gradient = 0, Noise = 1, Shapes = 2, Stripes = 3 };
constexpr int kNumBackgroundKinds = 4;

inline const char* background_name(BackgroundKind k) {
  switch (k) {
    case BackgroundKind::Gradient: return "gradient";
    case BackgroundKind::Noise: return "noise";
    case BackgroundKind::Shapes: return "shapes";
    case BackgroundKind::Stripes: return "stripes";
  }
  return "?";
}

namespace detail {

inline Rgbf random_colour(PhiloxEngine& rng) {
  // Mix a random hue with grey, so that dull and saturated colours both occur.
  const double grey = rng.uniform();
  const double sat = rng.uniform(0.0, 0.9);
  Rgbf c;
  for (int i = 0; i < 3; ++i) c[i] = static_cast<float>((1 - sat) * grey + sat * rng.uniform());
  return c;
}

inline uint8_t to_byte(float v) { return static_cast<uint8_t>(std::min(255.f, std::max(0.f, v * 255.f + 0.5f))); }

// Smooth value noise in [0, 1]: a random lattice of `cell`-pixel spacing,
// bicubic-smoothed bilinear interpolation.
inline void add_value_noise(std::vector<float>& field, int W, int H, float cell, float weight, uint32_t seed) {
  const int gw = static_cast<int>(W / cell) + 2, gh = static_cast<int>(H / cell) + 2;
  std::vector<float> lattice(static_cast<size_t>(gw) * gh);
  for (size_t i = 0; i < lattice.size(); ++i) lattice[i] = hash_unit(static_cast<uint32_t>(i) ^ seed);
  const float inv = 1.f / cell;
  std::vector<int> gx(W);
  std::vector<float> fx(W);
  for (int x = 0; x < W; ++x) {
    const float u = x * inv;
    gx[x] = static_cast<int>(u);
    const float f = u - gx[x];
    fx[x] = f * f * (3.f - 2.f * f);
  }
  for (int y = 0; y < H; ++y) {
    const float v = y * inv;
    const int gy = static_cast<int>(v);
    float fy = v - gy;
    fy = fy * fy * (3.f - 2.f * fy);
    const float* r0 = &lattice[static_cast<size_t>(gy) * gw];
    const float* r1 = r0 + gw;
    float* out = &field[static_cast<size_t>(y) * W];
    for (int x = 0; x < W; ++x) {
      const int i = gx[x];
      const float top = r0[i] + fx[x] * (r0[i + 1] - r0[i]);
      const float bot = r1[i] + fx[x] * (r1[i + 1] - r1[i]);
      out[x] += weight * (top + fy * (bot - top));
    }
  }
}

inline void fill_disc(Image& img, float cx, float cy, float r, const Rgbf& c) {
  const int x0 = std::max(0, static_cast<int>(std::floor(cx - r))), x1 = std::min(img.width - 1, static_cast<int>(cx + r));
  const int y0 = std::max(0, static_cast<int>(std::floor(cy - r))), y1 = std::min(img.height - 1, static_cast<int>(cy + r));
  const uint8_t b[3] = {to_byte(c[0]), to_byte(c[1]), to_byte(c[2])};
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x)
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) std::copy(b, b + 3, img.at(x, y));
}

// A filled rotated rectangle (centre, half sizes, angle).
inline void fill_box(Image& img, float cx, float cy, float hw, float hh, float angle, const Rgbf& c) {
  const float ca = std::cos(angle), sa = std::sin(angle);
  const float ex = std::abs(ca) * hw + std::abs(sa) * hh, ey = std::abs(sa) * hw + std::abs(ca) * hh;
  const int x0 = std::max(0, static_cast<int>(std::floor(cx - ex))), x1 = std::min(img.width - 1, static_cast<int>(cx + ex));
  const int y0 = std::max(0, static_cast<int>(std::floor(cy - ey))), y1 = std::min(img.height - 1, static_cast<int>(cy + ey));
  const uint8_t b[3] = {to_byte(c[0]), to_byte(c[1]), to_byte(c[2])};
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const float dx = x - cx, dy = y - cy;
      if (std::abs(ca * dx + sa * dy) <= hw && std::abs(-sa * dx + ca * dy) <= hh) std::copy(b, b + 3, img.at(x, y));
    }
}

}  // namespace detail

// A W x H x 3 background of the given kind.
inline Image make_background(BackgroundKind kind, PhiloxEngine& rng, int W, int H) {
  Image img(W, H, 3);
  const float S = static_cast<float>(std::max(W, H));
  switch (kind) {
    case BackgroundKind::Gradient:
    case BackgroundKind::Noise: {
      // Two colours blended by a field: a linear ramp (gradient) or octaves of
      // value noise, both with a little of the other for texture.
      const Rgbf c0 = detail::random_colour(rng), c1 = detail::random_colour(rng);
      std::vector<float> field(static_cast<size_t>(W) * H, 0.f);
      const uint32_t seed = rng.next_u32();
      if (kind == BackgroundKind::Gradient) {
        const double a = rng.uniform(0, 2 * kPi);
        const float gx = static_cast<float>(std::cos(a)) / S, gy = static_cast<float>(std::sin(a)) / S;
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x) field[static_cast<size_t>(y) * W + x] = 0.5f + gx * (x - 0.5f * W) + gy * (y - 0.5f * H);
        detail::add_value_noise(field, W, H, S / 4, 0.15f, seed);
      } else {
        float cell = static_cast<float>(S * rng.uniform(0.08, 0.4)), w = 0.6f;
        for (int octave = 0; octave < 3; ++octave, cell *= 0.5f, w *= 0.5f)
          if (cell >= 2.f) detail::add_value_noise(field, W, H, cell, w, seed + 0x9E3779B9u * octave);
        for (float& f : field) f = (f - 0.1f) * 1.2f;
      }
      // The field picks a colour off a 1024-step ramp from c0 to c1.
      constexpr int kSteps = 1024;
      std::vector<uint8_t> ramp(3 * kSteps);
      for (int k = 0; k < kSteps; ++k)
        for (int c = 0; c < 3; ++c) ramp[3 * k + c] = detail::to_byte(c0[c] + (k / float(kSteps - 1)) * (c1[c] - c0[c]));
      for (size_t i = 0; i < field.size(); ++i) {
        const int k = static_cast<int>(std::min(1.f, std::max(0.f, field[i])) * (kSteps - 1) + 0.5f);
        std::copy(&ramp[3 * k], &ramp[3 * k] + 3, &img.pixels[3 * i]);
      }
      break;
    }
    case BackgroundKind::Shapes: {
      const Rgbf base = detail::random_colour(rng);
      const uint8_t b[3] = {detail::to_byte(base[0]), detail::to_byte(base[1]), detail::to_byte(base[2])};
      for (size_t i = 0; i < img.pixels.size(); i += 3) std::copy(b, b + 3, &img.pixels[i]);
      const int n = 4 + static_cast<int>(rng.below(20));
      for (int s = 0; s < n; ++s) {
        const Rgbf c = detail::random_colour(rng);
        const float cx = static_cast<float>(rng.uniform(-0.1, 1.1) * W), cy = static_cast<float>(rng.uniform(-0.1, 1.1) * H);
        const float size = static_cast<float>(S * rng.uniform(0.03, 0.3));
        if (rng.below(2) == 0)
          detail::fill_disc(img, cx, cy, size, c);
        else  // rectangles, from squares to thin bars
          detail::fill_box(img, cx, cy, size, static_cast<float>(size * rng.uniform(0.05, 1.0)),
                           static_cast<float>(rng.uniform(0, kPi)), c);
      }
      break;
    }
    case BackgroundKind::Stripes: {
      const Rgbf c0 = detail::random_colour(rng), c1 = detail::random_colour(rng);
      const double a = rng.uniform(0, kPi);
      const float period = static_cast<float>(S * rng.uniform(0.03, 0.25));
      const bool checker = rng.below(3) == 0;
      const float ca = static_cast<float>(std::cos(a)) / period, sa = static_cast<float>(std::sin(a)) / period;
      const uint8_t colour[2][3] = {{detail::to_byte(c0[0]), detail::to_byte(c0[1]), detail::to_byte(c0[2])},
                                    {detail::to_byte(c1[0]), detail::to_byte(c1[1]), detail::to_byte(c1[2])}};
      // Offset so the stripe coordinates stay positive: truncation is floor.
      const float offset = 2.f * S / period + 2.f;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const float s = ca * x + sa * y + offset, t = -sa * x + ca * y + offset;
          const int parity = static_cast<int>(s) + (checker ? static_cast<int>(t) : 0);
          std::copy(colour[parity & 1], colour[parity & 1] + 3, img.at(x, y));
        }
      break;
    }
  }
  return img;
}

// Adds zero-mean noise of standard deviation about `sigma` grey levels to
// every channel. The noise values (triangular: the sum of two uniforms,
// rounded to whole grey levels) come from a table of 8192 drawn from
// `seed`; each row reads it from its own random offset. A hash per value
// would cost more than the rest of the post-processing, and no pattern of a
// table this size survives the random offsets visibly.
inline void add_sensor_noise(Image& img, float sigma, uint32_t seed) {
  if (sigma <= 0.f || img.empty()) return;
  constexpr int kTable = 8192;
  const float amp = sigma / 0.408f;  // (u1 + u2 - 1), u uniform on (0, 1), has s.d. 0.408
  const int row = img.width * img.channels;
  std::vector<int16_t> table(static_cast<size_t>(kTable + row));
  for (size_t i = 0; i < table.size(); ++i) {
    const uint32_t h = detail::hash32(static_cast<uint32_t>(i) * 0x9E3779B9u ^ seed);
    const float n = ((h & 0xFFFF) + (h >> 16)) * (1.f / 65536.f) - 1.f;
    table[i] = static_cast<int16_t>(std::lround(amp * n));
  }
  for (int y = 0; y < img.height; ++y) {
    const int16_t* t = &table[detail::hash32(static_cast<uint32_t>(y) ^ ~seed) % kTable];
    uint8_t* p = &img.pixels[static_cast<size_t>(y) * row];
    for (int i = 0; i < row; ++i) p[i] = static_cast<uint8_t>(std::min(255, std::max(0, p[i] + t[i])));
  }
}

}  // namespace synthetic
}  // namespace data
}  // namespace lgh
