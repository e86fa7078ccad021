// The hand crop: from an annotated image (HandSample) to the network's input
// (DESIGN.md §2): a square box around the hand with a 1.2x margin, resized
// bilinearly to S x S, left hands mirrored to right ones, optionally scaled,
// rotated, shifted and hue-jittered for training (augment.hpp draws those).
//
// The whole crop is one 2D affine map of pixel coordinates, q = A p + b
// (p original pixel, q crop pixel; integer coordinates are pixel centres,
// the convention of u = fx x/z + cx). Labels stay consistent with it:
//
//   A = s K2 Q K2^-1,  K2 = diag(fx, fy),  Q = R(theta) F,
//
// with s the zoom (crop pixels per original pixel), R(theta) the rotation
// and F = diag(-1, 1) when mirroring (else I). Then A K2 = (s K2) Q, so
//
//   xyz' = [Q 0; 0 1] xyz,   fx' = s fx,  fy' = s fy,  (cx', cy') = A (cx, cy) + b
//
// and every joint's uv' = A uv + b is exactly the projection of xyz' with
// the crop intrinsics K' (derivation in docs/datasets.md). Rotating the
// image is rotating the camera about its optical axis; with fx != fy the
// pixel-space map is that rotation seen through the pixels' aspect ratio
// (exactly a similarity when fx = fy). Mirroring flips x -> -x in camera
// space, so a left hand becomes a right hand and K' keeps positive focal
// lengths; depth, s0 = |J12 - J11| and z_root = z of J12 are unchanged.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/color.hpp"
#include "lgh/data/hand.hpp"
#include "lgh/data/sample.hpp"

namespace lgh {
namespace data {

// q = M p: [x'; y'] = [m00 m01; m10 m11] [x; y] + [m02; m12].
struct Affine2 {
  std::array<std::array<double, 3>, 2> m{{{1, 0, 0}, {0, 1, 0}}};

  std::array<double, 2> apply(double x, double y) const {
    return {m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]};
  }
  double det() const { return m[0][0] * m[1][1] - m[0][1] * m[1][0]; }
  Affine2 inverse() const {
    const double d = det();
    LGH_CHECK(d != 0 && std::isfinite(d), "Affine2::inverse: singular map");
    Affine2 r;
    r.m[0][0] = m[1][1] / d;
    r.m[0][1] = -m[0][1] / d;
    r.m[1][0] = -m[1][0] / d;
    r.m[1][1] = m[0][0] / d;
    r.m[0][2] = -(r.m[0][0] * m[0][2] + r.m[0][1] * m[1][2]);
    r.m[1][2] = -(r.m[1][0] * m[0][2] + r.m[1][1] * m[1][2]);
    return r;
  }
};

using Mat3 = std::array<std::array<double, 3>, 3>;

// A square box in original pixels: centre and side length.
struct HandBox {
  double cx = 0, cy = 0, side = 0;
};

enum class BoxSource {
  kAuto,       // the mask when it has hand pixels, else the keypoints
  kMask,       // the mask's hand pixels (the paper's choice), error when empty
  kKeypoints,  // every annotated joint's uv (occluded ones included)
  kReference,  // the authors' RHD evaluation crop (box_reference below); margin and min_side unused
};

struct CropOptions {
  int size = 256;        // S: output side in pixels
  double margin = 1.2;   // box side = margin * the larger side of the hand's extent
  BoxSource box_source = BoxSource::kAuto;
  double min_side = 32;  // lower bound on the box side (original pixels), for degenerate extents
  bool mirror_left = true;  // canonicalise left hands to right ones
};

// One draw of the training augmentation (identity by default).
struct Augmentation {
  double scale = 1;         // box side multiplier: > 1 zooms out
  double rotation = 0;      // radians; positive turns the image clockwise on screen (y points down)
  double tx = 0, ty = 0;    // shift of the hand in crop pixels
  double hue = 0;           // hue shift, fraction of the colour circle
};

// How one crop maps the original image and its camera.
struct CropGeometry {
  Affine2 to_crop;       // original pixels -> crop pixels
  Affine2 to_original;   // crop pixels -> original pixels
  Intrinsics K;          // the crop's camera
  Mat3 rotation{};       // xyz_crop = rotation * xyz (det -1 when mirrored)
  double scale = 1;      // s: crop pixels per original pixel
  bool mirrored = false;
};

// A network input with labels in the crop's frame.
struct CropSample {
  int size = 0;
  std::vector<float> image;  // [3, S, S] CHW in [0, 1]; empty when written to a caller's buffer
  std::array<std::array<double, 2>, kNumJoints> uv{};   // crop pixels (0 for unannotated joints)
  std::array<std::array<double, 3>, kNumJoints> xyz{};  // mm, crop camera frame (0 for unannotated joints)
  std::array<bool, kNumJoints> visible{};  // the annotation's visibility (false for unannotated joints)
  std::array<bool, kNumJoints> in_crop{};  // uv inside the crop
  Intrinsics K;
  double s0 = 0;      // |xyz[12] - xyz[11]| in mm; 0 when those joints are not annotated
  double z_root = 0;  // depth of joint 12 in mm; 0 when not annotated
  double scale = 1;   // crop pixels per original pixel
  Affine2 to_crop, to_original;
  Mat3 rotation{};
  bool mirrored = false;
  double hue = 0;
  HandBox box;
  std::string id;
};

namespace detail {
inline bool finite2(const std::array<double, 2>& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
inline bool finite3(const std::array<double, 3>& p) {
  return std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2]);
}
inline HandBox square_box(double x0, double y0, double x1, double y1, double margin, double min_side) {
  HandBox b;
  b.cx = 0.5 * (x0 + x1);
  b.cy = 0.5 * (y0 + y1);
  b.side = std::max(margin * std::max(x1 - x0, y1 - y0), min_side);
  return b;
}
}  // namespace detail

