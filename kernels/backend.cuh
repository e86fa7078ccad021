// The CUDA device backend (core/backend.hpp): memory from the stream-ordered
// caching allocator of core/caching_allocator.hpp over cudaMalloc/cudaFree,
// byte copies and fills on the current stream, devices and streams.
// Registered with the core by lgh_cuda.cu at program start.
#pragma once

#include "common.cuh"
#include "lgh/core/backend.hpp"
#include "lgh/core/caching_allocator.hpp"

namespace lgh {
namespace cuda {

// cudaMalloc / cudaFree on a given device: the raw allocator under the cache.
class CudaRawAllocator final : public RawAllocator {
 public:
  void* raw_allocate(size_t bytes, int device) override {
    ScopedDevice on(device);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the cache will release blocks and retry
      return nullptr;
    }
    check(err, "cudaMalloc", __FILE__, __LINE__);
    return p;
  }
  void raw_free(void* p, int device) override {
    int current = 0;
    const cudaError_t state = cudaGetDevice(&current);
    if (state == cudaErrorCudartUnloading) return;  // a tensor freed at program exit, after the runtime
    check(state, "cudaGetDevice", __FILE__, __LINE__);
    ScopedDevice on(device);
    LGH_CUDA_CHECK(cudaFree(p));  // synchronises the device: no queued work still uses p
  }
};

class CudaBackend final : public DeviceBackend {
 public:
  // ---- memory ------------------------------------------------------------------
  void* allocate(size_t bytes, Device device) override {
    return cache_.allocate(bytes, device.index, current_stream(device).handle());
  }
  void deallocate(void* p, size_t, Device) override { cache_.deallocate(p); }
  MemoryStats memory_stats(Device device) const override { return cache_.stats(device.index); }
  void reset_peak_memory(Device device) override { cache_.reset_peak(device.index); }
  void set_cache_limit(size_t bytes) override { cache_.set_cache_limit(bytes); }
  void empty_cache() override { cache_.empty_cache(); }

  // ---- copies and fills, on the current stream ---------------------------------
  void copy_from_host(void* dst, Device dst_device, const void* src, size_t bytes) override {
    ScopedDevice on(dst_device.index);
    const cudaStream_t stream = current_cuda_stream(dst_device);
    LGH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    // From pageable memory the copy returns once the driver has staged the
    // bytes, so src may be reused; from page-locked memory it returns at
    // once, so wait for it.
    cudaPointerAttributes attr{};
    LGH_CUDA_CHECK(cudaPointerGetAttributes(&attr, src));
    if (attr.type == cudaMemoryTypeHost) LGH_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  void copy_to_host(void* dst, const void* src, Device src_device, size_t bytes) override {
    ScopedDevice on(src_device.index);
    const cudaStream_t stream = current_cuda_stream(src_device);
    LGH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    LGH_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  // On one device: ordered on its current stream. Between two devices: the
  // source's stream is drained first and the copy waited for, so neither
  // side's stream order is broken (and the source may be freed at once).
  void copy_device(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override {
    if (dst_device == src_device) {
      ScopedDevice on(dst_device.index);
      LGH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_cuda_stream(dst_device)));
      return;
    }
    {
      ScopedDevice on(src_device.index);
      LGH_CUDA_CHECK(cudaStreamSynchronize(current_cuda_stream(src_device)));
    }
    ScopedDevice on(dst_device.index);
    const cudaStream_t stream = current_cuda_stream(dst_device);
    LGH_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, bytes, stream));
    LGH_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  void memset(void* dst, int value, size_t bytes, Device device) override {
    ScopedDevice on(device.index);
    LGH_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, current_cuda_stream(device)));
  }

  // ---- devices and streams -----------------------------------------------------
  int exchange_device(int index) override {
    int previous = 0;
    LGH_CUDA_CHECK(cudaGetDevice(&previous));
    if (previous != index) LGH_CUDA_CHECK(cudaSetDevice(index));
    return previous;
  }
  Stream create_stream(Device device) override {
    ScopedDevice on(device.index);
    cudaStream_t s = nullptr;
    LGH_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return Stream(device, s);
  }
  // Waits for the stream's work first: a later stream may get the same
  // handle and, with it, the cached blocks of this one.
  void destroy_stream(Stream s) override {
    if (s.is_default()) return;
    ScopedDevice on(s.device().index);
    LGH_CUDA_CHECK(cudaStreamSynchronize(stream_handle(s)));
    LGH_CUDA_CHECK(cudaStreamDestroy(stream_handle(s)));
  }
  void synchronize(Stream s) override {
    ScopedDevice on(s.device().index);
    LGH_CUDA_CHECK(cudaStreamSynchronize(stream_handle(s)));
  }

 private:
  CudaRawAllocator raw_;
  CachingAllocator cache_{raw_, "cuda"};
};

}  // namespace cuda
}  // namespace lgh
