// Fuzz harness: `lgh` command lines, driven in-process through the tool's
// dispatcher (lgh_cli::run), so every command registered there, including
// ones added later, is covered without this file knowing it.
//
// The input is one argument per line (argv[0] is added). Each input runs
// twice:
//  1. parse only: every command stops when its parsing is complete, before
//     its work, so the parser, the flag checks and the usage errors are
//     fuzzed with any values;
//  2. for real, in a sandbox directory holding small fixtures (weights,
//     an input batch, a model config, a FreiHAND-layout data set), when the
//     arguments stay inside it: no argument names a path outside it ('/' or
//     '..'), and no number exceeds kMaxNumber, since counts, sizes and
//     iterations are resource requests that a fuzzing budget cannot serve.
//     The sandbox is rebuilt after each such run.
// Either way the tool must answer with exit code 0, 1 or 2 and never crash.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.hpp"
#include "fuzz_common.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/io/weights.hpp"

namespace {

constexpr double kMaxNumber = 4;
constexpr size_t kMaxArgs = 64;

// The fixtures that a command line can name (relative to the sandbox).
void make_fixtures(const std::string& dir) {
  lgh::nn::ModelConfig c;
  c.input_size = 64;
  c.features = 2;
  c.p0 = c.p1 = 2;
  c.num_groups = 2;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  lgh::nn::LearnableGroupsModel<float> model(c, 7);
  lgh::io::save_weights(model, dir + "/w.safetensors");
  lgh::io::SafetensorsWriter x;
  x.add("image", lgh::TensorF::full({1, 3, 64, 64}, 0.5f));
  x.write(dir + "/x.safetensors");
  lgh_fuzz::write_file(dir + "/cfg.json", c.to_json().dump());
  lgh::data::SyntheticConfig sc;
  sc.image_size = 64;
  sc.count = 2;
  lgh::data::FreiHandWriteOptions wo;
  wo.contact_sheet_samples = 0;
  lgh::data::write_freihand_layout(lgh::data::SyntheticHands(sc), 2, dir + "/fh", wo);
}

// The fixtures are made once, then copied into the sandbox afresh after
// every run that may have changed it.
void build_sandbox(const std::string& dir) {
  namespace fs = std::filesystem;
  static const std::string fixtures = [] {
    const std::string f = lgh_fuzz::scratch() / "cli-fixtures";
    fs::create_directories(f);
    make_fixtures(f);
    return f;
  }();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir)) fs::remove_all(e.path(), ec);
  fs::copy(fixtures, dir, fs::copy_options::recursive);
}

const std::string& sandbox() {
  static const std::string dir = [] {
    const std::string d = lgh_fuzz::scratch() / "cli";
    std::filesystem::create_directories(d);
    build_sandbox(d);
    // Help texts go to stdout: not needed, and they would flood the log.
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDOUT_FILENO);
    return d;
  }();
  return dir;
}

// Changes the working directory for its lifetime.
class Cwd {
 public:
  explicit Cwd(const std::string& dir) : previous_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~Cwd() { std::filesystem::current_path(previous_); }
  Cwd(const Cwd&) = delete;
  Cwd& operator=(const Cwd&) = delete;

 private:
  std::filesystem::path previous_;
};

// A number as CLI11 would read one (decimal, hex, octal, binary, float).
bool parse_number(const std::string& s, double* v) {
  if (s.empty()) return false;
  const char* p = s.c_str();
  char* end = nullptr;
  *v = std::strtod(p, &end);
  if (end != p && *end == '\0') return true;
  const long long i = std::strtoll(p, &end, 0);
  if (end != p && *end == '\0') {
    *v = static_cast<double>(i);
    return true;
  }
  size_t k = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (s.size() > k + 2 && s[k] == '0' && (s[k + 1] == 'b' || s[k + 1] == 'B' || s[k + 1] == 'o' || s[k + 1] == 'O')) {
    *v = INFINITY;  // any such literal counts as large: CLI11 reads them
    return true;
  }
  return false;
}

bool inside_sandbox(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a.find('/') != std::string::npos || a.find("..") != std::string::npos) return false;
    std::string value = a;
    const size_t eq = a.find('=');
    if (a.size() > 1 && a[0] == '-' && eq != std::string::npos) value = a.substr(eq + 1);
    double v = 0;
    if (parse_number(value, &v) && !(std::fabs(v) <= kMaxNumber) && !std::isnan(v)) return false;
    // Short options glued to their value (-n5).
    if (value.size() > 2 && value[0] == '-' && value[1] != '-' && parse_number(value.substr(2), &v) &&
        !(std::fabs(v) <= kMaxNumber))
      return false;
  }
  return true;
}

// Phase 1: each command stops once its own parsing is complete (values
// assigned, checks and requirements done), before its callback. The
// callbacks are left in place: the commands' option storage lives in them.
void stop_before_work(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    sub->parse_complete_callback([] { throw CLI::Success(); });
    stop_before_work(*sub);
  }
}

void check_exit_code(int rc) {
  if (rc != 0 && rc != 1 && rc != 2) {
    std::fprintf(stderr, "lgh fuzz: exit code %d (expected 0, 1 or 2)\n", rc);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = sandbox();
  const auto parts = lgh_fuzz::split(data, size, "\n", kMaxArgs + 1);
  if (parts.size() > kMaxArgs) return 0;
  std::vector<std::string> args;
  for (const std::string& p : parts) args.push_back(p.size() && p.back() == '\r' ? p.substr(0, p.size() - 1) : p);
  if (!args.empty() && args.back().empty()) args.pop_back();  // a final newline
  for (const std::string& a : args)
    if (a.find('\0') != std::string::npos) return 0;  // cannot be an argv element
  std::vector<const char*> argv{"lgh"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(argv.size()) - 1;

  // The commands see the sandbox as their working directory, the fuzzer
  // its own (its corpus paths are relative).
  const Cwd cwd(dir);
  check_exit_code(lgh_cli::run(argc, argv.data(), stop_before_work));
  if (inside_sandbox(args)) {
    check_exit_code(lgh_cli::run(argc, argv.data()));
    build_sandbox(dir);
  }
  return 0;
}
