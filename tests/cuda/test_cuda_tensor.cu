// The execution model on a GPU: the data-level tensor methods against their
// CPU twins, strided and cross-device copies, streams, the caching allocator
// in a steady training-like loop, gradient accumulation on the device, and
// Module::to. Cases that need a device skip without one; the [cuda-host]
// case checks what linking lgh::cuda registers and runs anywhere.
#include <catch2/catch.hpp>

#include "cuda_test_utils.cuh"

#include <cmath>
#include <vector>

#include "backend.cuh"
#include "tensor_ops.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/nn/module.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/elementwise.hpp"

using namespace lgh;

namespace {

const Device kGpu = Device::cuda(0);

TensorF random_tensor(const Shape& s, uint64_t seed) {
  PhiloxEngine rng(seed);
  return TensorF::uniform(s, -2.0, 2.0, rng);
}

void require_equal(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(got[i] == want[i]);
  }
}

}  // namespace

TEST_CASE("linking lgh::cuda registers the data-level entries and the ported ops", "[cuda-host]") {
  using namespace tensor_kernels;
  CHECK(dispatch::supports<Fill, float>(kGpu));
  CHECK(dispatch::supports<Copy, double>(kGpu));
  CHECK(dispatch::supports<Axpy, int64_t>(kGpu));
  CHECK(dispatch::supports<Scale, float>(kGpu));
  CHECK(dispatch::supports<Sum, float>(kGpu));
  CHECK(dispatch::supports<Cast<double>, float>(kGpu));
  CHECK(dispatch::supports<Cast<float>, int64_t>(kGpu));
  CHECK(dispatch::supports<ops::entries::ReluForward, float>(kGpu));
  CHECK(dispatch::supports<ops::entries::ReluBackward, double>(kGpu));
  CHECK(dispatch::supports<ops::entries::Affine, float>(kGpu));
}

TEST_CASE("strided layouts are coalesced on the host", "[cuda-host]") {
  // contiguous: one dimension, stride 1
  const Shape s{2, 3, 4};
  const Shape c = s.contiguous_strides();
  const Shape* const one[1] = {&c};
  auto L = cuda::make_layout<1>(s, one);
  CHECK(L.ndim == 1);
  CHECK(L.shape[0] == 24);
  CHECK(L.strides[0][0] == 1);
  // a transposed source against a contiguous destination: nothing merges
  const Shape t{4, 3};
  const Shape tc = t.contiguous_strides(), tt{1, 4};
  const Shape* const two[2] = {&tc, &tt};
  auto T2 = cuda::make_layout<2>(t, two);
  CHECK(T2.ndim == 2);
  CHECK(T2.strides[1][0] == 1);
  CHECK(T2.strides[1][1] == 4);
  // extent-1 dimensions vanish; a broadcast (stride 0) operand merges with itself
  const Shape b{5, 1, 6};
  const Shape bc = b.contiguous_strides(), bz{0, 0, 0};
  const Shape* const with_zero[2] = {&bc, &bz};
  auto B = cuda::make_layout<2>(b, with_zero);
  CHECK(B.ndim == 1);
  CHECK(B.shape[0] == 30);
  CHECK(B.strides[1][0] == 0);
  // a narrowed view: rows of 2 out of 4 stay two dimensions
  const Shape n{3, 2};
  const Shape ns{4, 1}, nc = n.contiguous_strides();
  const Shape* const narrowed[2] = {&nc, &ns};
  auto N = cuda::make_layout<2>(n, narrowed);
  CHECK(N.ndim == 2);
  CHECK(N.shape[0] == 3);
  CHECK(N.shape[1] == 2);
  // 0-d
  const Shape scalar{};
  const Shape* const none[1] = {&scalar};
  CHECK(cuda::make_layout<1>(scalar, none).ndim == 0);
}

