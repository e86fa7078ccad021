// CachingAllocator: the bookkeeping of a stream-ordered caching allocator for
// device memory, on top of a raw allocator (cudaMalloc / cudaFree for CUDA,
// kernels/backend.cuh; a counting fake in tests/core).
//
// Why: a training step allocates and frees the same few hundred buffers every
// iteration, and cudaMalloc / cudaFree cost tens of microseconds and
// synchronise the device. Returned blocks are therefore kept and handed out
// again, so that after the first iteration a step calls the raw allocator not
// at all (tests/cuda counts this).
//
// Rules:
//   * Sizes are rounded to a size class (round_size): 512 B steps below
//     1 MiB, then 8 classes per power of two (at most 12.5% waste). A request
//     is served only by a cached block of exactly its class, on its device
//     and its stream; so a sequence of requests that repeats (a training
//     step) finds, from its second repetition on, every block it needs.
//   * Streams: a block belongs to the stream it was allocated on and goes
//     back to that stream's pool. Work on one stream runs in order, so a
//     block freed on a stream can be reused at once by later work on the
//     same stream; another stream could still find queued work writing to
//     it, so it never gets it. (A tensor used on a second stream must be
//     synchronised with it before it is freed.)
//   * Size limit: at most cache_limit() bytes per device sit in the cache.
//     Returning a block beyond it first releases the device's least
//     recently cached blocks; a block larger than the limit by itself is
//     never cached (allocated and released directly: "oversize").
//   * Out of memory: when the raw allocator fails, every cached block of the
//     device (all streams) is released and the request retried once; if it
//     fails again the allocation throws an lgh::Error with the figures.
//   * The raw allocator's free must not let queued work see the memory
//     reused (cudaFree synchronises the device before it returns).
// Thread-safe (one mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "lgh/core/error.hpp"

namespace lgh {

// Memory statistics of one device. Byte counts are of rounded blocks.
struct MemoryStats {
  size_t bytes_in_use = 0;       // in blocks handed out and not yet returned
  size_t bytes_cached = 0;       // in free blocks kept for reuse
  size_t peak_bytes_in_use = 0;  // highest bytes_in_use since the start or the last reset_peak
  uint64_t allocations = 0;      // requests served (from the cache or the raw allocator)
  uint64_t cache_hits = 0;       // requests served from the cache
  uint64_t raw_allocations = 0;  // successful calls of the raw allocator (cudaMalloc)
  uint64_t raw_frees = 0;        // blocks given back to the raw allocator (cudaFree)
};

// The allocator below the cache.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  // `bytes` of memory on device `device`, or nullptr when the device is out
  // of memory (any other failure throws).
  virtual void* raw_allocate(size_t bytes, int device) = 0;
  // Gives a block back; no queued work may use it afterwards.
  virtual void raw_free(void* p, int device) = 0;
};

class CachingAllocator {
 public:
  static constexpr size_t kDefaultCacheLimit = size_t(2) << 30;

  // `device_name` ("cuda") prefixes device indices in error messages.
  CachingAllocator(RawAllocator& raw, std::string device_name, size_t cache_limit = kDefaultCacheLimit)
      : raw_(raw), device_name_(std::move(device_name)), cache_limit_(cache_limit) {}

  // Releases the cached blocks (blocks still in use belong to their owners).
  ~CachingAllocator() { empty_cache(); }

  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The size class of a request: 512 B steps below 1 MiB, then 8 classes per
  // power of two.
  static size_t round_size(size_t bytes) {
    constexpr size_t kSmall = size_t(1) << 20;
    LGH_CHECK(bytes <= std::numeric_limits<size_t>::max() / 2,
              "allocation of " << bytes << " bytes is larger than any device can hold");
    if (bytes == 0) bytes = 1;
    if (bytes < kSmall) return (bytes + 511) / 512 * 512;
    size_t power = kSmall;
    while (power * 2 <= bytes) power *= 2;
    const size_t step = power / 8;
    return (bytes + step - 1) / step * step;
  }

