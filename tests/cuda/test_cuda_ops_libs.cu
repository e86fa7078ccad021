// The CUDA entries that call cuDNN and cuBLAS (kernels/conv_cudnn.cuh,
// gemm_cublas.cuh) against their CPU twins, forward and backward, float and
// double, on odd shapes; and, on any machine ([cuda-host]), the host-side
// logic of the op entries: the convolution algorithm cache and its choice
// among cuDNN's candidates, cuBLAS's arguments for a row-major GEMM, the
// packing of Adam's runs into the fused kernel's table, the sum_to_shape
// plan and the launch shapes; and what linking lgh::cuda registers.
//
// Float convolutions run with TF32 off here (cuda::set_conv_tf32(false):
// plain FMA math), so the tolerance is float rounding of a different
// summation order (cuDNN's FFT and Winograd algorithms transform their
// operands, hence 5x the elementwise tolerance); a separate case states the
// TF32 bound.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "adam_multi.cuh"
#include "broadcast_ops.cuh"
#include "conv_algo_cache.hpp"
#include "conv_cudnn.cuh"
#include "cuda_test_utils.cuh"
#include "gemm_cublas.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/linear.hpp"
#include "lgh/ops/loss.hpp"
#include "lgh/ops/pooling.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/softmax.hpp"
#include "lgh/optim/adam.hpp"
#include "ops_test_utils.hpp"
#include "reduce_softmax.cuh"

using namespace lgh;
using lgh_test::kGpu;
using lgh_test::op_rel_tol;
using lgh_test::outputs;
using lgh_test::random;
using lgh_test::require_close;

namespace {

template <typename T>
Tensor<T> gpu(const Tensor<T>& t) {
  return t.to(kGpu);
}

// Restores the TF32 setting on exit.
struct Tf32Scope {
  explicit Tf32Scope(bool on) : previous(cuda::conv_tf32()) { cuda::set_conv_tf32(on); }
  ~Tf32Scope() { cuda::set_conv_tf32(previous); }
  bool previous;
};

struct ConvCase {
  Shape x;
  int64_t out, k, stride, pad;
};

const ConvCase kConvCases[] = {
    {Shape{1, 3, 7, 5}, 4, 3, 1, 1}, {Shape{3, 3, 7, 5}, 5, 3, 2, 1}, {Shape{3, 3, 7, 5}, 2, 1, 1, 0},
    {Shape{1, 4, 8, 6}, 3, 7, 2, 3}, {Shape{3, 2, 9, 7}, 3, 2, 2, 0},
};

}  // namespace

TEMPLATE_TEST_CASE("conv2d through cuDNN matches the CPU: forward with bias and epilogue, both gradients",
                   "[cuda][ops][conv]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  const Tf32Scope no_tf32(false);
  const double rel = op_rel_tol<T>() * 5;
  uint64_t seed = 2000;
  for (const ConvCase& c : kConvCases) {
    INFO("x " << c.x.str() << " out " << c.out << " k " << c.k << " stride " << c.stride << " pad " << c.pad);
    const Tensor<T> x = random<T>(c.x, seed++), w = random<T>(Shape{c.out, c.x[1], c.k, c.k}, seed++);
    const Tensor<T> b = random<T>(Shape{c.out}, seed++);
    const ops::detail::ConvGeometry g = ops::detail::conv2d_geometry("test", x, w, b, c.stride, c.pad);
    const Shape so{g.N, g.O, g.OH, g.OW};
    const Tensor<T> res = random<T>(so, seed++), gres = gpu(res);
    for (int mode = 0; mode < 3; ++mode) {
      ops::detail::ConvEpilogue<T> ec, eg;
      ec.relu = eg.relu = mode >= 1;
      if (mode == 2) {
        ec.residual = res.data();
        eg.residual = gres.data();
        ec.relu_after_residual = eg.relu_after_residual = true;
      }
      auto y = outputs<T>(so);
      dispatch::call<ops::entries::Conv2dForward, T>(Device::cpu(), x, w, b, g, ec, y.cpu);
      dispatch::call<ops::entries::Conv2dForward, T>(kGpu, gpu(x), gpu(w), gpu(b), g, eg, y.gpu);
      require_close(y.gpu, y.cpu, rel, "y, epilogue " + std::to_string(mode));
    }
    auto y = outputs<T>(so);  // without a bias
    dispatch::call<ops::entries::Conv2dForward, T>(Device::cpu(), x, w, Tensor<T>(), g,
                                                   ops::detail::ConvEpilogue<T>(), y.cpu);
    dispatch::call<ops::entries::Conv2dForward, T>(kGpu, gpu(x), gpu(w), Tensor<T>(), g,
                                                   ops::detail::ConvEpilogue<T>(), y.gpu);
    require_close(y.gpu, y.cpu, rel, "y without bias");

    const Tensor<T> gy = random<T>(so, seed++);
    auto gx = outputs<T>(c.x);
    dispatch::call<ops::entries::Conv2dBackwardData, T>(Device::cpu(), gy, w, g, gx.cpu);
    dispatch::call<ops::entries::Conv2dBackwardData, T>(kGpu, gpu(gy), gpu(w), g, gx.gpu);
    require_close(gx.gpu, gx.cpu, rel, "gx");
    auto gw = outputs<T>(w.shape()), gb = outputs<T>(Shape{c.out});
    dispatch::call<ops::entries::Conv2dBackwardWeight, T>(Device::cpu(), x, gy, g, gw.cpu, gb.cpu);
    dispatch::call<ops::entries::Conv2dBackwardWeight, T>(kGpu, gpu(x), gpu(gy), g, gw.gpu, gb.gpu);
    require_close(gw.gpu, gw.cpu, rel, "gw");
    require_close(gb.gpu, gb.cpu, rel, "gb");
  }
}