TEST_CASE("data-level methods on the GPU match the CPU", "[cuda][tensor]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const Shape shapes[] = {Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 17}, Shape{4, 1, 9, 6}};
  uint64_t seed = 1;
  for (const Shape& s : shapes) {
    INFO("shape " << s.str());
    const TensorF a = random_tensor(s, seed++), b = random_tensor(s, seed++);
    const TensorF ga = a.to(kGpu), gb = b.to(kGpu);
    require_equal(ga.to_vector(), a.to_vector());

    // add_ and mul_, outputs pre-filled differently on each side
    TensorF c = a.clone(), gc = TensorF::full(s, 9.f, kGpu);
    gc.copy_(ga);
    c.add_(b, 0.5f).mul_(-3.f);
    gc.add_(gb, 0.5f).mul_(-3.f);
    require_equal(gc.to_vector(), c.to_vector());

    // fill_ and zero_ of a strided view, casts
    if (s.ndim() >= 2) {
      const int last = s.ndim() - 1;
      std::vector<int> order;
      for (int d = last; d >= 0; --d) order.push_back(d);
      TensorF h = a.clone(), g = ga.clone();
      h.permute(order).narrow(0, 0, 1).fill_(4.25f);
      g.permute(order).narrow(0, 0, 1).fill_(4.25f);
      require_equal(g.to_vector(), h.to_vector());
      // strided copy on the device: a transposed view into a transposed view
      TensorF hs = TensorF::full(s, 1.f), gs = TensorF::full(s, -1.f, kGpu);
      hs.permute(order).copy_(b.permute(order));
      gs.permute(order).copy_(gb.permute(order));
      require_equal(gs.to_vector(), hs.to_vector());
      // contiguous() of a permuted view, and strided <-> host
      require_equal(ga.permute(order).contiguous().to_vector(), a.permute(order).contiguous().to_vector());
      TensorF back = TensorF::zeros(s);
      back.permute(order).copy_(ga.permute(order));
      require_equal(back.to_vector(), a.to_vector());
    }
    const TensorD d = a.cast<double>(), gd = ga.cast<double>();
    CHECK(gd.device() == kGpu);
    CHECK(gd.to_vector() == d.to_vector());
    CHECK(ga.narrow(0, 0, 1).contiguous().view({-1}).narrow(0, 0, 1).item() == a.to_vector()[0]);
  }
}

TEST_CASE("GPU copies between two devices", "[cuda][tensor]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  if (cuda::device_count() < 2) {
    WARN("one CUDA device: the copy between two devices is not exercised");
    return;
  }
  const TensorF a = random_tensor({6, 5}, 11);
  const TensorF on1 = a.to(kGpu).permute({1, 0}).to(Device::cuda(1));
  CHECK(on1.device() == Device::cuda(1));
  require_equal(on1.to_vector(), a.permute({1, 0}).contiguous().to_vector());
}

TEST_CASE("ReLU and affine entries on the GPU, with gradients accumulated on the device", "[cuda][autograd]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  auto run = [](Device device) {
    TensorF x = random_tensor({3, 33, 7}, 21).to(device);
    x.set_requires_grad();
    const TensorF y = ops::relu(x);
    const TensorF a = ops::mul_scalar(y, 2.f), b = ops::add_scalar(y, -1.f);  // two paths into y
    autograd::backward<float>({a, b}, {TensorF::full(a.shape(), 0.5f, device), TensorF::full(b.shape(), 3.f, device)});
    ops::neg(x).backward(TensorF::ones(x.shape(), device));  // adds into x.grad
    return std::make_pair(y.detach().to_vector(), x.grad().to_vector());
  };
  const auto gpu = run(kGpu), cpu = run(Device::cpu());
  require_equal(gpu.first, cpu.first);
  require_equal(gpu.second, cpu.second);
}

TEST_CASE("an op without a CUDA entry says so", "[cuda]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const TensorF x = TensorF::zeros({1, 2, 4, 4}, kGpu), w = TensorF::zeros({3, 2, 1, 1}, kGpu);
  CHECK_THROWS_WITH(ops::conv2d(x, w), "conv2d_forward: no entry for device cuda:0 (dtype float32); the linked "
                                       "backend does not implement this op for this dtype");
}

