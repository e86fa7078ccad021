// The fused multi-tensor Adam step: one launch updates every parameter of
// every group, with the per-element update of lgh/optim/adam_math.hpp that the
// CPU optimiser (lgh/optim/adam.hpp) runs, so the two agree to the rounding
// of each line (PyTorch 1.13's operation order, explicit FMAs and correctly
// rounded sqrt and division on both sides).
//
// The step is described by runs (launch::AdamRun): contiguous stretches of
// parameter, gradient and state elements that share one set of step constants
// (learning rate of their group, bias corrections of their step count). With
// parameters, gradients and state held in flat buffers per group, as lgh's
// modules and Adam allocate them, a step is one run per group. Runs are cut
// into chunks of launch::kAdamChunk elements, one block each; the run table
// travels by value in the kernel's parameters (constant memory), so nothing is
// copied to the device before the launch and the step never waits for the
// host. More than launch::kAdamMaxRuns runs take one launch per
// kAdamMaxRuns.
//
// The update is in place on param, exp_avg, exp_avg_sq (and max_exp_avg_sq
// under AMSGrad); grad is read only.
#pragma once

#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/optim/adam_math.hpp"

namespace lgh {
namespace cuda {

// ---- kernels ------------------------------------------------------------------
namespace kernels {

template <typename T>
__global__ void __launch_bounds__(launch::kAdamThreads) adam_step(launch::AdamTable<T> table) {
  const int64_t chunk = blockIdx.x;
  const int r = launch::adam_chunk_run(table, chunk);
  const launch::AdamRun<T>& run = table.runs[r];
  const optim::AdamScalars<T> s = run.scalars;
  const int64_t begin = (chunk - table.chunk_start[r]) * launch::kAdamChunk;
  const int64_t end = begin + launch::kAdamChunk < run.n ? begin + launch::kAdamChunk : run.n;
  T* const param = run.param;
  const T* const grad = run.grad;
  T* const m = run.exp_avg;
  T* const v = run.exp_avg_sq;
  T* const vmax = run.max_exp_avg_sq;
  if (vmax) {
#pragma unroll 4
    for (int64_t i = begin + threadIdx.x; i < end; i += launch::kAdamThreads)
      optim::adam_update(param[i], grad[i], m[i], v[i], vmax + i, s);
  } else {
#pragma unroll 4
    for (int64_t i = begin + threadIdx.x; i < end; i += launch::kAdamThreads)
      optim::adam_update(param[i], grad[i], m[i], v[i], static_cast<T*>(nullptr), s);
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------

// One Adam step over runs[0..num_runs) (host array; the pointers in it are
// device pointers). Runs of zero elements are allowed and skipped.
template <typename T>
inline void adam_step(const launch::AdamRun<T>* runs, size_t num_runs, cudaStream_t stream) {
  const char* op = "cuda::adam_step";
  LGH_CHECK(num_runs == 0 || runs != nullptr, op << ": null run table for " << num_runs << " runs");
  for (size_t i = 0; i < num_runs; ++i) {
    const launch::AdamRun<T>& r = runs[i];
    LGH_CHECK(r.n >= 0, op << ": run " << i << " has " << r.n << " elements");
    LGH_CHECK(r.n == 0 || (r.param && r.grad && r.exp_avg && r.exp_avg_sq),
              op << ": run " << i << " of " << r.n << " elements has a null param, grad, exp_avg or exp_avg_sq");
  }
  for (size_t first = 0; first < num_runs; first += launch::kAdamMaxRuns) {
    launch::AdamTable<T> table{};
    const size_t count = num_runs - first < static_cast<size_t>(launch::kAdamMaxRuns)
                             ? num_runs - first
                             : static_cast<size_t>(launch::kAdamMaxRuns);
    table.num_runs = static_cast<int>(count);
    for (size_t i = 0; i < count; ++i) table.runs[i] = runs[first + i];
    const int64_t chunks = launch::adam_plan_chunks(table);
    if (chunks == 0) continue;
    LGH_CHECK(chunks <= launch::kMaxGridX, op << ": " << chunks << " chunks of " << launch::kAdamChunk
                                              << " elements exceed one launch");
    launch_kernel("adam_step", kernels::adam_step<T>, static_cast<unsigned>(chunks), launch::kAdamThreads, 0, stream,
                  table);
  }
}

}  // namespace cuda
}  // namespace lgh