TEMPLATE_TEST_CASE("conv_transpose2d through cuDNN matches the CPU, forward and backward through autograd",
                   "[cuda][ops][conv]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  const Tf32Scope no_tf32(false);
  const double rel = op_rel_tol<T>() * 5;
  uint64_t seed = 2100;
  struct Case {
    Shape x;
    int64_t out, k, stride, pad, out_pad;
  };
  const Case cases[] = {{Shape{1, 3, 7, 5}, 3, 4, 2, 1, 0}, {Shape{3, 3, 7, 5}, 2, 3, 2, 1, 1},
                        {Shape{3, 2, 5, 5}, 3, 3, 1, 1, 0}};
  for (const Case& c : cases) {
    INFO("x " << c.x.str() << " out " << c.out << " k " << c.k << " stride " << c.stride);
    Tensor<T> x = random<T>(c.x, seed++), w = random<T>(Shape{c.x[1], c.out, c.k, c.k}, seed++);
    Tensor<T> b = random<T>(Shape{c.out}, seed++);
    Tensor<T> gx_ = gpu(x), gw_ = gpu(w), gb_ = gpu(b);
    for (Tensor<T>* t : {&x, &w, &b, &gx_, &gw_, &gb_}) t->set_requires_grad();
    const Tensor<T> yc = ops::conv_transpose2d(x, w, b, c.stride, c.pad, c.out_pad);
    const Tensor<T> yg = ops::conv_transpose2d(gx_, gw_, gb_, c.stride, c.pad, c.out_pad);
    REQUIRE(yg.device() == kGpu);
    require_close(yg, yc, rel, "y");
    // With ReLU, through the entry.
    const ops::detail::ConvGeometry g = ops::detail::conv_transpose2d_geometry(x, w, b, c.stride, c.pad, c.out_pad);
    auto yr = outputs<T>(yc.shape());
    {
      autograd::NoGradGuard no_grad;
      dispatch::call<ops::entries::ConvTranspose2dForward, T>(Device::cpu(), x, w, b, g, true, yr.cpu);
      dispatch::call<ops::entries::ConvTranspose2dForward, T>(kGpu, gx_, gw_, gb_, g, true, yr.gpu);
    }
    require_close(yr.gpu, yr.cpu, rel, "y with ReLU");
    const Tensor<T> up = random<T>(yc.shape(), seed++);
    autograd::backward<T>({yc}, {up});
    autograd::backward<T>({yg}, {gpu(up)});
    require_close(gx_.grad(), x.grad(), rel, "gx");
    require_close(gw_.grad(), w.grad(), rel, "gw");
    require_close(gb_.grad(), b.grad(), rel, "gb");
  }
}

