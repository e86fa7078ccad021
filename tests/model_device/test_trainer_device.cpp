// The trainer on a non-CPU device, without a GPU: the fake "cuda" device of
// fake_device.hpp (host memory, the CPU loops as its entries, every copy
// between host and device counted) stands in for one, so that the device
// path of train::Trainer (the model and Adam state placed on the device, the
// batches copied there, the losses summed there and read once per log
// interval, the finiteness check on the device, held-out evaluation there,
// checkpoints from host copies) runs here exactly as on a GPU. Because the
// entries are the CPU's own loops on equally aligned data, the device run
// must equal the CPU run to the bit: the tolerance of these comparisons is
// zero. (Against real CUDA kernels the GPU tests of tests/cuda use one.)
// Its own executable: it installs a backend for DeviceType::CUDA.
#include <catch2/catch.hpp>

#include <filesystem>

#include "fake_device.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/train/trainer.hpp"
#include "scratch_dir.hpp"

using namespace lgh;
using namespace lgh_fake_device;

namespace {

std::shared_ptr<const data::Dataset> hands(uint64_t seed) {
  data::SyntheticConfig c;
  c.image_size = 80;
  c.seed = seed;
  c.count = 1 << 12;
  return std::make_shared<data::SyntheticHands>(c);
}

// Both stages (stage 1 for 3 steps), τ moving, held-out evaluation and
// checkpoints inside the run.
train::TrainOptions options(const std::string& dir, int64_t steps, Device device) {
  train::TrainOptions o;
  o.out_dir = dir;
  o.steps = steps;
  o.batch = 2;
  o.plan = train::StagePlan::Both;
  o.stage1_steps = 3;
  o.lr.rest = 1e-3;
  o.tau = optim::TemperatureSchedule(5.0, 0.5, 2, 0.1);
  o.seed = 11;
  o.checkpoint_every = 2;
  o.log_every = 2;
  o.eval_every = 3;
  o.eval_samples = 2;
  o.device = device;
  return o;
}

// Every tensor of two safetensors files, bit for bit (names from `a`).
void require_same_tensors(const std::string& a, const std::string& b, const std::string& prefix = "") {
  io::SafetensorsReader fa(a), fb(b);
  REQUIRE(fa.names() == fb.names());
  int compared = 0;
  for (const std::string& name : fa.names()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    INFO(name);
    if (fa.record(name).dtype == DType::I64)
      REQUIRE(fa.load<int64_t>(name).to_vector() == fb.load<int64_t>(name).to_vector());
    else
      REQUIRE(fa.load<float>(name).to_vector() == fb.load<float>(name).to_vector());
    ++compared;
  }
  REQUIRE(compared > 0);
}

struct Run {
  std::vector<train::LogRow> logs;
  std::vector<train::HeldOutRecord> evals;
};

Run run(const train::TrainOptions& o, std::shared_ptr<const data::Dataset> heldout) {
  Run r;
  train::TrainOptions opt = o;
  opt.on_log = [&](const train::LogRow& row) { r.logs.push_back(row); };
  opt.on_eval = [&](const train::HeldOutRecord& rec) { r.evals.push_back(rec); };
  train::Trainer t(tiny(), hands(1), std::move(heldout), opt);
  t.run();
  return r;
}

// log.csv without its images/s column (a wall-clock figure).
std::vector<std::string> log_without_speed(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    if (cells.size() > 7) cells[7].clear();
    std::string joined;
    for (const auto& c : cells) joined += c + ",";
    rows.push_back(joined);
  }
  return rows;
}

}  // namespace

