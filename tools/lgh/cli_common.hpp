// Helpers shared by the lgh subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <fstream>
#include <string>

#include "lgh/core/backend.hpp"
#include "lgh/core/device.hpp"
#include "lgh/core/storage.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/io/safetensors.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/ops/gumbel_softmax.hpp"

namespace lgh_cli {

inline void add_device_option(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device, "cpu, or cuda[:N] (needs a build with the CUDA backend)")
      ->check(CLI::IsMember({"cpu", "cuda", "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:4", "cuda:5", "cuda:6", "cuda:7"}))
      ->capture_default_str();
}

inline void add_threads_option(CLI::App* cmd, int& threads) {
  cmd->add_option("--threads", threads, "CPU threads (default: LGH_NUM_THREADS, else all cores)")->check(CLI::NonNegativeNumber);
}

inline void apply_threads(int threads) {
  if (threads > 0) lgh::set_num_threads(threads);
}

// Checks that `--device` can run the model: the CPU always; a CUDA device
// when this program links the CUDA backend (lgh::cuda) and the device can
// allocate memory (a machine without a GPU or driver fails here, with the
// runtime's reason, before any work starts).
inline void require_device(lgh::Device d, const char* command) {
  if (d.is_cpu()) return;
  LGH_CHECK(lgh::backend_available(d.type),
            command << ": --device " << d.str()
                    << " is not available: this lgh was built without the CUDA backend (configure with the CUDA "
                       "toolkit to build lgh::cuda), use --device cpu");
  try {
    lgh::Storage probe(1, d);
  } catch (const lgh::Error& e) {
    LGH_FAIL(command << ": --device " << d.str() << " is not usable (no working CUDA device and driver here): "
                     << e.what());
  }
}

// --config: a named config (small, paper) or a JSON file of ModelConfig keys.
inline lgh::nn::ModelConfig load_model_config(const std::string& name) {
  if (name == "paper" || name == "small") return lgh::nn::ModelConfig::named(name);
  std::ifstream in(name);
  LGH_CHECK(in.good(), "--config: '" << name << "' is neither paper, small nor a readable JSON file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    LGH_FAIL("--config: '" << name << "' is not valid JSON: " << e.what());
  }
  try {
    return lgh::nn::ModelConfig::from_json(j);
  } catch (const lgh::Error& e) {
    LGH_FAIL("--config '" << name << "': " << e.what());
  }
}

inline lgh::ops::SelectorMode parse_selector_mode(const std::string& s) {
  if (s == "hard") return lgh::ops::SelectorMode::Hard;
  if (s == "soft") return lgh::ops::SelectorMode::Soft;
  if (s == "sample") return lgh::ops::SelectorMode::Sample;
  LGH_FAIL("unknown selector '" << s << "' (expected hard, soft or sample)");
}

}  // namespace lgh_cli
