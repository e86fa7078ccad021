// The execution model on the CPU: a fake "cuda" device whose memory is host
// memory (through the caching allocator) stands in for a GPU, so that the
// dispatch registry, the stream and device bookkeeping, the data-level tensor
// methods, the autograd engine's accumulation, Module::to and Adam are
// exercised on a non-CPU device without one. Its own executable: it installs
// a backend for DeviceType::CUDA for the whole process.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <thread>
#include <vector>

#include "lgh/core/dispatch.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/nn/module.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/elementwise.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/optim/adam.hpp"

using namespace lgh;

namespace {

struct HostRaw : RawAllocator {
  int allocs = 0;
  void* raw_allocate(size_t bytes, int) override {
    ++allocs;
    return std::malloc(bytes);
  }
  void raw_free(void* p, int) override { std::free(p); }
};

// What the fake device saw: calls per kind and the stream of the last one.
struct Trace {
  std::map<std::string, int> calls;
  void* last_stream = reinterpret_cast<void*>(-1);
  std::vector<int> device_switches;  // indices passed to exchange_device
  int current_index = 0;
};
Trace& trace() {
  static Trace t;
  return t;
}

// A "cuda" backend over host memory, recording what it is asked to do.
class FakeDeviceBackend final : public DeviceBackend {
 public:
  void* allocate(size_t bytes, Device d) override {
    note("allocate", d);
    return cache_.allocate(bytes, d.index, current_stream(d).handle());
  }
  void deallocate(void* p, size_t, Device) override { cache_.deallocate(p); }
  MemoryStats memory_stats(Device d) const override { return cache_.stats(d.index); }
  void reset_peak_memory(Device d) override { cache_.reset_peak(d.index); }
  void set_cache_limit(size_t bytes) override { cache_.set_cache_limit(bytes); }
  void empty_cache() override { cache_.empty_cache(); }
  void copy_from_host(void* dst, Device d, const void* src, size_t n) override {
    note("copy_from_host", d);
    std::memcpy(dst, src, n);
  }
  void copy_to_host(void* dst, const void* src, Device d, size_t n) override {
    note("copy_to_host", d);
    std::memcpy(dst, src, n);
  }
  void copy_device(void* dst, Device d, const void* src, Device, size_t n) override {
    note("copy_device", d);
    std::memcpy(dst, src, n);
  }
  void memset(void* dst, int v, size_t n, Device d) override {
    note("memset", d);
    std::memset(dst, v, n);
  }
  int exchange_device(int index) override {
    trace().device_switches.push_back(index);
    const int previous = trace().current_index;
    trace().current_index = index;
    return previous;
  }
  Stream create_stream(Device d) override { return Stream(d, new int(0)); }
  void destroy_stream(Stream s) override { delete static_cast<int*>(s.handle()); }
  void synchronize(Stream) override { ++trace().calls["synchronize"]; }

 private:
  static void note(const char* what, Device d) {
    ++trace().calls[what];
    trace().last_stream = current_stream(d).handle();
  }
  HostRaw raw_;
  CachingAllocator cache_{raw_, "cuda"};
};

FakeDeviceBackend& fake_backend() {
  static FakeDeviceBackend* b = new FakeDeviceBackend();
  return *b;
}

// Fake entries: the CPU loops (the memory is host memory), counted.
template <typename Op, typename T>
int& entry_calls() {
  static int n = 0;
  return n;
}
template <typename Op, typename T, typename... Args>
void counted(Args... args) {
  ++entry_calls<Op, T>();
  Op::template cpu_entry<T>(args...);
}

template <typename T>
void register_data_entries() {
  using namespace tensor_kernels;
  dispatch::set_entry<Fill, T>(DeviceType::CUDA, &counted<Fill, T, const Tensor<T>&, T>);
  dispatch::set_entry<Copy, T>(DeviceType::CUDA, &counted<Copy, T, const Tensor<T>&, const Tensor<T>&>);
  dispatch::set_entry<Axpy, T>(DeviceType::CUDA, &counted<Axpy, T, const Tensor<T>&, const Tensor<T>&, T>);
  dispatch::set_entry<Scale, T>(DeviceType::CUDA, &counted<Scale, T, const Tensor<T>&, T>);
  dispatch::set_entry<Sum, T>(DeviceType::CUDA,
                              &counted<Sum, T, const Tensor<T>&, const Tensor<T>&, const Tensor<T>&>);
  dispatch::set_entry<Cast<double>, T>(DeviceType::CUDA, &counted<Cast<double>, T, const Tensor<double>&, const Tensor<T>&>);
  dispatch::set_entry<Cast<float>, T>(DeviceType::CUDA, &counted<Cast<float>, T, const Tensor<float>&, const Tensor<T>&>);
}

// Installs the fake device once for the whole executable.
struct FakeDevice {
  FakeDevice() {
    register_backend(DeviceType::CUDA, &fake_backend());
    register_data_entries<float>();
    register_data_entries<double>();
    register_data_entries<int64_t>();
  }
};
void install_fake_device() { static FakeDevice once; }

const Device kDev = Device::cuda(0);

TensorF arange(const Shape& s) {
  TensorF t = TensorF::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(i) * 0.5f - 3.f;
  return t;
}

}  // namespace