TEST_CASE("float convolutions with TF32 stay within the stated TF32 bound", "[cuda][ops][conv][tf32]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const Tf32Scope tf32(true);
  // TF32 keeps 10 mantissa bits of each operand (relative rounding 2^-11 each,
  // so about 1e-3 per product); over a sum of K products of magnitude up to
  // max|x| max|w| the error stays below 1e-3 * K * max|x| max|w|, which for
  // uniform inputs is a small multiple of 1e-3 of the output's largest value.
  const TensorF x = random<float>(Shape{3, 8, 9, 7}, 1), w = random<float>(Shape{6, 8, 3, 3}, 2);
  const ops::detail::ConvGeometry g = ops::detail::conv2d_geometry("test", x, w, TensorF(), 1, 1);
  auto y = outputs<float>(Shape{g.N, g.O, g.OH, g.OW});
  dispatch::call<ops::entries::Conv2dForward, float>(Device::cpu(), x, w, TensorF(), g,
                                                     ops::detail::ConvEpilogue<float>(), y.cpu);
  dispatch::call<ops::entries::Conv2dForward, float>(kGpu, gpu(x), gpu(w), TensorF(), g,
                                                     ops::detail::ConvEpilogue<float>(), y.gpu);
  require_close(y.gpu, y.cpu, 5e-3, "y with TF32");
}