// The box around every joint with a finite uv (occluded joints included:
// they are part of the hand).
inline HandBox box_from_keypoints(const HandSample& s, double margin = 1.2, double min_side = 32) {
  double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
  int n = 0;
  for (int j = 0; j < kNumJoints; ++j) {
    if (!detail::finite2(s.uv[j])) continue;
    x0 = std::min(x0, s.uv[j][0]);
    x1 = std::max(x1, s.uv[j][0]);
    y0 = std::min(y0, s.uv[j][1]);
    y1 = std::max(y1, s.uv[j][1]);
    ++n;
  }
  LGH_CHECK(n > 0, "sample " << s.id << ": no joint has image coordinates, cannot place the hand crop");
  return detail::square_box(x0, y0, x1, y1, margin, min_side);
}

// The box around the mask's hand pixels (> 127); false when there are none.
// A pixel covers [x - 0.5, x + 0.5], so a single pixel has extent 1.
inline bool box_from_mask(const Image& mask, double margin, double min_side, HandBox* out) {
  if (mask.empty()) return false;
  int x0 = mask.width, y0 = mask.height, x1 = -1, y1 = -1;
  for (int y = 0; y < mask.height; ++y) {
    const uint8_t* row = mask.pixels.data() + static_cast<size_t>(y) * mask.width * mask.channels;
    for (int x = 0; x < mask.width; ++x) {
      if (row[static_cast<size_t>(x) * mask.channels] > 127) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
    }
  }
  if (x1 < 0) return false;
  *out = detail::square_box(x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5, margin, min_side);
  return true;
}

// The box of the authors' RHD loader (datasets/RHD.py, lines 152-213,
// without its training noise), for evaluating weights trained on their crops:
//   * the extent [lo, hi] of the visible joints (all joints when none is
//     visible), clipped to [0, W] (RHD.py:159-172);
//   * side = 1.2 clip(2 max(hi - r, r - lo), 30, 500) with r the root joint 12,
//     centred on the middle of the extent (RHD.py:174-180);
//   * corners clipped to [10, W - 10], side = clip(largest clipped side, 30,
//     280), then an integer square [x1, x1 + side) x [y1, y1 + side) pushed
//     back inside the image (RHD.py:203-213; W is the image width, 320 on RHD,
//     used for both axes as there).
// The pixel [x1, x1 + side) is resampled to [0, S) (S/side per pixel), which
// puts the box centre at x1 + side/2 - 0.5 in pixel-centre coordinates.
inline HandBox box_reference(const HandSample& s) {
  const double W = s.rgb.width;
  double lo[2], hi[2];
  for (int pass = 0; pass < 2; ++pass) {  // visible joints first, then all of them
    lo[0] = lo[1] = std::numeric_limits<double>::infinity();
    hi[0] = hi[1] = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < kNumJoints; ++j) {
      if ((pass == 0 && !s.visible[j]) || !detail::finite2(s.uv[j])) continue;
      for (int a = 0; a < 2; ++a) {
        lo[a] = std::min(lo[a], s.uv[j][a]);
        hi[a] = std::max(hi[a], s.uv[j][a]);
      }
    }
    if (lo[0] <= hi[0]) break;
  }
  LGH_CHECK(lo[0] <= hi[0], "sample " << s.id << ": no joint has image coordinates, cannot place the hand crop");
  LGH_CHECK(detail::finite2(s.uv[kRootJoint]), "sample " << s.id << ": the reference crop needs the root joint's uv");
  double reach = 0;
  for (int a = 0; a < 2; ++a) {
    lo[a] = std::max(lo[a], 0.0);
    hi[a] = std::min(hi[a], W);
    reach = std::max(reach, 2 * std::max(hi[a] - s.uv[kRootJoint][a], s.uv[kRootJoint][a] - lo[a]));
  }
  const double side0 = 1.2 * std::min(std::max(reach, 30.0), 500.0);
  double clipped = 0, c0[2];
  for (int a = 0; a < 2; ++a) {
    const double mid = 0.5 * (lo[a] + hi[a]);
    c0[a] = std::min(std::max(mid - side0 / 2, 10.0), W - 10.0);
    clipped = std::max(clipped, std::min(std::max(mid + side0 / 2, 10.0), W - 10.0) - c0[a]);
  }
  const int side = static_cast<int>(std::min(std::max(clipped, 30.0), 280.0));
  double corner[2];
  for (int a = 0; a < 2; ++a) {
    const int start = static_cast<int>(c0[a]);
    corner[a] = start - std::max(start + side - static_cast<int>(W) + 10, 0);
  }
  HandBox b;
  b.side = side;
  b.cx = corner[0] + 0.5 * side - 0.5;
  b.cy = corner[1] + 0.5 * side - 0.5;
  return b;
}

