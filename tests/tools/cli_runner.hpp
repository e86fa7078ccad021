// Runs the lgh binary and captures its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cli_test {

struct Result {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh scratch directory per test case.
inline std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("lgh_cli_test_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `args` is appended to the binary's path as is (quote paths yourself).
inline Result run_lgh(const std::string& args, const std::filesystem::path& dir) {
  const std::string out = (dir / "stdout.txt").string(), err = (dir / "stderr.txt").string();
  const std::string cmd = std::string("\"") + LGH_CLI_PATH + "\" " + args + " > \"" + out + "\" 2> \"" + err + "\"";
  const int status = std::system(cmd.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// Whether this machine has an NVIDIA GPU driver (its control device): where
// it has none, `--device cuda` must fail with one error line; where it has
// one, the GPU tests (tests/cuda) check the results.
inline bool gpu_present() { return std::filesystem::exists("/dev/nvidiactl"); }

// Number of lines of `s` (a trailing newline does not start a line).
inline int line_count(const std::string& s) {
  int n = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\n' || i + 1 == s.size()) ++n;
  return n;
}

}  // namespace cli_test
