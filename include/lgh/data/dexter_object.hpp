// Dexter+Object (Sridhar et al., ECCV 2016): an evaluation set of six
// sequences of a left hand manipulating a cuboid, annotated with the five
// fingertips only.
//
// Layout (docs/datasets.md):
//   <root>/data/<seq>/color/*.png                 640x480 colour frames, in name order
//   <root>/data/<seq>/annotations/my_<seq>3D.txt  (or <seq>3D.txt) one line per frame:
//       "x, y, z;x, y, z;x, y, z;x, y, z;x, y, z" in mm, fingertips of
//       thumb, index, middle, ring, little; 32001 marks a fingertip that is
//       not annotated
// with seq one of Grasp1, Grasp2, Occlusion, Rigid, Pinch, Rotate. When both
// annotation files exist, my_<seq>3D.txt (the revised one distributed with
// the public evaluation code) is used.
//
// The 3D points are in the depth sensor's frame with x and y pointing the
// other way from the usual camera convention; as the public evaluation code
// does, they are negated and moved to the colour camera with its extrinsics,
// xyz = R (-x, -y, z) + t, then projected with the colour intrinsics
// (fx 587.45209, fy 600.67456, cx 325, cy 249). All hands are left hands.
// Only the five fingertips carry labels: the other joints (and fingertips
// marked 32001) have NaN coordinates and are not visible; `visible` means
// "annotated", which is the evaluation subset (5 fingertips). s0 and z_root
// cannot be formed from fingertips, so evaluation on this set aligns root
// and scale to the ground truth (as Yang et al. do).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/dataset.hpp"
#include "lgh/data/reader_util.hpp"

namespace lgh {
namespace data {

struct DexterObjectOptions {
  std::vector<std::string> sequences = {"Grasp1", "Grasp2", "Occlusion", "Rigid", "Pinch", "Rotate"};
  Intrinsics color_K{587.45209, 600.67456, 325, 249};
  // Depth sensor -> colour camera: xyz_colour = R xyz_depth + t (t in mm).
  std::array<std::array<double, 3>, 3> rotation{{{0.9999, 0.0034, 0.0161},
                                                 {-0.0033, 1.0000, -0.0079},
                                                 {-0.0162, 0.0079, 0.9998}}};
  std::array<double, 3> translation{19.0473, -1.8514, -4.7501};
  bool negate_xy = true;  // the annotation frame's x and y point the other way
  int image_width = 640, image_height = 480;  // checked on read; 0 skips
};

class DexterObjectDataset : public Dataset {
 public:
  static constexpr int kTips = 5;
  static constexpr double kMissing = 32001;

  // Canonical joints of the annotated fingertips, in the file's order.
  static constexpr std::array<int, kTips> kTipJoints = {joint_index(Thumb, 0), joint_index(Index, 0),
                                                        joint_index(Middle, 0), joint_index(Ring, 0),
                                                        joint_index(Little, 0)};

  explicit DexterObjectDataset(std::string root, DexterObjectOptions options = {})
      : root_(std::move(root)), opt_(std::move(options)) {
    LGH_CHECK(!opt_.sequences.empty(), "dexter_object: no sequences selected");
    for (const std::string& seq : opt_.sequences) load_sequence(seq);
    LGH_CHECK(!frames_.empty(), "dexter_object: no frames under '" << root_ << "/data'");
  }

  int64_t size() const override { return static_cast<int64_t>(frames_.size()); }
  std::string name() const override { return "dexter_object"; }

  HandSample get(int64_t index) const override {
    LGH_CHECK(index >= 0 && index < size(), name() << ": sample index " << index << " out of range [0, " << size()
                                                   << ")");
    const Frame& f = frames_[static_cast<size_t>(index)];
    HandSample s;
    s.id = "dexter_object/" + f.sequence + "/" + f.image.substr(0, f.image.rfind('.'));
    s.rgb = detail::read_sample_image(root_ + "/data/" + f.sequence + "/color/" + f.image, 3, s.id,
                                      opt_.image_width, opt_.image_height);
    s.is_left = true;
    s.K = opt_.color_K;
    const double nan = std::nan("");
    for (int j = 0; j < kNumJoints; ++j) {
      s.xyz[j] = {nan, nan, nan};
      s.uv[j] = {nan, nan};
      s.visible[j] = false;
    }
    const double flip = opt_.negate_xy ? -1.0 : 1.0;
    for (int t = 0; t < kTips; ++t) {
      const double* p = &f.tips[static_cast<size_t>(3 * t)];
      if (!std::isfinite(p[0])) continue;  // not annotated
      const double q[3] = {flip * p[0], flip * p[1], p[2]};
      std::array<double, 3> c{};
      for (int r = 0; r < 3; ++r)
        c[r] = opt_.rotation[r][0] * q[0] + opt_.rotation[r][1] * q[1] + opt_.rotation[r][2] * q[2] + opt_.translation[r];
      LGH_CHECK(c[2] > 0, s.id << ": fingertip " << t << " lies behind the colour camera (z = " << c[2] << " mm)");
      const int j = kTipJoints[static_cast<size_t>(t)];
      s.xyz[j] = c;
      s.uv[j] = detail::project_point(s.K, c);
      s.visible[j] = true;
    }
    return s;
  }

