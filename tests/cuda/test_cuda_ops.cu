// The hand-written CUDA entries of the differentiable ops (kernels/
// batchnorm.cuh, pool_upsample.cuh, concat.cuh, broadcast_ops.cuh,
// reduce_softmax.cuh, loss.cuh, conv_epilogue.cuh, backproject_op.cuh,
// adam_multi.cuh) against
// their CPU twins, forward and backward, float and double, on odd shapes
// (7x5 planes, 3 channels, batches of 1 and 3). Each entry is called through
// the dispatch registry exactly as the ops call it, with its outputs
// pre-filled with 7 on the CPU and NaN on the GPU; the tolerance is
// abs + |ref| * rel (ops_test_utils.hpp).
//
// Without a device the cases skip (the executable reads SKIPPED in ctest).
// The same file runs on the host emulation of CUDA (tests/cuda_emulation),
// which executes these kernels' indexing, barriers and shuffles on the CPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "conv_epilogue.cuh"
#include "cuda_test_utils.cuh"
#include "lgh/core/dispatch.hpp"
#include "lgh/ops/backproject.hpp"
#include "lgh/ops/batchnorm.hpp"
#include "lgh/ops/conv.hpp"
#include "lgh/ops/elementwise.hpp"
#include "lgh/ops/loss.hpp"
#include "lgh/ops/pooling.hpp"
#include "lgh/ops/reduce.hpp"
#include "lgh/ops/shape_ops.hpp"
#include "lgh/ops/softmax.hpp"
#include "lgh/optim/adam.hpp"
#include "ops_test_utils.hpp"

using namespace lgh;
using lgh_test::kGpu;
using lgh_test::op_rel_tol;
using lgh_test::outputs;
using lgh_test::random;
using lgh_test::require_close;
using lgh_test::require_equal;

namespace {

const Shape kImages[] = {Shape{1, 3, 7, 5}, Shape{3, 3, 7, 5}, Shape{3, 2, 8, 6}};

template <typename T>
Tensor<T> gpu(const Tensor<T>& t) {
  return t.to(kGpu);
}

}  // namespace

TEMPLATE_TEST_CASE("batch norm on the GPU matches the CPU in training and eval, forward and backward",
                   "[cuda][ops][batchnorm]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  using BnF = ops::entries::BatchNorm2dForward;
  using BnB = ops::entries::BatchNorm2dBackward;
  const double rel = op_rel_tol<T>() * 5;  // mean, variance and the normalisation each round once more
  uint64_t seed = 100;
  for (const Shape& s : kImages) {
    for (int mode = 0; mode < 4; ++mode) {
      const bool training = mode < 2, affine = mode % 2 == 0;
      INFO("shape " << s.str() << (training ? " training" : " eval") << (affine ? " affine" : " no affine"));
      const int64_t C = s[1];
      const Tensor<T> x = random<T>(s, seed++, -3.0, 5.0), gy = random<T>(s, seed++);
      const Tensor<T> w = affine ? random<T>(Shape{C}, seed++, 0.5, 1.5) : Tensor<T>();
      const Tensor<T> b = affine ? random<T>(Shape{C}, seed++) : Tensor<T>();
      // Running statistics: updated in place in training, so each side gets its copy.
      const Tensor<T> rm0 = random<T>(Shape{C}, seed++), rv0 = random<T>(Shape{C}, seed++, 0.5, 2.0);
      Tensor<T> rm = rm0.clone(), rv = rv0.clone(), grm = gpu(rm0), grv = gpu(rv0);
      auto y = outputs<T>(s), mean = outputs<T>(Shape{C}), inv = outputs<T>(Shape{C});
      dispatch::call<BnF, T>(Device::cpu(), x, w, b, rm, rv, training, 0.1, 1e-5, y.cpu, mean.cpu, inv.cpu);
      dispatch::call<BnF, T>(kGpu, gpu(x), affine ? gpu(w) : w, affine ? gpu(b) : b, grm, grv, training, 0.1, 1e-5,
                             y.gpu, mean.gpu, inv.gpu);
      require_close(y.gpu, y.cpu, rel, "y");
      require_close(mean.gpu, mean.cpu, rel, "save_mean");
      require_close(inv.gpu, inv.cpu, rel, "save_invstd");
      require_close(grm, rm, rel, "running_mean");
      require_close(grv, rv, rel, "running_var (unbiased update)");
      if (training) {
        CHECK(rm.to_vector() != rm0.to_vector());  // the update happened
        // Without running statistics (track_running_stats = false).
        auto y2 = outputs<T>(s), mean2 = outputs<T>(Shape{C}), inv2 = outputs<T>(Shape{C});
        dispatch::call<BnF, T>(kGpu, gpu(x), affine ? gpu(w) : w, affine ? gpu(b) : b, Tensor<T>(), Tensor<T>(),
                               true, 0.1, 1e-5, y2.gpu, mean2.gpu, inv2.gpu);
        require_close(y2.gpu, y.cpu, rel, "y without running statistics");
        require_close(inv2.gpu, inv.cpu, rel, "save_invstd without running statistics");
      }

      auto gx = outputs<T>(s), gw = outputs<T>(Shape{C}), gb = outputs<T>(Shape{C});
      const Tensor<T> gmean = gpu(mean.cpu), ginv = gpu(inv.cpu);  // the same saved statistics on both sides
      dispatch::call<BnB, T>(Device::cpu(), x, gy, w, mean.cpu, inv.cpu, training, gx.cpu, gw.cpu, gb.cpu);
      dispatch::call<BnB, T>(kGpu, gpu(x), gpu(gy), affine ? gpu(w) : w, gmean, ginv, training, gx.gpu, gw.gpu, gb.gpu);
      require_close(gx.gpu, gx.cpu, rel, "gx");
      require_close(gw.gpu, gw.cpu, rel, "gweight");
      require_close(gb.gpu, gb.cpu, rel, "gbias");
      // Only gx wanted (undefined gweight and gbias).
      auto gx2 = outputs<T>(s);
      dispatch::call<BnB, T>(kGpu, gpu(x), gpu(gy), affine ? gpu(w) : w, gmean, ginv, training, gx2.gpu, Tensor<T>(),
                             Tensor<T>());
      require_close(gx2.gpu, gx.cpu, rel, "gx alone");
    }
  }
}

