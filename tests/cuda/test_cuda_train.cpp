// The trainer, held-out evaluation and image inference on the GPU against
// the CPU: what `lgh train/eval/infer --device cuda` run (train::Trainer,
// eval::evaluate, eval::estimate_hand), at the `small` config.
//
// Tolerances. Convolutions run without TF32 here (LGH_CUDA_CONV_TF32=0, set
// before the first convolution), so both sides compute in float and differ
// only in summation order: one forward agrees to ~1e-4 relative
// (test_cuda_model). Over a few Adam steps the differences do not stay that
// small: Adam divides each gradient by its own running RMS, so an element
// whose gradient is near zero may move by up to about lr in a different
// direction on each side. With β1 = 0.9, β2 = 0.999, in the first ten steps
// |m̂/(√v̂+ε)| stays below ~1.3, so one step moves an element by at most
// ~1.3·lr and two runs of the same steps by at most 2·1.3·Σlr apart: the
// weights are compared against 3·Σlr of their group (the stages' rates
// times the steps each trained), plus 1e-5 relative. The logged losses and
// the held-out figures come from weights within that bound: 2% relative.
// Inference on equal weights (evaluation, infer) is one forward: 1e-3
// relative on the outputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <unistd.h>

#include "device_skip.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/eval/estimate.hpp"
#include "lgh/train/trainer.hpp"

using namespace lgh;

namespace {

// Before any convolution runs (static initialisation precedes main).
const bool kTf32Off = [] {
  setenv("LGH_CUDA_CONV_TF32", "0", 1);
  return true;
}();

const Device kGpu = Device::cuda(0);

// The `small` config on a GPU. The host emulation (tests/cuda_emulation,
// whose kernels run as CPU loops) defines LGH_TRAIN_TEST_TINY_CONFIG for a
// model small enough to train there in seconds.
nn::ModelConfig small() {
#ifdef LGH_TRAIN_TEST_TINY_CONFIG
  nn::ModelConfig c;
  c.input_size = 64;
  c.features = 8;
  c.p0 = 4;
  c.p1 = 4;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  c.num_groups = 3;
  return c;
#else
  return nn::ModelConfig::named("small");
#endif
}

std::shared_ptr<const data::Dataset> hands(uint64_t seed) {
  const nn::ModelConfig c = small();
  data::SyntheticConfig s;
  s.image_size = static_cast<int>(c.input_size + c.input_size / 4);  // as lgh train
  s.seed = seed;
  s.count = 1 << 12;
  return std::make_shared<data::SyntheticHands>(s);
}

// Both stages: 2 steps of stage 1, then stage 2 with τ moving.
train::TrainOptions options(const std::string& dir, int64_t steps, Device device) {
  train::TrainOptions o;
  o.out_dir = dir;
  o.steps = steps;
  o.batch = 4;
  o.plan = train::StagePlan::Both;
  o.stage1_steps = 2;
  o.tau = optim::TemperatureSchedule(5.0, 0.5, 2, 0.1);
  o.seed = 5;
  o.augment = false;
  o.checkpoint_every = 2;
  o.log_every = 2;
  o.eval_every = 3;
  o.eval_samples = 8;
  o.device = device;
  return o;
}

struct Run {
  std::vector<train::LogRow> logs;
  std::vector<train::HeldOutRecord> evals;
};

Run run(const train::TrainOptions& o) {
  Run r;
  train::TrainOptions opt = o;
  opt.on_log = [&](const train::LogRow& row) { r.logs.push_back(row); };
  opt.on_eval = [&](const train::HeldOutRecord& rec) { r.evals.push_back(rec); };
  train::Trainer t(small(), hands(1), hands(99), opt);
  t.run();
  return r;
}

bool close(double got, double want, double rel) {
  return std::isfinite(got) && std::abs(got - want) <= rel * std::abs(want) + 1e-6;
}
void check_rel(double got, double want, double rel, const char* what) {
  INFO(what << ": got " << got << ", want " << want);
  CHECK(close(got, want, rel));
}
// Element by element, one assertion: the first element off, if any.
void check_rel(const std::vector<double>& got, const std::vector<double>& want, double rel, const char* what) {
  REQUIRE(got.size() == want.size());
  size_t bad = got.size();
  for (size_t i = 0; i < got.size() && bad == got.size(); ++i)
    if (!close(got[i], want[i], rel)) bad = i;
  INFO(what << "[" << bad << "]: got " << (bad < got.size() ? got[bad] : 0) << ", want "
            << (bad < want.size() ? want[bad] : 0));
  CHECK(bad == got.size());
}

// The weights of two runs of `stage1` + `stage2` steps, within 3·Σlr of each
// parameter's group (see the top of the file).
void check_weights(const std::string& a, const std::string& b, int64_t stage1, int64_t stage2) {
  const train::LearningRates lr;
  auto ma = io::load_model<float>(a), mb = io::load_model<float>(b);
  const auto pa = ma->named_parameters(), pb = mb->named_parameters();
  REQUIRE(pa.size() == pb.size());
  int64_t compared = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    REQUIRE(pa[i].name == pb[i].name);
    double sum_lr = 0;
    switch (pa[i].group) {
      case nn::ParamGroup::Backbone:
        // The stage-1 rate applies to the backbone proper, the rest's to the
        // heads of stage 2: the larger bound for both.
        sum_lr = stage1 * lr.backbone_2d + stage2 * lr.rest;
        break;
      case nn::ParamGroup::Selector: sum_lr = stage2 * lr.selector; break;
      case nn::ParamGroup::Fusion: sum_lr = stage2 * lr.fusion; break;
      default: sum_lr = (stage1 + stage2) * lr.backbone_2d; break;
    }
    const auto va = pa[i].tensor.detach().contiguous().to_vector(), vb = pb[i].tensor.detach().contiguous().to_vector();
    // The first element outside the bound, if any (one assertion per tensor).
    size_t bad = va.size();
    for (size_t k = 0; k < va.size() && bad == va.size(); ++k)
      if (!std::isfinite(vb[k]) || !(std::abs(static_cast<double>(va[k]) - vb[k]) <= 3 * sum_lr + 1e-5 * std::abs(va[k])))
        bad = k;
    INFO(pa[i].name << "[" << bad << "]: " << (bad < va.size() ? va[bad] : 0.f) << " against "
                    << (bad < vb.size() ? vb[bad] : 0.f) << ", bound 3 * " << sum_lr);
    REQUIRE(bad == va.size());
    compared += static_cast<int64_t>(va.size());
  }
  CHECK(compared > 0);
}