TEMPLATE_TEST_CASE("GEMM and linear through cuBLAS match the CPU, forward and backward", "[cuda][ops][gemm]", float,
                   double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  const double rel = op_rel_tol<T>() * 5;
  uint64_t seed = 2200;
  struct Dims {
    int64_t M, N, K;
  };
  for (const Dims& d : {Dims{7, 5, 3}, Dims{1, 9, 33}, Dims{21, 1, 2}, Dims{3, 4, 0}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("M " << d.M << " N " << d.N << " K " << d.K << " trans_a " << ta << " trans_b " << tb);
        const Tensor<T> A = random<T>(ta ? Shape{d.K, d.M} : Shape{d.M, d.K}, seed++);
        const Tensor<T> B = random<T>(tb ? Shape{d.N, d.K} : Shape{d.K, d.N}, seed++);
        auto C = outputs<T>(Shape{d.M, d.N});
        dispatch::call<ops::entries::Gemm, T>(Device::cpu(), ta, tb, d.M, d.N, d.K, A, B, C.cpu);
        dispatch::call<ops::entries::Gemm, T>(kGpu, ta, tb, d.M, d.N, d.K, gpu(A), gpu(B), C.gpu);
        require_close(C.gpu, C.cpu, rel, "C");
      }
  for (const Shape& xs : {Shape{3, 7}, Shape{1, 7}, Shape{3, 2, 7}}) {
    INFO("x " << xs.str());
    const Tensor<T> x = random<T>(xs, seed++), w = random<T>(Shape{5, 7}, seed++), b = random<T>(Shape{5}, seed++);
    Shape ys = xs;
    ys[ys.ndim() - 1] = 5;
    for (bool with_bias : {true, false}) {
      auto y = outputs<T>(ys);
      dispatch::call<ops::entries::LinearForward, T>(Device::cpu(), x, w, with_bias ? b : Tensor<T>(), y.cpu);
      dispatch::call<ops::entries::LinearForward, T>(kGpu, gpu(x), gpu(w), with_bias ? gpu(b) : Tensor<T>(), y.gpu);
      require_close(y.gpu, y.cpu, rel, with_bias ? "y" : "y without bias");
    }
    const Tensor<T> gy = random<T>(ys, seed++);
    auto gx = outputs<T>(xs), gw = outputs<T>(w.shape()), gb = outputs<T>(b.shape());
    dispatch::call<ops::entries::LinearBackward, T>(Device::cpu(), x, w, gy, gx.cpu, gw.cpu, gb.cpu);
    dispatch::call<ops::entries::LinearBackward, T>(kGpu, gpu(x), gpu(w), gpu(gy), gx.gpu, gw.gpu, gb.gpu);
    require_close(gx.gpu, gx.cpu, rel, "gx");
    require_close(gw.gpu, gw.cpu, rel, "gw");
    require_close(gb.gpu, gb.cpu, rel, "gb");
  }
}

TEST_CASE("the convolution algorithm is chosen once per shape and its workspace comes from the caching allocator",
          "[cuda][ops][conv][allocator]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const Tf32Scope no_tf32(false);
  cuda::conv_algo_cache().clear();
  const TensorF x = gpu(random<float>(Shape{2, 16, 17, 13}, 5)), w = gpu(random<float>(Shape{8, 16, 3, 3}, 6));
  for (int i = 0; i < 3; ++i) {
    const TensorF y = ops::conv2d(x, w, TensorF(), 1, 1);
    if (i == 0) {
      CHECK(cuda::conv_algo_cache().misses() == 1);
      (void)y.to(Device::cpu());
    }
  }
  CHECK(cuda::conv_algo_cache().misses() == 1);
  CHECK(cuda::conv_algo_cache().hits() == 2);
  // Steady state: the workspace and the output come from the cache.
  const uint64_t raw = memory_stats(kGpu).raw_allocations;
  for (int i = 0; i < 3; ++i) (void)ops::conv2d(x, w, TensorF(), 1, 1);
  CHECK(memory_stats(kGpu).raw_allocations == raw);
}

// ---- host-side logic: runs on any machine -------------------------------------------

TEST_CASE("linking lgh::cuda registers a CUDA entry for every op of the model", "[cuda-host]") {
  using namespace ops::entries;
  auto both = [](auto tag) {
    using Op = decltype(tag);
    return dispatch::supports<Op, float>(kGpu) && dispatch::supports<Op, double>(kGpu);
  };
  CHECK(both(Conv2dForward{}));
  CHECK(both(Conv2dBackwardData{}));
  CHECK(both(Conv2dBackwardWeight{}));
  CHECK(both(ConvTranspose2dForward{}));
  CHECK(both(ConvBiasBackward{}));
  CHECK(both(BatchNorm2dForward{}));
  CHECK(both(BatchNorm2dBackward{}));
  CHECK(both(Gemm{}));
  CHECK(both(LinearForward{}));
  CHECK(both(LinearBackward{}));
  CHECK(both(BinaryForward{}));
  CHECK(both(SumToShape{}));
  CHECK(both(MaxPool2dForward{}));
  CHECK(both(MaxPool2dBackward{}));
  CHECK(both(UpsampleNearest2xForward{}));
  CHECK(both(UpsampleNearest2xBackward{}));
  CHECK(both(ConcatForward{}));
  CHECK(both(ConcatBackward{}));
  CHECK(both(ReduceAllForward{}));
  CHECK(both(ReduceForward{}));
  CHECK(both(ReduceBackward{}));
  CHECK(both(SoftmaxForward{}));
  CHECK(both(SoftmaxBackward{}));
  CHECK(both(RegressionLossForward{}));
  CHECK(both(RegressionLossBackward{}));
  CHECK(both(BackprojectForward{}));
  CHECK(both(BackprojectBackward{}));
  CHECK(both(optim::entries::AdamUpdate{}));
}

TEST_CASE("the convolution algorithm cache asks once per key and tells keys apart", "[cuda-host]") {
  cuda::ConvAlgoCache cache;
  ops::detail::ConvGeometry g;
  g.N = 3; g.C = 3; g.H = 7; g.W = 5; g.O = 4; g.KH = 3; g.KW = 3; g.stride = 1; g.pad = 1; g.OH = 7; g.OW = 5;
  int asked = 0;
  auto find = [&] {
    ++asked;
    return cuda::ConvAlgoChoice{asked, size_t(1000) * asked, 0};
  };
  const auto k = cuda::conv_algo_key(cuda::ConvPass::Forward, g, 0, 4, false);
  CHECK(cache.get(k, find).algo == 1);
  CHECK(cache.get(k, find).workspace_bytes == 1000);
  CHECK(asked == 1);
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 1);
  // Every field of the key makes a new entry.
  std::vector<cuda::ConvAlgoKey> others;
  others.push_back(cuda::conv_algo_key(cuda::ConvPass::BackwardData, g, 0, 4, false));
  others.push_back(cuda::conv_algo_key(cuda::ConvPass::BackwardFilter, g, 0, 4, false));
  others.push_back(cuda::conv_algo_key(cuda::ConvPass::Forward, g, 1, 4, false));
  others.push_back(cuda::conv_algo_key(cuda::ConvPass::Forward, g, 0, 8, false));
  others.push_back(cuda::conv_algo_key(cuda::ConvPass::Forward, g, 0, 4, true));
  for (int field = 0; field < 11; ++field) {
    ops::detail::ConvGeometry h = g;
    int64_t* f[] = {&h.N, &h.C, &h.H, &h.W, &h.O, &h.KH, &h.KW, &h.stride, &h.pad, &h.OH, &h.OW};
    *f[field] += 1;
    others.push_back(cuda::conv_algo_key(cuda::ConvPass::Forward, h, 0, 4, false));
  }
  for (size_t i = 0; i < others.size(); ++i) {
    INFO("key variant " << i);
    CHECK(!(others[i] == k));
    (void)cache.get(others[i], find);
  }
  CHECK(cache.size() == 1 + others.size());
  CHECK(asked == static_cast<int>(1 + others.size()));
  // TF32 means nothing for double: one key either way.
  CHECK(cuda::conv_algo_key(cuda::ConvPass::Forward, g, 0, 8, true) ==
        cuda::conv_algo_key(cuda::ConvPass::Forward, g, 0, 8, false));
  cache.clear();
  CHECK(cache.size() == 0);
}

