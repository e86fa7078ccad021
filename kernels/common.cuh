// Shared by every CUDA kernel header: error checking that throws lgh::Error
// with file:line (never exit()), a debug switch that synchronises after
// every launch so that an asynchronous fault is reported at the launch that
// caused it (set LGH_CUDA_DEBUG_SYNC=1 in the environment), and the current
// stream and device of the execution model (core/stream.hpp): every launch
// and copy goes on current_cuda_stream(device).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "lgh/core/device.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/stream.hpp"

namespace lgh {
namespace cuda {

inline bool debug_sync() {
  static const bool on = [] {
    const char* v = std::getenv("LGH_CUDA_DEBUG_SYNC");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    ::lgh::detail::throw_error(file, line,
                               std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                                   ") in " + what);
}

// Number of CUDA devices (0 when no driver or device is present).
inline int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver/device" error
    return 0;
  }
  return n;
}

inline unsigned blocks_for(int64_t n, unsigned threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// The cudaStream_t behind a core Stream (nullptr: the legacy default stream
// of the current device).
inline cudaStream_t stream_handle(Stream s) { return static_cast<cudaStream_t>(s.handle()); }

// The stream this thread's work on `device` runs on.
inline cudaStream_t current_cuda_stream(Device device) { return stream_handle(current_stream(device)); }

}  // namespace cuda
}  // namespace lgh

#define LGH_CUDA_CHECK(expr) ::lgh::cuda::check((expr), #expr, __FILE__, __LINE__)

namespace lgh {
namespace cuda {

// Makes CUDA device `index` current for the calling thread for the guard's
// lifetime (the null stream and cudaMalloc act on the current device).
class ScopedDevice {
 public:
  explicit ScopedDevice(int index) {
    LGH_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != index) LGH_CUDA_CHECK(cudaSetDevice(index));
    index_ = index;
  }
  ~ScopedDevice() {
    if (previous_ != index_) cudaSetDevice(previous_);  // no throw from a destructor
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = 0;
  int index_ = 0;
};

}  // namespace cuda
}  // namespace lgh

namespace lgh {
namespace cuda {

// Every kernel of lgh is started here: launch_kernel("name", kernel, grid, block,
// shared_bytes, stream, args...) runs kernel<<<grid, block, shared_bytes,
// stream>>>(args...), checks the launch under `name` and, with
// LGH_CUDA_DEBUG_SYNC, the kernel's execution too. Being the one place that
// starts kernels, it is also what the host emulation of tests/cuda_emulation
// replaces, so that the kernels' indexing and barriers run in a CPU-only CI.
template <typename... Params, typename... Args>
inline void launch_kernel(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                          cudaStream_t stream, Args&&... args) {
#if defined(LGH_CUDA_HOST_EMULATION)
  emulation::run_grid(grid, block, shared_bytes, [&] { kernel(args...); });
#else
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
#endif
  check(cudaGetLastError(), (std::string("launch of ") + name).c_str(), __FILE__, __LINE__);
  if (debug_sync())
    check(cudaStreamSynchronize(stream), (std::string("execution of ") + name).c_str(), __FILE__, __LINE__);
}

}  // namespace cuda
}  // namespace lgh

// A kernel's dynamic shared memory (the launch's shared_bytes), 16-byte
// aligned: LGH_DYNAMIC_SHARED(bytes); then `bytes` is an unsigned char array.
#if defined(LGH_CUDA_HOST_EMULATION)
#define LGH_DYNAMIC_SHARED(name) unsigned char* name = ::lgh::cuda::emulation::dynamic_shared()
#else
#define LGH_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

