// Eval-mode folding of a batch norm into the convolution before it, computed
// once on first use and dropped whenever the parameters or the mode change
// (Module::parameters_changed(), train()/eval()). Used by the blocks' fast
// inference path (eval mode, no autograd graph).
#pragma once

#include <mutex>

#include "lgh/nn/layers.hpp"
#include "lgh/ops/inference.hpp"

namespace lgh {
namespace nn {

// Eval mode with nothing recorded: the fused inference kernels apply.
template <typename T>
bool inference_mode(const Module<T>& m) {
  return !m.is_training() && !autograd::grad_enabled();
}

class FoldCacheBase {
 public:
  virtual ~FoldCacheBase() = default;
  virtual void reset() = 0;
};

// conv (Conv2d or ConvTranspose2d) followed by bn, as one convolution.
template <typename T, typename Conv>
class ConvBnFold final : public FoldCacheBase {
 public:
  ConvBnFold(std::shared_ptr<Conv> conv, std::shared_ptr<BatchNorm2d<T>> bn) : conv_(std::move(conv)), bn_(std::move(bn)) {}

  ops::FoldedConv<T> get() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!folded_.weight.defined()) {
      autograd::NoGradGuard no_grad;
      constexpr int out_dim = std::is_same<Conv, ConvTranspose2d<T>>::value ? 1 : 0;
      const Device device = conv_->weight.device();
      // A device without a folding entry folds on host copies and takes the
      // result back: a setup cost paid once per parameter change, never per
      // forward.
      const Device at = dispatch::supports<ops::entries::FoldBatchNorm, T>(device) ? device : Device::cpu();
      auto on = [&](const Tensor<T>& t) { return t.defined() ? t.detach().to(at) : Tensor<T>(); };
      folded_ = ops::fold_batch_norm(on(conv_->weight), on(conv_->bias), on(bn_->weight), on(bn_->bias),
                                     on(bn_->running_mean), on(bn_->running_var), BatchNorm2d<T>::kEps, out_dim);
      folded_.weight = folded_.weight.to(device);
      if (folded_.bias.defined()) folded_.bias = folded_.bias.to(device);
    }
    return folded_;
  }
  void reset() override {
    std::lock_guard<std::mutex> lock(mutex_);
    folded_ = ops::FoldedConv<T>();
  }

 private:
  std::shared_ptr<Conv> conv_;
  std::shared_ptr<BatchNorm2d<T>> bn_;
  std::mutex mutex_;
  ops::FoldedConv<T> folded_;
};

// A batch norm on its own (y = scale * x + shift per channel in eval mode).
template <typename T>
class BnAffine final : public FoldCacheBase {
 public:
  explicit BnAffine(std::shared_ptr<BatchNorm2d<T>> bn) : bn_(std::move(bn)) {}
  void get(std::vector<T>& scale, std::vector<T>& shift) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (scale_.empty()) bn_->eval_affine(scale_, shift_);
    scale = scale_;
    shift = shift_;
  }
  void reset() override {
    std::lock_guard<std::mutex> lock(mutex_);
    scale_.clear();
    shift_.clear();
  }

 private:
  std::shared_ptr<BatchNorm2d<T>> bn_;
  std::mutex mutex_;
  std::vector<T> scale_, shift_;
};

// A module with fold caches: they are reset when parameters or the mode change.
template <typename T>
class FoldingModule : public Module<T> {
 protected:
  template <typename Conv>
  ConvBnFold<T, Conv>& fold(std::shared_ptr<Conv> conv, std::shared_ptr<BatchNorm2d<T>> bn) {
    auto c = std::make_unique<ConvBnFold<T, Conv>>(std::move(conv), std::move(bn));
    auto& ref = *c;
    caches_.push_back(std::move(c));
    return ref;
  }
  BnAffine<T>& affine(std::shared_ptr<BatchNorm2d<T>> bn) {
    auto c = std::make_unique<BnAffine<T>>(std::move(bn));
    auto& ref = *c;
    caches_.push_back(std::move(c));
    return ref;
  }
  void on_mode_change() override { reset_folds(); }
  void on_parameters_changed() override { reset_folds(); }

 private:
  void reset_folds() {
    for (auto& c : caches_) c->reset();
  }
  std::vector<std::unique_ptr<FoldCacheBase>> caches_;
};

}  // namespace nn
}  // namespace lgh