TEMPLATE_TEST_CASE("max pooling on the GPU keeps the CPU's argmax (ties, NaN) and routes gradients alike",
                   "[cuda][ops][pool]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  struct Geo {
    int64_t k, s, p;
  };
  const Geo geos[] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 3, 0}};
  uint64_t seed = 200;
  for (const Shape& s : kImages)
    for (const Geo& g : geos) {
      INFO("shape " << s.str() << " kernel " << g.k << " stride " << g.s << " padding " << g.p);
      // Few distinct values: many ties, which must go to the window's first element.
      Tensor<T> x = random<T>(s, seed++, 0.0, 3.0);
      {
        std::vector<T> v = x.to_vector();
        for (auto& e : v) e = std::floor(e);
        v[v.size() / 3] = std::numeric_limits<T>::quiet_NaN();  // NaN wins its windows
        x = Tensor<T>::from_data(s, v);
      }
      const int64_t Ho = ops::detail::pool_out_size(s[2], g.k, g.s, g.p);
      const int64_t Wo = ops::detail::pool_out_size(s[3], g.k, g.s, g.p);
      const Shape so{s[0], s[1], Ho, Wo};
      auto y = outputs<T>(so);
      Tensor<int64_t> idx = Tensor<int64_t>::full(so, -5), gidx = Tensor<int64_t>::full(so, 12345, kGpu);
      dispatch::call<ops::entries::MaxPool2dForward, T>(Device::cpu(), x, g.k, g.s, g.p, y.cpu, idx);
      dispatch::call<ops::entries::MaxPool2dForward, T>(kGpu, gpu(x), g.k, g.s, g.p, y.gpu, gidx);
      require_equal(y.gpu, y.cpu, "y");
      REQUIRE(gidx.to(Device::cpu()).to_vector() == idx.to_vector());
      // Values only (inference).
      auto y2 = outputs<T>(so);
      dispatch::call<ops::entries::MaxPool2dForward, T>(kGpu, gpu(x), g.k, g.s, g.p, y2.gpu, Tensor<int64_t>());
      require_equal(y2.gpu, y.cpu, "y without indices");

      const Tensor<T> gy = random<T>(so, seed++);
      auto gx = outputs<T>(s);
      dispatch::call<ops::entries::MaxPool2dBackward, T>(Device::cpu(), gy, idx, gx.cpu);
      dispatch::call<ops::entries::MaxPool2dBackward, T>(kGpu, gpu(gy), gidx, gx.gpu);
      // Non-overlapping windows: one addition per element, exact; overlapping
      // ones add in another order.
      if (g.k <= g.s)
        require_equal(gx.gpu, gx.cpu, "gx");
      else
        require_close(gx.gpu, gx.cpu, op_rel_tol<T>(), "gx (overlapping windows)");
    }
}

