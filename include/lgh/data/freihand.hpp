// FreiHAND (Zimmermann et al., ICCV 2019), and anything written in its
// layout (`lgh synth` does).
//
// Layout (docs/datasets.md):
//   <root>/<split>_K.json      list of 3x3 intrinsics, one per annotation
//   <root>/<split>_xyz.json    list of 21x3 joints, metres, FreiHAND order (wrist, then
//                              each finger root -> tip, thumb first)
//   <root>/<split>_vis.json    optional: list of 21 visibility flags, FreiHAND order
//   <root>/<split>/rgb/%08d.jpg  224x224 RGB
//   <root>/<split>/mask/%08d.jpg optional hand masks (> 127 = hand), one per annotation
// with split = "training" (or "evaluation" for the annotated evaluation
// release). The training images are the annotated ones in four appearance
// versions: image i shows annotation i mod N (N = 32,560 there; here N is
// the number of annotations, so smaller sets in this layout work), and so
// does its mask. The dataset's size is the number of images.
//
// Joints are mapped to the canonical order, returned in mm; uv is the
// projection of xyz (FreiHAND has no 2D labels), visible where inside the
// image (and flagged visible in <split>_vis.json when present). All hands
// are right hands. <split>_scale.json (the length of the middle finger's
// first bone) is not needed: s0 is computed from the joints.
#pragma once

#include <array>
#include <cstdint>
#include <dirent.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/dataset.hpp"
#include "lgh/data/reader_util.hpp"

namespace lgh {
namespace data {

struct FreiHandOptions {
  std::string split = "training";  // file prefix and image folder
  int image_size = 224;            // expected width and height; 0 skips the check
  bool load_masks = true;          // read <split>/mask when that folder exists
  // Bounds on the annotation files, checked before and while they are
  // parsed, so that a forged file cannot exhaust memory (a parsed JSON
  // value takes tens of bytes): larger files are refused before reading,
  // and parsing stops at the first list entry or value beyond the limit.
  // FreiHAND's training_xyz.json holds 32,560 entries in about 40 MB.
  int64_t max_annotations = 1000000;
  int64_t max_json_bytes = int64_t(256) << 20;
};

class FreiHandDataset : public Dataset {
 public:
  explicit FreiHandDataset(std::string root, FreiHandOptions options = {})
      : root_(std::move(root)), opt_(std::move(options)) {
    const std::string prefix = root_ + "/" + opt_.split;
    const nlohmann::json K = read_json(prefix + "_K.json");
    const nlohmann::json xyz = read_json(prefix + "_xyz.json");
    LGH_CHECK(K.is_array() && xyz.is_array() && K.size() == xyz.size() && !K.empty(),
              "freihand: '" << prefix << "_K.json' and '" << prefix << "_xyz.json' must be lists of the same "
                            << "non-zero length, found " << (K.is_array() ? K.size() : 0) << " and "
                            << (xyz.is_array() ? xyz.size() : 0) << " entries");
    const size_t n = K.size();
    K_.resize(n);
    xyz_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string ctx_k = "freihand: '" + prefix + "_K.json' entry " + std::to_string(i);
      const std::string ctx_x = "freihand: '" + prefix + "_xyz.json' entry " + std::to_string(i);
      check_matrix(K[i], 3, 3, ctx_k);
      check_matrix(xyz[i], kNumJoints, 3, ctx_x);
      K_[i] = detail::intrinsics_from_matrix([&](int r, int c) { return K[i][r][c].get<double>(); }, ctx_k);
      for (int j = 0; j < kNumJoints; ++j)
        for (int c = 0; c < 3; ++c) xyz_[i][static_cast<size_t>(3 * j + c)] = xyz[i][j][c].get<double>();
    }
    if (detail::is_file(prefix + "_vis.json")) {
      const nlohmann::json vis = read_json(prefix + "_vis.json");
      LGH_CHECK(vis.is_array() && vis.size() == n, "freihand: '" << prefix << "_vis.json' has "
                                                                 << (vis.is_array() ? vis.size() : 0)
                                                                 << " entries, expected " << n);
      vis_.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const auto& v = vis[i];
        LGH_CHECK(v.is_array() && v.size() == kNumJoints,
                  "freihand: '" << prefix << "_vis.json' entry " << i << " is not a list of 21 flags");
        for (int j = 0; j < kNumJoints; ++j) {
          LGH_CHECK(v[j].is_boolean() || v[j].is_number(),
                    "freihand: '" << prefix << "_vis.json' entry " << i << " joint " << j << " is not a flag");
          vis_[i][static_cast<size_t>(j)] = v[j].is_boolean() ? v[j].get<bool>() : v[j].get<double>() != 0;
        }
      }
    }
    const std::string rgb = prefix + "/rgb";
    LGH_CHECK(detail::is_dir(rgb), "freihand: image folder '" << rgb << "' is missing");
    num_images_ = count_images(rgb);
    LGH_CHECK(num_images_ > 0, "freihand: no %08d.jpg images in '" << rgb << "'");
    has_masks_ = opt_.load_masks && detail::is_dir(prefix + "/mask");
  }

  int64_t size() const override { return num_images_; }
  int64_t num_annotations() const { return static_cast<int64_t>(K_.size()); }
  std::string name() const override { return "freihand:" + opt_.split; }
  bool has_masks() const { return has_masks_; }

