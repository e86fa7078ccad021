// The CUDA entry of the optimiser's step (optim::entries::AdamUpdate in
// lgh/optim/adam.hpp): every run of the step, of every parameter group, in
// one fused multi-tensor launch of adam.cuh (more than launch::kAdamMaxRuns
// runs take one launch per kAdamMaxRuns). With nn::flatten's flat buffers a
// step is one run per group, each with its group's learning rate and bias
// corrections already folded into its AdamScalars, so one launch updates the
// whole model.
//
// The optimiser describes a run by an index into the step's scalars;
// the kernel's table carries the scalars themselves (it travels in the
// launch's parameters, nothing is copied to the device), so the entry packs
// one into the other on the host (pack_adam_runs, unit-tested on the CPU).
#pragma once

#include <vector>

#include "adam.cuh"
#include "common.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/optim/adam.hpp"

namespace lgh {
namespace cuda {

// The kernel's runs for the optimiser's runs: the same pointers and sizes,
// each with the scalars it indexes. Throws on an index out of range.
template <typename T>
std::vector<launch::AdamRun<T>> pack_adam_runs(const std::vector<optim::AdamRun<T>>& runs,
                                               const std::vector<optim::AdamScalars<T>>& scalars) {
  std::vector<launch::AdamRun<T>> out;
  out.reserve(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const optim::AdamRun<T>& r = runs[i];
    LGH_CHECK(r.scalars >= 0 && static_cast<size_t>(r.scalars) < scalars.size(),
              "adam_update: run " << i << " refers to step constants " << r.scalars << " of "
                                  << scalars.size());
    launch::AdamRun<T> k;
    k.param = r.param;
    k.grad = r.grad;
    k.exp_avg = r.exp_avg;
    k.exp_avg_sq = r.exp_avg_sq;
    k.max_exp_avg_sq = r.max_exp_avg_sq;
    k.n = r.n;
    k.scalars = scalars[static_cast<size_t>(r.scalars)];
    out.push_back(k);
  }
  return out;
}

// ---- entry ------------------------------------------------------------------------
namespace adam_entries {

template <typename T>
void update(const std::vector<optim::AdamRun<T>>& runs, const std::vector<optim::AdamScalars<T>>& scalars,
            Device device) {
  if (runs.empty()) return;
  const std::vector<launch::AdamRun<T>> packed = pack_adam_runs(runs, scalars);
  cuda::adam_step(packed.data(), packed.size(), current_cuda_stream(device));
}

template <typename T>
void register_for() {
  dispatch::set_entry<optim::entries::AdamUpdate, T>(DeviceType::CUDA, &update<T>);
}

}  // namespace adam_entries

// Installs the fused Adam step as the optimiser's CUDA entry, float and double.
inline void register_adam_entries() {
  adam_entries::register_for<float>();
  adam_entries::register_for<double>();
}

}  // namespace cuda
}  // namespace lgh
