// The lgh command-line tool: one file per subcommand, each adding itself to
// the CLI11 app. Conventions (DESIGN.md §7): exit 0 on success, 2 on a usage
// error (CLI11 parse errors), 1 on any other error with a single line
// "error: ..." on stderr; outputs are written atomically, so a failed command
// leaves no partial file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lgh_cli {

// Parses argv (argv[0] is the program name), runs the command, returns the
// exit code (main.cpp). `configure`, when given, sees the app with every
// command registered, before parsing (the fuzz harness uses it).
int run(int argc, const char* const* argv, const std::function<void(CLI::App&)>& configure = nullptr);

// Each registers a subcommand on `app`; the subcommand's callback does the work.
void add_synth_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_metrics_command(CLI::App& app);
void add_infer_command(CLI::App& app);

}  // namespace lgh_cli
