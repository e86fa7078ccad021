// The hand skeleton every dataset is mapped to (DESIGN.md §2): 21 joints in
// RHD's order, wrist first, then thumb, index, middle, ring and little
// finger, each listed tip -> MCP. The root is the middle MCP (12) and the
// reference bone, whose length is the scale s0, joins 12 and 11.
#pragma once

#include <array>

namespace lgh {
namespace data {

constexpr int kNumJoints = 21;
constexpr int kRootJoint = 12;       // middle-finger MCP
constexpr int kRefBoneChild = 11;    // middle-finger PIP: |J12 - J11| = s0

enum Finger { Thumb = 0, Index = 1, Middle = 2, Ring = 3, Little = 4 };

// Joint index of finger f (0 = thumb) at depth d from the tip (0 = tip, 3 = MCP).
constexpr int joint_index(int finger, int depth_from_tip) { return 1 + 4 * finger + depth_from_tip; }

// Parent of each joint in the kinematic tree (wrist has none: -1).
constexpr std::array<int, kNumJoints> kParent = {
    -1,                 // 0 wrist
    2,  3,  4,  0,      // thumb: tip, IP, MCP, CMC -> wrist
    6,  7,  8,  0,      // index
    10, 11, 12, 0,      // middle
    14, 15, 16, 0,      // ring
    18, 19, 20, 0};     // little

// FreiHAND (and MANO-style) order lists each finger root -> tip:
// 0 wrist, 1-4 thumb CMC..tip, 5-8 index MCP..tip, ... Canonical joint
// 1 + 4f + d (d = 0 at the tip) is FreiHAND joint 1 + 4f + (3 - d); the map
// is its own inverse.
constexpr int freihand_from_canonical(int j) { return j == 0 ? 0 : 1 + 4 * ((j - 1) / 4) + (3 - (j - 1) % 4); }
constexpr int canonical_from_freihand(int j) { return freihand_from_canonical(j); }

inline const char* joint_name(int j) {
  static const char* names[kNumJoints] = {
      "wrist",      "thumb_tip",  "thumb_ip",    "thumb_mcp",  "thumb_cmc", "index_tip", "index_dip",
      "index_pip",  "index_mcp",  "middle_tip",  "middle_dip", "middle_pip", "middle_mcp", "ring_tip",
      "ring_dip",   "ring_pip",   "ring_mcp",    "little_tip", "little_dip", "little_pip", "little_mcp"};
  return j >= 0 && j < kNumJoints ? names[j] : "?";
}

}  // namespace data
}  // namespace lgh