 private:
  struct Frame {
    std::string sequence, image;
    std::array<double, 3 * kTips> tips{};
  };

  void load_sequence(const std::string& seq) {
    const std::string dir = root_ + "/data/" + seq;
    const std::string color = dir + "/color";
    LGH_CHECK(detail::is_dir(color), "dexter_object: image folder '" << color << "' is missing");
    std::vector<std::string> images;
    DIR* d = ::opendir(color.c_str());
    LGH_CHECK(d != nullptr, "dexter_object: cannot list '" << color << "'");
    while (const dirent* e = ::readdir(d)) {
      const std::string f = e->d_name;
      if (f.size() > 4 && f.compare(f.size() - 4, 4, ".png") == 0) images.push_back(f);
    }
    ::closedir(d);
    std::sort(images.begin(), images.end());

    std::string path = dir + "/annotations/my_" + seq + "3D.txt";
    if (!detail::is_file(path)) path = dir + "/annotations/" + seq + "3D.txt";
    LGH_CHECK(detail::is_file(path), "dexter_object: annotation file '" << path << "' (or my_" << seq
                                                                        << "3D.txt) is missing");
    std::ifstream in(path);
    LGH_CHECK(in.good(), "dexter_object: cannot open '" << path << "'");
    std::vector<std::array<double, 3 * kTips>> labels;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank (e.g. a final newline)
      labels.push_back(parse_line(line, path, line_no));
    }
    LGH_CHECK(labels.size() == images.size(), "dexter_object: '" << path << "' has " << labels.size()
                                                                 << " annotated frames but '" << color << "' has "
                                                                 << images.size() << " images");
    for (size_t i = 0; i < images.size(); ++i) frames_.push_back(Frame{seq, images[i], labels[i]});
  }

  static std::array<double, 3 * kTips> parse_line(const std::string& line, const std::string& path, int line_no) {
    std::array<double, 3 * kTips> tips{};
    std::vector<std::string> fields;
    size_t start = 0;
    for (;;) {
      const size_t semi = line.find(';', start);
      fields.push_back(line.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
      if (semi == std::string::npos) break;
      start = semi + 1;
    }
    while (!fields.empty() && fields.back().find_first_not_of(" \t\r") == std::string::npos) fields.pop_back();
    LGH_CHECK(fields.size() == kTips, "dexter_object: '" << path << "' line " << line_no << ": expected " << kTips
                                                         << " fingertips 'x, y, z' separated by ';', found "
                                                         << fields.size());
    for (int t = 0; t < kTips; ++t) {
      const std::string& f = fields[static_cast<size_t>(t)];
      const char* p = f.c_str();
      bool missing = false;
      for (int c = 0; c < 3; ++c) {
        while (*p == ' ' || *p == '\t') ++p;
        if (c > 0) {
          LGH_CHECK(*p == ',', "dexter_object: '" << path << "' line " << line_no << ", fingertip " << t
                                                  << ": expected 'x, y, z', found '" << f << "'");
          ++p;
        }
        char* end = nullptr;
        const double v = std::strtod(p, &end);
        LGH_CHECK(end != p && std::isfinite(v), "dexter_object: '" << path << "' line " << line_no << ", fingertip "
                                                                   << t << ": '" << f << "' is not three numbers");
        p = end;
        tips[static_cast<size_t>(3 * t + c)] = v;
        missing = missing || v == kMissing;
      }
      while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
      LGH_CHECK(*p == '\0', "dexter_object: '" << path << "' line " << line_no << ", fingertip " << t
                                               << ": trailing text in '" << f << "'");
      if (missing)
        for (int c = 0; c < 3; ++c) tips[static_cast<size_t>(3 * t + c)] = std::nan("");
    }
    return tips;
  }

  std::string root_;
  DexterObjectOptions opt_;
  std::vector<Frame> frames_;
};

}  // namespace data
}  // namespace lgh
