// The trainer: both stages of the paper on any Dataset, with periodic
// held-out evaluation, atomic checkpoints and exact resumption.
//
// A run lives in one directory:
//   last.state.safetensors  the training checkpoint (train/checkpoint.hpp):
//                           weights, Adam state, step, τ, loader position
//   last.safetensors        the weights of the last checkpoint (config, τ and
//                           step in __metadata__), for inference
//   best.safetensors        the weights with the best held-out figure so far
//                           (3D EPE in stage 2; the backbone's 2D error in
//                           stage 1)
//   log.csv                 one row per log interval and per evaluation
//   groups.png, groups.txt  the current joint groups (argmax of θ)
// Every file is replaced atomically. A checkpoint is written every
// `checkpoint_every` steps and at the end; a run resumed from one continues
// bit for bit as if it had never stopped (same batches, same Gumbel noise,
// same optimizer state), provided the thread count is the same.
//
// A loss or gradient that is NaN or infinite stops the run with NonFiniteLoss
// before the update; the last checkpoint (written only with finite weights)
// stays.
//
// On a device (TrainOptions::device, e.g. cuda:0) the model and the Adam
// state live there, each batch of the (host) loader is copied there, and a
// step reads nothing back: the interval's losses and a finiteness check (the
// sum of every gradient) are summed on the device and read in one copy at
// each log step, and before each checkpoint and held-out evaluation. A
// non-finite loss or gradient therefore stops the run at the first such
// read, after the update of the step that produced it but before anything is
// written from the diverged weights: the last good checkpoint stays, as on
// the CPU. Checkpoints and weights files are written from host copies in the
// same format, so a run may be resumed on another device (or the CPU). The
// CPU path reads each step's loss and checks before the update, as above.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "lgh/data/loader.hpp"
#include "lgh/eval/evaluate.hpp"
#include "lgh/eval/plot.hpp"
#include "lgh/io/atomic_file.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/train/checkpoint.hpp"
#include "lgh/train/step.hpp"

namespace lgh {
namespace train {

// Which stages a run trains.
enum class StagePlan { Backbone2D, Full, Both };

inline StagePlan parse_stage_plan(const std::string& s) {
  if (s == "2d") return StagePlan::Backbone2D;
  if (s == "full") return StagePlan::Full;
  if (s == "both") return StagePlan::Both;
  LGH_FAIL("unknown stage '" << s << "' (expected 2d, full or both)");
}
inline const char* stage_plan_name(StagePlan p) {
  return p == StagePlan::Backbone2D ? "2d" : p == StagePlan::Full ? "full" : "both";
}

// One progress report (every `log_every` steps): means over the interval.
struct LogRow {
  int64_t step = 0, steps = 0;
  Stage stage = Stage::Full;
  double loss = 0, loss_xy = 0, loss_z = 0;
  double lr = 0, tau = 0;
  double images_per_s = 0, eta_s = 0;
};

// One held-out evaluation: the whole model (3D with the ground-truth root
// and scale, and 2D), and in stage 1 also the backbone's own 2D keypoints
// (what stage 1 trains).
struct HeldOutRecord {
  int64_t step = 0;
  Stage stage = Stage::Full;
  double epe_mm = 0, auc_20_50 = 0;  // 3D
  double epe_2d_px = 0;              // 2D, original pixels
  double backbone_2d_px = 0;         // stage 1: the backbone's heatmaps, original pixels
  bool best = false;                 // best so far of its stage (3D EPE in stage 2, backbone 2D in stage 1)
};

struct TrainOptions {
  std::string out_dir;
  int64_t steps = 10000;       // the run's total number of optimizer steps
  int64_t batch = 8;
  StagePlan plan = StagePlan::Both;
  int64_t stage1_steps = -1;   // Both: steps of stage 1 (-1: 30% of `steps`; may exceed `steps`, to
                               // stop a run within stage 1 and resume it later)
  LearningRates lr;
  GroupMode groups = GroupMode::Learned;
  std::vector<int> fixed_groups;  // GroupMode::Fixed: the group of each joint
  optim::TemperatureSchedule tau;
  double beta = kPaperBeta;    // Eq. (10)'s weight of the depth term
  std::string init_weights;    // a fresh run starts from the tensors of these weights that fit the model
  uint64_t seed = 1;           // weights' initialisation, loader order and augmentation, Gumbel noise
  bool augment = true;
  data::AugmentOptions augmentation;
  int workers = 1;             // loader threads
  int64_t log_every = 10;
  int64_t checkpoint_every = 100;
  int64_t eval_every = 500;    // 0: only at the end
  int64_t eval_samples = 256;
  eval::Protocol protocol = eval::Protocol::Rhd;
  bool resume = false;
  Device device = Device::cpu();  // where the model, the optimizer state and each batch live

