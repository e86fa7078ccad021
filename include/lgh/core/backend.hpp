// Device backends: memory, byte copies, devices and streams of each device
// type.
//
// The CPU backend is built in: a caching allocator of 64-byte aligned blocks,
// so that the same shapes allocated every training step reuse their memory.
// The CUDA backend is registered at program start by the lgh::cuda target
// (kernels/lgh_cuda.cu; its memory comes from core/caching_allocator.hpp over
// cudaMalloc); without it, asking for a CUDA tensor throws.
//
// Everything a backend does for a device is ordered on the calling thread's
// current stream of that device (core/stream.hpp). The kernels of the ops are
// not here: they are the per-device entries of core/dispatch.hpp.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "lgh/core/caching_allocator.hpp"
#include "lgh/core/device.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/stream.hpp"

namespace lgh {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // ---- memory -------------------------------------------------------------
  // A block of `bytes` on `device`, for work on its current stream.
  virtual void* allocate(size_t bytes, Device device) = 0;
  virtual void deallocate(void* p, size_t bytes, Device device) = 0;
  virtual MemoryStats memory_stats(Device device) const = 0;
  virtual void reset_peak_memory(Device device) = 0;
  // Bytes of free blocks each device may keep; lowering it releases blocks.
  virtual void set_cache_limit(size_t bytes) = 0;
  // Gives every cached block back to the system.
  virtual void empty_cache() = 0;

  // ---- contiguous byte copies and fills (on the current stream) ------------
  // Host to device; returns once `src` may be reused.
  virtual void copy_from_host(void* dst, Device dst_device, const void* src, size_t bytes) = 0;
  // Device to host; returns once the bytes are on the host.
  virtual void copy_to_host(void* dst, const void* src, Device src_device, size_t bytes) = 0;
  // Between two devices of this type (the same one, or e.g. cuda:0 to cuda:1).
  virtual void copy_device(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  // Sets every byte to `value`.
  virtual void memset(void* dst, int value, size_t bytes, Device device) = 0;

  // ---- devices and streams ------------------------------------------------
  // Makes device `index` the calling thread's current one (CUDA:
  // cudaSetDevice) and returns the previous index.
  virtual int exchange_device(int index) = 0;
  // A new stream on `device` (destroy it with destroy_stream).
  virtual Stream create_stream(Device device) = 0;
  virtual void destroy_stream(Stream s) = 0;
  // Returns once the work queued on `s` has finished.
  virtual void synchronize(Stream s) = 0;
};

// CPU memory with a size-class cache. Blocks are rounded to 512 B below
// 1 MiB and to 64 KiB above, then kept on a free list per size on release,
// up to cache_limit bytes in all. The CPU has one stream: the calling thread.
class CpuBackend final : public DeviceBackend {
 public:
  static constexpr size_t kAlignment = 64;

  ~CpuBackend() override { empty_cache(); }

  void* allocate(size_t bytes, Device) override {
    const size_t size = round_size(bytes);
    ++allocations_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        ++cache_hits_;
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
    ++raw_allocations_;
    count_alloc(size);
    return p;
  }

  void deallocate(void* p, size_t bytes, Device) override {
    if (!p) return;
    const size_t size = round_size(bytes);
    in_use_.fetch_sub(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= cache_limit_) {
        free_[size].push_back(p);
        cached_ += size;
        return;
      }
    }
    std::free(p);
    ++raw_frees_;
  }

  MemoryStats memory_stats(Device = Device::cpu()) const override {
    MemoryStats s;
    s.bytes_in_use = in_use_.load();
    s.bytes_cached = cached_bytes();
    s.peak_bytes_in_use = peak_.load();
    s.allocations = allocations_.load();
    s.cache_hits = cache_hits_.load();
    s.raw_allocations = raw_allocations_.load();
    s.raw_frees = raw_frees_.load();
    return s;
  }
  void reset_peak_memory(Device = Device::cpu()) override { peak_.store(in_use_.load()); }

