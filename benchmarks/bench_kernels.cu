// Microbenchmark of the fused CUDA kernels (kernels/*.cuh) at the paper's
// shapes (J = 21, K = 3, P = 32, 64 x 64 maps; batch 1, 32 and 64): for each
// kernel and pass, warm-up, then per iteration an L2 flush (a memset of twice
// the L2 size, outside the timed region) and CUDA-event timing of one call.
// Reports the median and minimum time, the bytes the op must move (each input
// read once, each output written once), GB/s, and that rate as a percentage
// of a device-to-device copy measured in the same run (bytes read + written).
// The fusion also reports GFLOP/s. Writes JSON in the format of
// benchmarks/torch_fused_ops.py (the unfused PyTorch sequences).
//
//   bench_kernels [--json OUT] [--iters N] [--warmup N] [--batches 1,32,64]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "adam.cuh"
#include "common.cuh"
#include "group_fusion.cuh"
#include "group_select.cuh"
#include "gumbel_softmax.cuh"
#include "lgh/core/philox.hpp"
#include "soft_argmax_depth.cuh"

using namespace lgh;

namespace {

// ---- device memory and inputs ---------------------------------------------------

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) { LGH_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T))); }
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray& operator=(DeviceArray&&) = delete;
  ~DeviceArray() {
    if (p_) cudaFree(p_);
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Uniform values in [lo, hi) from a Philox stream: never zeros (zeros hide
// unwritten outputs and can run faster than real data).
__global__ void fill_uniform(float* p, int64_t n, Philox gen, float lo, float hi) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) p[i] = lo + (hi - lo) * gen.uniform(static_cast<uint64_t>(i));
}

uint64_t g_stream = 1;
DeviceArray<float> random_array(size_t n, float lo, float hi) {
  DeviceArray<float> a(n);
  if (n) {
    cuda::launch_kernel("fill_uniform", fill_uniform, static_cast<unsigned>((n + 255) / 256), 256, 0, nullptr, a.get(),
                        static_cast<int64_t>(n), Philox(2021, g_stream++), lo, hi);
  }
  return a;
}

// ---- timing ----------------------------------------------------------------------

struct Timing {
  double median_us = 0, min_us = 0;
};

class Timer {
 public:
  Timer(size_t l2_bytes, cudaStream_t stream) : flush_(std::max<size_t>(2 * l2_bytes, 1 << 20)), stream_(stream) {}

  // Warm-up, then `iters` timed calls, each after an L2 flush.
  Timing time(const std::function<void(cudaStream_t)>& fn, int warmup, int iters) {
    for (int i = 0; i < warmup; ++i) {
      flush(i);
      fn(stream_);
    }
    std::vector<cudaEvent_t> start(iters), stop(iters);
    for (int i = 0; i < iters; ++i) {
      LGH_CUDA_CHECK(cudaEventCreate(&start[i]));
      LGH_CUDA_CHECK(cudaEventCreate(&stop[i]));
    }
    for (int i = 0; i < iters; ++i) {
      flush(i);
      LGH_CUDA_CHECK(cudaEventRecord(start[i], stream_));
      fn(stream_);
      LGH_CUDA_CHECK(cudaEventRecord(stop[i], stream_));
    }
    LGH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<double> us(iters);
    for (int i = 0; i < iters; ++i) {
      float ms = 0;
      LGH_CUDA_CHECK(cudaEventElapsedTime(&ms, start[i], stop[i]));
      us[i] = 1000.0 * ms;
      cudaEventDestroy(start[i]);
      cudaEventDestroy(stop[i]);
    }
    std::sort(us.begin(), us.end());
    Timing t;
    t.median_us = us[us.size() / 2];
    t.min_us = us.front();
    return t;
  }

 private:
  void flush(int i) { LGH_CUDA_CHECK(cudaMemsetAsync(flush_.get(), i & 0xff, flush_.size(), stream_)); }
  DeviceArray<unsigned char> flush_;
  cudaStream_t stream_;
};