TEST_CASE("dispatch: an op with no entry for the device names the op, device and dtype", "[core][dispatch]") {
  install_fake_device();
  const TensorF x = arange({2, 3}).to(kDev);
  CHECK_THROWS_WITH(ops::relu(x), "relu_forward: no entry for device cuda:0 (dtype float32); the linked backend "
                                  "does not implement this op for this dtype");
  const TensorD xd = x.cast<double>();
  CHECK_THROWS_WITH(ops::mul_scalar(xd, 2.0), Catch::StartsWith("affine: no entry for device cuda:0 (dtype float64)"));
  CHECK_THROWS_WITH(ops::sum(x), Catch::StartsWith("reduce_all_forward: no entry for device cuda:0"));
  const TensorF w = TensorF::zeros({4, 2, 1, 1}).to(kDev);
  CHECK_THROWS_WITH(ops::conv2d(x.view({1, 2, 3, 1}), w),
                    Catch::StartsWith("conv2d_forward: no entry for device cuda:0 (dtype float32)"));
  // Without the device's backend the message says what to link.
  register_backend(DeviceType::CUDA, nullptr);
  CHECK_THROWS_WITH((dispatch::entry<ops::entries::ReluForward, float>(kDev)),
                    "relu_forward: no entry for device cuda:0 (dtype float32); link lgh::cuda");
  register_backend(DeviceType::CUDA, &fake_backend());
}

TEST_CASE("dispatch: the CPU entry is built in, device entries are registered", "[core][dispatch]") {
  install_fake_device();
  using ops::entries::ReluForward;
  CHECK(dispatch::supports<ReluForward, float>(Device::cpu()));
  CHECK((dispatch::find_entry<ReluForward, float>(DeviceType::CPU) == &ops::cpu::relu_forward<float>));
  CHECK_FALSE(dispatch::supports<ReluForward, float>(kDev));
  CHECK_THROWS_WITH((dispatch::set_entry<ReluForward, float>(DeviceType::CPU, &ops::cpu::relu_forward<float>)),
                    Catch::Contains("CPU entries are built into the entry descriptor"));
  int& calls = entry_calls<ReluForward, float>();
  calls = 0;
  dispatch::set_entry<ReluForward, float>(DeviceType::CUDA, &counted<ReluForward, float, const TensorF&, const TensorF&>);
  CHECK(dispatch::supports<ReluForward, float>(kDev));
  CHECK(dispatch::supports<ReluForward, float>(Device::cuda(3)));  // one table per device type
  CHECK_FALSE(dispatch::supports<ReluForward, double>(kDev));      // ... and per dtype
  const TensorF x = arange({3, 4});
  const TensorF y = ops::relu(x.to(kDev));
  CHECK(calls == 1);
  CHECK(y.device() == kDev);
  CHECK(y.to_vector() == ops::relu(x).to_vector());
  CHECK(calls == 1);  // the CPU call above did not go through the table
  dispatch::set_entry<ReluForward, float>(DeviceType::CUDA, nullptr);
  CHECK_THROWS_WITH(ops::relu(x.to(kDev)), Catch::StartsWith("relu_forward: no entry"));
}

TEST_CASE("dispatch: a device entry runs with its device current", "[core][dispatch]") {
  install_fake_device();
  using ops::entries::Affine;
  static int seen_index = -1;
  dispatch::set_entry<Affine, float>(DeviceType::CUDA, [](const TensorF& x, float a, float b, const TensorF& y) {
    seen_index = trace().current_index;
    ops::cpu::affine(x, a, b, y);
  });
  trace().current_index = 0;
  trace().device_switches.clear();
  const TensorF x = arange({5}).to(Device::cuda(2));
  const TensorF y = ops::mul_scalar(x, 2.f);
  CHECK(seen_index == 2);
  CHECK(trace().current_index == 0);  // restored
  CHECK(trace().device_switches == std::vector<int>{2, 0});
  CHECK(y.device() == Device::cuda(2));
  CHECK(y.to_vector() == ops::mul_scalar(arange({5}), 2.f).to_vector());
  dispatch::set_entry<Affine, float>(DeviceType::CUDA, nullptr);
}