  std::function<void(const LogRow&)> on_log;
  std::function<void(const HeldOutRecord&)> on_eval;
  std::function<void(const std::string&)> on_message;
};

class Trainer {
 public:
  static constexpr const char* kStateFile = "last.state.safetensors";
  static constexpr const char* kLastFile = "last.safetensors";
  static constexpr const char* kBestFile = "best.safetensors";
  static constexpr const char* kLogFile = "log.csv";
  static constexpr const char* kLogHeader =
      "step,stage,loss,loss_xy,loss_z,lr,tau,images_per_s,heldout_epe_mm,heldout_auc_20_50,heldout_2d_px,"
      "heldout_backbone_2d_px";

  // `heldout` may be null (no evaluation, no best.safetensors).
  Trainer(const nn::ModelConfig& config, std::shared_ptr<const data::Dataset> train,
          std::shared_ptr<const data::Dataset> heldout, TrainOptions options)
      : config_(config), train_(std::move(train)), heldout_(std::move(heldout)), opt_(std::move(options)) {
    LGH_CHECK(train_ != nullptr, "trainer: no training data set");
    LGH_CHECK(!opt_.out_dir.empty(), "trainer: no output directory");
    LGH_CHECK(opt_.steps >= 1 && opt_.batch >= 1, "trainer: steps and batch must be >= 1, got " << opt_.steps << " and "
                                                                                               << opt_.batch);
    LGH_CHECK(opt_.log_every >= 1 && opt_.checkpoint_every >= 1 && opt_.eval_every >= 0 && opt_.eval_samples >= 1,
              "trainer: log_every and checkpoint_every must be >= 1, eval_every >= 0, eval_samples >= 1");
    if (opt_.groups == GroupMode::Fixed)
      LGH_CHECK(static_cast<int>(opt_.fixed_groups.size()) == config.num_joints,
                "trainer: fixed groups need one group per joint (" << config.num_joints << "), got "
                                                                   << opt_.fixed_groups.size());
    config.validate();
    stage1_steps_ = opt_.plan == StagePlan::Full         ? 0
                    : opt_.plan == StagePlan::Backbone2D ? opt_.steps
                    : opt_.stage1_steps >= 0             ? opt_.stage1_steps
                                                         : (3 * opt_.steps) / 10;
  }