TEMPLATE_TEST_CASE("nearest x2 upsampling on the GPU equals the CPU's, forward and backward", "[cuda][ops][upsample]",
                   float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  uint64_t seed = 300;
  for (const Shape& s : kImages) {
    INFO("shape " << s.str());
    const Shape s2{s[0], s[1], 2 * s[2], 2 * s[3]};
    const Tensor<T> x = random<T>(s, seed++), gy = random<T>(s2, seed++);
    auto y = outputs<T>(s2);
    dispatch::call<ops::entries::UpsampleNearest2xForward, T>(Device::cpu(), x, y.cpu);
    dispatch::call<ops::entries::UpsampleNearest2xForward, T>(kGpu, gpu(x), y.gpu);
    require_equal(y.gpu, y.cpu, "y");
    auto gx = outputs<T>(s);
    dispatch::call<ops::entries::UpsampleNearest2xBackward, T>(Device::cpu(), gy, gx.cpu);
    dispatch::call<ops::entries::UpsampleNearest2xBackward, T>(kGpu, gpu(gy), gx.gpu);
    require_equal(gx.gpu, gx.cpu, "gx");
  }
}

TEMPLATE_TEST_CASE("concat on the GPU equals the CPU's along every dimension, with strided inputs",
                   "[cuda][ops][concat]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  uint64_t seed = 400;
  for (int dim = 0; dim < 4; ++dim) {
    INFO("dim " << dim);
    std::vector<Shape> shapes;
    const int64_t extents[] = {1, 3, 2};
    for (int64_t e : extents) {
      Shape s{3, 3, 7, 5};
      s[dim] = e;
      shapes.push_back(s);
    }
    std::vector<Tensor<T>> xs, gxs_in;
    for (size_t k = 0; k < shapes.size(); ++k) {
      Tensor<T> x = random<T>(shapes[k], seed++);
      xs.push_back(x);
    }
    // Input 1 as a strided view (a transposed copy transposed back).
    std::vector<Tensor<T>> gxs_dev;
    for (size_t k = 0; k < xs.size(); ++k) {
      Tensor<T> g = gpu(xs[k]);
      if (k == 1) g = gpu(xs[k].permute({0, 1, 3, 2}).contiguous()).permute({0, 1, 3, 2});
      gxs_dev.push_back(g);
    }
    REQUIRE(!gxs_dev[1].is_contiguous());
    Shape so = shapes[0];
    so[dim] = 6;
    auto y = outputs<T>(so);
    dispatch::call<ops::entries::ConcatForward, T>(Device::cpu(), xs, dim, y.cpu);
    dispatch::call<ops::entries::ConcatForward, T>(kGpu, gxs_dev, dim, y.gpu);
    require_equal(y.gpu, y.cpu, "y");

    const Tensor<T> gy = random<T>(so, seed++);
    std::vector<Tensor<T>> gc, gg;
    for (size_t k = 0; k < shapes.size(); ++k) {
      if (k == 2) {  // an input that needs no gradient
        gc.push_back(Tensor<T>());
        gg.push_back(Tensor<T>());
        continue;
      }
      auto o = outputs<T>(shapes[k]);
      gc.push_back(o.cpu);
      gg.push_back(o.gpu);
    }
    dispatch::call<ops::entries::ConcatBackward, T>(Device::cpu(), gy, dim, shapes, gc);
    dispatch::call<ops::entries::ConcatBackward, T>(kGpu, gpu(gy), dim, shapes, gg);
    for (size_t k = 0; k < 2; ++k) require_equal(gg[k], gc[k], "gx " + std::to_string(k));
  }
}