TEST_CASE("the algorithm choice keeps cuDNN's order among runnable candidates within the workspace limit",
          "[cuda-host]") {
  struct Perf {
    int algo;
    bool ok;
    size_t memory;
    bool deterministic;
  };
  auto ok = [](const Perf& p) { return p.ok; };
  auto det = [](const Perf& p) { return p.deterministic; };
  const Perf perf[] = {{5, false, 0, true}, {4, true, 5000, true}, {3, true, 100, false}, {2, true, 200, true}};
  CHECK(cuda::pick_conv_algo(perf, 4, 10000, false, ok, det) == 1);  // the first runnable one
  CHECK(cuda::pick_conv_algo(perf, 4, 1000, false, ok, det) == 2);   // too much workspace skipped
  CHECK(cuda::pick_conv_algo(perf, 4, 1000, true, ok, det) == 3);    // deterministic preferred
  CHECK(cuda::pick_conv_algo(perf, 4, 150, true, ok, det) == 2);     // else any runnable one
  CHECK(cuda::pick_conv_algo(perf, 4, 50, true, ok, det) == -1);     // nothing fits
  CHECK(cuda::pick_conv_algo(perf, 0, 10000, false, ok, det) == -1);
}

TEST_CASE("cuBLAS gets a row-major GEMM as its column-major transpose", "[cuda-host]") {
  // C[M, N] = A[M, K] B[K, N]: cuBLAS computes C^T = B^T A^T with B first.
  cuda::GemmArgs a = cuda::gemm_args("test", false, false, 7, 5, 3);
  CHECK(!a.trans_first);
  CHECK(!a.trans_second);
  CHECK(a.m == 5);
  CHECK(a.n == 7);
  CHECK(a.k == 3);
  CHECK(a.ld_first == 5);   // B [K, N] row-major: ld N
  CHECK(a.ld_second == 3);  // A [M, K]: ld K
  CHECK(a.ldc == 5);
  // Transposed operands: A stored [K, M], B stored [N, K].
  a = cuda::gemm_args("test", true, true, 7, 5, 3);
  CHECK(a.trans_first);
  CHECK(a.trans_second);
  CHECK(a.ld_first == 3);
  CHECK(a.ld_second == 7);
  // Empty extents keep leading dimensions valid (>= 1).
  a = cuda::gemm_args("test", false, false, 0, 0, 0);
  CHECK(a.ld_first == 1);
  CHECK(a.ldc == 1);
  CHECK_THROWS_WITH(cuda::gemm_args("linear_forward", false, false, int64_t(1) << 32, 1, 1),
                    Catch::Contains("linear_forward") && Catch::Contains("int range"));
}