TEST_CASE("dispatch: an op's tensors must share one device", "[core][dispatch]") {
  install_fake_device();
  const TensorF a = arange({2, 2}), b = arange({2, 2}).to(kDev);
  CHECK_THROWS_WITH(ops::add(a, b), "add: 'b' is on cuda:0 but 'a' is on cpu (an op's tensors must be on one "
                                    "device; move them with to())");
  const TensorF w = TensorF::zeros({1, 2, 1, 1});
  CHECK_THROWS_WITH(ops::conv2d(b.view({1, 2, 2, 1}), w, TensorF()),
                    Catch::StartsWith("conv2d: 'weight' is on cpu but 'input' is on cuda:0"));
  CHECK_THROWS_WITH(ops::concat(std::vector<TensorF>{a, b}, 0),
                    Catch::StartsWith("concat: 'xs[1]' is on cuda:0 but the op runs on cpu"));
  TensorF c = arange({2, 2});
  CHECK_THROWS_WITH(c.add_(b), "add_(): tensor on cuda:0 added to a tensor on cpu");
}

TEST_CASE("dispatch: data-level methods run the device's entries", "[core][dispatch][tensor]") {
  install_fake_device();
  const TensorF host = arange({3, 4});
  entry_calls<tensor_kernels::Fill, float>() = 0;
  entry_calls<tensor_kernels::Copy, float>() = 0;
  entry_calls<tensor_kernels::Axpy, float>() = 0;
  entry_calls<tensor_kernels::Scale, float>() = 0;
  const int h2d = trace().calls["copy_from_host"], d2h = trace().calls["copy_to_host"];

  TensorF d = host.to(kDev);  // contiguous: bytes through the backend
  CHECK(d.device() == kDev);
  CHECK(trace().calls["copy_from_host"] == h2d + 1);
  CHECK(d.to_vector() == host.to_vector());
  CHECK(trace().calls["copy_to_host"] == d2h + 1);

  d.fill_(2.5f);
  CHECK(entry_calls<tensor_kernels::Fill, float>() == 1);
  d.copy_(host.to(kDev));
  CHECK(entry_calls<tensor_kernels::Copy, float>() == 1);
  d.add_(host.to(kDev), 2.f);
  CHECK(entry_calls<tensor_kernels::Axpy, float>() == 1);
  d.mul_(-1.f);
  CHECK(entry_calls<tensor_kernels::Scale, float>() == 1);
  TensorF expect = host.clone();
  expect.add_(host, 2.f);
  expect.mul_(-1.f);
  CHECK(d.to_vector() == expect.to_vector());
  CHECK(entry_calls<tensor_kernels::Axpy, float>() == 1);  // the CPU add_ did not use the table

  CHECK(d.cast<double>().device() == kDev);
  CHECK(d.cast<double>().to_vector() == expect.cast<double>().to_vector());
  CHECK(d.narrow(1, 1, 2).contiguous().device() == kDev);
  CHECK(d.narrow(1, 1, 2).contiguous().to_vector() == expect.narrow(1, 1, 2).contiguous().to_vector());
  const TensorF one = d.narrow(0, 2, 3).narrow(1, 3, 4);
  CHECK(one.item() == expect.at({2, 3}));

  d.zero_();
  CHECK(d.to_vector() == std::vector<float>(12, 0.f));
  {
    debug::PoisonScope poison;  // new device tensors are poisoned through the device's Fill
    const int fills = entry_calls<tensor_kernels::Fill, float>();
    const TensorF p = TensorF::empty({4}, kDev);
    CHECK(entry_calls<tensor_kernels::Fill, float>() == fills + 1);
    for (float v : p.to_vector()) CHECK(std::isnan(v));
    const Tensor<int64_t> q = Tensor<int64_t>::empty({2}, kDev);
    CHECK(q.to_vector() == std::vector<int64_t>(2, 0x5A5A5A5A5A5A5A5A));
  }
}

