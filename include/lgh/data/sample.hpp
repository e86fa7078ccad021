// HandSample: one annotated image, as every reader and the synthetic
// generator produce it, in the canonical joint order of hand.hpp.
#pragma once

#include <array>
#include <string>

#include "lgh/data/hand.hpp"
#include "lgh/data/image.hpp"

namespace lgh {
namespace data {

// Pinhole intrinsics: u = fx * x / z + cx, v = fy * y / z + cy.
struct Intrinsics {
  double fx = 1, fy = 1, cx = 0, cy = 0;
};

struct HandSample {
  Image rgb;                                 // HWC, 3 channels
  Image mask;                                // 1 channel, 255 = hand (may be empty)
  std::array<std::array<double, 2>, kNumJoints> uv{};   // pixels (x = column, y = row)
  std::array<std::array<double, 3>, kNumJoints> xyz{};  // camera space, millimetres
  std::array<bool, kNumJoints> visible{};    // false where occluded or outside the image
  Intrinsics K;
  bool is_left = false;                      // left hands are mirrored to right by the crop
  std::string id;                            // e.g. "rhd/evaluation/00012", for error messages
};

}  // namespace data
}  // namespace lgh
