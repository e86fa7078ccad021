// Rendered Hand Pose Dataset (RHD; Zimmermann & Brox, ICCV 2017).
//
// Layout (docs/datasets.md):
//   <root>/{training,evaluation}/color/%05d.png   320x320 RGB
//   <root>/{training,evaluation}/mask/%05d.png    320x320, 0 background, 1 person,
//                                                  2-17 left hand, 18-33 right hand
//   <root>/{training,evaluation}/anno_{set}.pickle (also accepted directly under <root>)
// The pickle (written by Python 2, protocol 2) maps the sample number to
//   'xyz'    42x3, metres, camera frame
//   'uv_vis' 42x3, pixel u, v and visibility (1 visible)
//   'K'      3x3 intrinsics
// with joints 0-20 the left hand and 21-41 the right one, each already in the
// canonical (RHD) order. As in the published evaluation, the hand with more
// mask pixels is the sample's hand (ties go to the right hand); a left hand
// is flagged is_left and mirrored by the crop. xyz is returned in mm; the
// mask is 255 on the chosen hand. The depth maps are not read.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/dataset.hpp"
#include "lgh/data/pickle.hpp"
#include "lgh/data/reader_util.hpp"

namespace lgh {
namespace data {

struct RhdOptions {
  std::string set = "training";  // "training" or "evaluation"
  int image_size = 320;          // expected width and height of the images; 0 skips the check
};

class RhdDataset : public Dataset {
 public:
  static constexpr int kLabelJoints = 42;

  explicit RhdDataset(std::string root, RhdOptions options = {}) : root_(std::move(root)), opt_(std::move(options)) {
    LGH_CHECK(opt_.set == "training" || opt_.set == "evaluation",
              "rhd: set '" << opt_.set << "' is neither 'training' nor 'evaluation'");
    std::string path = root_ + "/" + opt_.set + "/anno_" + opt_.set + ".pickle";
    if (!detail::is_file(path) && detail::is_file(root_ + "/anno_" + opt_.set + ".pickle"))
      path = root_ + "/anno_" + opt_.set + ".pickle";
    LGH_CHECK(detail::is_file(path), "rhd: annotation file '" << path << "' is missing (is '" << root_
                                                               << "' the RHD root directory?)");
    load_annotations(path);
  }

  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  std::string name() const override { return "rhd:" + opt_.set; }

  // The pickle key (= file number) of sample `index`.
  int64_t key(int64_t index) const { return entry(index).key; }

  HandSample get(int64_t index) const override {
    const Entry& e = entry(index);
    const std::string num = detail::zero_pad(e.key, 5);
    HandSample s;
    s.id = "rhd/" + opt_.set + "/" + num;
    const std::string dir = root_ + "/" + opt_.set;
    s.rgb = detail::read_sample_image(dir + "/color/" + num + ".png", 3, s.id, opt_.image_size, opt_.image_size);
    const Image labels =
        detail::first_channel(detail::read_sample_image(dir + "/mask/" + num + ".png", 0, s.id, s.rgb.width, s.rgb.height));

    // The evaluated hand: more mask pixels; right on a tie.
    int64_t left = 0, right = 0;
    for (uint8_t v : labels.pixels) {
      left += (v >= 2 && v <= 17);
      right += (v >= 18 && v <= 33);
    }
    s.is_left = left > right;
    s.mask = Image(labels.width, labels.height, 1, 0);
    for (size_t i = 0; i < labels.pixels.size(); ++i) {
      const uint8_t v = labels.pixels[i];
      const bool hand = s.is_left ? (v >= 2 && v <= 17) : (v >= 18 && v <= 33);
      s.mask.pixels[i] = hand ? 255 : 0;
    }

    const int base = s.is_left ? 0 : kNumJoints;
    for (int j = 0; j < kNumJoints; ++j) {
      const size_t r = static_cast<size_t>(base + j) * 3;
      for (int c = 0; c < 3; ++c) s.xyz[j][c] = static_cast<double>(e.xyz[r + c]) * 1000.0;
      s.uv[j] = {static_cast<double>(e.uv_vis[r]), static_cast<double>(e.uv_vis[r + 1])};
      s.visible[j] = e.uv_vis[r + 2] == 1.0f;
    }
    s.K = e.K;
    return s;
  }

 private:
  struct Entry {
    int64_t key = 0;
    std::array<float, kLabelJoints * 3> xyz{};
    std::array<float, kLabelJoints * 3> uv_vis{};
    Intrinsics K;
  };

  const Entry& entry(int64_t index) const {
    LGH_CHECK(index >= 0 && index < size(), name() << ": sample index " << index << " out of range [0, " << size()
                                                   << ")");
    return entries_[static_cast<size_t>(index)];
  }

  void load_annotations(const std::string& path) {
    const pickle::Document doc = pickle::load_file(path);
    const pickle::Value& root = doc.root();
    LGH_CHECK(root.kind == pickle::Kind::Dict,
              "rhd: '" << path << "' holds a " << pickle::kind_name(root.kind) << ", expected a dict of samples");
    entries_.reserve(root.entries.size());
    for (const auto& kv : root.entries) {
      LGH_CHECK(kv.first->kind == pickle::Kind::Int && kv.first->integer >= 0,
                "rhd: '" << path << "' has a key of type " << pickle::kind_name(kv.first->kind)
                         << ", expected sample numbers");
      Entry e;
      e.key = kv.first->integer;
      const std::string ctx = "rhd: '" + path + "', sample " + std::to_string(e.key);
      const pickle::Value& a = *kv.second;
      const auto& xyz = pickle::expect_array(pickle::expect_key(a, "xyz", ctx), {kLabelJoints, 3}, ctx + " 'xyz'");
      const auto& uvv = pickle::expect_array(pickle::expect_key(a, "uv_vis", ctx), {kLabelJoints, 3}, ctx + " 'uv_vis'");
      const auto& K = pickle::expect_array(pickle::expect_key(a, "K", ctx), {3, 3}, ctx + " 'K'");
      for (int i = 0; i < kLabelJoints * 3; ++i) {
        e.xyz[static_cast<size_t>(i)] = static_cast<float>(xyz.at(i));
        e.uv_vis[static_cast<size_t>(i)] = static_cast<float>(uvv.at(i));
      }
      e.K = detail::intrinsics_from_matrix([&](int r, int c) { return K.at(r * 3 + c); }, ctx + " 'K'");
      entries_.push_back(e);
    }
    std::sort(entries_.begin(), entries_.end(), [](const Entry& x, const Entry& y) { return x.key < y.key; });
    for (size_t i = 1; i < entries_.size(); ++i)
      LGH_CHECK(entries_[i].key != entries_[i - 1].key, "rhd: '" << path << "' repeats sample " << entries_[i].key);
    LGH_CHECK(!entries_.empty(), "rhd: '" << path << "' holds no samples");
  }

  std::string root_;
  RhdOptions opt_;
  std::vector<Entry> entries_;
};

}  // namespace data
}  // namespace lgh
