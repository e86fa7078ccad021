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
  Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    data_ = bytes ? backend(device).allocate(bytes) : nullptr;
  }

  // Wraps memory owned elsewhere; `release` is called once when the last
  // tensor using it goes away (may be empty for memory that outlives us).
  Storage(void* data, size_t bytes, Device device, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), device_(device), release_(std::move(release)), external_(true) {}

  ~Storage() {
    if (external_) {
      if (release_) release_(data_);
    } else if (data_) {
      backend(device_).deallocate(data_, bytes_);
    }
  }

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;
  bool external_ = false;
};

}  // namespace lgh