  // Trains up to `steps` (from the checkpoint in out_dir with `resume`).
  void run() {
    setup();
    data::LoaderOptions lo;
    lo.batch_size = opt_.batch;
    lo.num_workers = opt_.workers;
    lo.seed = opt_.seed;
    lo.augment = opt_.augment;
    lo.augmentation = opt_.augmentation;
    lo.crop.size = static_cast<int>(config_.input_size);
    lo.start_batch = state_.loader_batch;
    data::Loader loader(train_, lo);

    const auto session_start = std::chrono::steady_clock::now();
    const int64_t session_first = state_.step;
    auto window_start = session_start;
    Window window;
    DeviceWindow device_window;
    // The untrained model's figures, to compare the trained ones with.
    if (heldout_ && state_.step == 0 && opt_.eval_every > 0) evaluate_heldout();
    data::Batch batch;
    while (state_.step < opt_.steps) {
      if (step_->stage() == Stage::Backbone2D && state_.step >= stage1_steps_) begin_stage(Stage::Full);
      LGH_CHECK(loader.next(batch), "trainer: the training data ran out at step " << state_.step);
      LGH_CHECK(batch.size() == opt_.batch, "trainer: batch of " << batch.size() << " samples at step " << state_.step
                                                                 << ", expected " << opt_.batch);
      if (on_device()) {
        step_->run(to_device(batch), state_.step, state_.stage_step, /*read_loss=*/false);
        device_window.add(*step_, flat_.grads, state_.step);
      } else {
        StepLoss loss;
        try {
          loss = step_->run(batch, state_.step, state_.stage_step);
        } catch (const NonFiniteLoss& e) {
          throw NonFiniteLoss(std::string(e.what()) + ". " + last_good_message());
        }
        window.add(loss);
      }
      state_.tau = step_->temperature(state_.stage_step);
      ++state_.step;
      ++state_.stage_step;
      ++state_.loader_batch;

      const bool last = state_.step == opt_.steps;
      const bool log_now = state_.step % opt_.log_every == 0 || last;
      const bool eval_now = heldout_ && ((opt_.eval_every > 0 && state_.step % opt_.eval_every == 0) || last);
      const bool save_now = state_.step % opt_.checkpoint_every == 0 || last;
      // On a device: the interval's sums, read (and checked) once.
      if (on_device() && (log_now || eval_now || save_now)) {
        const Window read = device_window.read();
        if (read.n > 0 && !(std::isfinite(read.total) && std::isfinite(read.check)))
          throw NonFiniteLoss(device_window.non_finite_message(read, step_->stage(), opt_.device) + ". " +
                              last_good_message());
        if (log_now) {
          window = read;
          device_window.reset();
        }
      }
      if (log_now) {
        const auto now = std::chrono::steady_clock::now();
        const double dt = std::chrono::duration<double>(now - window_start).count();
        const double elapsed = std::chrono::duration<double>(now - session_start).count();
        LogRow row;
        row.step = state_.step;
        row.steps = opt_.steps;
        row.stage = step_->stage();
        row.loss = window.total / window.n;
        row.loss_xy = window.xy / window.n;
        row.loss_z = window.z / window.n;
        row.lr = step_->main_lr();
        row.tau = state_.tau;
        row.images_per_s = dt > 0 ? window.n * opt_.batch / dt : 0;
        row.eta_s = elapsed / static_cast<double>(state_.step - session_first) * static_cast<double>(opt_.steps - state_.step);
        add_log_row(row);
        if (opt_.on_log) opt_.on_log(row);
        window = Window();
        window_start = now;
      }
      if (eval_now) evaluate_heldout();
      if (save_now) save();
    }
  }

  // Writes the checkpoint and the files beside it now.
  void save() {
    save_checkpoint(path(kStateFile), *model_, step_->optimizer(), state_);
    io::save_weights(*model_, path(kLastFile), weights_metadata());
    write_log();
    const auto groups = model_->selector->assignment();
    data::write_image(path("groups.png"),
                      eval::draw_joint_groups(groups, config_.num_groups, "step " + std::to_string(state_.step)));
    io::write_file_atomic(path("groups.txt"), eval::joint_groups_text(groups, config_.num_groups));
  }