inline HandBox hand_box(const HandSample& s, const CropOptions& o) {
  if (o.box_source == BoxSource::kReference) return box_reference(s);
  HandBox box;
  if (o.box_source != BoxSource::kKeypoints && box_from_mask(s.mask, o.margin, o.min_side, &box)) return box;
  LGH_CHECK(o.box_source != BoxSource::kMask,
            "sample " << s.id << ": the hand box was asked from the mask, but "
                      << (s.mask.empty() ? "the sample has no mask" : "the mask has no hand pixels"));
  return box_from_keypoints(s, o.margin, o.min_side);
}

// The affine map, camera and rotation of a crop of `box` to size x size.
inline CropGeometry crop_geometry(const Intrinsics& K, const HandBox& box, int size, bool mirror,
                                  const Augmentation& aug = {}) {
  LGH_CHECK(size > 0, "crop size must be positive, got " << size);
  LGH_CHECK(K.fx > 0 && K.fy > 0, "crop: intrinsics need positive focal lengths, got fx " << K.fx << ", fy " << K.fy);
  LGH_CHECK(box.side > 0 && aug.scale > 0, "crop: box side " << box.side << " and scale " << aug.scale
                                                            << " must be positive");
  CropGeometry g;
  g.mirrored = mirror;
  g.scale = size / (box.side * aug.scale);
  const double c = std::cos(aug.rotation), sn = std::sin(aug.rotation);
  const double f = mirror ? -1.0 : 1.0;
  // Q = R(theta) F
  const double Q[2][2] = {{c * f, -sn}, {sn * f, c}};
  const double k[2] = {K.fx, K.fy};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) g.to_crop.m[i][j] = g.scale * Q[i][j] * k[i] / k[j];
  // The box centre lands on the crop centre (plus the shift).
  const double centre_x = 0.5 * (size - 1) + aug.tx, centre_y = 0.5 * (size - 1) + aug.ty;
  g.to_crop.m[0][2] = centre_x - (g.to_crop.m[0][0] * box.cx + g.to_crop.m[0][1] * box.cy);
  g.to_crop.m[1][2] = centre_y - (g.to_crop.m[1][0] * box.cx + g.to_crop.m[1][1] * box.cy);
  g.to_original = g.to_crop.inverse();
  const auto pp = g.to_crop.apply(K.cx, K.cy);
  g.K.fx = g.scale * K.fx;
  g.K.fy = g.scale * K.fy;
  g.K.cx = pp[0];
  g.K.cy = pp[1];
  g.rotation = Mat3{{{Q[0][0], Q[0][1], 0}, {Q[1][0], Q[1][1], 0}, {0, 0, 1}}};
  return g;
}