// Device-to-device copy bandwidth, bytes read + written per second.
double copy_bandwidth(size_t l2_bytes, cudaStream_t stream, int iters) {
  const size_t bytes = std::max<size_t>(size_t(1) << 30, 16 * l2_bytes);
  DeviceArray<unsigned char> a(bytes), b(bytes);
  LGH_CUDA_CHECK(cudaMemsetAsync(a.get(), 1, bytes, stream));
  Timer timer(0, stream);
  const Timing t = timer.time(
      [&](cudaStream_t s) { LGH_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s)); },
      3, iters);
  return 2.0 * static_cast<double>(bytes) / (t.median_us * 1e-6);
}

// ---- results ---------------------------------------------------------------------------

struct Result {
  std::string op, pass, shape;
  int64_t batch = 0;
  double bytes = 0, flops = 0;
  Timing t;
};

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

// ---- the benchmarks ----------------------------------------------------------------------

constexpr int64_t kJ = 21, kK = 3, kP = 32, kH = 64, kW = 64, kC = 3;
constexpr int64_t kParams = 7502833;  // the paper model's parameter count

struct Context {
  Timer& timer;
  int warmup, iters;
  std::vector<Result>& results;
  void run(const std::string& op, const std::string& pass, int64_t batch, const std::string& shape, double bytes,
           double flops, const std::function<void(cudaStream_t)>& fn) {
    Result r;
    r.op = op;
    r.pass = pass;
    r.batch = batch;
    r.shape = shape;
    r.bytes = bytes;
    r.flops = flops;
    r.t = timer.time(fn, warmup, iters);
    results.push_back(r);
    std::cerr << "  " << op << " " << pass << " batch " << batch << ": " << r.t.median_us << " us\n";
  }
};

void bench_gumbel(Context& ctx) {
  const int64_t n = kJ * kK;
  auto theta = random_array(n, -1, 1), ys = random_array(n, 0, 1), yh = random_array(n, 0, 1),
       dy = random_array(n, -1, 1), dt = random_array(n, 0, 1);
  math::GumbelNoiseSource<float> noise;
  noise.kind = math::GumbelNoiseSource<float>::Stream;
  noise.philox = Philox(1, 2);
  const std::string shape = "theta [21, 3]";
  const double f = sizeof(float);
  // Sample + straight-through: read theta, write the relaxed and the one-hot rows.
  ctx.run("gumbel_softmax", "forward", 1, shape, 3 * n * f, 0, [&](cudaStream_t s) {
    cuda::gumbel_softmax_forward(theta.get(), kJ, kK, 0.2f, noise, ys.get(), yh.get(), s);
  });
  ctx.run("gumbel_softmax", "backward", 1, shape, 3 * n * f, 0, [&](cudaStream_t s) {
    cuda::gumbel_softmax_backward(ys.get(), dy.get(), kJ, kK, 0.2f, dt.get(), s);
  });
}

void bench_group_select(Context& ctx, int64_t B) {
  const int64_t nx = B * kK * kJ * kC, ny = B * kJ * kC, ns = kJ * kK;
  auto s = random_array(ns, 0, 1), x = random_array(nx, 0, 64), y = random_array(ny, 0, 1),
       dy = random_array(ny, -1, 1), ds = random_array(ns, 0, 1), dx = random_array(nx, 0, 1);
  const float a[3] = {4.f, 4.f, 1.f};
  const cuda::ChannelScale<float> scale = cuda::make_channel_scale(a, kC);
  std::ostringstream shape;
  shape << "x [" << B << ", 3, 21, 3]";
  const double f = sizeof(float);
  ctx.run("group_select", "forward", B, shape.str(), (nx + ny + ns) * f, 0, [&](cudaStream_t st) {
    cuda::group_select_forward(s.get(), x.get(), B, kK, kJ, kC, scale, y.get(), st);
  });
  ctx.run("group_select", "backward", B, shape.str(), (2 * nx + ny + 2 * ns) * f, 0, [&](cudaStream_t st) {
    cuda::group_select_backward(s.get(), x.get(), dy.get(), B, kK, kJ, kC, scale, ds.get(), dx.get(), st);
  });
}

