// The shared feature extraction module (DESIGN.md §2): a stem, one hourglass
// stage (Newell et al. 2016) and the 2D head that gives the features T and
// the heatmaps H0.
#pragma once

#include "lgh/nn/blocks.hpp"
#include "lgh/nn/checkpoint_names.hpp"
#include "lgh/ops/pooling.hpp"

namespace lgh {
namespace nn {

// One level of the hourglass: up = up1_(x); low = low3_(inner(low1_(maxpool(x))));
// out = up + upsample×2(low), where inner is the next level (low2) or, at
// depth 1, `modules` residual modules (low2_). Registration order follows
// the reference (inner level first).
template <typename T>
class Hourglass : public Module<T> {
 public:
  Hourglass(int depth, int64_t channels, int modules, PhiloxEngine& rng) {
    LGH_CHECK(depth >= 1, "Hourglass: depth must be >= 1, got " << depth);
    if (depth > 1)
      inner = this->register_module(names::kHourglassInner, std::make_shared<Hourglass<T>>(depth - 1, channels, modules, rng));
    else
      bottom = this->register_module(names::kHourglassBottom, std::make_shared<ResidualSeq<T>>(channels, modules, rng));
    up1 = this->register_module(names::kHourglassUp, std::make_shared<ResidualSeq<T>>(channels, modules, rng));
    low1 = this->register_module(names::kHourglassLow1, std::make_shared<ResidualSeq<T>>(channels, modules, rng));
    low3 = this->register_module(names::kHourglassLow3, std::make_shared<ResidualSeq<T>>(channels, modules, rng));
  }

  Tensor<T> forward(const Tensor<T>& x) {
    const Tensor<T> up = up1->forward(x);
    Tensor<T> low = low1->forward(ops::max_pool2d(x, 2, 2));
    low = inner ? inner->forward(low) : bottom->forward(low);
    low = low3->forward(low);
    return ops::add(up, ops::upsample_nearest2x(low));
  }

  int depth() const { return inner ? inner->depth() + 1 : 1; }

  std::shared_ptr<Hourglass<T>> inner;
  std::shared_ptr<ResidualSeq<T>> bottom, up1, low1, low3;
};

// Stem (conv7x7 s2 + BN + ReLU, Residual 64->128, maxpool, Residual 128->128,
// Residual 128->F), the hourglass, then `modules` Residual(F->F), features
// T = ReLU(BN(conv1x1 F->F)) and heatmaps H0 = conv1x1 F->J (at S/4).
template <typename T>
class Backbone : public FoldingModule<T> {
 public:
  Backbone(int64_t features, int64_t joints, int hourglass_depth, int hourglass_modules, PhiloxEngine& rng) {
    stem_conv = this->register_module(names::kStemConv, std::make_shared<Conv2d<T>>(3, 64, 7, 2, 3, rng));
    stem_bn = this->register_module(names::kStemBn, std::make_shared<BatchNorm2d<T>>(64));
    r1 = this->register_module(names::kStemResiduals[0], std::make_shared<Residual<T>>(64, 128, rng));
    r4 = this->register_module(names::kStemResiduals[1], std::make_shared<Residual<T>>(128, 128, rng));
    r5 = this->register_module(names::kStemResiduals[2], std::make_shared<Residual<T>>(128, features, rng));
    hourglass = this->register_module(names::kHourglass,
                                      std::make_shared<Hourglass<T>>(hourglass_depth, features, hourglass_modules, rng));
    // As many as the modules per hourglass level (2 in the paper), like the
    // reference code these key names come from.
    head = this->register_module(names::kHeadResiduals, std::make_shared<ResidualSeq<T>>(features, hourglass_modules, rng));
    feature_conv = this->register_module(names::kFeatureConv, std::make_shared<Conv2d<T>>(features, features, 1, 1, 0, rng));
    feature_bn = this->register_module(names::kFeatureBn, std::make_shared<BatchNorm2d<T>>(features));
    heatmap_conv = this->register_module(names::kHeatmapConv, std::make_shared<Conv2d<T>>(features, joints, 1, 1, 0, rng));
    stem_fold_ = &this->fold(stem_conv, stem_bn);
    feature_fold_ = &this->fold(feature_conv, feature_bn);
  }

  struct Output {
    Tensor<T> heatmaps;  // H0 [B,J,S/4,S/4]
    Tensor<T> features;  // T  [B,F,S/4,S/4]
  };

  Output forward(const Tensor<T>& image) {
    const bool fast = inference_mode(*this);
    Tensor<T> x;
    if (fast) {
      const auto f = stem_fold_->get();
      x = ops::conv2d_inference(image, f.weight, f.bias, 2, 3, true);
    } else {
      x = ops::relu(stem_bn->forward(stem_conv->forward(image)));
    }
    x = r1->forward(x);
    x = ops::max_pool2d(x, 2, 2);
    x = r5->forward(r4->forward(x));
    x = head->forward(hourglass->forward(x));
    Output out;
    if (fast) {
      const auto f = feature_fold_->get();
      out.features = ops::conv2d_inference(x, f.weight, f.bias, 1, 0, true);
    } else {
      out.features = ops::relu(feature_bn->forward(feature_conv->forward(x)));
    }
    out.heatmaps = heatmap_conv->forward(out.features);
    return out;
  }

  std::shared_ptr<Conv2d<T>> stem_conv, feature_conv, heatmap_conv;
  std::shared_ptr<BatchNorm2d<T>> stem_bn, feature_bn;
  std::shared_ptr<Residual<T>> r1, r4, r5;
  std::shared_ptr<Hourglass<T>> hourglass;
  std::shared_ptr<ResidualSeq<T>> head;

 private:
  ConvBnFold<T, Conv2d<T>>*stem_fold_, *feature_fold_;
};

}  // namespace nn
}  // namespace lgh
