// The dispatch registry: how a header-only op reaches a kernel compiled
// elsewhere (DESIGN §4, "Execution model").
//
// Every kernel-level operation (an op's forward or backward, a data-level
// tensor method) is described by an *entry descriptor*, a struct with
//
//   struct ReluForward {
//     static constexpr const char* name = "relu_forward";        // for errors
//     template <typename T>
//     using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& y); // the signature every device implements
//     template <typename T>
//     static constexpr Fn<T> cpu_entry = &cpu::relu_forward<T>;   // the built-in CPU entry
//   };
//
// and the registry maps (descriptor, element type, device type) to a
// function of that signature:
//
//   * The CPU entries are built in: `cpu_entry` of the descriptor, called
//     directly (no lookup, no indirection), so a CPU-only program links
//     nothing and registers nothing, and CPU performance is what the loops
//     give.
//   * Every other device type has its own table: one slot per (descriptor,
//     element type), an inline variable (one per program, whatever the
//     number of translation units), constant-initialised to empty and filled
//     by set_entry(), which the lgh::cuda target calls at program start for
//     everything it implements (kernels/lgh_cuda.cu). Registration reads
//     only the descriptor's `Fn`, so a CUDA translation unit that registers
//     entries never instantiates the CPU loops.
//   * call<Op, T>(device, args...) runs the entry of `device`'s type, with
//     the device made current (DeviceGuard). A device with no entry throws
//     an lgh::Error naming the op, the device and the dtype:
//       "conv2d_forward: no entry for device cuda:0 (dtype float32); link lgh::cuda"
//   * supports<Op, T>(device) answers without throwing (ggml's supports_op).
//
// Entries never allocate their outputs: the op (in its header) checks the
// arguments, allocates on the inputs' device and then calls the entry, so
// the allocation, the shape checks and the autograd recording are written
// once for every device. An entry runs its work on the current stream of the
// device (core/stream.hpp; lgh::cuda::current_cuda_stream in kernels/).
#pragma once

#include <cstdint>
#include <utility>

#include "lgh/core/backend.hpp"
#include "lgh/core/device.hpp"
#include "lgh/core/dtype.hpp"
#include "lgh/core/error.hpp"

namespace lgh {
namespace dispatch {

// The dtype of T in error messages ("float32").
template <typename T>
const char* dtype_label() {
  switch (dtype_of<T>::value) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::U8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "?";
}

template <typename Op, typename T>
using EntryFn = typename Op::template Fn<T>;

namespace detail {
// The registered entries of Op for element type T: slot t is device type t's.
// The CPU slot stays empty (its entry is built into the descriptor).
template <typename Op, typename T>
inline EntryFn<Op, T> registered[kNumDeviceTypes] = {};
}  // namespace detail

// Installs `fn` as the entry of Op for T on every device of type `type`
// (nullptr removes it). Call it before the first use of Op on that device
// type, e.g. at static initialisation (kernels/lgh_cuda.cu).
template <typename Op, typename T>
void set_entry(DeviceType type, EntryFn<Op, T> fn) {
  LGH_CHECK(type != DeviceType::CPU,
            Op::name << ": CPU entries are built into the entry descriptor and cannot be replaced");
  detail::registered<Op, T>[static_cast<int>(type)] = fn;
}

// The entry of Op for T on device type `type`, or nullptr when there is none.
template <typename Op, typename T>
EntryFn<Op, T> find_entry(DeviceType type) {
  if (type == DeviceType::CPU) return Op::template cpu_entry<T>;
  return detail::registered<Op, T>[static_cast<int>(type)];
}

template <typename Op, typename T>
bool supports(Device device) {
  return find_entry<Op, T>(device.type) != nullptr;
}

// The entry for `device`; throws when there is none.
template <typename Op, typename T>
EntryFn<Op, T> entry(Device device) {
  const EntryFn<Op, T> fn = find_entry<Op, T>(device.type);
  if (LGH_UNLIKELY(fn == nullptr)) {
    const bool linked = backend_available(device.type);
    LGH_FAIL(Op::name << ": no entry for device " << device.str() << " (dtype " << dtype_label<T>() << ")"
                      << (linked ? "; the linked backend does not implement this op for this dtype"
                                 : "; link lgh::cuda"));
  }
  return fn;
}

// Runs Op's entry for `device` on `args`. The CPU entry is a direct call; a
// device entry runs with its device current.
template <typename Op, typename T, typename... Args>
void call(Device device, Args&&... args) {
  if (LGH_LIKELY(device.is_cpu())) {
    Op::template cpu_entry<T>(std::forward<Args>(args)...);
    return;
  }
  const EntryFn<Op, T> fn = entry<Op, T>(device);
  DeviceGuard guard(device);
  fn(std::forward<Args>(args)...);
}

}  // namespace dispatch
}  // namespace lgh