  // The annotation shown by image `index`.
  int64_t annotation_index(int64_t index) const { return index % num_annotations(); }

  HandSample get(int64_t index) const override {
    LGH_CHECK(index >= 0 && index < size(), name() << ": sample index " << index << " out of range [0, " << size()
                                                   << ")");
    const int64_t a = annotation_index(index);
    const std::string num = detail::zero_pad(index, 8);
    const std::string dir = root_ + "/" + opt_.split;
    HandSample s;
    s.id = "freihand/" + opt_.split + "/" + num;
    s.rgb = detail::read_sample_image(dir + "/rgb/" + num + ".jpg", 3, s.id, opt_.image_size, opt_.image_size);
    if (has_masks_) {
      Image m = detail::first_channel(detail::read_sample_image(dir + "/mask/" + detail::zero_pad(a, 8) + ".jpg", 0,
                                                                s.id, s.rgb.width, s.rgb.height));
      for (uint8_t& v : m.pixels) v = v > 127 ? 255 : 0;  // JPEG blurs the edges
      s.mask = std::move(m);
    }
    s.K = K_[static_cast<size_t>(a)];
    const auto& x = xyz_[static_cast<size_t>(a)];
    for (int j = 0; j < kNumJoints; ++j) {
      const int f = freihand_from_canonical(j);
      for (int c = 0; c < 3; ++c) s.xyz[j][c] = x[static_cast<size_t>(3 * f + c)] * 1000.0;
    }
    detail::project_labels(s, s.rgb.width, s.rgb.height);
    if (!vis_.empty())
      for (int j = 0; j < kNumJoints; ++j)
        s.visible[j] = s.visible[j] && vis_[static_cast<size_t>(a)][static_cast<size_t>(freihand_from_canonical(j))];
    s.is_left = false;
    return s;
  }

 private:
  // Every annotation file is a list with one entry per annotation; an entry
  // (a 21x3 joint list) holds 85 JSON values, so 128 per entry bounds the
  // whole document.
  static constexpr int64_t kMaxValuesPerEntry = 128;

  nlohmann::json read_json(const std::string& path) const {
    LGH_CHECK(detail::is_file(path), "freihand: annotation file '" << path << "' is missing");
    std::ifstream f(path, std::ios::binary);
    LGH_CHECK(f.good(), "freihand: cannot open '" << path << "'");
    f.seekg(0, std::ios::end);
    const std::streamoff bytes = f.tellg();
    f.seekg(0, std::ios::beg);
    LGH_CHECK(bytes >= 0 && bytes <= opt_.max_json_bytes,
              "freihand: '" << path << "' is " << bytes << " bytes, more than the limit of " << opt_.max_json_bytes
                            << " (FreiHandOptions::max_json_bytes)");
    int64_t entries = 0, values = 0;
    const int64_t max_values = opt_.max_annotations * kMaxValuesPerEntry;
    nlohmann::json::parser_callback_t count = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
      using E = nlohmann::json::parse_event_t;
      if (event == E::value || event == E::array_start || event == E::object_start) {
        LGH_CHECK(++values <= max_values, "freihand: '" << path << "' holds more than " << max_values
                                                        << " JSON values (" << kMaxValuesPerEntry
                                                        << " per annotation, FreiHandOptions::max_annotations = "
                                                        << opt_.max_annotations << ")");
        // An entry of the top-level list starts at depth 1.
        LGH_CHECK(depth != 1 || ++entries <= opt_.max_annotations,
                  "freihand: '" << path << "' lists more than " << opt_.max_annotations
                                << " annotations (FreiHandOptions::max_annotations)");
      }
      return true;
    };
    try {
      return nlohmann::json::parse(f, count);
    } catch (const nlohmann::json::exception& e) {
      LGH_FAIL("freihand: '" << path << "' is not valid JSON: " << e.what());
    }
  }

  static void check_matrix(const nlohmann::json& m, size_t rows, size_t cols, const std::string& ctx) {
    bool ok = m.is_array() && m.size() == rows;
    for (size_t r = 0; ok && r < rows; ++r) {
      ok = m[r].is_array() && m[r].size() == cols;
      for (size_t c = 0; ok && c < cols; ++c) ok = m[r][c].is_number();
    }
    LGH_CHECK(ok, ctx << " is not a " << rows << "x" << cols << " list of numbers");
  }

  // Number of files named as eight digits + ".jpg".
  static int64_t count_images(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    LGH_CHECK(d != nullptr, "freihand: cannot list '" << dir << "'");
    int64_t n = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string f = e->d_name;
      if (f.size() != 12 || f.compare(8, 4, ".jpg") != 0) continue;
      bool digits = true;
      for (int i = 0; i < 8; ++i) digits = digits && f[static_cast<size_t>(i)] >= '0' && f[static_cast<size_t>(i)] <= '9';
      n += digits;
    }
    ::closedir(d);
    return n;
  }

  std::string root_;
  FreiHandOptions opt_;
  std::vector<Intrinsics> K_;
  std::vector<std::array<double, 3 * kNumJoints>> xyz_;
  std::vector<std::array<bool, kNumJoints>> vis_;
  int64_t num_images_ = 0;
  bool has_masks_ = false;
};

}  // namespace data
}  // namespace lgh