TEMPLATE_TEST_CASE("broadcasting add, sub and mul and sum_to_shape on the GPU equal the CPU's",
                   "[cuda][ops][broadcast]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{Shape{3, 7, 5}, Shape{3, 7, 5}}, {Shape{3, 1, 5}, Shape{4, 1}}, {Shape{1, 3, 1, 1}, Shape{3, 3, 7, 5}},
                        {Shape{}, Shape{2, 3}}, {Shape{7}, Shape{5, 1}}};
  uint64_t seed = 500;
  for (const Case& c : cases)
    for (ops::BinaryOp op : {ops::BinaryOp::Add, ops::BinaryOp::Sub, ops::BinaryOp::Mul}) {
      INFO("a " << c.a.str() << " b " << c.b.str() << " op " << static_cast<int>(op));
      const Tensor<T> a = random<T>(c.a, seed++), b = random<T>(c.b, seed++);
      const Shape so = ops::detail::broadcast_shape("test", c.a, c.b);
      auto y = outputs<T>(so);
      dispatch::call<ops::entries::BinaryForward, T>(Device::cpu(), a, b, op, y.cpu);
      dispatch::call<ops::entries::BinaryForward, T>(kGpu, gpu(a), gpu(b), op, y.gpu);
      require_equal(y.gpu, y.cpu, "out");
      // The gradient of each input: g summed back to its shape (exact: same order).
      const Tensor<T> g = random<T>(so, seed++);
      for (const Shape& target : {c.a, c.b}) {
        auto r = outputs<T>(target);
        dispatch::call<ops::entries::SumToShape, T>(Device::cpu(), g, r.cpu);
        dispatch::call<ops::entries::SumToShape, T>(kGpu, gpu(g), r.gpu);
        require_equal(r.gpu, r.cpu, "sum_to_shape " + target.str());
      }
    }
  // A transposed operand.
  const Tensor<T> a = random<T>(Shape{5, 7}, seed++), b = random<T>(Shape{7, 5}, seed++);
  auto y = outputs<T>(Shape{7, 5});
  dispatch::call<ops::entries::BinaryForward, T>(Device::cpu(), a.permute({1, 0}), b, ops::BinaryOp::Sub, y.cpu);
  dispatch::call<ops::entries::BinaryForward, T>(kGpu, gpu(a).permute({1, 0}), gpu(b), ops::BinaryOp::Sub, y.gpu);
  require_equal(y.gpu, y.cpu, "transposed a");
}

TEMPLATE_TEST_CASE("reductions on the GPU match the CPU: all, over dimensions, and their backward",
                   "[cuda][ops][reduce]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  const double rel = op_rel_tol<T>();
  uint64_t seed = 600;
  for (int64_t n : {int64_t(1), int64_t(35), int64_t(20000)}) {
    INFO("all of " << n);
    const Tensor<T> x = random<T>(Shape{n}, seed++);
    for (double scale : {1.0, 1.0 / double(n)}) {
      auto y = outputs<T>(Shape{});
      dispatch::call<ops::entries::ReduceAllForward, T>(Device::cpu(), x, scale, y.cpu);
      dispatch::call<ops::entries::ReduceAllForward, T>(kGpu, gpu(x), scale, y.gpu);
      require_close(y.gpu, y.cpu, rel, "sum of all");
    }
  }
  struct Geo {
    int64_t outer, R, inner;
  };
  const Geo geos[] = {{3, 35, 1}, {1, 7, 5}, {3, 3, 35}, {6, 1, 1}, {2, 0, 3}, {1, 3000, 1}};
  for (const Geo& g : geos) {
    INFO("outer " << g.outer << " R " << g.R << " inner " << g.inner);
    const Tensor<T> src = random<T>(Shape{g.outer, g.R, g.inner}, seed++);
    for (T scale : {T(1), T(0.25)}) {
      auto dst = outputs<T>(Shape{g.outer, g.inner});
      dispatch::call<ops::entries::ReduceForward, T>(Device::cpu(), src, g.outer, g.R, g.inner, scale, dst.cpu);
      dispatch::call<ops::entries::ReduceForward, T>(kGpu, gpu(src), g.outer, g.R, g.inner, scale, dst.gpu);
      require_close(dst.gpu, dst.cpu, rel, "reduce_forward");
      const Tensor<T> gr = random<T>(Shape{g.outer, g.inner}, seed++);
      auto back = outputs<T>(Shape{g.outer, g.R, g.inner});
      dispatch::call<ops::entries::ReduceBackward, T>(Device::cpu(), gr, g.outer, g.R, g.inner, scale, back.cpu);
      dispatch::call<ops::entries::ReduceBackward, T>(kGpu, gpu(gr), g.outer, g.R, g.inner, scale, back.gpu);
      require_equal(back.gpu, back.cpu, "reduce_backward");
    }
  }
}