  // Evaluates on the held-out set now (updates best.safetensors).
  HeldOutRecord evaluate_heldout() {
    LGH_CHECK(heldout_ != nullptr, "trainer: no held-out data set");
    HeldOutRecord rec;
    rec.step = state_.step;
    rec.stage = step_->stage();
    eval::EvalOptions eo;
    eo.protocol = opt_.protocol;
    eo.batch = opt_.batch;
    eo.max_samples = opt_.eval_samples;
    eo.workers = opt_.workers;
    const eval::EvalResult r = eval::evaluate(*model_, heldout_, eo);
    rec.epe_mm = r.metrics.xyz.curve.epe_mean;
    rec.auc_20_50 = r.metrics.xyz.auc_20_50;
    rec.epe_2d_px = r.metrics.uv.epe_mean;
    if (rec.stage == Stage::Backbone2D) rec.backbone_2d_px = backbone_2d_error();
    const double figure = rec.stage == Stage::Backbone2D ? rec.backbone_2d_px : rec.epe_mm;
    if (state_.best_stage != rec.stage || figure < state_.best) {
      state_.best = figure;
      state_.best_step = state_.step;
      state_.best_stage = rec.stage;
      rec.best = true;
      io::save_weights(*model_, path(kBestFile), weights_metadata());
    }
    add_eval_row(rec);
    if (opt_.on_eval) opt_.on_eval(rec);
    return rec;
  }

  nn::LearnableGroupsModel<float>& model() {
    setup();
    return *model_;
  }
  const TrainState& state() const { return state_; }
  int64_t stage1_steps() const { return stage1_steps_; }
  std::string path(const std::string& file) const { return (std::filesystem::path(opt_.out_dir) / file).string(); }

  // The settings that decide the weights a run produces; a resumed run must
  // match them (except the number of steps).
  nlohmann::json run_settings() const {
    const auto& a = opt_.augmentation;
    return {{"config", config_.to_json()},
            {"data", train_->name()},
            {"batch", opt_.batch},
            {"plan", stage_plan_name(opt_.plan)},
            {"lr", opt_.lr.to_json()},
            {"groups", opt_.groups == GroupMode::Learned ? nlohmann::json("learned") : nlohmann::json(opt_.fixed_groups)},
            {"tau", {opt_.tau.initial(), opt_.tau.decrement(), opt_.tau.interval(), opt_.tau.floor()}},
            {"beta", opt_.beta},
            {"init", opt_.init_weights},
            {"seed", std::to_string(opt_.seed)},
            {"augment", opt_.augment ? nlohmann::json({a.scale_min, a.scale_max, a.rotation_max, a.translation_max,
                                                        a.translation_reference_size, a.hue_max})
                                     : nlohmann::json(false)}};
  }

 private:
  struct Window {
    double total = 0, xy = 0, z = 0;
    double check = 0;  // device path: the sum of every gradient of the interval
    int64_t n = 0;
    void add(const StepLoss& l) {
      total += l.total;
      xy += l.xy;
      z += l.z;
      ++n;
    }
  };

  // The device path's interval: [total, xy, z, gradient sum] of each step
  // added on the device, in double as the CPU's Window adds the read values
  // (so the logged means are the same numbers), and read in one copy.
  class DeviceWindow {
   public:
    void add(const TrainStep& step, const Tensor<float>& flat_grads, int64_t step_index) {
      autograd::NoGradGuard no_grad;
      const Tensor<float>& total = step.last_loss();
      const Device d = total.device();
      const Tensor<float> z = step.last_loss_z().defined() ? step.last_loss_z() : Tensor<float>::zeros({}, d);
      const Tensor<float> parts = ops::concat<float>(
          {total.view({1}), step.last_loss_xy().view({1}), z.view({1}), ops::sum(flat_grads).view({1})}, 0);
      if (!sums_.defined() || sums_.device() != d) sums_ = Tensor<double>::zeros({4}, d);
      sums_.add_(parts.template cast<double>());
      if (n_ == 0) first_ = step_index;
      ++n_;
    }
    // The interval so far (one copy from the device).
    Window read() const {
      Window w;
      w.n = n_;
      if (n_ == 0) return w;
      const std::vector<double> v = sums_.to_vector();
      w.total = v[0];
      w.xy = v[1];
      w.z = v[2];
      w.check = v[3];
      return w;
    }
    void reset() {
      if (sums_.defined()) sums_.zero_();
      n_ = 0;
    }
    std::string non_finite_message(const Window& w, Stage stage, Device device) const {
      return "steps " + std::to_string(first_) + " to " + std::to_string(first_ + n_ - 1) + " (" + stage_name(stage) +
             ") on " + device.str() + ": the loss or a gradient is not finite (mean loss " +
             std::to_string(w.total / static_cast<double>(w.n)) +
             "); training stopped at the interval's read, before any checkpoint or evaluation of these weights";
    }

