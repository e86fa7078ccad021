// The building blocks of DESIGN.md §2, with the reference's member names:
//
//   Residual  pre-activation bottleneck of the hourglass (keys bn, conv1, bn1,
//             conv2, bn2, conv3[, conv4]):
//             out = conv3(relu(bn2(conv2(relu(bn1(conv1(relu(bn(x))))))))) + skip(x),
//             skip = conv4(x) (1x1) when in != out, x otherwise; no final ReLU.
//   Res2D     out = relu(res_branch(x) + skip_con(x)),
//             res_branch = conv3x3, BN, ReLU, conv3x3, BN (keys .0 .1 .3 .4),
//             skip_con = conv1x1 + BN (keys .0 .1) when in != out.
//   Basic     conv(k) + BN + ReLU (keys block.0, block.1).
//   Down      relu(res_branch(x) + skip_con(x)), res_branch = conv3x3 s2, BN,
//             ReLU, conv3x3, BN, ReLU; skip_con = conv1x1 s2 + BN.
//   Up        ConvTranspose2d 4x4 s2 p1 + BN + ReLU (keys block.0, block.1).
//
// In eval mode with no autograd graph, each block runs its fused inference
// path: every BN is folded into the convolution before it and ReLU / the
// residual add happen in the convolution's epilogue (nn/fold.hpp).
#pragma once

#include "lgh/nn/fold.hpp"
#include "lgh/nn/layers.hpp"
#include "lgh/ops/elementwise.hpp"

namespace lgh {
namespace nn {

template <typename T>
class Residual : public FoldingModule<T> {
 public:
  Residual(int64_t in, int64_t out, PhiloxEngine& rng) {
    const int64_t mid = out / 2;
    bn = this->register_module("bn", std::make_shared<BatchNorm2d<T>>(in));
    conv1 = this->register_module("conv1", std::make_shared<Conv2d<T>>(in, mid, 1, 1, 0, rng));
    bn1 = this->register_module("bn1", std::make_shared<BatchNorm2d<T>>(mid));
    conv2 = this->register_module("conv2", std::make_shared<Conv2d<T>>(mid, mid, 3, 1, 1, rng));
    bn2 = this->register_module("bn2", std::make_shared<BatchNorm2d<T>>(mid));
    conv3 = this->register_module("conv3", std::make_shared<Conv2d<T>>(mid, out, 1, 1, 0, rng));
    if (in != out) conv4 = this->register_module("conv4", std::make_shared<Conv2d<T>>(in, out, 1, 1, 0, rng));
    pre_ = &this->affine(bn);
    fold1_ = &this->fold(conv1, bn1);
    fold2_ = &this->fold(conv2, bn2);
  }

  Tensor<T> forward(const Tensor<T>& x) {
    if (inference_mode(*this)) return forward_inference(x);
    Tensor<T> y = ops::relu(bn->forward(x));
    y = ops::relu(bn1->forward(conv1->forward(y)));
    y = ops::relu(bn2->forward(conv2->forward(y)));
    y = conv3->forward(y);
    return ops::add(y, conv4 ? conv4->forward(x) : x);
  }

  std::shared_ptr<BatchNorm2d<T>> bn, bn1, bn2;
  std::shared_ptr<Conv2d<T>> conv1, conv2, conv3, conv4;

 private:
  Tensor<T> forward_inference(const Tensor<T>& x) {
    std::vector<T> scale, shift;
    pre_->get(scale, shift);
    Tensor<T> y = ops::channel_affine_inference(x, scale, shift, /*relu=*/true);
    const auto f1 = fold1_->get(), f2 = fold2_->get();
    y = ops::conv2d_inference(y, f1.weight, f1.bias, 1, 0, true);
    y = ops::conv2d_inference(y, f2.weight, f2.bias, 1, 1, true);
    const Tensor<T> skip = conv4 ? ops::conv2d_inference(x, conv4->weight, conv4->bias, 1, 0, false) : x;
    return ops::conv2d_inference(y, conv3->weight, conv3->bias, 1, 0, false, skip);
  }

  BnAffine<T>* pre_;
  ConvBnFold<T, Conv2d<T>>*fold1_, *fold2_;
};

template <typename T>
class Res2D : public FoldingModule<T> {
 public:
  Res2D(int64_t in, int64_t out, PhiloxEngine& rng) {
    conv_a = this->register_module("res_branch.0", std::make_shared<Conv2d<T>>(in, out, 3, 1, 1, rng));
    bn_a = this->register_module("res_branch.1", std::make_shared<BatchNorm2d<T>>(out));
    conv_b = this->register_module("res_branch.3", std::make_shared<Conv2d<T>>(out, out, 3, 1, 1, rng));
    bn_b = this->register_module("res_branch.4", std::make_shared<BatchNorm2d<T>>(out));
    if (in != out) {
      skip_conv = this->register_module("skip_con.0", std::make_shared<Conv2d<T>>(in, out, 1, 1, 0, rng));
      skip_bn = this->register_module("skip_con.1", std::make_shared<BatchNorm2d<T>>(out));
      fold_skip_ = &this->fold(skip_conv, skip_bn);
    }
    fold_a_ = &this->fold(conv_a, bn_a);
    fold_b_ = &this->fold(conv_b, bn_b);
  }