TEMPLATE_TEST_CASE("softmax and log_softmax on the GPU match the CPU along any dimension, forward and backward",
                   "[cuda][ops][softmax]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  const double rel = op_rel_tol<T>();
  uint64_t seed = 700;
  const Shape s{3, 4, 7, 5};
  for (int d = 0; d < 4; ++d)
    for (bool log : {false, true}) {
      INFO("dim " << d << (log ? " log_softmax" : " softmax"));
      const ops::detail::SoftmaxGeometry geo = ops::detail::softmax_geometry(s, d);
      const Tensor<T> x = random<T>(s, seed++, -30.0, 30.0), gy = random<T>(s, seed++);
      auto y = outputs<T>(s);
      dispatch::call<ops::entries::SoftmaxForward, T>(Device::cpu(), x, geo, log, y.cpu);
      dispatch::call<ops::entries::SoftmaxForward, T>(kGpu, gpu(x), geo, log, y.gpu);
      require_close(y.gpu, y.cpu, rel, "y");
      auto gx = outputs<T>(s);
      dispatch::call<ops::entries::SoftmaxBackward, T>(Device::cpu(), y.cpu, gy, geo, log, gx.cpu);
      dispatch::call<ops::entries::SoftmaxBackward, T>(kGpu, gpu(y.cpu), gpu(gy), geo, log, gx.gpu);
      require_close(gx.gpu, gx.cpu, rel, "gx");
    }
}

TEMPLATE_TEST_CASE("l1 and smooth l1 losses on the GPU match the CPU under every reduction", "[cuda][ops][loss]",
                   float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  const double rel = op_rel_tol<T>();
  uint64_t seed = 800;
  for (const Shape& s : {Shape{3, 21, 3}, Shape{1, 21, 2}, Shape{5000}})
    for (T beta : {T(0), T(0.5)})
      for (ops::Reduction red : {ops::Reduction::None, ops::Reduction::Mean, ops::Reduction::Sum}) {
        INFO("shape " << s.str() << " beta " << beta << " reduction " << static_cast<int>(red));
        const Tensor<T> p = random<T>(s, seed++), t = random<T>(s, seed++);
        // Exact ties (d = 0) where sign() must give 0.
        Tensor<T> tt = t.clone();
        {
          std::vector<T> v = tt.to_vector(), pv = p.to_vector();
          v[0] = pv[0];
          tt = Tensor<T>::from_data(s, v);
        }
        const Shape so = red == ops::Reduction::None ? s : Shape{};
        auto out = outputs<T>(so);
        dispatch::call<ops::entries::RegressionLossForward, T>(Device::cpu(), p, tt, red, beta, out.cpu);
        dispatch::call<ops::entries::RegressionLossForward, T>(kGpu, gpu(p), gpu(tt), red, beta, out.gpu);
        require_close(out.gpu, out.cpu, rel, "loss");
        const Tensor<T> gy = random<T>(so, seed++);
        auto gp = outputs<T>(s), gt = outputs<T>(s);
        dispatch::call<ops::entries::RegressionLossBackward, T>(Device::cpu(), p, tt, gy, red, beta, gp.cpu, gt.cpu);
        dispatch::call<ops::entries::RegressionLossBackward, T>(kGpu, gpu(p), gpu(tt), gpu(gy), red, beta, gp.gpu,
                                                                gt.gpu);
        require_close(gp.gpu, gp.cpu, rel, "gpred");
        require_close(gt.gpu, gt.cpu, rel, "gtarget");
        // Only the target's gradient.
        auto gt2 = outputs<T>(s);
        dispatch::call<ops::entries::RegressionLossBackward, T>(kGpu, gpu(p), gpu(tt), gpu(gy), red, beta, Tensor<T>(),
                                                                gt2.gpu);
        require_close(gt2.gpu, gt.cpu, rel, "gtarget alone");
      }
}

