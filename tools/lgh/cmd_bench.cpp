// lgh bench: time inference or a training step of the model.
//
//   lgh bench --config small|paper|FILE --batch B --mode infer|train
//             [--device cpu|cuda] [--iters N] [--warmup N] [--threads N] --json OUT
//
// infer: eval mode, no graph (the fused inference path), hard selector.
// train: train mode (BN batch statistics), sampled selector, Eq. (10) loss,
//        backward and an Adam step with the paper's three parameter groups.
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
#include "lgh/nn/pose3d.hpp"
#include "lgh/optim/adam.hpp"

namespace lgh_cli {

namespace {

struct BenchArgs {
  std::string config = "small", mode = "infer", device = "cpu", json;
  int batch = 1, iters = 10, warmup = 2, threads = 0;
};

lgh::nn::ModelConfig load_config(const std::string& name) {
  if (name == "paper" || name == "small") return lgh::nn::ModelConfig::named(name);
  std::ifstream in(name);
  LGH_CHECK(in.good(), "--config: '" << name << "' is neither paper, small nor a readable JSON file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    LGH_FAIL("--config: '" << name << "' is not valid JSON: " << e.what());
  }
  try {
    return lgh::nn::ModelConfig::from_json(j);
  } catch (const lgh::Error& e) {
    LGH_FAIL("--config '" << name << "': " << e.what());
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run_bench(const BenchArgs& a) {
  using namespace lgh;
  const Device device = Device::parse(a.device);
  require_device(device, "bench");
  apply_threads(a.threads);
  const nn::ModelConfig config = load_config(a.config);
  // Validate the output location before spending minutes on the benchmark.
  { io::AtomicFile probe(a.json); }

  nn::LearnableGroupsModel<float> model(config, 1);
  model.to(device);
  const bool train = a.mode == "train";
  const int64_t B = a.batch, S = config.input_size, J = config.num_joints;
  PhiloxEngine rng(7);
  const TensorF image = TensorF::uniform({B, 3, S, S}, 0, 1, rng).to(device);

  // Training data and optimiser (paper: lr 1e-1 for θ, 1e-2 fusion, 1e-4 rest).
  TensorF K, z_root, s0, xyz;
  std::unique_ptr<optim::Adam<float>> adam;
  nn::FlatParameters<float> flat;
  if (train) {
    K = TensorF::empty({B, 4});
    z_root = TensorF::empty({B});
    s0 = TensorF::empty({B});
    for (int64_t b = 0; b < B; ++b) {
      K.at({b, 0}) = K.at({b, 1}) = float(2.5 * S);
      K.at({b, 2}) = K.at({b, 3}) = float(S / 2);
      z_root.at({b}) = 500.f;
      s0.at({b}) = 40.f;
    }
    xyz = TensorF::uniform({B, J, 3}, -60, 560, rng);
    // The whole step stays on the device: data, parameters (flattened
    // there), gradients and the optimiser's state.
    K = K.to(device);
    z_root = z_root.to(device);
    s0 = s0.to(device);
    xyz = xyz.to(device);
    flat = nn::flatten(model);
    std::vector<optim::ParamGroup<float>> groups(3);
    groups[0].name = "backbone";
    groups[0].params = model.parameters(nn::ParamGroup::Backbone);
    groups[0].lr = 1e-4;
    groups[1].name = "selector";
    groups[1].params = model.parameters(nn::ParamGroup::Selector);
    groups[1].lr = 1e-1;
    groups[2].name = "fusion";
    groups[2].params = model.parameters(nn::ParamGroup::Fusion);
    groups[2].lr = 1e-2;
    if (groups[2].params.empty()) groups.pop_back();
    adam = std::make_unique<optim::Adam<float>>(groups);
    model.train();
  } else {
    model.eval();
  }

  // The last step's loss, read back once after the timed loop (never inside a step).
  TensorF last_loss;
  auto step = [&](int i) {
    if (!train) {
      autograd::NoGradGuard no_grad;
      nn::ModelOutput<float> out = model.forward(image);
      return;
    }
    nn::SelectorOptions opt;
    opt.mode = nn::SelectorMode::Sample;
    opt.temperature = 5.0;
    opt.noise = Philox(1, static_cast<uint64_t>(i));
    model.zero_grad();
    const auto out = model.forward(image, opt);
    const auto loss = nn::pose_loss(out.uvd, K, z_root, s0, xyz);
    loss.total.backward();
    adam->step();
    last_loss = loss.total.detach();
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
  const double med = median(ms);
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
  const double best = *std::min_element(ms.begin(), ms.end());
  nlohmann::json j = {{"config", a.config}, {"model", config.to_json()}, {"mode", a.mode}, {"batch", a.batch},
                      {"device", device.str()}, {"threads", num_threads()}, {"iters", a.iters},
                      {"warmup", a.warmup}, {"median_ms", med}, {"mean_ms", mean}, {"min_ms", best},
                      {"images_per_s", 1000.0 * B / med}, {"times_ms", ms},
                      {"parameters", model.num_parameters()}};
  if (train) j["final_loss"] = last_loss.item();
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