  // A block of at least `bytes` on `device`, for work on `stream`.
  void* allocate(size_t bytes, int device, void* stream) {
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceState& dev = devices_[device];
    const bool cacheable = size <= cache_limit_;
    if (cacheable) {
      auto it = pools_.find(PoolKey{device, stream, size});
      if (it != pools_.end()) {
        auto entry = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) pools_.erase(it);
        void* p = entry->ptr;
        dev.lru.erase(entry);
        dev.stats.bytes_cached -= size;
        ++dev.stats.cache_hits;
        hand_out(dev, p, Block{size, device, stream, true});
        return p;
      }
    }
    void* p = raw_allocate_or_retry(dev, size, bytes, device);
    hand_out(dev, p, Block{size, device, stream, cacheable});
    return p;
  }

  // Returns a block from allocate() to the cache of its device and stream
  // (or to the raw allocator when it is oversize).
  void deallocate(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    LGH_CHECK(it != live_.end(), device_name_ << " allocator: deallocate of a pointer it did not allocate");
    const Block b = it->second;
    live_.erase(it);
    DeviceState& dev = devices_[b.device];
    dev.stats.bytes_in_use -= b.size;
    if (!b.cacheable || b.size > cache_limit_) {
      release(dev, p, b.device);
      return;
    }
    while (!dev.lru.empty() && dev.stats.bytes_cached + b.size > cache_limit_) evict_oldest(dev);
    dev.lru.push_back(Cached{p, PoolKey{b.device, b.stream, b.size}});
    pools_[dev.lru.back().key].push_back(std::prev(dev.lru.end()));
    dev.stats.bytes_cached += b.size;
  }

  // Gives every cached block back to the raw allocator (all devices, or one).
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& kv : devices_) release_cache(kv.second);
  }
  void empty_cache(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = devices_.find(device);
    if (it != devices_.end()) release_cache(it->second);
  }

  // Bytes each device may keep cached; lowering it releases blocks at once.
  size_t cache_limit() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cache_limit_;
  }
  void set_cache_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    cache_limit_ = bytes;
    for (auto& kv : devices_)
      while (!kv.second.lru.empty() && kv.second.stats.bytes_cached > cache_limit_) evict_oldest(kv.second);
  }

  MemoryStats stats(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = devices_.find(device);
    return it == devices_.end() ? MemoryStats() : it->second.stats;
  }
  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    MemoryStats& s = devices_[device].stats;
    s.peak_bytes_in_use = s.bytes_in_use;
  }

 private:
  struct Block {
    size_t size;
    int device;
    void* stream;
    bool cacheable;  // false for oversize blocks
  };
  struct PoolKey {
    int device;
    void* stream;
    size_t size;
    friend bool operator<(const PoolKey& a, const PoolKey& b) {
      if (a.device != b.device) return a.device < b.device;
      if (a.stream != b.stream) return std::less<void*>()(a.stream, b.stream);
      return a.size < b.size;
    }
  };
  struct Cached {
    void* ptr;
    PoolKey key;
  };
  struct DeviceState {
    MemoryStats stats;
    std::list<Cached> lru;  // cached blocks, least recently returned first
  };
  using CachedIt = std::list<Cached>::iterator;

  void hand_out(DeviceState& dev, void* p, const Block& b) {
    live_.emplace(p, b);
    ++dev.stats.allocations;
    dev.stats.bytes_in_use += b.size;
    if (dev.stats.bytes_in_use > dev.stats.peak_bytes_in_use) dev.stats.peak_bytes_in_use = dev.stats.bytes_in_use;
  }

  void* raw_allocate_or_retry(DeviceState& dev, size_t size, size_t requested, int device) {
    void* p = raw_.raw_allocate(size, device);
    if (!p) {
      const size_t had_cached = dev.stats.bytes_cached;
      release_cache(dev);
      p = raw_.raw_allocate(size, device);
      LGH_CHECK(p != nullptr, "out of memory on " << device_name_ << ":" << device << " allocating " << requested
                                                  << " bytes (" << size << " rounded); " << dev.stats.bytes_in_use
                                                  << " bytes in use, " << had_cached
                                                  << " bytes of cache released before the retry");
    }
    ++dev.stats.raw_allocations;
    return p;
  }

  void release(DeviceState& dev, void* p, int device) {
    raw_.raw_free(p, device);
    ++dev.stats.raw_frees;
  }

  void evict_oldest(DeviceState& dev) {
    const CachedIt oldest = dev.lru.begin();
    auto pool = pools_.find(oldest->key);
    std::vector<CachedIt>& v = pool->second;
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] == oldest) {
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    if (v.empty()) pools_.erase(pool);
    const Cached c = *oldest;
    dev.lru.pop_front();
    dev.stats.bytes_cached -= c.key.size;
    release(dev, c.ptr, c.key.device);
  }

  void release_cache(DeviceState& dev) {
    while (!dev.lru.empty()) evict_oldest(dev);
  }

  RawAllocator& raw_;
  std::string device_name_;
  size_t cache_limit_;
  mutable std::mutex mutex_;
  std::map<PoolKey, std::vector<CachedIt>> pools_;  // per (device, stream, size class), most recent last
  std::unordered_map<void*, Block> live_;           // blocks handed out
  std::map<int, DeviceState> devices_;
};

}  // namespace lgh