void bench_group_fusion(Context& ctx, int64_t B) {
  const int64_t HW = kH * kW, M = kK * kP, n = B * kP * HW;
  std::vector<DeviceArray<float>> F, G, dG, dF, W, b, sc, sh, dW, db;
  for (int64_t k = 0; k < kK; ++k) {
    F.push_back(random_array(n, -1, 1));
    G.push_back(random_array(n, 0, 1));
    dG.push_back(random_array(n, -1, 1));
    dF.push_back(random_array(n, 0, 1));
    W.push_back(random_array(kP * M, -0.2f, 0.2f));
    b.push_back(random_array(kP, -0.1f, 0.1f));
    sc.push_back(random_array(kP, 0.5f, 1.5f));
    sh.push_back(random_array(kP, -0.1f, 0.1f));
    dW.push_back(random_array(kP * M, 0, 1));
    db.push_back(random_array(kP, 0, 1));
  }
  auto cp = [](const std::vector<DeviceArray<float>>& v) {
    std::vector<const float*> p;
    for (const auto& a : v) p.push_back(a.get());
    return p;
  };
  auto mp = [](const std::vector<DeviceArray<float>>& v) {
    std::vector<float*> p;
    for (const auto& a : v) p.push_back(a.get());
    return p;
  };
  const auto f = cp(F), w = cp(W), bb = cp(b), s = cp(sc), h = cp(sh), g = cp(dG);
  const auto o = mp(G), df = mp(dF), dw = mp(dW), dbb = mp(db);
  const size_t ws_bytes = cuda::group_fusion_backward_workspace_bytes<float>(kK, B, kP, HW, true);
  DeviceArray<unsigned char> ws(ws_bytes);
  std::ostringstream shape;
  shape << "3 x [" << B << ", 32, 64, 64]";
  const double fb = sizeof(float), feat = static_cast<double>(kK * n), wts = static_cast<double>(kK * kP * M);
  const double gemm = 2.0 * B * HW * M * M;  // one GEMM of M x M by M x HW per image
  ctx.run("group_fusion", "forward", B, shape.str(), (2 * feat + wts + kK * kP) * fb, gemm, [&](cudaStream_t st) {
    cuda::group_fusion_forward(f.data(), w.data(), bb.data(), kK, B, kP, HW, o.data(),
                               static_cast<const float* const*>(nullptr), static_cast<const float* const*>(nullptr),
                               false, st);
  });
  ctx.run("group_fusion", "forward_eval", B, shape.str(), (2 * feat + wts + 3 * kK * kP) * fb, gemm,
          [&](cudaStream_t st) {
            cuda::group_fusion_forward(f.data(), w.data(), bb.data(), kK, B, kP, HW, o.data(), s.data(), h.data(),
                                       true, st);
          });
  // Backward: read F, dG, W; write dF, dW, db. Two GEMMs (input and weight gradient).
  ctx.run("group_fusion", "backward", B, shape.str(), (3 * feat + 2 * wts + kK * kP) * fb, 2 * gemm,
          [&](cudaStream_t st) {
            cuda::group_fusion_backward(f.data(), w.data(), g.data(), kK, B, kP, HW, df.data(), dw.data(),
                                        dbb.data(), ws.get(), ws_bytes, st);
          });
}

