// Streams: the ordered queue on a device that kernels and copies run on.
//
// A Stream is an opaque handle (a cudaStream_t for CUDA; nullptr is the
// device's default stream), so that core never includes CUDA headers. Each
// thread has a current stream per device, the default stream until a
// StreamGuard sets another; every device entry of the dispatch registry,
// every copy and every allocation of the caching allocator runs on the
// current stream of its device. The CPU has one (null) stream: work on it
// runs in the calling thread, in program order.
//
// Streams are created and destroyed by the device's backend
// (DeviceBackend::create_stream in core/backend.hpp); a Stream does not own
// the queue it names.
#pragma once

#include <array>

#include "lgh/core/device.hpp"
#include "lgh/core/error.hpp"

namespace lgh {

class Stream {
 public:
  constexpr Stream() = default;  // the CPU's stream
  constexpr Stream(Device device, void* handle) : device_(device), handle_(handle) {}

  // The default stream of `device` (for CUDA, the legacy default stream).
  static constexpr Stream default_for(Device device) { return Stream(device, nullptr); }

  constexpr Device device() const { return device_; }
  // The backend's handle: a cudaStream_t for CUDA; nullptr for the default stream.
  constexpr void* handle() const { return handle_; }
  constexpr bool is_default() const { return handle_ == nullptr; }

  friend constexpr bool operator==(Stream a, Stream b) { return a.device_ == b.device_ && a.handle_ == b.handle_; }
  friend constexpr bool operator!=(Stream a, Stream b) { return !(a == b); }

 private:
  Device device_ = Device::cpu();
  void* handle_ = nullptr;
};

// Devices of one type a program may address (the CUDA ordinal must be below).
constexpr int kMaxDevicesPerType = 64;

namespace detail {
inline void*& current_stream_slot(Device d) {
  // One slot per device, per thread; nullptr (the default stream) until set.
  thread_local std::array<std::array<void*, kMaxDevicesPerType>, kNumDeviceTypes> slots{};
  LGH_CHECK(d.index >= 0 && d.index < kMaxDevicesPerType,
            "device " << d.str() << ": index out of range (at most " << kMaxDevicesPerType << " devices per type)");
  return slots[static_cast<size_t>(d.type)][static_cast<size_t>(d.index)];
}
}  // namespace detail

// The stream that work on `device` issued by this thread runs on.
inline Stream current_stream(Device device) {
  if (device.is_cpu()) return Stream();
  return Stream(device, detail::current_stream_slot(device));
}

// Makes `s` the current stream of its device for this thread (the CPU's
// stream cannot be changed).
inline void set_current_stream(Stream s) {
  if (s.device().is_cpu()) {
    LGH_CHECK(s.is_default(), "set_current_stream: the CPU has no streams other than its default one");
    return;
  }
  detail::current_stream_slot(s.device()) = s.handle();
}

// Sets the current stream of s's device for the guard's lifetime (this
// thread only), restoring the previous one on exit:
//
//   Stream side = backend(Device::cuda()).create_stream(Device::cuda());
//   { StreamGuard on(side); y = ops::conv2d(x, w); }   // conv2d's kernels run on `side`
class StreamGuard {
 public:
  explicit StreamGuard(Stream s) : previous_(current_stream(s.device())) { set_current_stream(s); }
  ~StreamGuard() { set_current_stream(previous_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

}  // namespace lgh
