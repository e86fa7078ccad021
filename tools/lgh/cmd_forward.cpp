// lgh forward: run the model on a batch of crops stored in a safetensors file.
//
//   lgh forward --weights W --input X --output Y [--selector hard|soft|sample]
//               [--tau T] [--seed N] [--device cpu|cuda] [--threads N]
//
// X holds `image` float32 [B,3,S,S] in [0,1]; Y receives `uv` [B,J,2] (input
// pixels), `depth` [B,J] (relative to the root, in units of the reference
// bone) and `selector` [J,K]. BN runs in eval mode. Y is written atomically:
// on any error nothing is left behind.
#include <cmath>
#include <cstdio>

#include "cli_common.hpp"
#include "commands.hpp"
#include "lgh/io/weights.hpp"

namespace lgh_cli {

namespace {

struct ForwardArgs {
  std::string weights, input, output, selector = "hard", device = "cpu";
  double tau = 0;  // 0: from the weights' metadata, else 1
  uint64_t seed = 0;
  int threads = 0;
};

void run_forward(const ForwardArgs& a) {
  const lgh::Device device = lgh::Device::parse(a.device);
  require_device(device, "forward");
  apply_threads(a.threads);

  lgh::io::SafetensorsReader weights_file(a.weights);
  const lgh::nn::ModelConfig config = lgh::io::read_config(weights_file);
  lgh::nn::LearnableGroupsModel<float> model(config);
  lgh::io::load_weights(model, weights_file);
  model.eval();
  model.to(device);

  lgh::io::SafetensorsReader input_file(a.input);
  LGH_CHECK(input_file.contains("image"), "input file '" << a.input << "' has no tensor 'image' (expected float32 [B,3,"
                                                          << config.input_size << "," << config.input_size << "])");
  const lgh::Shape& s = input_file.record("image").shape;
  LGH_CHECK(s.ndim() == 4 && s[0] >= 1 && s[1] == 3 && s[2] == config.input_size && s[3] == config.input_size,
            "input file '" << a.input << "': tensor 'image' has shape " << s.str() << ", expected [B,3,"
                           << config.input_size << "," << config.input_size << "] for this model (S = "
                           << config.input_size << ")");
  const lgh::TensorF image = input_file.load<float>("image");
  for (float v : image.to_vector())
    LGH_CHECK(std::isfinite(v), "input file '" << a.input << "': tensor 'image' contains a non-finite value");

  lgh::nn::SelectorOptions opt;
  opt.mode = parse_selector_mode(a.selector);
  opt.temperature = a.tau > 0 ? a.tau : lgh::io::read_temperature(weights_file, 1.0);
  opt.noise = lgh::Philox(a.seed, 0);

  lgh::nn::ModelOutput<float> out;
  {
    lgh::autograd::NoGradGuard no_grad;
    out = model.forward(image.to(device), opt);
  }
  // The results come back to the host once, after the whole forward.
  out.uvd = out.uvd.to(lgh::Device::cpu());
  out.selector = out.selector.to(lgh::Device::cpu());
  lgh::io::SafetensorsWriter w;
  w.add("uv", out.uv().contiguous());
  w.add("depth", out.depth().contiguous());
  w.add("selector", out.selector);
  w.set_metadata("lgh.selector", a.selector);
  w.set_metadata(lgh::io::kTemperatureMetadataKey, lgh::io::format_temperature(opt.temperature));
  w.write(a.output);
  std::fprintf(stderr, "forward: %lld image(s) of %lldx%lld, K = %d, selector %s (tau %g) -> %s\n",
               static_cast<long long>(s[0]), static_cast<long long>(s[2]), static_cast<long long>(s[3]),
               config.num_groups, a.selector.c_str(), opt.temperature, a.output.c_str());
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto args = std::make_shared<ForwardArgs>();
  CLI::App* cmd = app.add_subcommand("forward", "Run the model on image crops stored in a safetensors file");
  cmd->add_option("--weights", args->weights, "Model weights (safetensors; config from metadata or inferred from shapes)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--input", args->input, "Safetensors file with 'image' float32 [B,3,S,S] in [0,1]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--output", args->output, "Output safetensors: 'uv' [B,J,2], 'depth' [B,J], 'selector' [J,K]")->required();
  cmd->add_option("--selector", args->selector, "Joint-group selector: hard (one-hot argmax), soft (softmax(theta/tau)) or sample (Gumbel noise)")
      ->check(CLI::IsMember({"hard", "soft", "sample"}))
      ->capture_default_str();
  cmd->add_option("--tau", args->tau, "Temperature tau for soft/sample (default: from the weights' metadata, else 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "Seed of the Gumbel noise (sample mode)")->capture_default_str();
  add_device_option(cmd, args->device);
  add_threads_option(cmd, args->threads);
  cmd->callback([args] { run_forward(*args); });
}

}  // namespace lgh_cli