TEST_CASE("a steady training-like loop calls cudaMalloc only in its first iteration", "[cuda][allocator]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  TensorF w = random_tensor({64, 128}, 3).to(kGpu);
  // Activations of several sizes, some freed before others, a backward with
  // a gradient sum, small odd-sized buffers, and an in-place update.
  auto step = [&](int i) {
    TensorF x = random_tensor({8, 64, 128}, 100 + static_cast<uint64_t>(i)).to(kGpu);
    x.set_requires_grad();
    const TensorF h = ops::relu(ops::mul_scalar(x, 1.5f));
    const TensorF u = ops::relu(ops::add_scalar(h, -0.5f)), v = ops::mul_scalar(h, 3.f);
    autograd::backward<float>({u, v}, {TensorF::ones(u.shape(), kGpu), TensorF::ones(v.shape(), kGpu)});
    autograd::NoGradGuard no_grad;
    TensorF small = TensorF::empty({17}, kGpu);
    small.fill_(x.grad().narrow(0, 0, 1).contiguous().view({-1}).narrow(0, 0, 1).item());
    w.add_(TensorF::full(w.shape(), 1e-3f, kGpu));
  };
  step(0);
  synchronize(kGpu);
  const MemoryStats first = memory_stats(kGpu);
  REQUIRE(first.raw_allocations > 0);
  for (int i = 1; i <= 5; ++i) step(i);
  synchronize(kGpu);
  const MemoryStats later = memory_stats(kGpu);
  CHECK(later.raw_allocations == first.raw_allocations);
  CHECK(later.raw_frees == first.raw_frees);
  CHECK(later.cache_hits > first.cache_hits);
  CHECK(later.allocations - first.allocations == later.cache_hits - first.cache_hits);
}

TEST_CASE("blocks of one stream are not reused by another; work runs on the current stream", "[cuda][stream]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  DeviceBackend& be = backend(kGpu);
  const Stream side = be.create_stream(kGpu);
  void* p;
  {
    StreamGuard on(side);
    const TensorF t = TensorF::empty({12345}, kGpu);
    p = t.data();
  }
  {
    const TensorF u = TensorF::empty({12345}, kGpu);  // the default stream: another block
    CHECK(u.data() != p);
  }
  TensorF y;
  const TensorF x = random_tensor({1000}, 5);
  {
    StreamGuard on(side);
    const TensorF v = TensorF::empty({12345}, kGpu);
    CHECK(v.data() == p);
    y = ops::relu(x.to(kGpu));
    be.synchronize(side);
  }
  require_equal(y.to_vector(), ops::relu(x).to_vector());
  y = TensorF();
  be.destroy_stream(side);
}

TEST_CASE("the cache limit and empty_cache give memory back", "[cuda][allocator]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  DeviceBackend& be = backend(kGpu);
  { const TensorF t = TensorF::empty({1 << 20}, kGpu); }
  synchronize(kGpu);
  CHECK(memory_stats(kGpu).bytes_cached >= (size_t(4) << 20));
  const uint64_t frees = memory_stats(kGpu).raw_frees;
  be.empty_cache();
  CHECK(memory_stats(kGpu).bytes_cached == 0);
  CHECK(memory_stats(kGpu).raw_frees > frees);
  be.set_cache_limit(0);
  { const TensorF t = TensorF::empty({1 << 20}, kGpu); }
  CHECK(memory_stats(kGpu).bytes_cached == 0);
  be.set_cache_limit(CachingAllocator::kDefaultCacheLimit);
}

namespace {
struct TwoLayers : nn::Module<float> {
  TensorF w1, w2, stat;
  TwoLayers() {
    PhiloxEngine rng(9);
    w1 = register_parameter("w1", TensorF::uniform({4, 3}, -1, 1, rng));
    w2 = register_parameter("w2", TensorF::uniform({5}, -1, 1, rng));
    stat = register_buffer("stat", TensorF::full({3}, 2.f));
  }
};
}  // namespace

TEST_CASE("Module::to moves a flattened module to the GPU and back", "[cuda][nn]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  TwoLayers m;
  const nn::FlatParameters<float> flat = nn::flatten(m);
  const std::vector<float> w1 = m.w1.to_vector(), w2 = m.w2.to_vector();
  m.to(kGpu);
  CHECK(m.w1.device() == kGpu);
  CHECK(m.stat.device() == kGpu);
  CHECK(m.w1.grad().device() == kGpu);
  CHECK(m.w2.storage() == flat.values.storage());
  CHECK(flat.values.device() == kGpu);
  m.to(Device::cpu());
  CHECK(m.w1.to_vector() == w1);
  CHECK(m.w2.to_vector() == w2);
  CHECK(m.stat.to_vector() == std::vector<float>(3, 2.f));
}
