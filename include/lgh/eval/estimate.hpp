// From an image to a 3D hand in millimetres, with no ground truth: the
// inference path of `lgh infer` and of programs that use the model.
//
//   1. the crop: the hand's box (given, squared and grown by the training
//      margin of 1.2; or the whole image, squared), resized to S x S;
//   2. the model in eval mode, no graph, hard selector: (u, v) in crop pixels
//      and d, the depth relative to the root in units of the reference bone;
//   3. (u, v) mapped back to the original image's pixels;
//   4. the root depth from the 2D joints, the relative depths and an assumed
//      length of the reference bone (nn::recover_root_depth_all_bones by
//      default: docs/model.md compares it with Iqbal et al.'s closed form);
//   5. Eq. (3) with the image's intrinsics: every joint in camera space, mm.
// Hands are taken to be right hands (the model's canonical hand).
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lgh/autograd/engine.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/draw.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/nn/pose3d.hpp"

namespace lgh {
namespace eval {

// A box in image pixels: top-left corner (x, y), width and height.
struct PixelBox {
  double x = 0, y = 0, w = 0, h = 0;
};

struct EstimateOptions {
  std::optional<PixelBox> box;               // default: the whole image
  std::optional<std::array<double, 4>> K;    // fx, fy, cx, cy; default nn::default_intrinsics
  double bone_length_mm = nn::kDefaultBoneLengthMm;
  nn::RootMethod root_method = nn::RootMethod::AllBones;
  nn::SelectorOptions selector;              // hard by default
  double margin = 1.2;                       // around a given box, as the training crops
};

struct HandEstimate {
  int width = 0, height = 0;
  PixelBox box;                    // the box the crop was made from (before squaring)
  std::array<double, 4> K{};       // intrinsics used
  std::array<std::array<double, 2>, data::kNumJoints> uv_px{};   // original image pixels
  std::array<std::array<double, 3>, data::kNumJoints> xyz_mm{};  // camera space
  std::array<double, data::kNumJoints> depth{};  // relative depth d (units of the reference bone)
  double root_depth_mm = 0;
  bool root_exact = true;
  std::vector<int> groups;         // the group of each joint
};

// The square crop box for `options.box` (or the whole image).
inline data::HandBox crop_box(int width, int height, const EstimateOptions& options) {
  if (!options.box) return data::HandBox{0.5 * (width - 1), 0.5 * (height - 1), static_cast<double>(std::max(width, height))};
  const PixelBox& b = *options.box;
  LGH_CHECK(b.w > 0 && b.h > 0 && std::isfinite(b.x) && std::isfinite(b.y) && std::isfinite(b.w) && std::isfinite(b.h),
            "hand box (" << b.x << ", " << b.y << ", " << b.w << ", " << b.h << "): width and height must be positive");
  LGH_CHECK(b.x < width && b.y < height && b.x + b.w > 0 && b.y + b.h > 0,
            "hand box (" << b.x << ", " << b.y << ", " << b.w << ", " << b.h << ") lies outside the " << width << "x"
                         << height << " image");
  // Pixel i covers [i - 0.5, i + 0.5]: the box [x, x + w) is centred at x + w/2 - 0.5.
  return data::HandBox{b.x + 0.5 * b.w - 0.5, b.y + 0.5 * b.h - 0.5, options.margin * std::max(b.w, b.h)};
}

template <typename T>
HandEstimate estimate_hand(nn::LearnableGroupsModel<T>& model, const data::Image& image, const EstimateOptions& options = {}) {
  LGH_CHECK(!image.empty() && image.channels == 3, "estimate_hand: expected an RGB image, got " << image.width << "x"
                                                                                               << image.height << "x"
                                                                                               << image.channels);
  LGH_CHECK(options.bone_length_mm > 0 && std::isfinite(options.bone_length_mm),
            "estimate_hand: the bone length must be positive, got " << options.bone_length_mm);
  HandEstimate e;
  e.width = image.width;
  e.height = image.height;
  e.box = options.box ? *options.box : PixelBox{0, 0, static_cast<double>(image.width), static_cast<double>(image.height)};
  e.K = options.K ? *options.K : nn::default_intrinsics(image.width, image.height);
  LGH_CHECK(e.K[0] > 0 && e.K[1] > 0 && std::isfinite(e.K[2]) && std::isfinite(e.K[3]),
            "estimate_hand: intrinsics need positive focal lengths and a finite principal point, got " << e.K[0] << ", "
                                                                                                       << e.K[1] << ", "
                                                                                                       << e.K[2] << ", "
                                                                                                       << e.K[3]);
  const int S = static_cast<int>(model.config().input_size);
  // The crop's geometry depends only on the box (the intrinsics enter the 3D
  // lift below, in the original image's frame).
  const data::CropGeometry g = data::crop_geometry(data::Intrinsics{1, 1, 0, 0}, crop_box(image.width, image.height, options), S, false);
  std::vector<float> chw(static_cast<size_t>(3) * S * S);
  data::warp_bilinear(image, g.to_original, S, chw.data());
  const Tensor<T> input = Tensor<float>::from_data({1, 3, S, S}, chw).template cast<T>();

  const bool was_training = model.is_training();
  model.eval();
  nn::ModelOutput<T> out;
  {
    autograd::NoGradGuard no_grad;
    out = model.forward(input.to(model.device()), options.selector);
  }
  model.train(was_training);
  // The model may live on a device: its outputs come back once.
  out.uvd = out.uvd.to(Device::cpu());
  out.selector = out.selector.to(Device::cpu());
  const Tensor<double> uvd = out.uvd.template cast<double>().contiguous();
  double orig[data::kNumJoints][3];
  for (int j = 0; j < data::kNumJoints; ++j) {
    const double* p = uvd.data() + 3 * j;
    e.uv_px[j] = g.to_original.apply(p[0], p[1]);
    e.depth[j] = p[2];
    orig[j][0] = e.uv_px[j][0];
    orig[j][1] = e.uv_px[j][1];
    orig[j][2] = p[2];
  }
  const nn::RootRecovery root = nn::recover_root_depth(orig, e.K, options.bone_length_mm, options.root_method);
  e.root_depth_mm = root.z_root;
  e.root_exact = root.exact;
  double xyz[data::kNumJoints][3];
  nn::backproject_hand(orig, e.K, root.z_root, options.bone_length_mm, data::kNumJoints, xyz);
  for (int j = 0; j < data::kNumJoints; ++j) e.xyz_mm[j] = {xyz[j][0], xyz[j][1], xyz[j][2]};
  const Tensor<T> sel = out.selector.contiguous();
  const int64_t K = sel.size(1);
  for (int j = 0; j < data::kNumJoints; ++j) {
    int best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (sel.data()[j * K + k] > sel.data()[j * K + best]) best = static_cast<int>(k);
    e.groups.push_back(best);
  }
  return e;
}

// The JSON of one estimate (DESIGN.md §7, `lgh infer`).
inline nlohmann::json to_json(const HandEstimate& e, const std::string& file) {
  nlohmann::json uv = nlohmann::json::array(), xyz = nlohmann::json::array();
  for (int j = 0; j < data::kNumJoints; ++j) {
    uv.push_back({e.uv_px[j][0], e.uv_px[j][1]});
    xyz.push_back({e.xyz_mm[j][0], e.xyz_mm[j][1], e.xyz_mm[j][2]});
  }
  return {{"file", file},
          {"width", e.width},
          {"height", e.height},
          {"bbox", {e.box.x, e.box.y, e.box.w, e.box.h}},
          {"intrinsics", {e.K[0], e.K[1], e.K[2], e.K[3]}},
          {"uv_px", uv},
          {"xyz_mm", xyz},
          {"root_depth_mm", e.root_depth_mm},
          {"groups", e.groups}};
}

// The image with the estimated skeleton drawn over it.
inline data::Image draw_estimate(const data::Image& image, const HandEstimate& e) {
  data::Image out = image;
  std::array<bool, data::kNumJoints> shown{};
  shown.fill(true);
  data::draw_skeleton(out, e.uv_px, shown);
  return out;
}

}  // namespace eval
}  // namespace lgh
