// The evaluation loop: a model run over a data set with the published
// protocol (DESIGN.md §5), producing the predictions and every metric.
//
// Each sample is cropped as for training but without augmentation (square box
// with a 1.2 margin, left hands mirrored), the model runs in eval mode with
// no graph and the hard selector (by default), and:
//   * 3D (rhd, stb, freihand, synthetic): Eq. (1)-(3) with the ground-truth
//     root depth z_root and scale s0, as the protocol prescribes (eval_RHD.py,
//     P2W); errors in mm in the crop's camera frame, where the ground truth is
//     expressed too (a rotation of the original camera frame, so distances are
//     those of the original frame);
//   * Dexter+Object: only fingertips are annotated, so there is no ground-truth
//     root or scale; the root depth is recovered from the prediction
//     (nn::recover_root_depth_all_bones) with the default bone length, and the
//     metrics align the best root and scale as the protocol does;
//   * 2D: the crop's pixel errors divided by the crop scale, i.e. pixels of the
//     original image (eval_RHD.py: uv / crop_scale).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "lgh/autograd/engine.hpp"
#include "lgh/data/loader.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/eval/metrics.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/nn/pose3d.hpp"

namespace lgh {
namespace eval {

// ---- held-out synthetic hands ------------------------------------------------------

// A window [begin, begin + count) of another data set, as a data set.
class IndexWindow : public data::Dataset {
 public:
  IndexWindow(std::shared_ptr<const data::Dataset> base, int64_t begin, int64_t count)
      : base_(std::move(base)), begin_(begin), count_(count) {
    LGH_CHECK(base_ != nullptr, "IndexWindow: no data set");
    LGH_CHECK(begin >= 0 && count >= 1 && begin <= base_->size() - count,
              "IndexWindow: [" << begin << ", " << begin << " + " << count << ") is not inside " << base_->name()
                               << " (" << base_->size() << " samples)");
  }
  int64_t size() const override { return count_; }
  data::HandSample get(int64_t index) const override {
    LGH_CHECK(index >= 0 && index < count_, name() << ": index " << index << " out of range [0, " << count_ << ")");
    return base_->get(begin_ + index);
  }
  std::string name() const override { return base_->name() + "[" + std::to_string(begin_) + "+]"; }