TEST_CASE("trainer on a device: the run equals the CPU trainer's", "[train][device]") {
  install_fake_device();
  lgh_test::ScratchDir dir("trainer_device");
  const std::string cpu_dir = dir.str() + "/cpu", dev_dir = dir.str() + "/dev";
  const Run cpu = run(options(cpu_dir, 7, Device::cpu()), hands(99));
  const Run dev = run(options(dev_dir, 7, kDev), hands(99));

  // The progress reports: the means of each interval, read from the device's sums.
  REQUIRE(dev.logs.size() == cpu.logs.size());
  REQUIRE(cpu.logs.size() == 4);  // steps 2, 4, 6 and the last, 7
  for (size_t i = 0; i < cpu.logs.size(); ++i) {
    INFO("log row " << i);
    CHECK(dev.logs[i].step == cpu.logs[i].step);
    CHECK(dev.logs[i].stage == cpu.logs[i].stage);
    CHECK(dev.logs[i].loss == cpu.logs[i].loss);
    CHECK(dev.logs[i].loss_xy == cpu.logs[i].loss_xy);
    CHECK(dev.logs[i].loss_z == cpu.logs[i].loss_z);
    CHECK(dev.logs[i].tau == cpu.logs[i].tau);
    CHECK(dev.logs[i].lr == cpu.logs[i].lr);
  }
  CHECK(cpu.logs.back().loss_z > 0);  // stage 2's depth term is in the comparison
  // Held-out evaluation on the device: the same figures, the same best weights.
  REQUIRE(dev.evals.size() == cpu.evals.size());
  REQUIRE(cpu.evals.size() == 4);  // untrained, steps 3, 6 and 7
  for (size_t i = 0; i < cpu.evals.size(); ++i) {
    INFO("evaluation " << i);
    CHECK(dev.evals[i].step == cpu.evals[i].step);
    CHECK(dev.evals[i].epe_mm == cpu.evals[i].epe_mm);
    CHECK(dev.evals[i].epe_2d_px == cpu.evals[i].epe_2d_px);
    CHECK(dev.evals[i].backbone_2d_px == cpu.evals[i].backbone_2d_px);
    CHECK(dev.evals[i].best == cpu.evals[i].best);
  }
  // The files: weights, the whole checkpoint (Adam state, step counts), the
  // best weights, the groups and the log, in the same format.
  require_same_tensors(cpu_dir + "/last.safetensors", dev_dir + "/last.safetensors");
  require_same_tensors(cpu_dir + "/last.state.safetensors", dev_dir + "/last.state.safetensors");
  require_same_tensors(cpu_dir + "/best.safetensors", dev_dir + "/best.safetensors");
  CHECK(io::SafetensorsReader(cpu_dir + "/last.state.safetensors").metadata() ==
        io::SafetensorsReader(dev_dir + "/last.state.safetensors").metadata());
  CHECK(log_without_speed(cpu_dir + "/log.csv") == log_without_speed(dev_dir + "/log.csv"));
  std::ifstream ga(cpu_dir + "/groups.txt"), gb(dev_dir + "/groups.txt");
  CHECK(std::string(std::istreambuf_iterator<char>(ga), {}) == std::string(std::istreambuf_iterator<char>(gb), {}));
}

TEST_CASE("trainer on a device: the loss is read once per log interval, not at each step", "[train][device]") {
  install_fake_device();
  lgh_test::ScratchDir dir("trainer_device_reads");
  auto o = options(dir.str() + "/run", 12, kDev);
  o.log_every = 3;
  o.checkpoint_every = 100;  // only at the end
  std::vector<int> reads_at_log;
  std::vector<int> uploads_at_log;
  o.on_log = [&](const train::LogRow&) {
    reads_at_log.push_back(counts().calls["copy_to_host"]);
    uploads_at_log.push_back(counts().calls["copy_from_host"]);
  };
  train::Trainer t(tiny(), hands(1), nullptr, o);
  t.model();  // the model placed on the device
  const int reads_before = counts().calls["copy_to_host"];
  const int uploads_before = counts().calls["copy_from_host"];
  t.run();
  REQUIRE(reads_at_log.size() == 4);
  // One copy back per interval of 3 steps (stage 1 ends inside the first two):
  // the interval's four sums in one piece.
  CHECK(reads_at_log[0] - reads_before == 1);
  for (size_t i = 1; i < reads_at_log.size(); ++i) CHECK(reads_at_log[i] - reads_at_log[i - 1] == 1);
  // Each step uploads its batch: the six tensors a step reads.
  CHECK(uploads_at_log[0] - uploads_before == 3 * 6);
  for (size_t i = 1; i < uploads_at_log.size(); ++i) CHECK(uploads_at_log[i] - uploads_at_log[i - 1] == 3 * 6);
}