TEST_CASE("dispatch: strided copies between and on devices", "[core][dispatch][tensor]") {
  install_fake_device();
  const TensorF host = arange({4, 5});
  const TensorF host_t = host.permute({1, 0});  // strided [5, 4]
  const std::vector<float> expect = host_t.contiguous().to_vector();

  // strided CPU source -> device
  const TensorF d1 = host_t.to(kDev);
  CHECK(d1.is_contiguous());
  CHECK(d1.to_vector() == expect);
  // strided device source -> CPU
  const TensorF d_full = host.to(kDev);
  const TensorF back = d_full.permute({1, 0}).to(Device::cpu());
  CHECK(back.to_vector() == expect);
  // strided destination on the device <- CPU (staged, then the device's Copy)
  TensorF d2 = TensorF::zeros({4, 5}, kDev);
  const int copies = entry_calls<tensor_kernels::Copy, float>();
  d2.permute({1, 0}).copy_(host_t.contiguous());
  CHECK(entry_calls<tensor_kernels::Copy, float>() > copies);
  CHECK(d2.to_vector() == host.to_vector());
  // strided destination on the CPU <- device
  TensorF h2 = TensorF::zeros({4, 5});
  h2.permute({1, 0}).copy_(d1);
  CHECK(h2.to_vector() == host.to_vector());
  // device to another device of the same type: the Copy entry
  const TensorF d3 = d_full.narrow(1, 1, 4).to(Device::cuda(1));
  CHECK(d3.device() == Device::cuda(1));
  CHECK(d3.to_vector() == host.narrow(1, 1, 4).contiguous().to_vector());
}

TEST_CASE("streams: the current stream is per thread and device, set by StreamGuard", "[core][dispatch][stream]") {
  install_fake_device();
  CHECK(current_stream(kDev).is_default());
  CHECK(current_stream(Device::cpu()) == Stream());
  const Stream s1 = fake_backend().create_stream(kDev);
  const Stream s2 = fake_backend().create_stream(kDev);
  {
    StreamGuard on(s1);
    CHECK(current_stream(kDev) == s1);
    CHECK(current_stream(Device::cuda(1)).is_default());  // other devices keep theirs
    TensorF t = TensorF::empty({16}, kDev);
    CHECK(trace().last_stream == s1.handle());  // allocated for s1
    t.zero_();
    CHECK(trace().last_stream == s1.handle());  // and filled on it
    {
      StreamGuard inner(s2);
      (void)arange({3}).to(kDev);
      CHECK(trace().last_stream == s2.handle());
      std::thread other([] { CHECK(current_stream(kDev).is_default()); });  // per thread
      other.join();
    }
    CHECK(current_stream(kDev) == s1);
  }
  CHECK(current_stream(kDev).is_default());
  CHECK_THROWS_WITH(set_current_stream(Stream(Device::cpu(), reinterpret_cast<void*>(1))),
                    Catch::Contains("CPU has no streams"));
  CHECK_THROWS_WITH(current_stream(Device::cuda(70)), Catch::Contains("index out of range"));
  // Blocks of one stream are not handed to another.
  void* p;
  {
    StreamGuard on(s1);
    TensorF t = TensorF::empty({1000}, kDev);
    p = t.data();
  }
  {
    StreamGuard on(s2);
    TensorF u = TensorF::empty({1000}, kDev);
    CHECK(u.data() != p);
  }
  {
    StreamGuard on(s1);
    TensorF v = TensorF::empty({1000}, kDev);
    CHECK(v.data() == p);
  }
  fake_backend().destroy_stream(s1);
  fake_backend().destroy_stream(s2);
}

