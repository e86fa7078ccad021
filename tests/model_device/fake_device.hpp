// A fake non-CPU device for tests that run without a GPU: a backend for
// DeviceType::CUDA whose memory is host memory (through the caching
// allocator, in 64-byte aligned blocks as the CPU backend's) and whose op
// entries are the CPU loops. The results are the CPU's to the bit, and every
// copy between the host and the "device" is counted (counts()), so a test can
// see where data moves. Install it once per process (install_fake_device());
// a test executable that uses it must not also link the CUDA backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lgh/core/dispatch.hpp"
#include "lgh/nn/model.hpp"
#include "lgh/nn/pose3d.hpp"
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/elementwise.hpp"
#include "lgh/ops/group_fusion.hpp"
#include "lgh/ops/group_select.hpp"
#include "lgh/ops/gumbel_softmax.hpp"
#include "lgh/ops/inference.hpp"
#include "lgh/ops/linear.hpp"
#include "lgh/ops/loss.hpp"
#include "lgh/ops/pooling.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/soft_argmax_depth.hpp"
#include "lgh/ops/softmax.hpp"
#include "lgh/optim/adam.hpp"

namespace lgh_fake_device {

using namespace lgh;

inline const Device kDev = Device::cuda(0);

struct Counts {
  std::map<std::string, int> calls;
  int raw_allocations = 0;
};
inline Counts& counts() {
  static Counts c;
  return c;
}

// Blocks aligned as the CPU backend's (64 bytes), so that the CPU loops
// take the same vectorised paths, and sum in the same order, on both sides.
struct HostRaw : RawAllocator {
  void* raw_allocate(size_t bytes, int) override {
    ++counts().raw_allocations;
    return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  }
  void raw_free(void* p, int) override { std::free(p); }
};

class FakeDeviceBackend final : public DeviceBackend {
 public:
  void* allocate(size_t bytes, Device d) override { return cache_.allocate(bytes, d.index, current_stream(d).handle()); }
  void deallocate(void* p, size_t, Device) override { cache_.deallocate(p); }
  MemoryStats memory_stats(Device d) const override { return cache_.stats(d.index); }
  void reset_peak_memory(Device d) override { cache_.reset_peak(d.index); }
  void set_cache_limit(size_t bytes) override { cache_.set_cache_limit(bytes); }
  void empty_cache() override { cache_.empty_cache(); }
  void copy_from_host(void* dst, Device, const void* src, size_t n) override {
    ++counts().calls["copy_from_host"];
    std::memcpy(dst, src, n);
  }
  void copy_to_host(void* dst, const void* src, Device, size_t n) override {
    ++counts().calls["copy_to_host"];
    std::memcpy(dst, src, n);
  }
  void copy_device(void* dst, Device, const void* src, Device, size_t n) override { std::memcpy(dst, src, n); }
  void memset(void* dst, int v, size_t n, Device) override { std::memset(dst, v, n); }
  int exchange_device(int) override { return 0; }
  Stream create_stream(Device d) override { return Stream(d, new int(0)); }
  void destroy_stream(Stream s) override { delete static_cast<int*>(s.handle()); }
  void synchronize(Stream) override {}

 private:
  HostRaw raw_;
  CachingAllocator cache_{raw_, "cuda"};
};

// The device's entry of descriptor Op: its CPU loop (the memory is host memory).
template <typename Op, typename T, typename Fn>
struct CpuLoop;
template <typename Op, typename T, typename... A>
struct CpuLoop<Op, T, void (*)(A...)> {
  static void call(A... a) { Op::template cpu_entry<T>(std::forward<A>(a)...); }
};
template <typename T, typename... Ops>
void register_all() {
  (dispatch::set_entry<Ops, T>(DeviceType::CUDA, &CpuLoop<Ops, T, typename Ops::template Fn<T>>::call), ...);
}

template <typename T>
void register_float_entries() {
  using namespace ops::entries;
  using namespace tensor_kernels;
  register_all<T, Fill, Copy, Axpy, Scale, Sum, Cast<float>, Cast<double>>();
  register_all<T, BinaryForward, SumToShape, Affine, ReluForward, ReluBackward, Conv2dForward, Conv2dBackwardData,
               Conv2dBackwardWeight, ConvTranspose2dForward, ConvBiasBackward, BatchNorm2dForward, BatchNorm2dBackward,
               FoldBatchNorm, ChannelAffine, LinearForward, LinearBackward, Gemm, MaxPool2dForward, MaxPool2dBackward,
               UpsampleNearest2xForward, UpsampleNearest2xBackward, ReduceAllForward, ReduceForward, ReduceBackward,
               ConcatForward, ConcatBackward, SoftmaxForward, SoftmaxBackward, RegressionLossForward,
               RegressionLossBackward, GumbelSoftmaxForward, GumbelSoftmaxBackward, SelectorOneHot,
               GroupSelectForward, GroupSelectBackward, GroupFusionForward, GroupFusionBackward,
               SoftArgmaxDepthForward, SoftArgmaxDepthBackward, BackprojectForward, BackprojectBackward>();
  register_all<T, optim::entries::AdamUpdate, nn::entries::InverseScale>();
}

struct FakeDevice {
  FakeDevice() {
    static FakeDeviceBackend* backend = new FakeDeviceBackend();
    register_backend(DeviceType::CUDA, backend);
    register_float_entries<float>();
    register_float_entries<double>();
    using namespace tensor_kernels;
    register_all<int64_t, Fill, Copy, Axpy, Scale, Sum, Cast<float>, Cast<double>>();
  }
};
inline void install_fake_device() { static FakeDevice once; }

// The tiny model configuration both device tests run (64 px, F 8, K 3).
inline nn::ModelConfig tiny() {
  nn::ModelConfig c;
  c.input_size = 64;
  c.features = 8;
  c.p0 = 4;
  c.p1 = 4;
  c.num_groups = 3;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  return c;
}

}  // namespace lgh_fake_device