  Tensor<T> forward(const Tensor<T>& x) {
    if (inference_mode(*this)) {
      const auto fa = fold_a_->get(), fb = fold_b_->get();
      Tensor<T> s = x;
      if (skip_conv) {
        const auto fs = fold_skip_->get();
        s = ops::conv2d_inference(x, fs.weight, fs.bias, 1, 0, false);
      }
      const Tensor<T> y = ops::conv2d_inference(x, fa.weight, fa.bias, 1, 1, true);
      return ops::conv2d_inference(y, fb.weight, fb.bias, 1, 1, false, s, /*relu_after_residual=*/true);
    }
    Tensor<T> y = ops::relu(bn_a->forward(conv_a->forward(x)));
    y = bn_b->forward(conv_b->forward(y));
    const Tensor<T> s = skip_conv ? skip_bn->forward(skip_conv->forward(x)) : x;
    return ops::relu(ops::add(y, s));
  }

  std::shared_ptr<Conv2d<T>> conv_a, conv_b, skip_conv;
  std::shared_ptr<BatchNorm2d<T>> bn_a, bn_b, skip_bn;

 private:
  ConvBnFold<T, Conv2d<T>>*fold_a_, *fold_b_, *fold_skip_ = nullptr;
};

template <typename T>
class Basic : public FoldingModule<T> {
 public:
  Basic(int64_t in, int64_t out, int64_t kernel, PhiloxEngine& rng) {
    conv = this->register_module("block.0", std::make_shared<Conv2d<T>>(in, out, kernel, 1, kernel / 2, rng));
    bn = this->register_module("block.1", std::make_shared<BatchNorm2d<T>>(out));
    fold_ = &this->fold(conv, bn);
  }
  Tensor<T> forward(const Tensor<T>& x) {
    if (inference_mode(*this)) {
      const auto f = fold_->get();
      return ops::conv2d_inference(x, f.weight, f.bias, 1, conv->padding, true);
    }
    return ops::relu(bn->forward(conv->forward(x)));
  }

  std::shared_ptr<Conv2d<T>> conv;
  std::shared_ptr<BatchNorm2d<T>> bn;

 private:
  ConvBnFold<T, Conv2d<T>>* fold_;
};

template <typename T>
class Down : public FoldingModule<T> {
 public:
  Down(int64_t in, int64_t out, PhiloxEngine& rng) {
    conv_a = this->register_module("res_branch.0", std::make_shared<Conv2d<T>>(in, out, 3, 2, 1, rng));
    bn_a = this->register_module("res_branch.1", std::make_shared<BatchNorm2d<T>>(out));
    conv_b = this->register_module("res_branch.3", std::make_shared<Conv2d<T>>(out, out, 3, 1, 1, rng));
    bn_b = this->register_module("res_branch.4", std::make_shared<BatchNorm2d<T>>(out));
    skip_conv = this->register_module("skip_con.0", std::make_shared<Conv2d<T>>(in, out, 1, 2, 0, rng));
    skip_bn = this->register_module("skip_con.1", std::make_shared<BatchNorm2d<T>>(out));
    fold_a_ = &this->fold(conv_a, bn_a);
    fold_b_ = &this->fold(conv_b, bn_b);
    fold_skip_ = &this->fold(skip_conv, skip_bn);
  }

  Tensor<T> forward(const Tensor<T>& x) {
    if (inference_mode(*this)) {
      const auto fa = fold_a_->get(), fb = fold_b_->get(), fs = fold_skip_->get();
      const Tensor<T> s = ops::conv2d_inference(x, fs.weight, fs.bias, 2, 0, false);
      const Tensor<T> y = ops::conv2d_inference(x, fa.weight, fa.bias, 2, 1, true);
      return ops::conv2d_inference(y, fb.weight, fb.bias, 1, 1, true, s, /*relu_after_residual=*/true);
    }
    Tensor<T> y = ops::relu(bn_a->forward(conv_a->forward(x)));
    y = ops::relu(bn_b->forward(conv_b->forward(y)));
    return ops::relu(ops::add(y, skip_bn->forward(skip_conv->forward(x))));
  }

  std::shared_ptr<Conv2d<T>> conv_a, conv_b, skip_conv;
  std::shared_ptr<BatchNorm2d<T>> bn_a, bn_b, skip_bn;

 private:
  ConvBnFold<T, Conv2d<T>>*fold_a_, *fold_b_, *fold_skip_;
};

template <typename T>
class Up : public FoldingModule<T> {
 public:
  Up(int64_t in, int64_t out, PhiloxEngine& rng) {
    conv = this->register_module("block.0", std::make_shared<ConvTranspose2d<T>>(in, out, 4, 2, 1, rng));
    bn = this->register_module("block.1", std::make_shared<BatchNorm2d<T>>(out));
    fold_ = &this->fold(conv, bn);
  }
  Tensor<T> forward(const Tensor<T>& x) {
    if (inference_mode(*this)) {
      const auto f = fold_->get();
      return ops::conv_transpose2d_inference(x, f.weight, f.bias, conv->stride, conv->padding, true);
    }
    return ops::relu(bn->forward(conv->forward(x)));
  }

  std::shared_ptr<ConvTranspose2d<T>> conv;
  std::shared_ptr<BatchNorm2d<T>> bn;

 private:
  ConvBnFold<T, ConvTranspose2d<T>>* fold_;
};

// A chain of `count` Residual(channels -> channels) modules named "<i>"
// below the given key (the reference's ModuleLists up1_, low1_, ...).
template <typename T>
class ResidualSeq : public Module<T> {
 public:
  ResidualSeq(int64_t channels, int count, PhiloxEngine& rng) {
    for (int i = 0; i < count; ++i)
      blocks.push_back(this->register_module(std::to_string(i), std::make_shared<Residual<T>>(channels, channels, rng)));
  }
  Tensor<T> forward(Tensor<T> x) {
    for (auto& b : blocks) x = b->forward(x);
    return x;
  }
  std::vector<std::shared_ptr<Residual<T>>> blocks;
};

}  // namespace nn
}  // namespace lgh
