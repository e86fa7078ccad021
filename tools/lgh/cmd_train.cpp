// lgh train: both stages of the paper on synthetic hands or a public data set
// (DESIGN.md §7). The work is lgh::train::Trainer; this file parses and
// checks the flags, opens the data and prints the progress.
//
//   lgh train --data synthetic|rhd:DIR|stb:DIR|freihand:DIR --config small|paper|FILE --out DIR
//             [--steps N] [--batch B] [--groups K] [--fusion on|off] [--manual-groups]
//             [--stage 2d|full|both] [--stage1-steps N] [--lr-2d LR] [--lr-rest LR] [--beta B] [--init W] [--tau-interval N]
//             [--augment on|off] [--eval-every N] [--eval-samples N] [--checkpoint-every N]
//             [--log-every N] [--device cpu|cuda[:N]] [--resume] [--seed N] [--threads N]
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "cli_data.hpp"
#include "commands.hpp"
#include "lgh/train/trainer.hpp"

namespace lgh_cli {

namespace {

struct TrainArgs {
  std::string data = "synthetic", config = "small", out, stage = "both", fusion, device = "cpu", augment = "on", init;
  int64_t steps = 10000, batch = 8, stage1_steps = -1, tau_interval = 1000;
  int64_t eval_every = 500, eval_samples = 256, checkpoint_every = 100, log_every = 10;
  int groups = 0;  // 0: the config's K
  double lr_rest = 1e-4, lr_2d = 1e-3, beta = lgh::train::kPaperBeta;
  bool manual_groups = false, resume = false;
  uint64_t seed = 1;
  int threads = 0;
};

std::string duration(double s) {
  char b[32];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else if (s >= 60)
    std::snprintf(b, sizeof b, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else
    std::snprintf(b, sizeof b, "%.0fs", s);
  return b;
}

void run_train(const TrainArgs& a) {
  using namespace lgh;
  const Device device = Device::parse(a.device);
  require_device(device, "train");
  apply_threads(a.threads);
  nn::ModelConfig config = load_model_config(a.config);
  if (a.groups > 0) config.num_groups = a.groups;
  if (!a.fusion.empty()) config.fusion = a.fusion == "on";
  config.validate();
  LGH_CHECK(!a.manual_groups || config.num_groups == 3,
            "--manual-groups needs K = 3 (thumb, index, other fingers), the model has K = " << config.num_groups);
  LGH_CHECK(a.stage == "both" || a.stage1_steps < 0, "--stage1-steps applies to --stage both only");

  const DataSpec spec = parse_data_spec(a.data);
  const int image_size = static_cast<int>(config.input_size + config.input_size / 4);  // room for augmentation
  const auto train_data = open_training_data(spec, a.seed, image_size);
  std::shared_ptr<const data::Dataset> heldout;
  if (spec.kind != "freihand" || std::filesystem::exists(std::filesystem::path(spec.dir) / "evaluation_xyz.json"))
    heldout = open_evaluation_data(spec, a.eval_samples, image_size);

  train::TrainOptions o;
  o.out_dir = a.out;
  o.steps = a.steps;
  o.batch = a.batch;
  o.plan = train::parse_stage_plan(a.stage);
  o.stage1_steps = a.stage1_steps;
  o.lr.rest = a.lr_rest;
  o.lr.backbone_2d = a.lr_2d;
  if (a.manual_groups) {
    o.groups = train::GroupMode::Fixed;
    o.fixed_groups = train::manual_groups();
  }
  o.tau = optim::TemperatureSchedule(5.0, 0.1, a.tau_interval, 0.1);
  o.beta = a.beta;
  o.init_weights = a.init;
  o.seed = a.seed;
  o.augment = a.augment == "on";
  o.eval_every = a.eval_every;
  o.eval_samples = a.eval_samples;
  o.checkpoint_every = a.checkpoint_every;
  o.log_every = a.log_every;
  o.protocol = default_protocol(spec);
  o.resume = a.resume;
  o.device = device;
  o.on_message = [](const std::string& m) {
    std::printf("%s\n", m.c_str());
    std::fflush(stdout);
  };
  o.on_log = [](const train::LogRow& r) {
    char tau[16] = "-";  // no selector in stage 1
    if (r.stage == train::Stage::Full) std::snprintf(tau, sizeof tau, "%.2f", r.tau);
    std::printf("step %lld/%lld  %-4s  loss %.4f  lr %.0e  tau %s  %.1f images/s  ETA %s\n",
                static_cast<long long>(r.step), static_cast<long long>(r.steps), train::stage_name(r.stage), r.loss,
                r.lr, tau, r.images_per_s, duration(r.eta_s).c_str());
    std::fflush(stdout);
  };
  o.on_eval = [](const train::HeldOutRecord& r) {
    std::printf("held-out at step %lld: EPE %.2f mm, AUC 20-50 %.3f, 2D %.2f px", static_cast<long long>(r.step),
                r.epe_mm, r.auc_20_50, r.epe_2d_px);
    if (r.stage == train::Stage::Backbone2D) std::printf(", backbone 2D %.2f px", r.backbone_2d_px);
    std::printf("%s\n", r.best ? " (best so far)" : "");
    std::fflush(stdout);
  };

  train::Trainer trainer(config, train_data, heldout, o);
  const char* groups = config.num_groups == 1 ? "no groups" : a.manual_groups ? "manual groups" : "learned groups";
  std::printf("train: %s config (%lld parameters, K = %d, fusion %s, %s) on %s, %lld steps of %lld, "
              "stage %s, threads: %d%s%s -> %s\n",
              a.config.c_str(), static_cast<long long>(trainer.model().num_parameters()), config.num_groups,
              config.uses_fusion() ? "on" : "off", groups, train_data->name().c_str(), static_cast<long long>(a.steps),
              static_cast<long long>(a.batch), a.stage.c_str(), num_threads(), device.is_cpu() ? "" : ", device ",
              device.is_cpu() ? "" : device.str().c_str(), a.out.c_str());
  std::fflush(stdout);
  trainer.run();
  std::printf("done: %s/{last,best}.safetensors, log.csv, groups.png, groups.txt\n", a.out.c_str());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train the model (the paper's two stages), with checkpoints and exact resume");
  cmd->add_option("--data", a->data, data_spec_help(true))->check(data_spec_validator(true))->capture_default_str();
  cmd->add_option("--config", a->config, "Model config: small, paper, or a JSON file")->capture_default_str();
  cmd->add_option("--out", a->out,
                  "Run directory: last.safetensors, best.safetensors, last.state.safetensors (optimizer, RNG and "
                  "loader state), log.csv, groups.png, groups.txt")
      ->required();
  cmd->add_option("--steps", a->steps, "Total optimizer steps of the run (a resumed run continues up to N)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "Batch size")->check(CLI::Range(int64_t{1}, int64_t{4096}))->capture_default_str();
  cmd->add_option("--groups", a->groups, "Number of joint groups K (default: the config's)")->check(CLI::Range(1, 21));
  cmd->add_option("--fusion", a->fusion, "Fusion across groups, Eq. (9) (default: the config's)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_flag("--manual-groups", a->manual_groups,
                "Fixed groups instead of learned ones: thumb, index, other fingers (the paper's manual baseline; K = 3)");
  cmd->add_option("--stage", a->stage,
                  "2d (stage 1: the backbone, 2D l1, --lr-2d), full (stage 2: Eq. 10, lr 1e-1 theta, 1e-2 fusion, "
                  "--lr-rest for the rest) or both (stage 1 then stage 2)")
      ->check(CLI::IsMember({"2d", "full", "both"}))
      ->capture_default_str();
  cmd->add_option("--stage1-steps", a->stage1_steps, "With --stage both: steps of stage 1 (default 30% of --steps)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--lr-rest", a->lr_rest, "Stage 2 learning rate of everything but theta and the fusion layers (paper: 1e-4)")
      ->check(CLI::Range(1e-8, 1.0))
      ->capture_default_str();
  cmd->add_option("--lr-2d", a->lr_2d, "Stage 1 learning rate of the backbone (paper: 1e-3)")
      ->check(CLI::Range(1e-8, 1.0))
      ->capture_default_str();
  cmd->add_option("--beta", a->beta, "Weight of the depth term of Eq. (10) (paper: 20)")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  cmd->add_option("--init", a->init, "Start from these weights: every tensor of the model they hold with the same shape (the rest random), e.g. to fine-tune")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tau-interval", a->tau_interval,
                  "Steps between the 0.1 drops of the selector temperature tau (from 5 to 0.1; paper: 1000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--augment", a->augment, "Training augmentation: scale, rotation, translation, hue (paper)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--eval-every", a->eval_every, "Held-out evaluation every N steps (0: at the end only)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--eval-samples", a->eval_samples, "Held-out samples per evaluation")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", a->checkpoint_every, "Checkpoint every N steps (and at the end)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--log-every", a->log_every, "Progress line and log.csv row every N steps")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume, "Continue the run in --out from its last checkpoint, exactly");
  cmd->add_option("--seed", a->seed, "Seed of the initial weights, the data order and augmentation and the Gumbel noise")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_device_option(cmd, a->device);
  add_threads_option(cmd, a->threads);
  cmd->callback([a] { run_train(*a); });
}

}  // namespace lgh_cli