TEST_CASE("Adam's runs are packed into the fused kernel's table with their group's constants", "[cuda-host]") {
  float p[10], g[10], m[10], v[10], vmax[10];
  std::vector<optim::AdamScalars<float>> scalars(2);
  scalars[0].neg_step_size = -0.1f;
  scalars[1].neg_step_size = -0.02f;
  scalars[1].weight_decay = 0.5f;
  const std::vector<optim::AdamRun<float>> runs = {{p, g, m, v, nullptr, 6, 1}, {p + 6, g + 6, m + 6, v + 6, vmax, 4, 0}};
  const auto packed = cuda::pack_adam_runs(runs, scalars);
  REQUIRE(packed.size() == 2);
  CHECK(packed[0].param == p);
  CHECK(packed[0].n == 6);
  CHECK(packed[0].max_exp_avg_sq == nullptr);
  CHECK(packed[0].scalars.neg_step_size == -0.02f);
  CHECK(packed[0].scalars.weight_decay == 0.5f);
  CHECK(packed[1].grad == g + 6);
  CHECK(packed[1].exp_avg == m + 6);
  CHECK(packed[1].exp_avg_sq == v + 6);
  CHECK(packed[1].max_exp_avg_sq == vmax);
  CHECK(packed[1].scalars.neg_step_size == -0.1f);
  const std::vector<optim::AdamRun<float>> bad = {{p, g, m, v, nullptr, 6, 2}};
  CHECK_THROWS_WITH(cuda::pack_adam_runs(bad, scalars), Catch::Contains("run 0") && Catch::Contains("2 of 2"));
  // A model's step: one run per group, all in one launch's table.
  CHECK(static_cast<int>(runs.size()) <= cuda::launch::kAdamMaxRuns);
}

TEST_CASE("sum_to_shape plans keep the broadcast copies in the CPU's order", "[cuda-host]") {
  // g [3, 4, 5] contiguous reduced to [4, 1]: kept dim 4 (stride 5), reduced dims 3 (20) and 5 (1).
  const Shape gs{3, 4, 5};
  const cuda::SumToShapePlan p = cuda::plan_sum_to_shape(gs, gs.contiguous_strides(), Shape{4, 1});
  CHECK(p.n == 4);
  CHECK(p.R == 15);
  REQUIRE(p.kept.ndim == 1);
  CHECK(p.kept.shape[0] == 4);
  CHECK(p.kept.strides[0][0] == 5);
  REQUIRE(p.reduced.ndim == 2);
  CHECK(p.reduced.shape[0] == 3);
  CHECK(p.reduced.strides[0][0] == 20);
  CHECK(p.reduced.shape[1] == 5);
  CHECK(p.reduced.strides[0][1] == 1);
  // To a scalar: everything reduced, coalesced into one run.
  const cuda::SumToShapePlan all = cuda::plan_sum_to_shape(gs, gs.contiguous_strides(), Shape{});
  CHECK(all.n == 1);
  CHECK(all.R == 60);
  CHECK(all.reduced.ndim == 1);
  CHECK(all.kept.ndim == 0);
  // Nothing reduced.
  const cuda::SumToShapePlan none = cuda::plan_sum_to_shape(gs, gs.contiguous_strides(), gs);
  CHECK(none.R == 1);
  CHECK(none.n == 60);
}

TEST_CASE("launch shapes of the op kernels", "[cuda-host]") {
  CHECK(cuda::ops_launch::blocks(0) == 1);
  CHECK(cuda::ops_launch::blocks(1) == 1);
  CHECK(cuda::ops_launch::blocks(256) == 1);
  CHECK(cuda::ops_launch::blocks(257) == 2);
  CHECK(cuda::ops_launch::blocks(int64_t(1) << 40) == cuda::ops_launch::kMaxBlocks);  // grid-stride beyond
  CHECK(cuda::ops_launch::kRowThreads % 32 == 0);  // block_sum needs whole warps
  CHECK(cuda::ops_launch::kReduceChunk % cuda::ops_launch::kRowThreads == 0);
  CHECK(cuda::ops_launch::reduce_all_blocks(0) == 1);
  CHECK(cuda::ops_launch::reduce_all_blocks(cuda::ops_launch::kReduceChunk) == 1);
  CHECK(cuda::ops_launch::reduce_all_blocks(cuda::ops_launch::kReduceChunk + 1) == 2);
}
