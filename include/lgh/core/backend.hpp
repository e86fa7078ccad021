// Device backends: allocation and byte copies for each device type.
//
// The CPU backend is built in: a caching allocator of 64-byte aligned blocks,
// so that the same shapes allocated every training step reuse their memory.
// The CUDA backend is registered at program start by the lgh::cuda target
// (kernels/lgh_cuda.cu); without it, asking for a CUDA tensor throws.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "lgh/core/device.hpp"
#include "lgh/core/error.hpp"

namespace lgh {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_within(void* dst, const void* src, size_t bytes) = 0;
  virtual void memset_zero(void* dst, size_t bytes) = 0;
  virtual void synchronize() {}
  // Returns cached blocks to the system.
  virtual void empty_cache() {}

  // Statistics, in bytes.
  size_t bytes_in_use() const { return in_use_.load(); }
  size_t peak_bytes_in_use() const { return peak_.load(); }
  void reset_peak() { peak_.store(in_use_.load()); }

 protected:
  void count_alloc(size_t b) {
    size_t now = in_use_.fetch_add(b) + b;
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {}
  }
  void count_free(size_t b) { in_use_.fetch_sub(b); }

 private:
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
};

// CPU memory with a size-class cache. Blocks are rounded to 512 B below
// 1 MiB and to 64 KiB above, then kept on a free list per size on release,
// up to cache_limit bytes in all.
class CpuBackend final : public DeviceBackend {
 public:
  static constexpr size_t kAlignment = 64;

  ~CpuBackend() override { empty_cache(); }

  void* allocate(size_t bytes) override {
    const size_t size = round_size(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        count_alloc(size);
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, size);
    if (!p) {
      empty_cache();  // give the cache back and try once more
      p = std::aligned_alloc(kAlignment, size);
    }
    LGH_CHECK(p != nullptr, "out of CPU memory allocating " << bytes << " bytes");
    count_alloc(size);
    return p;
  }

  void deallocate(void* p, size_t bytes) override {
    if (!p) return;
    const size_t size = round_size(bytes);
    count_free(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= cache_limit_) {
        free_[size].push_back(p);
        cached_ += size;
        return;
      }
    }
    std::free(p);
  }

  void copy_from_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_within(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void memset_zero(void* dst, size_t bytes) override { std::memset(dst, 0, bytes); }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& kv : free_)
      for (void* p : kv.second) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  void set_cache_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cache_limit_ = bytes;
    }
    empty_cache();
  }

  static size_t round_size(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t q = bytes < (size_t(1) << 20) ? 512 : (size_t(1) << 16);
    return (bytes + q - 1) / q * q;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t cache_limit_ = size_t(2) << 30;
};

namespace detail {
inline DeviceBackend*& registered_backend(DeviceType t) {
  static DeviceBackend* table[2] = {nullptr, nullptr};
  return table[static_cast<int>(t)];
}
}  // namespace detail

inline CpuBackend& cpu_backend() {
  static CpuBackend* backend = new CpuBackend();  // never destroyed: tensors may outlive statics
  return *backend;
}

// Installs the backend for a device type (the CUDA target calls this at start).
inline void register_backend(DeviceType t, DeviceBackend* b) { detail::registered_backend(t) = b; }

inline bool cuda_available() { return detail::registered_backend(DeviceType::CUDA) != nullptr; }

inline DeviceBackend& backend(Device d) {
  if (d.is_cpu()) return cpu_backend();
  DeviceBackend* b = detail::registered_backend(d.type);
  LGH_CHECK(b != nullptr, "device " << d.str()
                                    << " requested, but this program was built without CUDA support "
                                       "(link the lgh::cuda target)");
  return *b;
}

}  // namespace lgh