// Bilinear resampling of `src` (8-bit, 1 or more channels; the first three
// are used) into a [3, size, size] float CHW buffer in [0, 1]. Samples
// outside the image are black.
inline void warp_bilinear(const Image& src, const Affine2& to_original, int size, float* chw) {
  LGH_CHECK(!src.empty() && src.channels >= 3, "warp_bilinear: expected an RGB image, got " << src.width << "x"
                                                                                          << src.height << "x"
                                                                                          << src.channels);
  const int W = src.width, H = src.height, C = src.channels;
  const int64_t plane = static_cast<int64_t>(size) * size;
  const double ax = to_original.m[0][0], ay = to_original.m[1][0];  // step along an output row
  constexpr float kInv255 = 1.0f / 255.0f;
  for (int y = 0; y < size; ++y) {
    const auto start = to_original.apply(0.0, static_cast<double>(y));
    for (int x = 0; x < size; ++x) {
      const double px = start[0] + ax * x, py = start[1] + ay * x;
      const int64_t o = static_cast<int64_t>(y) * size + x;
      float acc[3] = {0, 0, 0};
      if (px > -1.0 && py > -1.0 && px < W && py < H) {
        const int x0 = static_cast<int>(std::floor(px)), y0 = static_cast<int>(std::floor(py));
        const float fx = static_cast<float>(px - x0), fy = static_cast<float>(py - y0);
        const float w[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
        if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
          // Interior: all four neighbours exist (the common case).
          const uint8_t* p00 = src.pixels.data() + (static_cast<size_t>(y0) * W + x0) * C;
          const uint8_t* p10 = p00 + static_cast<size_t>(W) * C;
          for (int ch = 0; ch < 3; ++ch)
            acc[ch] = w[0] * p00[ch] + w[1] * p00[C + ch] + w[2] * p10[ch] + w[3] * p10[C + ch];
          chw[o] = acc[0] * kInv255;
          chw[plane + o] = acc[1] * kInv255;
          chw[2 * plane + o] = acc[2] * kInv255;
          continue;
        }
        const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
        for (int t = 0; t < 4; ++t) {
          if (xs[t] < 0 || ys[t] < 0 || xs[t] >= W || ys[t] >= H || w[t] == 0.0f) continue;
          const uint8_t* p = src.pixels.data() + (static_cast<size_t>(ys[t]) * W + xs[t]) * C;
          acc[0] += w[t] * p[0];
          acc[1] += w[t] * p[1];
          acc[2] += w[t] * p[2];
        }
      }
      chw[o] = acc[0] * kInv255;
      chw[plane + o] = acc[1] * kInv255;
      chw[2 * plane + o] = acc[2] * kInv255;
    }
  }
}

// Crops `s` (see the top of this file). The image goes to `image_out`
// ([3, S, S] floats) when given, else into the result's `image`.
inline CropSample crop_hand(const HandSample& s, const CropOptions& o, const Augmentation& aug = {},
                            float* image_out = nullptr) {
  LGH_CHECK(s.rgb.channels == 3 && !s.rgb.empty(),
            "sample " << s.id << ": expected an RGB image, got " << s.rgb.width << "x" << s.rgb.height << "x"
                      << s.rgb.channels);
  LGH_CHECK(s.K.fx > 0 && s.K.fy > 0 && std::isfinite(s.K.cx) && std::isfinite(s.K.cy),
            "sample " << s.id << ": invalid intrinsics fx " << s.K.fx << ", fy " << s.K.fy << ", cx " << s.K.cx
                      << ", cy " << s.K.cy);
  CropSample out;
  out.id = s.id;
  out.size = o.size;
  out.box = hand_box(s, o);
  const CropGeometry g = crop_geometry(s.K, out.box, o.size, o.mirror_left && s.is_left, aug);
  out.K = g.K;
  out.scale = g.scale;
  out.to_crop = g.to_crop;
  out.to_original = g.to_original;
  out.rotation = g.rotation;
  out.mirrored = g.mirrored;
  out.hue = aug.hue;

  for (int j = 0; j < kNumJoints; ++j) {
    if (detail::finite2(s.uv[j])) {
      out.uv[j] = g.to_crop.apply(s.uv[j][0], s.uv[j][1]);
      out.in_crop[j] = out.uv[j][0] >= -0.5 && out.uv[j][0] < o.size - 0.5 && out.uv[j][1] >= -0.5 &&
                       out.uv[j][1] < o.size - 0.5;
    }
    if (detail::finite3(s.xyz[j])) {
      for (int r = 0; r < 3; ++r)
        out.xyz[j][r] = g.rotation[r][0] * s.xyz[j][0] + g.rotation[r][1] * s.xyz[j][1] + g.rotation[r][2] * s.xyz[j][2];
    }
    out.visible[j] = s.visible[j] && detail::finite2(s.uv[j]) && detail::finite3(s.xyz[j]);
  }
  if (detail::finite3(s.xyz[kRootJoint]) && detail::finite3(s.xyz[kRefBoneChild])) {
    const auto& a = out.xyz[kRootJoint];
    const auto& b = out.xyz[kRefBoneChild];
    out.s0 = std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
    out.z_root = a[2];
  }

  float* img = image_out;
  if (!img) {
    out.image.resize(static_cast<size_t>(3) * o.size * o.size);
    img = out.image.data();
  }
  warp_bilinear(s.rgb, g.to_original, o.size, img);
  shift_hue(img, static_cast<int64_t>(o.size) * o.size, static_cast<float>(aug.hue));
  return out;
}

// Projection with pinhole intrinsics (for checks and tools).
inline std::array<double, 2> project(const Intrinsics& K, const std::array<double, 3>& xyz) {
  return {K.fx * xyz[0] / xyz[2] + K.cx, K.fy * xyz[1] / xyz[2] + K.cy};
}

}  // namespace data
}  // namespace lgh