TEMPLATE_TEST_CASE("the convolution bias gradient and epilogue kernels match the CPU", "[cuda][ops][conv_epilogue]",
                   float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  uint64_t seed = 900;
  for (const Shape& s : kImages) {
    INFO("shape " << s.str());
    const Tensor<T> gy = random<T>(s, seed++);
    auto gb = outputs<T>(Shape{s[1]});
    dispatch::call<ops::entries::ConvBiasBackward, T>(Device::cpu(), gy, gb.cpu);
    dispatch::call<ops::entries::ConvBiasBackward, T>(kGpu, gpu(gy), gb.gpu);
    require_close(gb.gpu, gb.cpu, op_rel_tol<T>(), "gb");
    // The epilogue against ConvEpilogue::finish, the CPU's per-value rule.
    const Tensor<T> y0 = random<T>(s, seed++), bias = random<T>(Shape{s[1]}, seed++), res = random<T>(s, seed++);
    for (int mode = 0; mode < 8; ++mode) {
      ops::detail::ConvEpilogue<T> e;
      e.relu = mode & 1;
      e.relu_after_residual = mode & 2;
      const bool with_res = mode & 4;
      const Tensor<T> gres = gpu(res);
      if (with_res) e.residual = res.data();
      std::vector<T> want = y0.to_vector();
      const std::vector<T> bv = bias.to_vector(), rv = res.to_vector();
      const int64_t HW = s[2] * s[3];
      for (size_t i = 0; i < want.size(); ++i)
        want[i] = e.finish(want[i] + bv[static_cast<size_t>((int64_t(i) / HW) % s[1])], rv[i]);
      Tensor<T> gy0 = gpu(y0);
      cuda::conv_epilogue(gy0.data(), gpu(bias).data(), with_res ? gres.data() : static_cast<const T*>(nullptr), s[0],
                          s[1], HW, e.relu, e.relu_after_residual, cuda::current_cuda_stream(kGpu));
      require_equal(gy0, Tensor<T>::from_data(s, want), "epilogue mode " + std::to_string(mode));
    }
  }
}

TEMPLATE_TEST_CASE("Adam on the GPU (one fused launch) equals the CPU Adam within 1e-6, per-group lr",
                   "[cuda][ops][adam]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  // Three groups: plain, weight decay + AMSGrad, a tiny lr; parameters of odd sizes.
  const std::vector<std::vector<Shape>> shapes = {{Shape{3, 3, 3, 3}, Shape{3}}, {Shape{7, 5}, Shape{1}},
                                                  {Shape{5000}}};
  uint64_t seed = 1000;
  std::vector<optim::ParamGroup<T>> cpu_groups, gpu_groups;
  std::vector<Tensor<T>> cpu_params, gpu_params;
  for (size_t gi = 0; gi < shapes.size(); ++gi) {
    optim::ParamGroup<T> gc, gg;
    gc.name = gg.name = "group" + std::to_string(gi);
    gc.lr = gg.lr = gi == 2 ? 1e-5 : 1e-2 * double(gi + 1);
    gc.weight_decay = gg.weight_decay = gi == 1 ? 0.01 : 0.0;
    gc.amsgrad = gg.amsgrad = gi == 1;
    for (const Shape& s : shapes[gi]) {
      Tensor<T> p = random<T>(s, seed++);
      Tensor<T> q = gpu(p);
      p.set_requires_grad();
      q.set_requires_grad();
      gc.params.push_back(p);
      gg.params.push_back(q);
      cpu_params.push_back(p);
      gpu_params.push_back(q);
    }
    cpu_groups.push_back(gc);
    gpu_groups.push_back(gg);
  }
  optim::Adam<T> cpu_adam(cpu_groups), gpu_adam(gpu_groups);
  gpu_adam.to(kGpu);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      const Tensor<T> g = random<T>(cpu_params[i].shape(), seed++);
      cpu_params[i].set_grad(g.clone());
      gpu_params[i].set_grad(gpu(g));
    }
    cpu_adam.step();
    gpu_adam.step();
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      const std::vector<T> a = gpu_params[i].to(Device::cpu()).to_vector(), b = cpu_params[i].to_vector();
      for (size_t k = 0; k < a.size(); ++k) {
        INFO("step " << step << " param " << i << " element " << k);
        REQUIRE(std::fabs(double(a[k]) - double(b[k])) <= 1e-6);
      }
    }
  }
}

