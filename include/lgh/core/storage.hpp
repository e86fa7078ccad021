// Storage: one owning, move-only block of device memory. Tensors share a
// Storage through a shared_ptr; views are tensors with their own shape,
// strides and offset over the same Storage.
#pragma once

#include <functional>
#include <memory>

#include "lgh/core/backend.hpp"

namespace lgh {

class Storage {
 public:
  // `bytes` from the device's backend, ordered on its current stream.
  Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    data_ = bytes ? backend(device).allocate(bytes, device) : nullptr;
  }

  // Wraps memory owned elsewhere; `release` is called once when the last
  // tensor using it goes away (may be empty for memory that outlives us).
  Storage(void* data, size_t bytes, Device device, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), device_(device), release_(std::move(release)), external_(true) {}

  ~Storage() { free_memory(); }

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // Moves the bytes to `device`, in place: every tensor over this storage
  // (views, flat parameter buffers and the parameters that point into them)
  // now lives there. Memory wrapped from elsewhere is released and replaced
  // by memory the backend owns.
  void move_to(Device device) {
    if (device == device_) return;
    void* moved = bytes_ ? backend(device).allocate(bytes_, device) : nullptr;
    try {
      copy_bytes(moved, device, data_, device_, bytes_);
    } catch (...) {
      if (moved) backend(device).deallocate(moved, bytes_, device);
      throw;
    }
    free_memory();
    data_ = moved;
    device_ = device;
    release_ = {};
    external_ = false;
  }

 private:
  void free_memory() {
    if (external_) {
      if (release_) release_(data_);
    } else if (data_) {
      backend(device_).deallocate(data_, bytes_, device_);
    }
  }

  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;
  bool external_ = false;
};

}  // namespace lgh
