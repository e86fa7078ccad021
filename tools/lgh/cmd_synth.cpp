// lgh synth: writes synthetic hands in FreiHAND's layout (DESIGN.md §7).
// The work is lgh::data::write_freihand_layout; this file parses and checks
// the flags and reports progress.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "commands.hpp"
#include "lgh/data/synthetic.hpp"

namespace lgh_cli {

namespace {

struct SynthOptions {
  std::string out;
  int64_t count = 0;
  int size = 224;  // FreiHAND's image size
  uint64_t seed = 0;
  int threads = 0;  // 0: the library default
  bool quiet = false;
};

// Image sides the model accepts after the crop: multiples of 32, >= 64.
CLI::Validator image_size_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        int v = 0;
        if (!CLI::detail::lexical_cast(s, v) || v < 64 || v % 32 != 0 || v > 4096)
          return "--size must be a multiple of 32 in [64, 4096], got " + s;
        return {};
      },
      "multiple of 32 in [64, 4096]");
}

void run_synth(const SynthOptions& o) {
  // Every flag is checked by CLI11 before this runs; the directory is
  // checked (and created) before any sample is generated.
  lgh::data::prepare_freihand_dir(o.out);
  apply_threads(o.threads);

  lgh::data::SyntheticConfig cfg;
  cfg.image_size = o.size;
  cfg.count = o.count;
  cfg.seed = o.seed;
  const lgh::data::SyntheticHands hands(cfg);

  lgh::data::FreiHandWriteOptions wopt;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  bool reported = false;
  if (!o.quiet) {
    wopt.progress = [&](int64_t done, int64_t total, double seconds) {
      if (done >= total && !reported) return;  // short runs stay silent
      const double rate = seconds > 0 ? done / seconds : 0;
      const double eta = rate > 0 ? (total - done) / rate : 0;
      std::fprintf(stderr, "%ssynth: %lld/%lld samples, %.1f samples/s, ETA %.0f s%s", tty ? "\r" : "",
                   static_cast<long long>(done), static_cast<long long>(total), rate, eta,
                   tty && done < total ? "" : "\n");
      std::fflush(stderr);
      reported = true;
    };
  }
  const auto report = lgh::data::write_freihand_layout(hands, o.count, o.out, wopt);
  std::printf("wrote %lld synthetic samples (%dx%d, seed %llu) to %s in %.1f s\n",
              static_cast<long long>(report.samples), o.size, o.size, static_cast<unsigned long long>(o.seed),
              o.out.c_str(), report.seconds);
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto opt = std::make_shared<SynthOptions>();
  CLI::App* cmd = app.add_subcommand(
      "synth",
      "Write synthetic hands in FreiHAND's layout: training/rgb/%08d.jpg, training/mask/%08d.jpg, "
      "training_K.json, training_xyz.json (metres, FreiHAND joint order), training_scale.json, "
      "training_vis.json and contact_sheet.png");
  cmd->add_option("--out", opt->out, "Output directory (created if missing)")->required();
  cmd->add_option("--count", opt->count, "Number of samples")->required()->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_option("--size", opt->size, "Image side in pixels")->check(image_size_validator())->capture_default_str();
  cmd->add_option("--seed", opt->seed, "Random seed; sample i depends only on (seed, i)")
      ->check(CLI::NonNegativeNumber)  // an unsigned parse alone would wrap -1 around
      ->capture_default_str();
  add_threads_option(cmd, opt->threads);
  cmd->add_flag("--quiet", opt->quiet, "No progress report on stderr");
  cmd->callback([opt] { run_synth(*opt); });
}

}  // namespace lgh_cli
