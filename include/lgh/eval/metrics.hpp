// Keypoint metrics exactly as the published evaluation computes them
// (DESIGN.md §5; the authors' utils/eval_utils.py, class EvalUtil, and
// eval_RHD.py):
//
//   * per joint j, the Euclidean distances e_ij over the samples i that count
//     (all of them, or the visible ones when a mask is given);
//   * EPE mean = mean over joints of mean_i e_ij; EPE median = mean over
//     joints of median_i e_ij (eval_utils.py, get_measures: the per-joint
//     means/medians are averaged, not the pooled errors);
//   * PCK_j(t) = fraction of e_ij <= t at thresholds linspace(lo, hi, n);
//     the curve reported is the mean over joints; AUC = mean over joints of
//     trapz(PCK_j, t) / trapz(1, t);
//   * 3D: thresholds linspace(0, 50 mm, 20). "AUC 20-50" is, as eval_RHD.py
//     computes it, the normalised trapezoid over the last 12 of those 20
//     thresholds (pck_curve_all[8:], 21.05...50 mm); the true 20-50 mm figure
//     on a 1 mm grid is reported beside it, labelled;
//   * 2D: pixel errors in the original image, thresholds linspace(0, 30, 20);
//   * FreiHAND: also after Procrustes alignment of each predicted hand to its
//     ground truth (translation, scale, rotation: FreiHAND's align_w_scale),
//     thresholds linspace(0, 50 mm, 100).
// Joints with no measurement are left out of the averages, as the reference
// does.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/data/hand.hpp"