TEMPLATE_TEST_CASE("the back-projection of Eq. (1)-(3) on the GPU equals the CPU's, forward and backward",
                   "[cuda][ops][backproject]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  uint64_t seed = 1100;
  for (int64_t B : {int64_t(1), int64_t(3)}) {
    INFO("batch " << B);
    const int64_t J = 21;
    const Tensor<T> uvd = random<T>(Shape{B, J, 3}, seed++, 0.0, 64.0);
    const Tensor<T> k = random<T>(Shape{B, 4}, seed++, 20.0, 200.0);
    const Tensor<T> z_root = random<T>(Shape{B}, seed++, 300.0, 900.0), s0 = random<T>(Shape{B}, seed++, 5.0, 50.0);
    auto xyz = outputs<T>(Shape{B, J, 3});
    dispatch::call<ops::entries::BackprojectForward, T>(Device::cpu(), uvd, k, z_root, s0, xyz.cpu);
    dispatch::call<ops::entries::BackprojectForward, T>(kGpu, gpu(uvd), gpu(k), gpu(z_root), gpu(s0), xyz.gpu);
    // The same LGH_HOST_DEVICE math on both sides; the device may contract a
    // product and a sum into one FMA, hence the elementwise tolerance.
    require_close(xyz.gpu, xyz.cpu, op_rel_tol<T>(), "xyz");
    const Tensor<T> dxyz = random<T>(Shape{B, J, 3}, seed++);
    auto duvd = outputs<T>(Shape{B, J, 3});
    dispatch::call<ops::entries::BackprojectBackward, T>(Device::cpu(), uvd, k, z_root, s0, dxyz, duvd.cpu);
    dispatch::call<ops::entries::BackprojectBackward, T>(kGpu, gpu(uvd), gpu(k), gpu(z_root), gpu(s0), gpu(dxyz),
                                                         duvd.gpu);
    require_close(duvd.gpu, duvd.cpu, op_rel_tol<T>(), "duvd");
  }
}

TEMPLATE_TEST_CASE("a chain of ops through autograd on the GPU gives the CPU's loss and gradients",
                   "[cuda][ops][autograd]", float, double) {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  using T = TestType;
  // BN (training) -> ReLU -> max-pool -> upsample -> concat with the input ->
  // broadcast multiply -> softmax over channels -> mean over W -> slice ->
  // l1 loss: every public op allocates on the inputs' device and the engine
  // sums the two paths into x's gradient on the device.
  const double rel = op_rel_tol<T>() * 10;
  const Shape s{3, 3, 8, 6};
  Tensor<T> x = random<T>(s, 1200), w = random<T>(Shape{3}, 1201, 0.5, 1.5), b = random<T>(Shape{3}, 1202);
  Tensor<T> scale = random<T>(Shape{1, 6, 1, 1}, 1203);
  const Tensor<T> target = random<T>(Shape{3, 4, 8}, 1204, 0.0, 0.5);
  Tensor<T> gx = gpu(x), gw = gpu(w), gb = gpu(b), gscale = gpu(scale);
  for (Tensor<T>* t : {&x, &w, &b, &scale, &gx, &gw, &gb, &gscale}) t->set_requires_grad();
  Tensor<T> rm = Tensor<T>::zeros(Shape{3}), rv = Tensor<T>::ones(Shape{3});
  Tensor<T> grm = gpu(rm), grv = gpu(rv);
  auto chain = [](const Tensor<T>& in, const Tensor<T>& wt, const Tensor<T>& bs, const Tensor<T>& sc,
                  const Tensor<T>& mean, const Tensor<T>& var, const Tensor<T>& tgt) {
    Tensor<T> h = ops::relu(ops::batch_norm2d(in, wt, bs, mean, var, true));
    h = ops::upsample_nearest2x(ops::max_pool2d(h, 2, 2));
    h = ops::mul(ops::concat<T>({h, in}, 1), sc);
    h = ops::mean(ops::softmax(h, 1), {3});
    return ops::l1_loss(ops::slice(h, 1, 1, 5), tgt);
  };
  const Tensor<T> loss = chain(x, w, b, scale, rm, rv, target);
  const Tensor<T> gloss = chain(gx, gw, gb, gscale, grm, grv, gpu(target));
  REQUIRE(gloss.device() == kGpu);
  require_close(gloss, loss, rel, "loss");
  autograd::backward<T>(loss);
  autograd::backward<T>(gloss);
  require_close(gx.grad(), x.grad(), rel, "x.grad");
  require_close(gw.grad(), w.grad(), rel, "weight.grad");
  require_close(gb.grad(), b.grad(), rel, "bias.grad");
  require_close(gscale.grad(), scale.grad(), rel, "scale.grad");
  require_close(grm, rm, rel, "running_mean");
  require_close(grv, rv, rel, "running_var");
}
