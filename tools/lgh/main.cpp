#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"
#include "lgh/core/config.hpp"
#include "lgh/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lgh " LGH_VERSION_STRING
               ": 3D hand pose estimation with learnable joint groups (Li, Gao, Sang, AAAI 2021)"};
  app.name("lgh");
  app.require_subcommand(1);
  app.set_version_flag("--version", "lgh " LGH_VERSION_STRING);
  lgh_cli::add_forward_command(app);
  lgh_cli::add_bench_command(app);
  lgh_cli::add_synth_command(app);
  // Usage errors read like every other error: "error: ..." first, then a pointer to --help.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("error: ") + e.what() + "\nRun with --help for more information.\n";
  });

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
