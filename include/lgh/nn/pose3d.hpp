// From the network's (u, v, d) to 3D joints, and the training loss.
//
//   Eq. (2)-(3): z_j = s0·d_j + z_root,  (x_j, y_j) = z_j·((u_j - cx)/fx, (v_j - cy)/fy)
//   Eq. (10):    L = ‖XY - XŶ‖₁ + β‖Z - Ẑ‖₁ on joints divided by s0, β = 20
//
// On RHD/STB the protocol gives s0 and z_root from the ground truth. For a
// user's image there is none: recover_root_depth() solves for z_root from the
// 2D and relative-depth prediction and a known reference-bone length (Iqbal
// et al., ECCV 2018).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "lgh/data/hand.hpp"
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/elementwise.hpp"
#include "lgh/ops/loss.hpp"
#include "lgh/ops/math/backproject.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"

namespace lgh {
namespace nn {

// Adult middle-finger MCP-PIP distance (the reference bone) used when the
// hand size is unknown, in millimetres.
constexpr double kDefaultBoneLengthMm = 42.0;

// Intrinsics for an image without calibration: principal point at the centre
// and a focal length of 1.2 × the longer side (about a 45° field of view, a
// typical phone or webcam lens).
inline std::array<double, 4> default_intrinsics(int width, int height) {
  const double f = 1.2 * std::max(width, height);
  return {f, f, 0.5 * width, 0.5 * height};
}

// Eq. (10). uvd [B,J,3] (u, v in input pixels, d in units of s0), intrinsics
// [B,4] = (fx, fy, cx, cy) of the input crop, z_root [B] and s0 [B] in mm,
// xyz_gt [B,J,3] in mm. Means over the batch and joints (as torch.nn.L1Loss):
// L = mean |x̂ - x|/s0 over (b, j, x and y) + β · mean |ẑ - z|/s0 over (b, j).
template <typename T>
struct PoseLoss {
  Tensor<T> total, xy, z;
};

// 1/s0 per sample, the normalisation of Eq. (10), computed on s0's device
// (a kernel-level entry, so that a training step on a device reads nothing
// back). s0 must be > 0: the CPU entry throws naming the sample; a device
// cannot throw from a kernel without a synchronisation, so its entry writes
// NaN for such a sample instead, and the loss comes out NaN (the data
// readers reject a non-positive s0 before it reaches a batch).
namespace cpu {
template <typename T>
void inverse_scale(const Tensor<T>& s0, const Tensor<T>& inv) {
  const int64_t B = s0.numel();
  const T* ps = s0.data();
  T* pi = inv.data();
  for (int64_t b = 0; b < B; ++b) {
    LGH_CHECK(ps[b] > T(0), "pose_loss: s0[" << b << "] = " << ps[b] << ", expected > 0");
    pi[b] = T(1) / ps[b];
  }
}
}  // namespace cpu

namespace entries {
// s0 [B] contiguous -> inv, B contiguous values.
struct InverseScale {
  static constexpr const char* name = "pose_loss_inverse_scale";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& s0, const Tensor<T>& inv);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::inverse_scale<T>;
};
}  // namespace entries

template <typename T>
PoseLoss<T> pose_loss(const Tensor<T>& uvd, const Tensor<T>& intrinsics, const Tensor<T>& z_root, const Tensor<T>& s0,
                      const Tensor<T>& xyz_gt, double beta = 20.0) {
  ops::detail::check_shape("pose_loss", "xyz_gt", xyz_gt, uvd.shape());
  const int64_t B = uvd.size(0);
  const Tensor<T> xyz = ops::backproject(uvd, intrinsics, z_root, s0);
  // 1/s0 per sample, broadcast over joints and coordinates (data, not learned).
  Tensor<T> inv = Tensor<T>::empty(Shape{B, 1, 1}, s0.device());
  dispatch::call<entries::InverseScale, T>(s0.device(), s0.contiguous(), inv);
  const Tensor<T> pred = ops::mul(xyz, inv), gt = ops::mul(xyz_gt, inv);
  PoseLoss<T> out;
  out.xy = ops::l1_loss(ops::slice(pred, 2, 0, 2), ops::slice(gt, 2, 0, 2));
  out.z = ops::l1_loss(ops::slice(pred, 2, 2, 3), ops::slice(gt, 2, 2, 3));
  out.total = ops::add(out.xy, ops::mul_scalar(out.z, T(beta)));
  return out;
}

// Stage 1 of the paper's training: the backbone alone learns 2D joints from
// its heatmaps H0 [B,J,S/4,S/4]. Their soft-argmax (β = 1, the same op as the
// groups' heads, with no depth) gives keypoints [B,J,2] in input pixels, to be
// compared with the ground-truth uv by an ℓ1 loss.
template <typename T>
Tensor<T> heatmap_keypoints(const Tensor<T>& heatmaps) {
  ops::detail::check_ndim("heatmap_keypoints", "heatmaps", heatmaps, 4);
  const Tensor<T> uvd = ops::soft_argmax_depth(heatmaps, Tensor<T>::zeros(heatmaps.shape(), heatmaps.device()),
                                               Tensor<T>::ones(Shape{heatmaps.size(1)}, heatmaps.device()));
  return ops::mul_scalar(ops::slice(uvd, 2, 0, 2), T(4));  // 1/4 resolution -> input pixels
}

// ---- root depth without ground truth (Iqbal et al. 2018) --------------------------

struct RootRecovery {
  double z_root = 0;     // mm
  bool exact = true;     // false when the quadratic had no real root and its vertex was used
};

// uvd [J][3]: u, v in pixels and d, the relative depth in units of the
// reference bone; K = (fx, fy, cx, cy). In bone units (length 1), with x̄ = (u - cx)/fx,
// ȳ = (v - cy)/fy and z_n = z_r + d_n, the reference bone (n, m) = (12, 11)
// must have unit length:
//   (x̄_n z_n - x̄_m z_m)² + (ȳ_n z_n - ȳ_m z_m)² + (z_n - z_m)² = 1,
// a quadratic A z_r² + B z_r + C = 0 with
//   A = Δx² + Δy²,  B = 2(Δx·c_x + Δy·c_y),  C = c_x² + c_y² + (d_n - d_m)² - 1,
//   Δx = x̄_n - x̄_m, c_x = x̄_n d_n - x̄_m d_m (same for y).
// The larger root is the hand in front of the camera; scaling by the
// physical bone length gives millimetres.
inline RootRecovery recover_root_depth(const double (*uvd)[3], const std::array<double, 4>& K,
                                       double bone_length_mm = kDefaultBoneLengthMm, int n = data::kRootJoint,
                                       int m = data::kRefBoneChild) {
  LGH_CHECK(bone_length_mm > 0, "recover_root_depth: bone length must be positive, got " << bone_length_mm);
  LGH_CHECK(K[0] != 0 && K[1] != 0, "recover_root_depth: focal lengths must be non-zero");
  const double xn = (uvd[n][0] - K[2]) / K[0], yn = (uvd[n][1] - K[3]) / K[1];
  const double xm = (uvd[m][0] - K[2]) / K[0], ym = (uvd[m][1] - K[3]) / K[1];
  const double dn = uvd[n][2], dm = uvd[m][2];
  const double dx = xn - xm, dy = yn - ym;
  const double cx = xn * dn - xm * dm, cy = yn * dn - ym * dm, cz = dn - dm;
  const double A = dx * dx + dy * dy;
  const double B = 2 * (dx * cx + dy * cy);
  const double C = cx * cx + cy * cy + cz * cz - 1;
  LGH_CHECK(A > 1e-12, "recover_root_depth: the reference bone projects to a point (joints "
                           << n << " and " << m << " coincide in the image); its depth is undetermined");
  RootRecovery r;
  double disc = B * B - 4 * A * C;
  if (disc < 0) {  // inconsistent prediction: the bone cannot reach length 1; take the closest fit
    disc = 0;
    r.exact = false;
  }
  r.z_root = (-B + std::sqrt(disc)) / (2 * A) * bone_length_mm;
  return r;
}

// ---- root depth from every bone -------------------------------------------------

// Bone lengths of an average adult hand relative to the reference bone
// (middle MCP-PIP = 1): entry j is the bone from joint j to its parent
// data::kParent[j] (0 for the wrist, which has none). These are the
// proportions of the synthetic hand model (data/synthetic/hand_model.hpp,
// HandModel::adult(), whose jitter is symmetric about them); a test holds the
// two together.
constexpr std::array<double, data::kNumJoints> kMeanBoneRatios = {
    0,                                                  // wrist
    28.0 / 45, 32.0 / 45, 46.0 / 45, 35.7351 / 45,      // thumb: tip-IP, IP-MCP, MCP-CMC, CMC-wrist
    21.0 / 45, 23.0 / 45, 40.0 / 45, 84.8999 / 45,      // index: tip-DIP, DIP-PIP, PIP-MCP, MCP-wrist
    23.0 / 45, 27.0 / 45, 45.0 / 45, 86.0 / 45,         // middle (PIP-MCP is the reference bone)
    23.0 / 45, 26.0 / 45, 42.0 / 45, 83.1986 / 45,      // ring
    21.0 / 45, 19.0 / 45, 33.0 / 45, 80.0562 / 45};     // little

struct AllBonesOptions {
  // Scale c of the Cauchy loss ρ(r) = c² log(1 + r²/c²) on each bone's
  // length residual r (bone units): residuals well below c count as in
  // least squares, a bone far off (a mispredicted joint) only logarithmically.
  // 0 gives plain least squares.
  double robust_scale = 0.15;
  std::array<double, data::kNumJoints> bone_ratios = kMeanBoneRatios;
};

// z_root fitted to every bone of the hand. In bone units (reference bone = 1),
// joint n sits at X_n(z) = (z + d_n) (x̄_n, ȳ_n, 1) for a root depth z; the
// bone (n, m) then has length |X_n(z) - X_m(z)| = |z a + b| with
// a = p_n - p_m, b = d_n p_n - d_m p_m, p = (x̄, ȳ, 1). The fit minimises
//   f(z) = Σ_bones ρ(|z a + b| - L_nm)
// over z with every joint in front of the camera (z + d_n > 0), L_nm from
// `bone_ratios`. f is one-dimensional but not convex (ρ is robust, and each
// length is the square root of a quadratic), so it is scanned on a
// logarithmic grid from just in front of the camera to 10^4 bone lengths and
// the best bracket refined by golden-section search. With the reference bone
// alone and least squares this is Iqbal et al.'s closed form; with all 20
// bones the noise of single joints averages out (docs/model.md, "Root depth
// without ground truth", measures both). `exact` is false when the best z lies
// at the end of the range (no bone constrains the depth).
inline RootRecovery recover_root_depth_all_bones(const double (*uvd)[3], const std::array<double, 4>& K,
                                                 double bone_length_mm = kDefaultBoneLengthMm,
                                                 const AllBonesOptions& options = {}) {
  LGH_CHECK(bone_length_mm > 0, "recover_root_depth_all_bones: bone length must be positive, got " << bone_length_mm);
  LGH_CHECK(K[0] != 0 && K[1] != 0, "recover_root_depth_all_bones: focal lengths must be non-zero");
  LGH_CHECK(options.robust_scale >= 0, "recover_root_depth_all_bones: robust_scale must be >= 0, got " << options.robust_scale);
  struct Bone {
    double a[3], b[3], length;
  };
  std::vector<Bone> bones;
  double d_min = 0;
  for (int n = 0; n < data::kNumJoints; ++n) {
    for (int c = 0; c < 3; ++c)
      LGH_CHECK(std::isfinite(uvd[n][c]), "recover_root_depth_all_bones: joint " << n << " has a non-finite prediction");
    d_min = std::min(d_min, uvd[n][2]);
    const int m = data::kParent[n];
    if (m < 0 || options.bone_ratios[n] <= 0) continue;
    const double pn[3] = {(uvd[n][0] - K[2]) / K[0], (uvd[n][1] - K[3]) / K[1], 1};
    const double pm[3] = {(uvd[m][0] - K[2]) / K[0], (uvd[m][1] - K[3]) / K[1], 1};
    Bone b;
    for (int c = 0; c < 3; ++c) {
      b.a[c] = pn[c] - pm[c];
      b.b[c] = uvd[n][2] * pn[c] - uvd[m][2] * pm[c];
    }
    b.length = options.bone_ratios[n];
    bones.push_back(b);
  }
  LGH_CHECK(!bones.empty(), "recover_root_depth_all_bones: no bone has a positive length ratio");
  const double c2 = options.robust_scale * options.robust_scale;
  const auto cost = [&](double z) {
    double f = 0;
    for (const Bone& b : bones) {
      double l2 = 0;
      for (int c = 0; c < 3; ++c) l2 += (z * b.a[c] + b.b[c]) * (z * b.a[c] + b.b[c]);
      const double r = std::sqrt(l2) - b.length;
      f += c2 > 0 ? c2 * std::log1p(r * r / c2) : r * r;
    }
    return f;
  };
  // Every joint in front of the camera: z > -min_n d_n (a hair more).
  const double z_lo = std::max(-d_min, 0.0) + 1e-3, z_hi = 1e4;
  constexpr int kGrid = 400;
  const double ratio = std::pow(z_hi / z_lo, 1.0 / (kGrid - 1));
  int best = 0;
  double best_f = cost(z_lo);
  std::vector<double> z(kGrid);
  for (int i = 0; i < kGrid; ++i) {
    z[static_cast<size_t>(i)] = z_lo * std::pow(ratio, i);
    const double f = cost(z[static_cast<size_t>(i)]);
    if (f < best_f) {
      best_f = f;
      best = i;
    }
  }
  double lo = z[static_cast<size_t>(std::max(best - 1, 0))], hi = z[static_cast<size_t>(std::min(best + 1, kGrid - 1))];
  const double g = 0.5 * (std::sqrt(5.0) - 1);
  double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo), f1 = cost(x1), f2 = cost(x2);
  for (int it = 0; it < 100 && hi - lo > 1e-10 * hi; ++it) {
    if (f1 < f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = cost(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = cost(x2);
    }
  }
  RootRecovery r;
  r.z_root = 0.5 * (lo + hi) * bone_length_mm;
  r.exact = best > 0 && best < kGrid - 1;
  return r;
}

// The two ways to find the root depth without ground truth.
enum class RootMethod {
  ReferenceBone,  // Iqbal et al.'s closed form on the reference bone alone
  AllBones,       // the robust fit to every bone (the default: docs/model.md measures both)
};

inline RootRecovery recover_root_depth(const double (*uvd)[3], const std::array<double, 4>& K, double bone_length_mm,
                                       RootMethod method) {
  return method == RootMethod::AllBones ? recover_root_depth_all_bones(uvd, K, bone_length_mm)
                                        : recover_root_depth(uvd, K, bone_length_mm);
}

// Eq. (3) for one hand, in mm: xyz[j] from uvd[j] (pixels, units of s0) and K.
inline void backproject_hand(const double (*uvd)[3], const std::array<double, 4>& K, double z_root, double s0,
                             int joints, double (*xyz)[3]) {
  for (int j = 0; j < joints; ++j) math::backproject_point(uvd[j], K.data(), z_root, s0, xyz[j]);
}

}  // namespace nn
}  // namespace lgh
