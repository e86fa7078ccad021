// lgh bench: time inference or a training step of the model.
//
//   lgh bench --config small|paper|FILE --batch B --mode infer|train
//             [--device cpu|cuda] [--iters N] [--warmup N] [--threads N] --json OUT
//
// infer: eval mode, no graph (the fused inference path), hard selector.
// train: one stage-2 step of train::TrainStep: train mode (BN batch
//        statistics), sampled selector, Eq. (10) loss, backward and an Adam
//        step with the paper's parameter groups.
// Inputs are random (the time does not depend on their values). Reports the
// median, mean and min per iteration and images/s, on stderr as it goes and as
// JSON in OUT.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "cli_common.hpp"
#include "commands.hpp"
#include "lgh/io/atomic_file.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/eval/metrics.hpp"
#include "lgh/train/step.hpp"

namespace lgh_cli {

namespace {

struct BenchArgs {
  std::string config = "small", mode = "infer", device = "cpu", json;
  int batch = 1, iters = 10, warmup = 2, threads = 0;
};

void run_bench(const BenchArgs& a) {
  using namespace lgh;
  const Device device = Device::parse(a.device);
  require_device(device, "bench");
  apply_threads(a.threads);
  const nn::ModelConfig config = load_model_config(a.config);
  // Validate the output location before spending minutes on the benchmark.
  { io::AtomicFile probe(a.json); }

  nn::LearnableGroupsModel<float> model(config, 1);
  model.to(device);
  const bool train = a.mode == "train";
  const int64_t B = a.batch, S = config.input_size, J = config.num_joints;
  PhiloxEngine rng(7);
  const TensorF image = TensorF::uniform({B, 3, S, S}, 0, 1, rng).to(device);

  // A training step is the library's (train::TrainStep: stage 2, Eq. 10,
  // the paper's parameter groups and learning rates) on a random batch.
  data::Batch batch;
  batch.image = image;
  std::unique_ptr<train::TrainStep> trainer;
  if (train) {
    batch.K = TensorF::empty({B, 4});
    batch.z_root = TensorF::empty({B});
    batch.s0 = TensorF::empty({B});
    for (int64_t b = 0; b < B; ++b) {
      batch.K.at({b, 0}) = batch.K.at({b, 1}) = float(2.5 * S);
      batch.K.at({b, 2}) = batch.K.at({b, 3}) = float(S / 2);
      batch.z_root.at({b}) = 500.f;
      batch.s0.at({b}) = 40.f;
    }
    batch.xyz = TensorF::uniform({B, J, 3}, -60, 560, rng);
    // The whole step stays on the device: data, parameters (flattened
    // there), gradients and the optimiser's state.
    batch.K = batch.K.to(device);
    batch.z_root = batch.z_root.to(device);
    batch.s0 = batch.s0.to(device);
    batch.xyz = batch.xyz.to(device);
    nn::flatten(model);
    trainer = std::make_unique<train::TrainStep>(model, train::Stage::Full, train::LearningRates{},
                                                 train::GroupMode::Learned, optim::TemperatureSchedule{}, 1);
    model.train();
  } else {
    model.eval();
  }

  // The last step's loss is read back once, after the timed loop (never inside a step).
  auto step = [&](int i) {
    if (!train) {
      autograd::NoGradGuard no_grad;
      nn::ModelOutput<float> out = model.forward(image);
      return;
    }
    // τ = 5, the schedule's start; nothing is read back inside the step.
    trainer->run(batch, i < 0 ? 0 : i, 0, /*read_loss=*/false);
  };

  std::fprintf(stderr, "bench: %s config (%lld parameters), %s, batch %d, %d threads\n", a.config.c_str(),
               static_cast<long long>(model.num_parameters()), a.mode.c_str(), a.batch, num_threads());
  for (int i = 0; i < a.warmup; ++i) step(-1 - i);
  synchronize(device);
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < a.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step(i);
    synchronize(device);  // a device's queued work belongs to the iteration that launched it
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    const double elapsed = std::chrono::duration<double>(t1 - start).count();
    std::fprintf(stderr, "  iter %d/%d: %.2f ms (%.1f images/s), ETA %.0f s\n", i + 1, a.iters, ms.back(),
                 1000.0 * B / ms.back(), elapsed / (i + 1) * (a.iters - i - 1));
  }
  const double med = eval::median(ms);
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
  const double best = *std::min_element(ms.begin(), ms.end());
  nlohmann::json j = {{"config", a.config}, {"model", config.to_json()}, {"mode", a.mode}, {"batch", a.batch},
                      {"device", device.str()}, {"threads", num_threads()}, {"iters", a.iters},
                      {"warmup", a.warmup}, {"median_ms", med}, {"mean_ms", mean}, {"min_ms", best},
                      {"images_per_s", 1000.0 * B / med}, {"times_ms", ms},
                      {"parameters", model.num_parameters()}};
  if (train) j["final_loss"] = trainer->last_loss().item();
  io::write_file_atomic(a.json, j.dump(2) + "\n");
  std::fprintf(stderr, "bench: median %.2f ms, %.1f images/s -> %s\n", med, 1000.0 * B / med, a.json.c_str());
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Time inference or a training step of the model");
  cmd->add_option("--config", args->config, "Model config: paper, small, or a JSON file")->capture_default_str();
  cmd->add_option("--batch", args->batch, "Batch size")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--mode", args->mode, "infer (eval, no graph) or train (forward, Eq. 10 loss, backward, Adam step)")
      ->check(CLI::IsMember({"infer", "train"}))
      ->capture_default_str();
  cmd->add_option("--iters", args->iters, "Timed iterations")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed iterations first")->check(CLI::Range(0, 1000000))->capture_default_str();
  cmd->add_option("--json", args->json, "Where to write the results (JSON)")->required();
  add_device_option(cmd, args->device);
  add_threads_option(cmd, args->threads);
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace lgh_cli