 private:
  std::shared_ptr<const data::Dataset> base_;
  int64_t begin_, count_;
};

// Training streams of synthetic hands draw indices below 2^40 (the loader's
// augmentation addresses samples with 40 bits); the held-out stream takes
// indices from 2^62 on, so it is disjoint from every training stream
// whatever its seed.
constexpr int64_t kHeldOutFirstIndex = int64_t(1) << 62;
constexpr int64_t kMaxTrainingIndex = int64_t(1) << 40;

// `count` held-out synthetic hands of `image_size` pixels.
inline std::shared_ptr<const data::Dataset> synthetic_heldout(int64_t count, int image_size = 160) {
  LGH_CHECK(count >= 1 && count < (int64_t(1) << 40), "synthetic_heldout: count must be in [1, 2^40), got " << count);
  data::SyntheticConfig c;
  c.image_size = image_size;
  c.seed = 0;
  c.count = kHeldOutFirstIndex + count;
  return std::make_shared<IndexWindow>(std::make_shared<data::SyntheticHands>(c), kHeldOutFirstIndex, count);
}

// ---- the loop ---------------------------------------------------------------------------

struct EvalOptions {
  Protocol protocol = Protocol::Rhd;
  int64_t batch = 8;
  int64_t max_samples = 0;  // 0: the whole data set
  int workers = 1;          // loader threads
  nn::SelectorOptions selector;  // hard by default
  double bone_length_mm = nn::kDefaultBoneLengthMm;  // Dexter+Object's root recovery
  // The crop box: the hand mask (else the joints) with a 1.2 margin, or the
  // authors' RHD rule (data::BoxSource::kReference) to score weights trained
  // on their crops.
  data::BoxSource box_source = data::BoxSource::kAuto;
  // Called after each batch with (samples done, samples in all).
  std::function<void(int64_t, int64_t)> progress;
};

// Predictions and ground truth of every evaluated sample, and the metrics.
struct EvalResult {
  EvaluationMetrics metrics;
  PoseSet pred, gt;          // xyz [N,J,3] mm, uv [N,J,2] original pixels; gt.vis [N,J]
  std::vector<std::string> ids;
  double seconds = 0;
};

template <typename T>
EvalResult evaluate(nn::LearnableGroupsModel<T>& model, std::shared_ptr<const data::Dataset> dataset,
                    const EvalOptions& options = {}) {
  LGH_CHECK(dataset != nullptr, "evaluate: no data set");
  LGH_CHECK(options.batch >= 1, "evaluate: batch must be >= 1, got " << options.batch);
  const auto start = std::chrono::steady_clock::now();
  const int64_t N = options.max_samples > 0 ? std::min(options.max_samples, dataset->size()) : dataset->size();
  if (N < dataset->size()) dataset = std::make_shared<IndexWindow>(dataset, 0, N);
  const int J = static_cast<int>(model.config().num_joints);
  LGH_CHECK(J == data::kNumJoints, "evaluate: the data sets have 21 joints, the model " << J);

  data::LoaderOptions lo;
  lo.batch_size = options.batch;
  lo.num_workers = options.workers;
  lo.shuffle = false;
  lo.augment = false;
  lo.drop_last = false;
  lo.epochs = 1;
  lo.crop.size = static_cast<int>(model.config().input_size);
  lo.crop.box_source = options.box_source;
  data::Loader loader(dataset, lo);

  EvalResult r;
  r.pred.xyz = Tensor<double>::zeros({N, J, 3});
  r.pred.uv = Tensor<double>::zeros({N, J, 2});
  r.gt.xyz = Tensor<double>::zeros({N, J, 3});
  r.gt.uv = Tensor<double>::zeros({N, J, 2});
  r.gt.vis = Tensor<double>::zeros({N, J});
  const bool was_training = model.is_training();
  model.eval();
  const Device device = model.device();  // each batch goes where the model is
  const bool gt_root = options.protocol != Protocol::DexterObject;
  int64_t row = 0;
  data::Batch batch;
  while (loader.next(batch)) {
    nn::ModelOutput<T> out;
    {
      autograd::NoGradGuard no_grad;
      out = model.forward(batch.image.template cast<T>().to(device), options.selector);
    }
    // The model may live on a device: its output comes back once per batch.
    const Tensor<double> uvd = out.uvd.to(Device::cpu()).template cast<double>().contiguous();
    for (int64_t b = 0; b < batch.size(); ++b, ++row) {
      const double* p = uvd.data() + b * J * 3;
      const float* K = batch.K.data() + b * 4;
      const std::array<double, 4> k = {K[0], K[1], K[2], K[3]};
      double z_root = batch.z_root.data()[b], s0 = batch.s0.data()[b];
      if (!gt_root) {
        s0 = options.bone_length_mm;
        z_root = nn::recover_root_depth_all_bones(reinterpret_cast<const double(*)[3]>(p), k, s0).z_root;
      } else {
        LGH_CHECK(s0 > 0, "evaluate: sample " << batch.ids[static_cast<size_t>(b)]
                                              << " has no reference bone (joints 11 and 12) for the protocol's s0");
      }
      const double scale = batch.crop_scale.data()[b];
      for (int j = 0; j < J; ++j) {
        double xyz[3];
        math::backproject_point(p + 3 * j, k.data(), z_root, s0, xyz);
        for (int c = 0; c < 3; ++c) {
          r.pred.xyz.data()[(row * J + j) * 3 + c] = xyz[c];
          r.gt.xyz.data()[(row * J + j) * 3 + c] = batch.xyz.data()[(b * J + j) * 3 + c];
        }
        for (int c = 0; c < 2; ++c) {
          r.pred.uv.data()[(row * J + j) * 2 + c] = p[3 * j + c] / scale;
          r.gt.uv.data()[(row * J + j) * 2 + c] = batch.uv.data()[(b * J + j) * 2 + c] / scale;
        }
        // Joints without annotation (Dexter+Object's non-tips) do not count.
        r.gt.vis.data()[row * J + j] = options.protocol == Protocol::DexterObject ? batch.vis.data()[b * J + j] : 1.0;
      }
      r.ids.push_back(batch.ids[static_cast<size_t>(b)]);
    }
    if (options.progress) options.progress(row, N);
  }
  model.train(was_training);
  LGH_CHECK(row == N, "evaluate: the loader delivered " << row << " of " << N << " samples");
  r.metrics = compute_metrics(r.pred, r.gt, options.protocol);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace eval
}  // namespace lgh
