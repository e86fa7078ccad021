// Small models and files shared by the tests of lgh train, eval, infer and
// metrics: a tiny config (S = 64) that trains and runs in a fraction of a
// second, its weights, and the checks every failing command must pass.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.hpp"
#include "lgh/io/weights.hpp"

namespace cli_test {

inline std::string q(const std::string& s) { return "\"" + s + "\""; }

inline lgh::nn::ModelConfig tiny_config() {
  lgh::nn::ModelConfig c;
  c.input_size = 64;
  c.features = 8;
  c.p0 = 4;
  c.p1 = 4;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  return c;
}

inline std::string write_tiny_config(const std::filesystem::path& dir) {
  const std::string path = (dir / "tiny.json").string();
  std::ofstream(path) << tiny_config().to_json().dump();
  return path;
}

// Weights of the tiny model (random, with a non-uniform θ), τ 0.5 in the metadata.
inline std::string write_tiny_weights(const std::filesystem::path& dir, const std::string& name = "w.safetensors") {
  using namespace lgh;
  nn::LearnableGroupsModel<float> model(tiny_config(), 3);
  {
    autograd::NoGradGuard ng;
    PhiloxEngine rng(1);
    model.selector->theta.copy_(TensorF::uniform(model.selector->theta.shape(), -1, 1, rng));
  }
  const std::string path = (dir / name).string();
  io::save_weights(model, path, {{io::kTemperatureMetadataKey, "0.5"}});
  return path;
}

// Every entry of `dir` (not recursive), to check that a failed command left nothing.
inline std::vector<std::string> entries(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A failed command: exit 1, one line "error: ..." naming `message`.
inline void check_error(const Result& r, const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(line_count(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains(message));
}

// A usage error: exit 2, "error: ..." first.
inline void check_usage(const Result& r, const std::string& message = "") {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("error: ", 0) == 0);
  if (!message.empty()) CHECK_THAT(r.err, Catch::Contains(message));
}

}  // namespace cli_test
