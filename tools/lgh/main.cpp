#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"
#include "lgh/core/config.hpp"
#include "lgh/core/error.hpp"

namespace lgh_cli {

// The whole tool as a function: parses the command line, runs the command
// and returns the exit code, never calling exit(), so that a harness can
// drive every command in-process (tests/fuzz/fuzz_cli.cpp).
int run(int argc, const char* const* argv, const std::function<void(CLI::App&)>& configure) {
  CLI::App app{"lgh " LGH_VERSION_STRING
               ": 3D hand pose estimation with learnable joint groups (Li, Gao, Sang, AAAI 2021)"};
  app.name("lgh");
  app.require_subcommand(1);
  app.set_version_flag("--version", "lgh " LGH_VERSION_STRING);
  lgh_cli::add_train_command(app);
  lgh_cli::add_eval_command(app);
  lgh_cli::add_infer_command(app);
  lgh_cli::add_metrics_command(app);
  lgh_cli::add_forward_command(app);
  lgh_cli::add_bench_command(app);
  lgh_cli::add_synth_command(app);
  // Usage errors read like every other error: "error: ..." first, then a pointer to --help.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("error: ") + e.what() + "\nRun with --help for more information.\n";
  });

  if (configure) configure(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; any other parse error is a usage error (2).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const lgh::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace lgh_cli

#ifndef LGH_CLI_NO_MAIN
int main(int argc, char** argv) { return lgh_cli::run(argc, argv); }
#endif