   private:
    Tensor<double> sums_;
    int64_t n_ = 0, first_ = 0;
  };

  bool on_device() const { return !opt_.device.is_cpu(); }

  // The fields of a loader batch that a step reads, on the run's device.
  data::Batch to_device(const data::Batch& b) const {
    data::Batch d;
    d.image = b.image.to(opt_.device);
    d.uv = b.uv.to(opt_.device);
    d.xyz = b.xyz.to(opt_.device);
    d.K = b.K.to(opt_.device);
    d.s0 = b.s0.to(opt_.device);
    d.z_root = b.z_root.to(opt_.device);
    d.indices = b.indices;
    return d;
  }

  void message(const std::string& m) const {
    if (opt_.on_message) opt_.on_message(m);
  }

  std::map<std::string, std::string> weights_metadata() const {
    return {{io::kTemperatureMetadataKey, io::format_temperature(state_.tau > 0 ? state_.tau : 1.0)},
            {kStepMetadataKey, std::to_string(state_.step)}};
  }

  std::string last_good_message() const {
    if (!std::filesystem::exists(path(kStateFile))) return "No checkpoint had been written yet.";
    try {
      const io::SafetensorsReader f(path(kStateFile));
      return "The last good checkpoint, step " + std::to_string(read_train_state(f).step) + ", is '" +
             path(kStateFile) + "' (weights: '" + path(kLastFile) + "')";
    } catch (const Error&) {
      return "The checkpoint '" + path(kStateFile) + "' is kept.";
    }
  }

  void begin_stage(Stage s) {
    step_ = std::make_unique<TrainStep>(*model_, s, opt_.lr, opt_.groups, opt_.tau, opt_.seed, opt_.beta);
    state_.stage = s;
    state_.stage_step = 0;
    message(std::string("stage ") + (s == Stage::Backbone2D ? "1 (2d: the backbone, 2D ℓ1)" : "2 (full: Eq. 10)") +
            " from step " + std::to_string(state_.step));
  }

  void setup() {
    if (model_) return;
    model_ = std::make_unique<nn::LearnableGroupsModel<float>>(config_, opt_.seed);
    flat_ = nn::flatten(*model_);
    if (!opt_.init_weights.empty()) initialise_from(opt_.init_weights);
    if (opt_.groups == GroupMode::Fixed) set_groups(*model_, opt_.fixed_groups);
    // Before any optimizer exists, so that Adam's state is created there; a
    // checkpoint's tensors are copied onto the device when loaded.
    if (on_device()) model_->to(opt_.device);
    state_.seed = opt_.seed;
    state_.run = run_settings();
    state_.run["stage1_steps"] = stage1_steps_;
    const bool exists = std::filesystem::exists(path(kStateFile));
    if (exists && !opt_.resume)
      LGH_FAIL("'" << opt_.out_dir << "' already holds a training run ('" << kStateFile
                   << "'); resume it or choose another output directory");
    LGH_CHECK(exists || !opt_.resume,
              "nothing to resume: '" << path(kStateFile) << "' does not exist");
    if (!exists) {
      std::error_code ec;
      std::filesystem::create_directories(opt_.out_dir, ec);
      LGH_CHECK(!ec && std::filesystem::is_directory(opt_.out_dir),
                "cannot create the output directory '" << opt_.out_dir << "': " << ec.message());
      begin_stage(stage1_steps_ > 0 ? Stage::Backbone2D : Stage::Full);
      return;
    }
    const io::SafetensorsReader file(path(kStateFile));
    const TrainState saved = read_train_state(file);
    check_resumable(saved);
    begin_stage(saved.stage);
    const nlohmann::json run = state_.run;
    state_ = load_checkpoint(file, *model_, step_->optimizer());
    state_.run = run;
    read_log(saved.step);
    message("resumed from step " + std::to_string(saved.step) + " (" + stage_name(saved.stage) + ")");
  }

