// The caching allocator's bookkeeping (core/caching_allocator.hpp) over a
// fake raw allocator that counts its calls: the same class sits on cudaMalloc
// in the CUDA backend.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "lgh/core/caching_allocator.hpp"

using namespace lgh;

namespace {

// Host memory with a per-device capacity; nullptr (out of memory) beyond it.
struct FakeRaw : RawAllocator {
  std::map<int, size_t> capacity;  // bytes per device; unlimited when absent
  std::map<int, size_t> used;
  std::map<void*, std::pair<int, size_t>> blocks;
  std::vector<int> alloc_devices;
  std::vector<void*> freed;
  int allocs = 0, frees = 0, failures = 0;

  void* raw_allocate(size_t bytes, int device) override {
    auto cap = capacity.find(device);
    if (cap != capacity.end() && used[device] + bytes > cap->second) {
      ++failures;
      return nullptr;
    }
    void* p = std::malloc(bytes);
    REQUIRE(p != nullptr);
    blocks[p] = {device, bytes};
    used[device] += bytes;
    alloc_devices.push_back(device);
    ++allocs;
    return p;
  }
  void raw_free(void* p, int device) override {
    auto it = blocks.find(p);
    REQUIRE(it != blocks.end());
    REQUIRE(it->second.first == device);  // freed on the device it came from
    used[device] -= it->second.second;
    blocks.erase(it);
    freed.push_back(p);
    ++frees;
    std::free(p);
  }
  ~FakeRaw() override {
    for (auto& b : blocks) std::free(b.first);
  }
};

int tag_a, tag_b;  // two distinct stream handles
void* const kStreamA = &tag_a;
void* const kStreamB = &tag_b;

}  // namespace

TEST_CASE("caching allocator: size classes", "[core][allocator]") {
  CHECK(CachingAllocator::round_size(0) == 512);
  CHECK(CachingAllocator::round_size(1) == 512);
  CHECK(CachingAllocator::round_size(512) == 512);
  CHECK(CachingAllocator::round_size(513) == 1024);
  CHECK(CachingAllocator::round_size((1 << 20) - 1) == (1 << 20));
  CHECK(CachingAllocator::round_size(1 << 20) == (1 << 20));
  CHECK(CachingAllocator::round_size((1 << 20) + 1) == (1 << 20) + (1 << 17));     // 8 classes per power of two
  CHECK(CachingAllocator::round_size(3 << 20) == (3 << 20));                       // 2 MiB + 4 x 256 KiB
  CHECK(CachingAllocator::round_size((3 << 20) + 1) == (3 << 20) + (1 << 18));
  for (size_t b : {size_t(7), size_t(100000), size_t(1) << 22, (size_t(5) << 27) + 3}) {
    const size_t r = CachingAllocator::round_size(b);
    CHECK(r >= b);
    CHECK(r - b <= b / 8 + 512);  // at most 12.5% (or 512 B) of waste
  }
  CHECK_THROWS_WITH(CachingAllocator::round_size(~size_t(0)), Catch::Contains("larger than any device"));
}

TEST_CASE("caching allocator: a freed block is reused for its size class", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda");
  void* p = a.allocate(1000, 0, kStreamA);
  CHECK(raw.allocs == 1);
  a.deallocate(p);
  CHECK(raw.frees == 0);  // cached, not returned
  void* q = a.allocate(1024, 0, kStreamA);  // same class (1024)
  CHECK(q == p);
  CHECK(raw.allocs == 1);
  void* r = a.allocate(2000, 0, kStreamA);  // another class
  CHECK(r != p);
  CHECK(raw.allocs == 2);
  const MemoryStats s = a.stats(0);
  CHECK(s.allocations == 3);
  CHECK(s.cache_hits == 1);
  CHECK(s.raw_allocations == 2);
  CHECK(s.bytes_in_use == 1024 + 2048);
  CHECK(s.bytes_cached == 0);
  a.deallocate(q);
  a.deallocate(r);
  CHECK(a.stats(0).bytes_cached == 1024 + 2048);
  CHECK(a.stats(0).bytes_in_use == 0);
}

TEST_CASE("caching allocator: a repeating sequence stops calling the raw allocator", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda");
  const size_t sizes[] = {4096, 300, 1 << 21, 4096, 77777, (1 << 20) + 5, 300};
  int after_first = 0;
  for (int step = 0; step < 4; ++step) {
    std::vector<void*> live;
    for (size_t i = 0; i < 7; ++i) {
      live.push_back(a.allocate(sizes[i], 0, kStreamA));
      if (i % 3 == 2) {  // free some early, as activations are
        a.deallocate(live[i - 1]);
        live[i - 1] = nullptr;
      }
    }
    for (void* p : live) a.deallocate(p);
    if (step == 0) after_first = raw.allocs;
  }
  CHECK(after_first > 0);
  CHECK(raw.allocs == after_first);
  CHECK(raw.frees == 0);
}