void bench_soft_argmax(Context& ctx, int64_t B) {
  const int64_t maps = B * kJ, n = maps * kH * kW;
  auto h = random_array(n, -1, 1), dm = random_array(n, -1, 1), beta = random_array(kJ, 1, 10),
       uvd = random_array(maps * 3, 0, 1), stats = random_array(maps * 2, 0, 1), xyz = random_array(maps * 3, 0, 1),
       duvd = random_array(maps * 3, -1, 1), dxyz = random_array(maps * 3, -1, 1), dh = random_array(n, 0, 1),
       ddm = random_array(n, 0, 1), dbeta = random_array(kJ, 0, 1), k = random_array(B * 4, 100, 200),
       zr = random_array(B, 400, 800), s0 = random_array(B, 20, 60);
  cuda::Backprojection<float> bp;
  bp.intrinsics = k.get();
  bp.z_root = zr.get();
  bp.s0 = s0.get();
  // Real statistics for the backward: run the forward once.
  cuda::soft_argmax_depth_forward(h.get(), dm.get(), beta.get(), B, kJ, kH, kW, uvd.get(), stats.get(), bp,
                                  xyz.get(), nullptr);
  LGH_CUDA_CHECK(cudaDeviceSynchronize());
  const size_t ws_bytes = cuda::soft_argmax_depth_backward_workspace_bytes<float>(B, kJ);
  DeviceArray<unsigned char> ws(ws_bytes);
  std::ostringstream shape;
  shape << "[" << B << ", 21, 64, 64]";
  const double f = sizeof(float), maps_d = static_cast<double>(maps), px = static_cast<double>(n);
  ctx.run("soft_argmax_depth", "forward", B, shape.str(), (2 * px + kJ + 5 * maps_d) * f, 0, [&](cudaStream_t st) {
    cuda::soft_argmax_depth_forward(h.get(), dm.get(), beta.get(), B, kJ, kH, kW, uvd.get(), stats.get(),
                                    cuda::Backprojection<float>(), static_cast<float*>(nullptr), st);
  });
  ctx.run("soft_argmax_depth", "forward_backproject", B, shape.str(), (2 * px + kJ + 8 * maps_d + 6 * B) * f, 0,
          [&](cudaStream_t st) {
            cuda::soft_argmax_depth_forward(h.get(), dm.get(), beta.get(), B, kJ, kH, kW, uvd.get(), stats.get(), bp,
                                            xyz.get(), st);
          });
  // Backward from dxyz through the fused Eq. (3): read h, dm, beta, uvd, stats,
  // dxyz and the camera data; write dh, ddm, dbeta.
  ctx.run("soft_argmax_depth", "backward_backproject", B, shape.str(), (4 * px + 2 * kJ + 8 * maps_d + 6 * B) * f, 0,
          [&](cudaStream_t st) {
            cuda::soft_argmax_depth_backward(h.get(), dm.get(), beta.get(), B, kJ, kH, kW, uvd.get(), stats.get(),
                                             static_cast<const float*>(nullptr), dxyz.get(), bp, dh.get(), ddm.get(),
                                             dbeta.get(), ws.get(), ws_bytes, st);
          });
}

void bench_adam(Context& ctx) {
  // The paper's three groups: theta (21 x 3), the fusion (3 x (32 x 96 + 32)), the rest.
  const int64_t sizes[3] = {kJ * kK, kK * (kP * kK * kP + kP), kParams - kJ * kK - kK * (kP * kK * kP + kP)};
  const double lrs[3] = {1e-1, 1e-2, 1e-4};
  auto p = random_array(kParams, -1, 1), g = random_array(kParams, -1, 1), m = random_array(kParams, -0.1f, 0.1f),
       v = random_array(kParams, 0, 0.01f);
  std::vector<cuda::launch::AdamRun<float>> runs;
  int64_t off = 0;
  for (int i = 0; i < 3; ++i) {
    cuda::launch::AdamRun<float> r;
    r.param = p.get() + off;
    r.grad = g.get() + off;
    r.exp_avg = m.get() + off;
    r.exp_avg_sq = v.get() + off;
    r.max_exp_avg_sq = nullptr;
    r.n = sizes[i];
    r.scalars = optim::adam_step_scalars<float>(lrs[i], 0.9, 0.999, 1e-8, 0, 100);
    runs.push_back(r);
    off += sizes[i];
  }
  // Read param, grad, exp_avg, exp_avg_sq; write param, exp_avg, exp_avg_sq.
  ctx.run("adam", "step", 1, "7502833 parameters in 3 groups", 7.0 * kParams * sizeof(float), 0,
          [&](cudaStream_t st) { cuda::adam_step(runs.data(), runs.size(), st); });
}