TEST_CASE("dispatch: the engine accumulates gradients with the device's entries", "[core][dispatch][autograd]") {
  install_fake_device();
  using namespace ops::entries;
  dispatch::set_entry<ReluForward, float>(DeviceType::CUDA, &counted<ReluForward, float, const TensorF&, const TensorF&>);
  dispatch::set_entry<ReluBackward, float>(
      DeviceType::CUDA, &counted<ReluBackward, float, const TensorF&, const TensorF&, const TensorF&>);
  entry_calls<tensor_kernels::Sum, float>() = 0;
  entry_calls<tensor_kernels::Axpy, float>() = 0;

  auto run = [](Device device) {
    TensorF x = arange({2, 3}).to(device);
    x.set_requires_grad();
    const TensorF y = ops::relu(x);
    const TensorF a = ops::relu(y), b = ops::relu(y);  // y's gradient is a sum of two
    autograd::backward<float>({a, b}, {TensorF::ones({2, 3}, device), TensorF::ones({2, 3}, device)});
    const TensorF c = ops::relu(x);  // a second backward adds into x's gradient
    c.backward(TensorF::ones({2, 3}, device));
    CHECK(x.grad().device() == device);
    return x.grad().to_vector();
  };
  const std::vector<float> on_device = run(kDev);
  CHECK(entry_calls<tensor_kernels::Sum, float>() == 1);   // the two paths into y
  CHECK(entry_calls<tensor_kernels::Axpy, float>() == 1);  // the second backward into x.grad
  CHECK(on_device == run(Device::cpu()));
  dispatch::set_entry<ReluForward, float>(DeviceType::CUDA, nullptr);
  dispatch::set_entry<ReluBackward, float>(DeviceType::CUDA, nullptr);

  TensorF x = arange({2}).to(kDev);
  x.set_requires_grad();
  CHECK_THROWS_WITH(x.backward(TensorF::ones({2})), "backward(): gradient on cpu for a tensor on cuda:0");

  // A node whose backward returns its gradient on the wrong device.
  struct WrongDevice : autograd::Node<float> {
    std::vector<TensorF> backward(const std::vector<TensorF>& g) override { return {g[0].to(Device::cpu())}; }
    const char* name() const override { return "WrongDevice"; }
  };
  TensorF y = TensorF::zeros({2}, kDev);
  autograd::record<float>(std::make_shared<WrongDevice>(), {&x}, {&y});
  CHECK_THROWS_WITH(y.backward(TensorF::ones({2}, kDev)),
                    "backward(): WrongDevice returned a gradient on cpu for input 0 on cuda:0");
}

namespace {
struct Tiny : nn::Module<float> {
  TensorF w, b, running;
  Tiny() {
    w = register_parameter("w", arange({2, 3}));
    b = register_parameter("b", TensorF::full({3}, 0.25f));
    running = register_buffer("running", TensorF::ones({3}));
  }
};
}  // namespace

TEST_CASE("Module::to moves parameters, gradients and buffers, flat buffers included", "[core][dispatch][nn]") {
  install_fake_device();
  Tiny m;
  const nn::FlatParameters<float> flat = nn::flatten(m);
  const TensorF w_handle = m.w;  // another handle on the same tensor
  const std::vector<float> w0 = m.w.to_vector();
  {
    autograd::NoGradGuard no_grad;
    m.w.grad().fill_(1.f);
  }
  m.to(kDev);
  CHECK(m.device() == kDev);
  CHECK(m.w.device() == kDev);
  CHECK(w_handle.device() == kDev);
  CHECK(m.running.device() == kDev);
  CHECK(m.w.grad().device() == kDev);
  CHECK(flat.values.device() == kDev);  // the flat buffers moved as a whole ...
  CHECK(flat.grads.device() == kDev);
  CHECK(m.w.storage() == flat.values.storage());  // ... and the parameters are still views of them
  CHECK(m.b.storage() == flat.values.storage());
  CHECK(m.w.grad().storage() == flat.grads.storage());
  CHECK(m.w.to_vector() == w0);
  CHECK(m.w.grad().to_vector() == std::vector<float>(6, 1.f));
  CHECK(m.running.to_vector() == std::vector<float>(3, 1.f));

  // An optimiser made before the move has its state on the CPU: it says so.
  m.to(Device::cpu());
  optim::Adam<float> adam({optim::ParamGroup<float>{"all", m.trainable_parameters(), 0.1}});
  m.to(kDev);
  CHECK_THROWS_WITH(adam.step(), Catch::Contains("its state on cpu") && Catch::Contains("Adam::to"));
  adam.to(kDev);
  CHECK_THROWS_WITH(adam.step(), Catch::StartsWith("adam_update: no entry for device cuda:0 (dtype float32)"));
  dispatch::set_entry<optim::entries::AdamUpdate, float>(
      DeviceType::CUDA, [](const std::vector<optim::AdamRun<float>>& runs,
                           const std::vector<optim::AdamScalars<float>>& s, Device d) {
        CHECK(runs.size() == 1);  // flat parameters, gradients and state: one run
        optim::cpu::adam_update_runs(runs, s, d);
      });
  adam.step();
  const std::vector<float> on_device = m.w.to_vector();

  Tiny ref;
  nn::flatten(ref);
  {
    autograd::NoGradGuard no_grad;
    ref.w.grad().fill_(1.f);
  }
  optim::Adam<float> ref_adam({optim::ParamGroup<float>{"all", ref.trainable_parameters(), 0.1}});
  ref_adam.step();
  CHECK(on_device == ref.w.to_vector());
  dispatch::set_entry<optim::entries::AdamUpdate, float>(DeviceType::CUDA, nullptr);
}
