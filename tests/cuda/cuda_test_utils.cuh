// Shared by the GPU tests.
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <vector>

#include "common.cuh"
#include "device_skip.hpp"


namespace lgh_test {

// An owning device array (move-only, freed on scope exit, so a failed
// REQUIRE leaks nothing). `offset` elements of slack before the data let a
// test hand a kernel a pointer that is not 16-byte aligned.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n, size_t offset = 0) : n_(n), offset_(offset) {
    REQUIRE(cudaMalloc(&base_, (n + offset + 1) * sizeof(T)) == cudaSuccess);
  }
  // A device copy of `v`.
  explicit DeviceBuffer(const std::vector<T>& v, size_t offset = 0) : DeviceBuffer(v.size(), offset) { upload(v); }
  // n elements, every byte set to `byte` (0xff: NaN for float and double).
  static DeviceBuffer filled_bytes(size_t n, int byte, size_t offset = 0) {
    DeviceBuffer b(n, offset);
    REQUIRE(cudaMemset(b.get(), byte, n * sizeof(T)) == cudaSuccess);
    return b;
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : base_(o.base_), n_(o.n_), offset_(o.offset_) { o.base_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      base_ = o.base_;
      n_ = o.n_;
      offset_ = o.offset_;
      o.base_ = nullptr;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  T* get() const { return base_ ? base_ + offset_ : nullptr; }
  size_t size() const { return n_; }

  void upload(const std::vector<T>& v) {
    REQUIRE(v.size() == n_);
    REQUIRE(cudaMemcpy(get(), v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  // Waits for the device, then copies back.
  std::vector<T> download() const {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    std::vector<T> v(n_);
    REQUIRE(cudaMemcpy(v.data(), get(), n_ * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }

 private:
  void release() {
    if (base_) cudaFree(base_);
    base_ = nullptr;
  }
  T* base_ = nullptr;
  size_t n_ = 0;
  size_t offset_ = 0;
};

// Waits for the device and checks that everything launched so far ran.
inline void require_device_ok() {
  REQUIRE(cudaGetLastError() == cudaSuccess);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
}

}  // namespace lgh_test
