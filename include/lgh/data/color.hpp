// RGB <-> HSV and the hue jitter of the training augmentation
// (DESIGN.md §2: hue in [-0.1, 0.1]).
//
// Conventions follow Python's colorsys and torchvision's adjust_hue: all
// channels in [0, 1]; hue is a fraction of the colour circle in [0, 1)
// (0 red, 1/3 green, 2/3 blue), so a shift of 0.1 turns colours by 36
// degrees; grey pixels (s = 0) have no hue and are left unchanged.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace lgh {
namespace data {

inline void rgb_to_hsv(float r, float g, float b, float* h, float* s, float* v) {
  const float maxc = std::max(r, std::max(g, b));
  const float minc = std::min(r, std::min(g, b));
  *v = maxc;
  const float delta = maxc - minc;
  if (delta <= 0.0f) {
    *h = 0.0f;
    *s = 0.0f;
    return;
  }
  *s = delta / maxc;
  float hue;
  if (maxc == r)
    hue = (g - b) / delta;  // between yellow and magenta
  else if (maxc == g)
    hue = 2.0f + (b - r) / delta;
  else
    hue = 4.0f + (r - g) / delta;
  hue /= 6.0f;
  if (hue < 0.0f) hue += 1.0f;
  *h = hue;
}

inline void hsv_to_rgb(float h, float s, float v, float* r, float* g, float* b) {
  if (s <= 0.0f) {
    *r = *g = *b = v;
    return;
  }
  h = h - std::floor(h);  // wrap into [0, 1)
  const float h6 = h * 6.0f;
  int sector = static_cast<int>(h6);
  if (sector > 5) sector = 5;  // h6 may round up to 6 for h just below 1
  const float f = h6 - static_cast<float>(sector);
  const float p = v * (1.0f - s);
  const float q = v * (1.0f - s * f);
  const float t = v * (1.0f - s * (1.0f - f));
  switch (sector) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
  }
}

// Rotates the hue of a planar RGB image (three planes of `pixels` floats in
// [0, 1], as in a CHW tensor) by `delta` turns of the colour circle.
inline void shift_hue(float* rgb_planes, int64_t pixels, float delta) {
  if (delta == 0.0f) return;
  float* R = rgb_planes;
  float* G = rgb_planes + pixels;
  float* B = rgb_planes + 2 * pixels;
  for (int64_t i = 0; i < pixels; ++i) {
    float h, s, v;
    rgb_to_hsv(R[i], G[i], B[i], &h, &s, &v);
    if (s <= 0.0f) continue;
    hsv_to_rgb(h + delta, s, v, &R[i], &G[i], &B[i]);
  }
}

}  // namespace data
}  // namespace lgh
