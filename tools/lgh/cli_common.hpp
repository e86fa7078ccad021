// Helpers shared by the lgh subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <string>

#include "lgh/core/device.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/io/safetensors.hpp"
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

// The model runs on the CPU in this build; CUDA tensors exist (with lgh::cuda)
// but the model's CUDA path does not yet.
inline void require_cpu_device(lgh::Device d, const char* command) {
  LGH_CHECK(d.is_cpu(), command << ": --device " << d.str()
                                << " is not available: the model runs on the CPU in this version (use --device cpu)");
}

inline lgh::ops::SelectorMode parse_selector_mode(const std::string& s) {
  if (s == "hard") return lgh::ops::SelectorMode::Hard;
  if (s == "soft") return lgh::ops::SelectorMode::Soft;
  if (s == "sample") return lgh::ops::SelectorMode::Sample;
  LGH_FAIL("unknown selector '" << s << "' (expected hard, soft or sample)");
}

// τ stored by training in the weights' metadata ("lgh.tau"), else `fallback`.
inline double metadata_temperature(const lgh::io::SafetensorsReader& f, double fallback) {
  auto it = f.metadata().find("lgh.tau");
  if (it == f.metadata().end()) return fallback;
  double t = 0;
  try {
    t = std::stod(it->second);
  } catch (const std::exception&) {
    t = 0;
  }
  LGH_CHECK(t > 0 && std::isfinite(t),
            "weights file '" << f.path() << "': metadata 'lgh.tau' = '" << it->second << "' is not a positive number");
  return t;
}

}  // namespace lgh_cli
