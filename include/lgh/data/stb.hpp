// Stereo Hand Pose Tracking Benchmark (STB; Zhang et al., ICIP 2017).
//
// Layout (docs/datasets.md):
//   <root>/labels/B{1..6}{Counting,Random}_{BB,SK}.mat   variable handPara, 3 x 21 x 1500, mm
//   <root>/images/B{1..6}{Counting,Random}/SK_color_%d.png  Intel RealSense colour, 640x480
//   <root>/images/B{1..6}{Counting,Random}/BB_left_%d.png   Bumblebee2 left view, 640x480
// Frames are numbered from 0. B1 (Counting and Random) is the test split,
// B2-B6 the training split. Every hand is a left hand (flagged is_left;
// the crop mirrors it).
//
// Joint order of handPara: 0 palm centre, then little, ring, middle, index
// and thumb, each MCP -> tip; mapped here to the canonical order
// (hand.hpp). STB has no wrist: by default the palm centre stays in the
// wrist slot (joint 0), which is what STB's ground truth and the published
// STB protocol (Zimmermann & Brox 2017) evaluate. StbWrist::kExtrapolated
// instead puts an estimated wrist there, wrist = mcp + k (palm - mcp) with
// mcp the middle MCP and k = 2 (the palm centre taken as the midpoint of
// wrist and middle MCP), for mixing STB with wrist-annotated data in
// training. The root (middle MCP) and the reference bone are the same
// either way.
//
// Cameras: BB labels are in the left Bumblebee camera's frame. SK labels are
// in the RealSense *depth* camera's frame; the dataset's readme gives the
// rotation vector r and translation T (mm) taking colour-camera coordinates
// to depth-camera ones, d = R(r) c + T, so c = R(r)^T (d - T) (the
// conversion the public STB loaders apply).
//
// Reading the .mat files needs matio: lgh/data/stb_mat.hpp provides
// open_stb(root, options) and is included below when LGH_HAVE_MATIO is
// defined (link lgh::matio). This header alone builds the dataset from any
// label reader.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/dataset.hpp"
#include "lgh/data/reader_util.hpp"

namespace lgh {
namespace data {

enum class StbCamera { kColor, kStereoLeft };  // SK (RealSense colour) / BB (Bumblebee2 left)
enum class StbWrist { kPalmCentre, kExtrapolated };

struct StbOptions {
  std::string split = "test";          // "test" (B1), "train" (B2-B6) or "all"
  std::vector<std::string> sequences;  // explicit sequence names, overriding `split`
  StbCamera camera = StbCamera::kColor;
  StbWrist wrist = StbWrist::kPalmCentre;
  double wrist_extrapolation = 2.0;    // k in wrist = mcp + k (palm - mcp)
  int image_width = 640, image_height = 480;  // checked on read; 0 skips
};

// handPara of one sequence as MATLAB stores it: element (c, j, n) of the
// 3 x 21 x frames array at values[c + 3 (j + 21 n)], in mm.
struct StbLabels {
  int64_t frames = 0;
  std::vector<double> values;
};
using StbLabelReader = std::function<StbLabels(const std::string& mat_path)>;

namespace stb {

constexpr double kBBFocal = 822.79041, kBBCx = 318.47345, kBBCy = 250.31296;
constexpr double kSKFx = 607.92271, kSKFy = 607.88192, kSKCx = 314.78337, kSKCy = 236.42484;
// Colour -> depth camera of the RealSense (dataset readme).
constexpr double kSKRotation[3] = {0.00531, -0.01196, 0.00301};
constexpr double kSKTranslation[3] = {-24.0381, -0.4563, -1.2326};

inline Intrinsics intrinsics(StbCamera camera) {
  return camera == StbCamera::kColor ? Intrinsics{kSKFx, kSKFy, kSKCx, kSKCy}
                                     : Intrinsics{kBBFocal, kBBFocal, kBBCx, kBBCy};
}

inline std::vector<std::string> sequences(const std::string& split) {
  std::vector<std::string> out;
  int first = 0, last = -1;
  if (split == "test") first = last = 1;
  else if (split == "train") first = 2, last = 6;
  else if (split == "all") first = 1, last = 6;
  LGH_CHECK(last >= first, "stb: split '" << split << "' is not one of test, train, all");
  for (int b = first; b <= last; ++b) {
    out.push_back("B" + std::to_string(b) + "Counting");
    out.push_back("B" + std::to_string(b) + "Random");
  }
  return out;
}

// STB joint holding canonical joint j: canonical finger f (thumb first),
// depth d from the tip, is STB finger 4 - f (little first), MCP first.
constexpr int joint_from_canonical(int j) { return j == 0 ? 0 : 1 + 4 * (4 - (j - 1) / 4) + (3 - (j - 1) % 4); }

// R(r) by Rodrigues' formula, row-major.
inline std::array<std::array<double, 3>, 3> rodrigues(const double r[3]) {
  const double theta = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
  std::array<std::array<double, 3>, 3> R{};
  if (theta == 0) {
    for (int i = 0; i < 3; ++i) R[i][i] = 1;
    return R;
  }
  const double k[3] = {r[0] / theta, r[1] / theta, r[2] / theta};
  const double c = std::cos(theta), s = std::sin(theta);
  const double K[3][3] = {{0, -k[2], k[1]}, {k[2], 0, -k[0]}, {-k[1], k[0], 0}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) R[i][j] = (i == j ? c : 0.0) + (1 - c) * k[i] * k[j] + s * K[i][j];
  return R;
}

// A point of the SK labels (depth camera) in the colour camera's frame.
inline std::array<double, 3> sk_depth_to_color(const std::array<double, 3>& d) {
  static const auto R = rodrigues(kSKRotation);
  const double v[3] = {d[0] - kSKTranslation[0], d[1] - kSKTranslation[1], d[2] - kSKTranslation[2]};
  std::array<double, 3> c{};
  for (int i = 0; i < 3; ++i) c[i] = R[0][i] * v[0] + R[1][i] * v[1] + R[2][i] * v[2];  // R^T v
  return c;
}

}  // namespace stb

class StbDataset : public Dataset {
 public:
  StbDataset(std::string root, StbOptions options, const StbLabelReader& read_labels)
      : root_(std::move(root)), opt_(std::move(options)) {
    LGH_CHECK(read_labels, "stb: no label reader given (use open_stb from lgh/data/stb_mat.hpp)");
    if (opt_.sequences.empty()) opt_.sequences = stb::sequences(opt_.split);
    const char* tag = opt_.camera == StbCamera::kColor ? "SK" : "BB";
    int64_t total = 0;
    for (const std::string& seq : opt_.sequences) {
      const std::string path = root_ + "/labels/" + seq + "_" + tag + ".mat";
      LGH_CHECK(detail::is_file(path), "stb: label file '" << path << "' is missing");
      StbLabels labels = read_labels(path);
      LGH_CHECK(labels.frames > 0 && labels.values.size() == static_cast<size_t>(labels.frames) * 3 * kNumJoints,
                "stb: '" << path << "' holds " << labels.values.size() << " values for " << labels.frames
                         << " frames, expected 3 x 21 per frame");
      total += labels.frames;
      sequences_.push_back({seq, total, std::move(labels.values)});
    }
    size_ = total;
  }