  // Copies every tensor of the model that `path` holds with the same shape
  // (e.g. the backbone of another configuration's stage 1); the others keep
  // their random initialisation. Says what it did; fails if nothing matched.
  void initialise_from(const std::string& path) {
    const io::SafetensorsReader file(path);
    std::vector<std::string> kept;
    int64_t copied = 0;
    autograd::NoGradGuard no_grad;
    auto copy = [&](const std::string& name, Tensor<float> dst) {
      if (file.contains(name) && file.record(name).shape == dst.shape()) {
        dst.copy_(file.load<float>(name));
        ++copied;
      } else {
        kept.push_back(name);
      }
    };
    for (const auto& p : model_->named_parameters()) copy(p.name, p.tensor.detach());
    for (const auto& b : model_->named_buffers()) copy(b.first, b.second);
    for (const auto& c : model_->named_counters())
      if (file.contains(c.first) && file.record(c.first).shape.numel() == 1) *c.second = file.load<int64_t>(c.first).data()[0];
    LGH_CHECK(copied > 0, "initial weights '" << path << "' hold no tensor of this model");
    model_->parameters_changed();
    std::string m = "initialised " + std::to_string(copied) + " tensors from '" + path + "'";
    if (!kept.empty()) {
      m += "; " + std::to_string(kept.size()) + " keep their random initialisation (";
      for (size_t i = 0; i < std::min<size_t>(kept.size(), 4); ++i) m += (i ? ", " : "") + kept[i];
      m += kept.size() > 4 ? ", ...)" : ")";
    }
    message(m);
  }

  void check_resumable(const TrainState& saved) const {
    nlohmann::json want = run_settings(), have = saved.run;
    const int64_t saved_split = have.value("stage1_steps", int64_t(-1));
    have.erase("stage1_steps");
    for (auto it = want.begin(); it != want.end(); ++it)
      LGH_CHECK(have.contains(it.key()) && have[it.key()] == it.value(),
                "cannot resume '" << path(kStateFile) << "': the run was started with " << it.key() << " = "
                                  << (have.contains(it.key()) ? have[it.key()].dump() : "(unset)") << ", this one has "
                                  << it.value().dump());
    LGH_CHECK(saved.step <= opt_.steps, "cannot resume '" << path(kStateFile) << "': it is at step " << saved.step
                                                           << ", beyond the " << opt_.steps << " steps asked for");
    // Stage 1 runs the same whatever its planned length, so the split may
    // change while the checkpoint is still in stage 1; after that the weights
    // depend on it.
    LGH_CHECK(saved.stage == Stage::Backbone2D || saved_split == stage1_steps_,
              "cannot resume '" << path(kStateFile) << "': stage 2 began after " << saved_split
                                << " steps of stage 1, this run plans " << stage1_steps_
                                << " (pass that number of stage 1 steps, or the steps that give it)");
    LGH_CHECK(saved.stage == Stage::Full || saved.step <= stage1_steps_,
              "cannot resume '" << path(kStateFile) << "': it is in stage 1 at step " << saved.step
                                << ", past the " << stage1_steps_ << " stage 1 steps this run plans");
  }