struct Scratch {
  std::filesystem::path dir;
  explicit Scratch(const std::string& tag)
      : dir(std::filesystem::temp_directory_path() / ("lgh_cuda_train_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string operator/(const std::string& s) const { return (dir / s).string(); }
};

}  // namespace

TEST_CASE("lgh train on the GPU: a few steps of `small` equal the CPU's run", "[cuda][train]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  REQUIRE(kTf32Off);
  Scratch s("steps");
  const Run cpu = run(options(s / "cpu", 6, Device::cpu()));
  const Run gpu = run(options(s / "gpu", 6, kGpu));
  REQUIRE(gpu.logs.size() == cpu.logs.size());
  for (size_t i = 0; i < cpu.logs.size(); ++i) {
    CHECK(gpu.logs[i].step == cpu.logs[i].step);
    check_rel(gpu.logs[i].loss, cpu.logs[i].loss, 2e-2, "logged loss");
    check_rel(gpu.logs[i].loss_xy, cpu.logs[i].loss_xy, 2e-2, "logged 2D term");
    check_rel(gpu.logs[i].loss_z, cpu.logs[i].loss_z, 2e-2, "logged depth term");
    CHECK(gpu.logs[i].tau == cpu.logs[i].tau);
  }
  REQUIRE(gpu.evals.size() == cpu.evals.size());
  for (size_t i = 0; i < cpu.evals.size(); ++i) {
    check_rel(gpu.evals[i].epe_mm, cpu.evals[i].epe_mm, 2e-2, "held-out EPE");
    check_rel(gpu.evals[i].epe_2d_px, cpu.evals[i].epe_2d_px, 2e-2, "held-out 2D error");
  }
  check_weights(s / "cpu/last.safetensors", s / "gpu/last.safetensors", 2, 4);
  // The same checkpoint format: the same tensors, the same step and stage.
  io::SafetensorsReader fc(s / "cpu/last.state.safetensors"), fg(s / "gpu/last.state.safetensors");
  CHECK(fc.names() == fg.names());
  CHECK(train::read_train_state(fg).step == 6);
  CHECK(train::read_train_state(fg).stage == train::Stage::Full);
}

TEST_CASE("lgh train: a checkpoint written on the GPU resumes on the CPU, and the other way round", "[cuda][train]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  Scratch s("resume");
  run(options(s / "straight", 6, Device::cpu()));
  for (const bool gpu_first : {true, false}) {
    const std::string split = s / (gpu_first ? "gpu_cpu" : "cpu_gpu");
    run(options(split, 4, gpu_first ? kGpu : Device::cpu()));
    auto o = options(split, 6, gpu_first ? Device::cpu() : kGpu);
    o.resume = true;
    const Run resumed = run(o);
    CHECK(resumed.logs.back().step == 6);
    check_weights(s / "straight/last.safetensors", split + "/last.safetensors", 2, 4);
  }
}

TEST_CASE("lgh eval and lgh infer on the GPU: the CPU's outputs", "[cuda][eval]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  nn::LearnableGroupsModel<float> cpu(small(), 3), gpu(small(), 3);
  gpu.to(kGpu);
  eval::EvalOptions eo;
  eo.batch = 4;
  const int64_t S = small().input_size;
  const auto data = eval::synthetic_heldout(12, static_cast<int>(S + S / 4));
  const eval::EvalResult want = eval::evaluate(cpu, data, eo), got = eval::evaluate(gpu, data, eo);
  const auto wx = want.pred.xyz.to_vector(), gx = got.pred.xyz.to_vector();
  const auto wu = want.pred.uv.to_vector(), gu = got.pred.uv.to_vector();
  check_rel(gx, wx, 1e-3, "evaluated xyz (mm)");
  check_rel(gu, wu, 1e-3, "evaluated uv (px)");
  check_rel(got.metrics.xyz.curve.epe_mean, want.metrics.xyz.curve.epe_mean, 1e-3, "EPE");

  // infer: one image, crop, forward, 3D lift.
  const data::Image image = data->get(0).rgb;
  const eval::HandEstimate ec = eval::estimate_hand(cpu, image), eg = eval::estimate_hand(gpu, image);
  for (int j = 0; j < data::kNumJoints; ++j) {
    for (int c = 0; c < 2; ++c) check_rel(eg.uv_px[j][c], ec.uv_px[j][c], 1e-3, "infer uv (px)");
    for (int c = 0; c < 3; ++c) check_rel(eg.xyz_mm[j][c], ec.xyz_mm[j][c], 1e-3, "infer xyz (mm)");
  }
  CHECK(eg.groups == ec.groups);
}