TEST_CASE("caching allocator: blocks stay with their stream", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda");
  void* p = a.allocate(4096, 0, kStreamA);
  a.deallocate(p);
  void* q = a.allocate(4096, 0, kStreamB);  // stream B may not take A's block: queued work on A may still use it
  CHECK(q != p);
  CHECK(raw.allocs == 2);
  void* r = a.allocate(4096, 0, kStreamA);
  CHECK(r == p);
  void* s = a.allocate(4096, 0, nullptr);  // the default stream is a stream of its own
  CHECK(s != p);
  CHECK(s != q);
  a.deallocate(q);
  a.deallocate(r);
  a.deallocate(s);
  CHECK(a.allocate(4096, 0, kStreamB) == q);
}

TEST_CASE("caching allocator: devices are separate", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda");
  void* p0 = a.allocate(4096, 0, nullptr);
  void* p1 = a.allocate(4096, 1, nullptr);
  CHECK(raw.alloc_devices == std::vector<int>{0, 1});
  a.deallocate(p0);
  void* q1 = a.allocate(4096, 1, nullptr);  // device 1 never gets device 0's block
  CHECK(q1 != p0);
  CHECK(raw.alloc_devices == std::vector<int>{0, 1, 1});
  CHECK(a.stats(0).bytes_cached == 4096);
  CHECK(a.stats(0).bytes_in_use == 0);
  CHECK(a.stats(1).bytes_in_use == 8192);
  CHECK(a.stats(1).raw_allocations == 2);
  a.empty_cache(1);  // nothing cached there
  CHECK(raw.frees == 0);
  a.empty_cache(0);
  CHECK(raw.frees == 1);
  CHECK(raw.freed == std::vector<void*>{p0});
  CHECK(a.stats(0).bytes_cached == 0);
  a.deallocate(p1);
  a.deallocate(q1);
  a.empty_cache();
  CHECK(raw.frees == 3);
  CHECK(raw.blocks.empty());
}

TEST_CASE("caching allocator: the size limit releases the least recently cached blocks", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda", 8192);
  void* b1 = a.allocate(4096, 0, kStreamA);
  void* b2 = a.allocate(4096, 0, kStreamB);
  void* b3 = a.allocate(4096, 0, kStreamA);
  a.deallocate(b1);
  a.deallocate(b2);
  CHECK(a.stats(0).bytes_cached == 8192);
  CHECK(raw.frees == 0);
  a.deallocate(b3);  // 12 KiB would exceed 8 KiB: the oldest (b1) goes back
  CHECK(raw.freed == std::vector<void*>{b1});
  CHECK(a.stats(0).bytes_cached == 8192);
  CHECK(a.allocate(4096, 0, kStreamB) == b2);
  a.set_cache_limit(0);  // lowering the limit releases the rest at once
  CHECK(a.stats(0).bytes_cached == 0);
  CHECK(raw.frees == 2);
  CHECK(a.cache_limit() == 0);
}

TEST_CASE("caching allocator: oversize blocks are never cached", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda", 8192);
  void* big = a.allocate(100000, 0, kStreamA);
  CHECK(raw.allocs == 1);
  CHECK(a.stats(0).bytes_in_use == CachingAllocator::round_size(100000));
  a.deallocate(big);
  CHECK(raw.frees == 1);
  CHECK(a.stats(0).bytes_cached == 0);
  CHECK(a.stats(0).bytes_in_use == 0);
  void* again = a.allocate(100000, 0, kStreamA);  // a new raw allocation, not a hit
  CHECK(raw.allocs == 2);
  CHECK(a.stats(0).cache_hits == 0);
  a.deallocate(again);
}

TEST_CASE("caching allocator: out of memory releases the cache and retries", "[core][allocator]") {
  FakeRaw raw;
  raw.capacity[0] = 3 * 4096;
  CachingAllocator a(raw, "cuda");
  void* x = a.allocate(4096, 0, kStreamA);
  void* y = a.allocate(4096, 0, kStreamB);
  void* z = a.allocate(2048, 0, kStreamA);
  a.deallocate(x);
  a.deallocate(y);  // 8 KiB cached on two streams, 2 KiB in use
  void* big = a.allocate(8192, 0, kStreamA);  // fails once, then fits after the cache is released
  CHECK(big != nullptr);
  CHECK(raw.failures == 1);
  CHECK(std::set<void*>(raw.freed.begin(), raw.freed.end()) == std::set<void*>{x, y});
  CHECK(a.stats(0).bytes_cached == 0);
  CHECK_THROWS_WITH(a.allocate(8192, 0, kStreamA),
                    Catch::Contains("out of memory on cuda:0 allocating 8192 bytes") &&
                        Catch::Contains("bytes in use"));
  CHECK(raw.failures == 3);
  a.deallocate(big);
  a.deallocate(z);
}

TEST_CASE("caching allocator: peak and reset, unknown pointers", "[core][allocator]") {
  FakeRaw raw;
  CachingAllocator a(raw, "cuda");
  void* p = a.allocate(4096, 2, nullptr);
  void* q = a.allocate(4096, 2, nullptr);
  a.deallocate(p);
  CHECK(a.stats(2).peak_bytes_in_use == 8192);
  CHECK(a.stats(2).bytes_in_use == 4096);
  a.reset_peak(2);
  CHECK(a.stats(2).peak_bytes_in_use == 4096);
  CHECK(a.stats(5).allocations == 0);  // a device never used
  int other = 0;
  CHECK_THROWS_WITH(a.deallocate(&other), Catch::Contains("did not allocate"));
  a.deallocate(q);
  a.deallocate(nullptr);  // no-op
}
