// The CUDA device backend: a caching allocator over cudaMalloc (size classes
// as on the CPU, one free list per device; nothing is returned to the driver
// in the hot path) and host/device copies. Registered with the core by
// lgh_cuda.cu at program start.
#pragma once

#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "lgh/core/backend.hpp"

namespace lgh {
namespace cuda {

class CudaBackend final : public DeviceBackend {
 public:
  void* allocate(size_t bytes) override {
    const size_t size = CpuBackend::round_size(bytes);
    int dev = 0;
    LGH_CUDA_CHECK(cudaGetDevice(&dev));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& list = free_[key(dev, size)];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        cached_ -= size;
        count_alloc(size);
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      empty_cache();
      err = cudaMalloc(&p, size);
    }
    check(err, "cudaMalloc", __FILE__, __LINE__);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      owner_[p] = dev;
    }
    count_alloc(size);
    return p;
  }

  void deallocate(void* p, size_t bytes) override {
    if (!p) return;
    const size_t size = CpuBackend::round_size(bytes);
    count_free(size);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[key(owner_[p], size)].push_back(p);
    cached_ += size;
  }

  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    LGH_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    LGH_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  }
  void copy_within(void* dst, const void* src, size_t bytes) override {
    LGH_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  }
  void memset_zero(void* dst, size_t bytes) override { LGH_CUDA_CHECK(cudaMemset(dst, 0, bytes)); }
  void synchronize() override { LGH_CUDA_CHECK(cudaDeviceSynchronize()); }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& kv : free_)
      for (void* p : kv.second) {
        cudaFree(p);
        owner_.erase(p);
      }
    free_.clear();
    cached_ = 0;
  }

  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  static uint64_t key(int dev, size_t size) { return (static_cast<uint64_t>(dev) << 56) ^ size; }

  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::vector<void*>> free_;
  std::unordered_map<void*, int> owner_;
  size_t cached_ = 0;
};

}  // namespace cuda
}  // namespace lgh
