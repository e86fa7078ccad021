// lgh eval: the published evaluation protocol on a data set (DESIGN.md §5, §7).
// The work is lgh::eval::evaluate; this file parses the flags, opens the data
// and writes the JSON (the keys of `lgh metrics`) and the PCK plot.
//
//   lgh eval --weights W --data synthetic|rhd:DIR|stb:DIR|freihand:DIR|do:DIR
//            [--protocol rhd|stb|freihand|do] --json OUT [--plot pck.svg|pck.png] [--groups groups.png]
//            [--samples N] [--crop-box auto|reference] [--batch B] [--selector hard|soft|sample] [--tau T] [--seed N]
//            [--device cpu|cuda] [--threads N]
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "cli_data.hpp"
#include "commands.hpp"
#include "lgh/eval/evaluate.hpp"
#include "lgh/eval/plot.hpp"
#include "lgh/io/weights.hpp"

namespace lgh_cli {

namespace {

struct EvalArgs {
  std::string weights, data, protocol, json, plot, groups, selector = "hard", device = "cpu", crop_box = "auto";
  int64_t samples = 0, batch = 8;
  double tau = 0;
  uint64_t seed = 0;
  int threads = 0;
};

// Held-out synthetic hands evaluated when --samples is not given.
constexpr int64_t kDefaultSyntheticSamples = 512;

void run_eval(const EvalArgs& a) {
  using namespace lgh;
  const Device device = Device::parse(a.device);
  require_device(device, "eval");
  apply_threads(a.threads);
  // Check the outputs' locations before minutes of evaluation.
  { io::AtomicFile probe(a.json); }
  if (!a.plot.empty()) {
    LGH_CHECK(eval::detail::ends_with(a.plot, ".png") || eval::detail::ends_with(a.plot, ".svg"),
              "--plot '" << a.plot << "': the file name must end in .png or .svg");
    io::AtomicFile probe(a.plot);
  }
  if (!a.groups.empty()) {
    LGH_CHECK(eval::detail::ends_with(a.groups, ".png"), "--groups '" << a.groups << "': the file name must end in .png");
    io::AtomicFile probe(a.groups);
  }

  io::SafetensorsReader weights_file(a.weights);
  nn::LearnableGroupsModel<float> model(io::read_config(weights_file));
  io::load_weights(model, weights_file);
  model.to(device);  // each batch is copied there, its predictions read back (eval::evaluate)

  const DataSpec spec = parse_data_spec(a.data);
  const int64_t S = model.config().input_size;
  const auto data = open_evaluation_data(spec, a.samples > 0 ? a.samples : kDefaultSyntheticSamples,
                                         static_cast<int>(S + S / 4));
  eval::EvalOptions o;
  o.protocol = a.protocol.empty() ? default_protocol(spec) : eval::parse_protocol(a.protocol);
  o.batch = a.batch;
  o.max_samples = a.samples;
  o.box_source = a.crop_box == "reference" ? data::BoxSource::kReference : data::BoxSource::kAuto;
  o.selector.mode = parse_selector_mode(a.selector);
  o.selector.temperature = a.tau > 0 ? a.tau : io::read_temperature(weights_file, 1.0);
  o.selector.noise = Philox(a.seed, 0);
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  o.progress = [&](int64_t done, int64_t total) {
    if (tty) std::fprintf(stderr, "\reval: %lld/%lld samples%s", static_cast<long long>(done),
                          static_cast<long long>(total), done == total ? "\n" : "");
  };
  const eval::EvalResult r = eval::evaluate(model, data, o);

  nlohmann::json j = r.metrics.to_json();
  j["weights"] = a.weights;
  j["data"] = data->name();
  j["selector"] = a.selector;
  j["seconds"] = r.seconds;
  if (!a.plot.empty()) {
    const auto& m = r.metrics.xyz;
    eval::PckCurve c{std::string(eval::protocol_name(o.protocol)) + ": AUC 0-50 = " + eval::detail::fmt(m.curve.auc, 3) +
                         " / 20-50 = " + eval::detail::fmt(m.auc_20_50, 3),
                     m.curve.thresholds, m.curve.pck};
    eval::write_pck_plot(a.plot, {c});
  }
  if (!a.groups.empty()) {
    const std::vector<int> g = model.selector->assignment();
    data::write_image(a.groups, eval::draw_joint_groups(g, model.config().num_groups, "learned groups"));
    std::printf("%s", eval::joint_groups_text(g, model.config().num_groups).c_str());
  }
  io::write_file_atomic(a.json, j.dump(2) + "\n");
  std::printf("eval: %lld samples of %s (%s protocol): EPE mean %.2f mm, median %.2f mm, AUC 0-50 %.3f, "
              "AUC 20-50 %.3f (true 20-50 grid: %.3f); 2D EPE %.2f px -> %s\n",
              static_cast<long long>(r.metrics.samples), data->name().c_str(), eval::protocol_name(o.protocol),
              r.metrics.xyz.curve.epe_mean, r.metrics.xyz.curve.epe_median, r.metrics.xyz.curve.auc,
              r.metrics.xyz.auc_20_50, r.metrics.xyz.exact_20_50.auc, r.metrics.uv.epe_mean, a.json.c_str());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate weights on a data set with the published protocol");
  cmd->add_option("--weights", a->weights, "Model weights (safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", a->data, data_spec_help(false))->required()->check(data_spec_validator(false));
  cmd->add_option("--protocol", a->protocol,
                  "rhd, stb, freihand (adds Procrustes-aligned figures) or do (5 fingertips, best root and scale); "
                  "default: the data set's own")
      ->check(CLI::IsMember({"rhd", "stb", "freihand", "do"}));
  cmd->add_option("--json", a->json, "Where to write the metrics (JSON, the keys of lgh metrics)")->required();
  cmd->add_option("--plot", a->plot, "Also draw the PCK curve: a .png or .svg file");
  cmd->add_option("--groups", a->groups, "Also draw the weights' joint groups (argmax of theta) on a hand: a .png file");
  cmd->add_option("--samples", a->samples,
                  "Evaluate the first N samples (synthetic: N held-out hands, default 512; else all)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--crop-box", a->crop_box,
                  "auto (the hand mask, else the joints, with a 1.2 margin) or reference (the authors' RHD crop rule, "
                  "for weights trained on their crops)")
      ->check(CLI::IsMember({"auto", "reference"}))
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "Batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}))->capture_default_str();
  cmd->add_option("--selector", a->selector, "Joint-group selector: hard (default), soft or sample")
      ->check(CLI::IsMember({"hard", "soft", "sample"}))
      ->capture_default_str();
  cmd->add_option("--tau", a->tau, "Temperature for soft/sample (default: from the weights' metadata, else 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed, "Seed of the Gumbel noise (sample mode)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_device_option(cmd, a->device);
  add_threads_option(cmd, a->threads);
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace lgh_cli