namespace lgh {
namespace eval {

// ---- numpy's building blocks ------------------------------------------------------

// numpy.linspace(lo, hi, n): lo + i (hi - lo)/(n - 1), the last value exactly hi.
inline std::vector<double> linspace(double lo, double hi, int n) {
  LGH_CHECK(n >= 2, "linspace: need at least 2 points, got " << n);
  std::vector<double> t(static_cast<size_t>(n));
  const double step = (hi - lo) / (n - 1);
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = lo + i * step;
  t.back() = hi;
  return t;
}

// numpy.trapz(y, x).
inline double trapz(const std::vector<double>& y, const std::vector<double>& x) {
  LGH_CHECK(x.size() == y.size() && x.size() >= 2, "trapz: need two arrays of the same length >= 2, got "
                                                       << y.size() << " and " << x.size());
  double s = 0;
  for (size_t i = 0; i + 1 < x.size(); ++i) s += (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0;
  return s;
}

// The reference's calc_auc: trapz(y, x) / trapz(1, x), the area under a PCK
// curve normalised by the threshold range.
inline double normalized_auc(const std::vector<double>& thresholds, const std::vector<double>& pck) {
  return trapz(pck, thresholds) / trapz(std::vector<double>(thresholds.size(), 1.0), thresholds);
}

inline double median(std::vector<double> v) {
  LGH_CHECK(!v.empty(), "median of an empty set");
  const size_t n = v.size();
  std::nth_element(v.begin(), v.begin() + n / 2, v.end());
  const double hi = v[n / 2];
  if (n % 2) return hi;
  return 0.5 * (*std::max_element(v.begin(), v.begin() + n / 2) + hi);
}

// ---- per-joint errors and their summary ------------------------------------------

// The summary of one threshold grid (eval_utils.py get_measures).
struct PckSummary {
  double epe_mean = 0, epe_median = 0, auc = 0;
  std::vector<double> thresholds, pck;  // pck: mean over joints at each threshold
  int joints = 0;                       // joints with at least one measurement
};

// Distances per joint, accumulated over samples (EvalUtil.data).
class JointErrors {
 public:
  explicit JointErrors(int joints = data::kNumJoints) : errors_(static_cast<size_t>(joints)) {
    LGH_CHECK(joints >= 1, "JointErrors: need at least one joint, got " << joints);
  }

  int joints() const { return static_cast<int>(errors_.size()); }
  void add(int joint, double error) {
    LGH_CHECK(joint >= 0 && joint < joints(), "JointErrors: joint " << joint << " out of range [0, " << joints() << ")");
    LGH_CHECK(std::isfinite(error) && error >= 0, "JointErrors: joint " << joint << ": error " << error
                                                                         << " is not a finite non-negative distance");
    errors_[static_cast<size_t>(joint)].push_back(error);
  }
  const std::vector<double>& errors(int joint) const { return errors_.at(static_cast<size_t>(joint)); }
  int64_t count() const {
    int64_t n = 0;
    for (const auto& e : errors_) n += static_cast<int64_t>(e.size());
    return n;
  }

  // EPE, PCK and AUC on thresholds linspace(lo, hi, steps).
  PckSummary summarize(double lo, double hi, int steps) const { return summarize(linspace(lo, hi, steps)); }

  PckSummary summarize(const std::vector<double>& thresholds) const {
    PckSummary s;
    s.thresholds = thresholds;
    s.pck.assign(thresholds.size(), 0.0);
    double mean_sum = 0, median_sum = 0, auc_sum = 0;
    for (const auto& e : errors_) {
      if (e.empty()) continue;  // no valid measurement for this joint
      ++s.joints;
      double sum = 0;
      for (double v : e) sum += v;
      mean_sum += sum / static_cast<double>(e.size());
      median_sum += median(e);
      std::vector<double> sorted = e, curve(thresholds.size());
      std::sort(sorted.begin(), sorted.end());
      for (size_t t = 0; t < thresholds.size(); ++t) {
        const auto below = std::upper_bound(sorted.begin(), sorted.end(), thresholds[t]) - sorted.begin();
        curve[t] = static_cast<double>(below) / static_cast<double>(e.size());
        s.pck[t] += curve[t];
      }
      auc_sum += normalized_auc(thresholds, curve);
    }
    LGH_CHECK(s.joints > 0, "metrics: no joint has a measurement (is every joint masked out?)");
    s.epe_mean = mean_sum / s.joints;
    s.epe_median = median_sum / s.joints;
    s.auc = auc_sum / s.joints;
    for (double& p : s.pck) p /= s.joints;
    return s;
  }

 private:
  std::vector<std::vector<double>> errors_;
};

// ---- alignment ---------------------------------------------------------------------

using Joints3 = std::vector<std::array<double, 3>>;

// FreiHAND's align_w_scale: the predicted hand moved onto the ground truth by
// the similarity that Procrustes analysis finds. Both are centred and scaled
// to unit Frobenius norm (+1e-8), the rotation is the orthogonal Procrustes
// solution R = U V^T of svd(gt_n^T pred_n) (as scipy.linalg.orthogonal_procrustes,
// reflections not excluded) and s the sum of its singular values; then
// aligned = (pred_n R^T) s |gt_c| + mean(gt).
inline Joints3 procrustes_align(const Joints3& pred, const Joints3& gt) {
  LGH_CHECK(pred.size() == gt.size() && !pred.empty(), "procrustes_align: need two hands with the same number of joints");
  const Eigen::Index n = static_cast<Eigen::Index>(pred.size());
  Eigen::MatrixXd P(n, 3), G(n, 3);
  for (Eigen::Index i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) {
      P(i, c) = pred[static_cast<size_t>(i)][c];
      G(i, c) = gt[static_cast<size_t>(i)][c];
    }
  const Eigen::RowVector3d tg = G.colwise().mean(), tp = P.colwise().mean();
  G.rowwise() -= tg;
  P.rowwise() -= tp;
  const double sg = G.norm() + 1e-8, sp = P.norm() + 1e-8;
  G /= sg;
  P /= sp;
  // argmin_R |G R - P| over orthogonal R: svd(G^T P) = U S V^T, R = U V^T.
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(G.transpose() * P, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Eigen::Matrix3d R = svd.matrixU() * svd.matrixV().transpose();
  const double s = svd.singularValues().sum();
  const Eigen::MatrixXd A = ((P * R.transpose()) * s * sg).rowwise() + tg;
  Joints3 out(pred.size());
  for (Eigen::Index i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[static_cast<size_t>(i)][c] = A(i, c);
  return out;
}

// The best root and scale (Dexter+Object, after Yang et al.): the scale s and
// translation t minimising Σ |s p_i + t - g_i|² over the given joints, applied
// to the prediction.
inline Joints3 scale_translation_align(const Joints3& pred, const Joints3& gt) {
  LGH_CHECK(pred.size() == gt.size() && !pred.empty(), "scale_translation_align: need two hands with the same number of joints");
  std::array<double, 3> mp{}, mg{};
  const double n = static_cast<double>(pred.size());
  for (size_t i = 0; i < pred.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      mp[c] += pred[i][c] / n;
      mg[c] += gt[i][c] / n;
    }
  double num = 0, den = 0;
  for (size_t i = 0; i < pred.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      num += (pred[i][c] - mp[c]) * (gt[i][c] - mg[c]);
      den += (pred[i][c] - mp[c]) * (pred[i][c] - mp[c]);
    }
  const double s = den > 0 ? num / den : 1.0;
  Joints3 out(pred.size());
  for (size_t i = 0; i < pred.size(); ++i)
    for (int c = 0; c < 3; ++c) out[i][c] = s * (pred[i][c] - mp[c]) + mg[c];
  return out;
}

// ---- the protocols -------------------------------------------------------------------

enum class Protocol { Rhd, Stb, FreiHand, DexterObject };

inline Protocol parse_protocol(const std::string& s) {
  if (s == "rhd") return Protocol::Rhd;
  if (s == "stb") return Protocol::Stb;
  if (s == "freihand") return Protocol::FreiHand;
  if (s == "do") return Protocol::DexterObject;
  LGH_FAIL("unknown protocol '" << s << "' (expected rhd, stb, freihand or do)");
}

inline const char* protocol_name(Protocol p) {
  switch (p) {
    case Protocol::Rhd: return "rhd";
    case Protocol::Stb: return "stb";
    case Protocol::FreiHand: return "freihand";
    case Protocol::DexterObject: return "do";
  }
  return "?";
}

// Threshold grids of §5.
struct Grids {
  static constexpr double kMaxMm = 50;
  static constexpr int kSteps3d = 20;
  static constexpr int kFirstOf20To50 = 8;    // eval_RHD.py: pck_curve_all[8:], threshs[8:]
  static constexpr int kStepsExact20To50 = 31;  // 20, 21, ..., 50 mm
  static constexpr int kStepsAligned = 100;   // FreiHAND: linspace(0, 50 mm, 100)
  static constexpr double kMax2dPx = 30;
  static constexpr int kSteps2d = 20;
};

// The figures of one set of 3D errors (mm).
struct Metrics3d {
  PckSummary curve;              // 0-50 mm, 20 thresholds (100 when aligned)
  double auc_20_50 = 0;          // the reference's: the last 12 of the 20 thresholds
  PckSummary exact_20_50;        // a true 20-50 mm grid
  bool has_reference_subset = false;
};

inline Metrics3d summarize_3d(const JointErrors& e, int steps = Grids::kSteps3d) {
  Metrics3d m;
  m.curve = e.summarize(0.0, Grids::kMaxMm, steps);
  if (steps == Grids::kSteps3d) {
    const std::vector<double> t(m.curve.thresholds.begin() + Grids::kFirstOf20To50, m.curve.thresholds.end());
    const std::vector<double> p(m.curve.pck.begin() + Grids::kFirstOf20To50, m.curve.pck.end());
    m.auc_20_50 = normalized_auc(t, p);
    m.has_reference_subset = true;
  }
  m.exact_20_50 = e.summarize(20.0, Grids::kMaxMm, Grids::kStepsExact20To50);
  return m;
}

inline nlohmann::json to_json(const Metrics3d& m) {
  nlohmann::json j = {{"epe_mean_mm", m.curve.epe_mean}, {"epe_median_mm", m.curve.epe_median},
                      {"auc_0_50", m.curve.auc},         {"auc_20_50_exact", m.exact_20_50.auc},
                      {"thresholds_mm", m.curve.thresholds}, {"pck", m.curve.pck},
                      {"thresholds_20_50_exact_mm", m.exact_20_50.thresholds}, {"pck_20_50_exact", m.exact_20_50.pck},
                      {"joints", m.curve.joints}};
  if (m.has_reference_subset) j["auc_20_50"] = m.auc_20_50;
  return j;
}

// Predictions and ground truth of N hands, as the metrics consume them.
struct PoseSet {
  Tensor<double> xyz;  // [N,J,3] mm
  Tensor<double> uv;   // [N,J,2] original-image pixels (optional)
  Tensor<double> vis;  // [N,J] 1 where the joint counts (optional)
};

struct EvaluationMetrics {
  Protocol protocol = Protocol::Rhd;
  int64_t samples = 0;
  Metrics3d xyz;
  bool has_uv = false;
  PckSummary uv;  // 0-30 px, 20 thresholds
  bool has_aligned = false;
  Metrics3d aligned;  // FreiHAND: after Procrustes alignment, 100 thresholds

  nlohmann::json to_json() const {
    nlohmann::json j = eval::to_json(xyz);
    j["protocol"] = protocol_name(protocol);
    j["samples"] = samples;
    if (has_uv)
      j["uv"] = {{"epe_mean_px", uv.epe_mean}, {"epe_median_px", uv.epe_median}, {"auc_0_30", uv.auc},
                 {"thresholds_px", uv.thresholds}, {"pck", uv.pck}};
    if (has_aligned) {
      j["aligned"] = eval::to_json(aligned);
      // FreiHAND reports its keypoint errors in cm.
      j["aligned"]["epe_mean_cm"] = aligned.curve.epe_mean / 10;
      j["aligned"]["epe_median_cm"] = aligned.curve.epe_median / 10;
    }
    return j;
  }
};

namespace detail {
inline void check_pose_tensor(const Tensor<double>& t, const char* name, int64_t n, int64_t joints, int64_t dims) {
  if (!t.defined()) return;
  const Shape want = dims > 0 ? Shape{n, joints, dims} : Shape{n, joints};
  LGH_CHECK(t.shape() == want, "metrics: '" << name << "' has shape " << t.shape().str() << ", expected " << want.str());
}
}  // namespace detail

// The joints a protocol scores: the five fingertips for Dexter+Object, every
// joint otherwise.
inline std::vector<int> scored_joints(Protocol p, int joints) {
  std::vector<int> out;
  if (p == Protocol::DexterObject) {
    LGH_CHECK(joints == data::kNumJoints, "metrics: the 'do' protocol needs the 21-joint layout, got " << joints << " joints");
    for (int f = 0; f < 5; ++f) out.push_back(data::joint_index(f, 0));
  } else {
    for (int j = 0; j < joints; ++j) out.push_back(j);
  }
  return out;
}

// Every figure of §5 for predictions `pred` against ground truth `gt`. A
// joint counts where gt.vis (when given) is non-zero; pred.vis is ignored
// (the reference's RHD evaluation passes no mask: all 21 joints count). 2D
// figures need uv in both. Dexter+Object scores the five fingertips after the
// best scale and translation; FreiHAND adds the Procrustes-aligned figures.
inline EvaluationMetrics compute_metrics(const PoseSet& pred, const PoseSet& gt, Protocol protocol) {
  LGH_CHECK(pred.xyz.defined() && gt.xyz.defined(), "metrics: 'xyz' is needed in both the predictions and the ground truth");
  LGH_CHECK(gt.xyz.ndim() == 3 && gt.xyz.size(2) == 3 && gt.xyz.size(0) >= 1,
            "metrics: ground truth 'xyz' has shape " << gt.xyz.shape().str() << ", expected [N,J,3] with N >= 1");
  const int64_t N = gt.xyz.size(0), J = gt.xyz.size(1);
  detail::check_pose_tensor(pred.xyz, "xyz (predictions)", N, J, 3);
  detail::check_pose_tensor(gt.vis, "vis", N, J, 0);
  const bool use_uv = pred.uv.defined() && gt.uv.defined();
  if (use_uv) {
    detail::check_pose_tensor(pred.uv, "uv (predictions)", N, J, 2);
    detail::check_pose_tensor(gt.uv, "uv (ground truth)", N, J, 2);
  }
  const Tensor<double> px = pred.xyz.contiguous(), gx = gt.xyz.contiguous();
  const Tensor<double> vis = gt.vis.defined() ? gt.vis.contiguous() : Tensor<double>();
  const std::vector<int> joints = scored_joints(protocol, static_cast<int>(J));
  auto counts = [&](int64_t i, int j) { return !vis.defined() || vis.data()[i * J + j] != 0; };
  auto check_finite = [&](double v, const char* what, int64_t i, int j) {
    LGH_CHECK(std::isfinite(v), "metrics: " << what << " of sample " << i << ", joint " << j << " is not finite");
  };

  EvaluationMetrics m;
  m.protocol = protocol;
  m.samples = N;
  JointErrors e3(static_cast<int>(J)), e2(static_cast<int>(J)), ea(static_cast<int>(J));
  for (int64_t i = 0; i < N; ++i) {
    Joints3 p, g;
    std::vector<int> ids;
    for (int j : joints) {
      if (!counts(i, j)) continue;
      std::array<double, 3> a{}, b{};
      for (int c = 0; c < 3; ++c) {
        a[c] = px.data()[(i * J + j) * 3 + c];
        b[c] = gx.data()[(i * J + j) * 3 + c];
        check_finite(a[c], "predicted xyz", i, j);
        check_finite(b[c], "ground-truth xyz", i, j);
      }
      p.push_back(a);
      g.push_back(b);
      ids.push_back(j);
    }
    if (p.empty()) continue;
    // Dexter+Object has no root or scale to take from the ground truth: the
    // prediction gets the best ones (Yang et al. 2019, as the paper does).
    if (protocol == Protocol::DexterObject && p.size() >= 2) p = scale_translation_align(p, g);
    const Joints3 al = protocol == Protocol::FreiHand ? procrustes_align(p, g) : Joints3();
    for (size_t k = 0; k < p.size(); ++k) {
      double d2 = 0, a2 = 0;
      for (int c = 0; c < 3; ++c) {
        d2 += (p[k][c] - g[k][c]) * (p[k][c] - g[k][c]);
        if (!al.empty()) a2 += (al[k][c] - g[k][c]) * (al[k][c] - g[k][c]);
      }
      e3.add(ids[k], std::sqrt(d2));
      if (!al.empty()) ea.add(ids[k], std::sqrt(a2));
    }
  }
  m.xyz = summarize_3d(e3);
  if (protocol == Protocol::FreiHand) {
    m.has_aligned = true;
    m.aligned = summarize_3d(ea, Grids::kStepsAligned);
  }
  if (use_uv) {
    const Tensor<double> pu = pred.uv.contiguous(), gu = gt.uv.contiguous();
    for (int64_t i = 0; i < N; ++i)
      for (int j : joints) {
        if (!counts(i, j)) continue;
        const double* a = pu.data() + (i * J + j) * 2;
        const double* b = gu.data() + (i * J + j) * 2;
        check_finite(a[0] + a[1], "predicted uv", i, j);
        check_finite(b[0] + b[1], "ground-truth uv", i, j);
        e2.add(j, std::hypot(a[0] - b[0], a[1] - b[1]));
      }
    m.has_uv = true;
    m.uv = e2.summarize(0.0, Grids::kMax2dPx, Grids::kSteps2d);
  }
  return m;
}

}  // namespace eval
}  // namespace lgh