  int64_t size() const override { return size_; }
  std::string name() const override { return "stb:" + (opt_.sequences.size() == 1 ? opt_.sequences[0] : opt_.split); }
  const StbOptions& options() const { return opt_; }

  HandSample get(int64_t index) const override {
    LGH_CHECK(index >= 0 && index < size_, name() << ": sample index " << index << " out of range [0, " << size_ << ")");
    size_t q = 0;
    while (index >= sequences_[q].end) ++q;
    const Sequence& seq = sequences_[q];
    const int64_t frame = index - (seq.end - static_cast<int64_t>(seq.values.size() / (3 * kNumJoints)));
    const bool color = opt_.camera == StbCamera::kColor;
    const std::string file = (color ? "SK_color_" : "BB_left_") + std::to_string(frame);

    HandSample s;
    s.id = "stb/" + seq.name + "/" + file;
    s.rgb = detail::read_sample_image(root_ + "/images/" + seq.name + "/" + file + ".png", 3, s.id, opt_.image_width,
                                      opt_.image_height);
    s.is_left = true;
    s.K = stb::intrinsics(opt_.camera);
    const double* raw = seq.values.data() + frame * 3 * kNumJoints;
    for (int j = 0; j < kNumJoints; ++j) {
      const int k = stb::joint_from_canonical(j);
      std::array<double, 3> p = {raw[3 * k], raw[3 * k + 1], raw[3 * k + 2]};
      s.xyz[j] = color ? stb::sk_depth_to_color(p) : p;
    }
    if (opt_.wrist == StbWrist::kExtrapolated) {
      const auto palm = s.xyz[0], mcp = s.xyz[kRootJoint];
      for (int c = 0; c < 3; ++c) s.xyz[0][c] = mcp[c] + opt_.wrist_extrapolation * (palm[c] - mcp[c]);
    }
    for (int j = 0; j < kNumJoints; ++j)
      LGH_CHECK(std::isfinite(s.xyz[j][0]) && std::isfinite(s.xyz[j][1]) && s.xyz[j][2] > 0,
                s.id << ": joint " << j << " has no valid position in front of the camera");
    detail::project_labels(s, s.rgb.width, s.rgb.height);
    return s;
  }

 private:
  struct Sequence {
    std::string name;
    int64_t end = 0;  // one past this sequence's last global index
    std::vector<double> values;
  };

  std::string root_;
  StbOptions opt_;
  std::vector<Sequence> sequences_;
  int64_t size_ = 0;
};

}  // namespace data
}  // namespace lgh

#if defined(LGH_HAVE_MATIO)
#include "lgh/data/stb_mat.hpp"
#endif