TEST_CASE("trainer: a checkpoint written on a device resumes on the CPU, and the other way round", "[train][device]") {
  install_fake_device();
  lgh_test::ScratchDir dir("trainer_device_resume");
  const std::string straight = dir.str() + "/straight";
  run(options(straight, 8, Device::cpu()), hands(99));
  for (const bool first_on_device : {true, false}) {
    DYNAMIC_SECTION((first_on_device ? "device, then CPU" : "CPU, then device")) {
      const std::string split = dir.str() + (first_on_device ? "/dev_cpu" : "/cpu_dev");
      const Device first = first_on_device ? kDev : Device::cpu(), second = first_on_device ? Device::cpu() : kDev;
      run(options(split, 4, first), hands(99));  // stops in stage 2
      auto o = options(split, 8, second);
      o.resume = true;
      run(o, hands(99));
      require_same_tensors(straight + "/last.safetensors", split + "/last.safetensors");
      require_same_tensors(straight + "/last.state.safetensors", split + "/last.state.safetensors");
      require_same_tensors(straight + "/best.safetensors", split + "/best.safetensors");
    }
  }
}

TEST_CASE("trainer on a device: a NaN loss or gradient stops the run at the interval's read", "[train][device]") {
  install_fake_device();
  lgh_test::ScratchDir dir("trainer_device_nan");
  // After the checkpoint of step 4, at the log of step 6, one weight becomes
  // NaN: in the depth head (the loss is NaN) or in the neck (a ReLU may hide
  // it from the loss, not from the gradient, which the device's check sums).
  // The checkpoint of step 8, not a log step, reads the interval's sums first.
  for (const bool in_head : {true, false}) {
    const std::string run_dir = dir.str() + (in_head ? "/head" : "/neck");
    train::Trainer* trainer = nullptr;
    auto o = options(run_dir, 12, kDev);
    o.log_every = 3;
    o.checkpoint_every = 4;
    o.eval_every = 0;
    o.on_log = [&](const train::LogRow& r) {
      if (r.step != 6) return;
      autograd::NoGradGuard ng;
      auto& m = trainer->model();
      Tensor<float> w = (in_head ? m.heads[0]->depth_b->weight : m.neck_a->trainable_parameters()[0]).detach();
      w.data()[0] = std::nanf("");  // the fake device's memory is host memory
    };
    train::Trainer t(tiny(), hands(1), nullptr, o);
    trainer = &t;
    try {
      t.run();
      FAIL("no error");
    } catch (const train::NonFiniteLoss& e) {
      const std::string m = e.what();
      CHECK_THAT(m, Catch::Contains("steps 6 to 7") && Catch::Contains("cuda:0") && Catch::Contains("not finite"));
      CHECK_THAT(m, Catch::Contains("last good checkpoint, step 4"));
    }
    // The checkpoint of step 4 is intact, finite, and resumes (here on the CPU).
    io::SafetensorsReader f(run_dir + "/last.state.safetensors");
    CHECK(train::read_train_state(f).step == 4);
    int64_t non_finite = 0;
    for (const std::string& name : f.names())
      if (f.record(name).dtype == DType::F32)
        for (float v : f.load<float>(name).to_vector()) non_finite += !std::isfinite(v);
    CHECK(non_finite == 0);
    auto r = options(run_dir, 6, Device::cpu());
    r.resume = true;
    r.log_every = 4;
    r.checkpoint_every = 4;
    r.eval_every = 0;
    train::Trainer resumed(tiny(), hands(1), nullptr, r);
    resumed.run();
    CHECK(resumed.state().step == 6);
  }
}