  // The backbone's 2D error on the held-out set (stage 1), in original pixels.
  double backbone_2d_error() {
    const int64_t n = std::min(opt_.eval_samples, heldout_->size());
    data::LoaderOptions lo;
    lo.batch_size = opt_.batch;
    lo.num_workers = opt_.workers;
    lo.shuffle = false;
    lo.augment = false;
    lo.drop_last = false;
    lo.epochs = 1;
    lo.crop.size = static_cast<int>(config_.input_size);
    data::Loader loader(std::make_shared<eval::IndexWindow>(heldout_, 0, n), lo);
    model_->eval();
    double sum = 0;
    int64_t count = 0;
    data::Batch b;
    while (loader.next(b)) {
      autograd::NoGradGuard no_grad;
      const TensorF uv = nn::heatmap_keypoints(model_->backbone->forward(b.image.to(opt_.device)).heatmaps)
                             .to(Device::cpu())
                             .contiguous();
      for (int64_t i = 0; i < b.size(); ++i)
        for (int j = 0; j < data::kNumJoints; ++j) {
          const float* p = uv.data() + (i * data::kNumJoints + j) * 2;
          const float* g = b.uv.data() + (i * data::kNumJoints + j) * 2;
          sum += std::hypot(p[0] - g[0], p[1] - g[1]) / b.crop_scale.data()[i];
          ++count;
        }
    }
    model_->train();
    return sum / static_cast<double>(count);
  }

  // ---- log.csv ----
  static std::string num(double v) {
    std::ostringstream s;
    s.precision(6);
    s << v;
    return s.str();
  }
  void add_log_row(const LogRow& r) {
    log_.push_back(std::to_string(r.step) + "," + stage_name(r.stage) + "," + num(r.loss) + "," + num(r.loss_xy) + "," +
                   num(r.loss_z) + "," + num(r.lr) + "," + num(r.tau) + "," + num(r.images_per_s) + ",,,,");
  }
  void add_eval_row(const HeldOutRecord& r) {
    const std::string cells = num(r.epe_mm) + "," + num(r.auc_20_50) + "," + num(r.epe_2d_px) + "," +
                              (r.stage == Stage::Backbone2D ? num(r.backbone_2d_px) : std::string());
    // On the row of the same step when there is one (its evaluation cells empty).
    const std::string prefix = std::to_string(r.step) + ",", empty = ",,,,";
    if (!log_.empty()) {
      std::string& last = log_.back();
      if (last.compare(0, prefix.size(), prefix) == 0 && last.size() >= empty.size() &&
          last.compare(last.size() - empty.size(), empty.size(), empty) == 0) {
        last = last.substr(0, last.size() - empty.size()) + "," + cells;
        return;
      }
    }
    log_.push_back(prefix + stage_name(r.stage) + ",,,,,,," + cells);
  }
  void write_log() const {
    std::string text = std::string(kLogHeader) + "\n";
    for (const std::string& row : log_) text += row + "\n";
    io::write_file_atomic(path(kLogFile), text);
  }
  void read_log(int64_t up_to_step) {
    log_.clear();
    std::ifstream in(path(kLogFile));
    std::string line;
    if (!std::getline(in, line) || line != kLogHeader) return;  // absent or foreign: start a new log
    while (std::getline(in, line)) {
      const int64_t step = std::atoll(line.c_str());
      if (step >= 1 && step <= up_to_step) log_.push_back(line);
    }
  }

  nn::ModelConfig config_;
  std::shared_ptr<const data::Dataset> train_, heldout_;
  TrainOptions opt_;
  int64_t stage1_steps_ = 0;
  std::unique_ptr<nn::LearnableGroupsModel<float>> model_;
  nn::FlatParameters<float> flat_;  // the model's flat buffers (the device path's gradient check reads them)
  std::unique_ptr<TrainStep> step_;
  TrainState state_;
  std::vector<std::string> log_;
};

}  // namespace train
}  // namespace lgh