  void set_cache_limit(size_t bytes) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cache_limit_ = bytes;
    }
    empty_cache();
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& kv : free_)
      for (void* p : kv.second) {
        std::free(p);
        ++raw_frees_;
      }
    free_.clear();
    cached_ = 0;
  }

  void copy_from_host(void* dst, Device, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, Device, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_device(void* dst, Device, const void* src, Device, size_t bytes) override {
    std::memmove(dst, src, bytes);
  }
  void memset(void* dst, int value, size_t bytes, Device) override { std::memset(dst, value, bytes); }

  int exchange_device(int) override { return 0; }
  Stream create_stream(Device) override { return Stream(); }
  void destroy_stream(Stream) override {}
  void synchronize(Stream) override {}

  // Statistics, in bytes (also in memory_stats()).
  size_t bytes_in_use() const { return in_use_.load(); }
  size_t peak_bytes_in_use() const { return peak_.load(); }
  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  static size_t round_size(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t q = bytes < (size_t(1) << 20) ? 512 : (size_t(1) << 16);
    return (bytes + q - 1) / q * q;
  }

 private:
  void count_alloc(size_t b) {
    const size_t now = in_use_.fetch_add(b) + b;
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {}
  }

  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t cache_limit_ = size_t(2) << 30;
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
  std::atomic<uint64_t> allocations_{0}, cache_hits_{0}, raw_allocations_{0}, raw_frees_{0};
};

namespace detail {
inline DeviceBackend*& registered_backend(DeviceType t) {
  static DeviceBackend* table[kNumDeviceTypes] = {};
  return table[static_cast<int>(t)];
}
}  // namespace detail

inline CpuBackend& cpu_backend() {
  static CpuBackend* backend = new CpuBackend();  // never destroyed: tensors may outlive statics
  return *backend;
}

// Installs the backend for a non-CPU device type (lgh::cuda does it at
// program start). nullptr uninstalls it.
inline void register_backend(DeviceType t, DeviceBackend* b) {
  LGH_CHECK(t != DeviceType::CPU, "register_backend: the CPU backend is built in");
  detail::registered_backend(t) = b;
}

inline bool backend_available(DeviceType t) {
  return t == DeviceType::CPU || detail::registered_backend(t) != nullptr;
}
inline bool cuda_available() { return backend_available(DeviceType::CUDA); }

inline DeviceBackend& backend(Device d) {
  if (d.is_cpu()) return cpu_backend();
  DeviceBackend* b = detail::registered_backend(d.type);
  LGH_CHECK(b != nullptr, "device " << d.str()
                                    << " requested, but this program was built without CUDA support "
                                       "(link the lgh::cuda target)");
  return *b;
}

inline MemoryStats memory_stats(Device d) { return backend(d).memory_stats(d); }

// Waits for the work this thread queued on `d` (its current stream).
inline void synchronize(Device d) {
  if (!d.is_cpu()) backend(d).synchronize(current_stream(d));
}

// Makes `d` the calling thread's current device for the guard's lifetime
// (nothing for the CPU). core/dispatch.hpp puts one around every device
// entry, so an entry may assume its tensors' device is current.
class DeviceGuard {
 public:
  explicit DeviceGuard(Device d) : index_(d.index) {
    if (d.is_cpu()) return;
    backend_ = &backend(d);
    previous_ = backend_->exchange_device(index_);
  }
  ~DeviceGuard() {
    if (!backend_ || previous_ == index_) return;
    try {
      backend_->exchange_device(previous_);
    } catch (...) {  // never throw from a destructor; the next device call reports the fault
    }
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  DeviceBackend* backend_ = nullptr;
  int index_ = 0;
  int previous_ = 0;
};

// Copies `bytes` contiguous bytes between any two devices, on the current
// streams; returns once `src` may be reused (and, into host memory, once the
// bytes have arrived).
inline void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memmove(dst, src, bytes);
  } else if (src_device.is_cpu()) {
    backend(dst_device).copy_from_host(dst, dst_device, src, bytes);
  } else if (dst_device.is_cpu()) {
    backend(src_device).copy_to_host(dst, src, src_device, bytes);
  } else if (dst_device.type == src_device.type) {
    backend(dst_device).copy_device(dst, dst_device, src, src_device, bytes);
  } else {  // two device types: through the host
    std::vector<unsigned char> host(bytes);
    backend(src_device).copy_to_host(host.data(), src, src_device, bytes);
    backend(dst_device).copy_from_host(dst, dst_device, host.data(), bytes);
  }
}

}  // namespace lgh