std::vector<int64_t> parse_batches(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

int usage() {
  std::cerr << "usage: bench_kernels [--json OUT] [--iters N] [--warmup N] [--batches 1,32,64]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int iters = 50, warmup = 5;
  std::vector<int64_t> batches = {1, 32, 64};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--json")
      json_path = argv[++i];
    else if (a == "--iters")
      iters = std::atoi(argv[++i]);
    else if (a == "--warmup")
      warmup = std::atoi(argv[++i]);
    else if (a == "--batches")
      batches = parse_batches(argv[++i]);
    else
      return usage();
  }
  if (iters < 1 || warmup < 0 || batches.empty()) return usage();
  try {
    if (cuda::device_count() == 0) {
      std::cerr << "error: no CUDA device available\n";
      return 1;
    }
    int dev = 0;
    cudaDeviceProp prop{};
    LGH_CUDA_CHECK(cudaGetDevice(&dev));
    LGH_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    const size_t l2 = static_cast<size_t>(prop.l2CacheSize);
    cudaStream_t stream = nullptr;
    LGH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    const double copy_bps = copy_bandwidth(l2, stream, 20);
    std::cerr << prop.name << ": device-to-device copy " << copy_bps / 1e9 << " GB/s (read + write)\n";
    std::vector<Result> results;
    Timer timer(l2, stream);
    Context ctx{timer, warmup, iters, results};
    bench_gumbel(ctx);
    bench_adam(ctx);
    for (int64_t B : batches) {
      bench_group_select(ctx, B);
      bench_group_fusion(ctx, B);
      bench_soft_argmax(ctx, B);
    }
    LGH_CUDA_CHECK(cudaStreamSynchronize(stream));
    LGH_CUDA_CHECK(cudaStreamDestroy(stream));

    std::ostringstream js;
    js << std::setprecision(6);
    js << "{\n  \"impl\": \"lgh_fused\",\n  \"device\": \"" << json_escape(prop.name) << "\",\n"
       << "  \"multiprocessors\": " << prop.multiProcessorCount << ",\n  \"l2_bytes\": " << l2 << ",\n"
       << "  \"copy_gb_per_s\": " << copy_bps / 1e9 << ",\n  \"iters\": " << iters << ",\n  \"warmup\": " << warmup
       << ",\n  \"results\": [\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      const double gbs = r.bytes / (r.t.median_us * 1e-6) / 1e9;
      js << "    {\"op\": \"" << r.op << "\", \"pass\": \"" << r.pass << "\", \"impl\": \"lgh_fused\", \"batch\": "
         << r.batch << ", \"dtype\": \"float32\", \"shape\": \"" << json_escape(r.shape)
         << "\", \"time_us\": " << r.t.median_us << ", \"time_us_min\": " << r.t.min_us << ", \"bytes\": " << r.bytes
         << ", \"gb_per_s\": " << gbs << ", \"pct_of_copy\": " << 100.0 * gbs * 1e9 / copy_bps
         << ", \"gflop_per_s\": ";
      if (r.flops > 0)
        js << r.flops / (r.t.median_us * 1e-6) / 1e9;
      else
        js << "null";
      js << "}" << (i + 1 < results.size() ? "," : "") << "\n";
    }
    js << "  ]\n}\n";
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      if (!out) {
        std::cerr << "error: cannot write '" << json_path << "'\n";
        return 1;
      }
      out << js.str();
    }

    // The table last.
    std::printf("%-18s %-20s %5s %10s %12s %9s %7s %9s\n", "op", "pass", "batch", "median_us", "bytes", "GB/s",
                "%copy", "GFLOP/s");
    for (const Result& r : results) {
      const double gbs = r.bytes / (r.t.median_us * 1e-6) / 1e9;
      std::printf("%-18s %-20s %5lld %10.2f %12.0f %9.1f %6.1f%% ", r.op.c_str(), r.pass.c_str(),
                  static_cast<long long>(r.batch), r.t.median_us, r.bytes, gbs, 100.0 * gbs * 1e9 / copy_bps);
      if (r.flops > 0)
        std::printf("%9.0f\n", r.flops / (r.t.median_us * 1e-6) / 1e9);
      else
        std::printf("%9s\n", "-");
    }
    std::printf("device-to-device copy: %.1f GB/s (%s)\n", copy_bps / 1e9, prop.name);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
