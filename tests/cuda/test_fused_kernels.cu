// The fused CUDA kernels (kernels/*.cuh) against their CPU twins (the lgh::ops
// CPU functions and lgh::optim::Adam, run by fused_reference.cpp): forward and
// backward, float and double, on random shapes including odd sizes, with the
// vector and the scalar paths of each kernel. Device outputs are pre-filled
// with NaN and CPU outputs with another value, so an element that either side
// leaves unwritten fails the comparison; the tolerance is abs + |ref| * rel
// with abs = rel * max|ref|. Every launch is REQUIREd not to throw and every
// sync to succeed. Without a device the GPU cases skip (the executable then
// reads SKIPPED in ctest); the launchers' argument checks run anyway.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "adam.cuh"
#include "cuda_test_utils.cuh"
#include "fused_reference.hpp"
#include "group_fusion.cuh"
#include "group_select.cuh"
#include "gumbel_softmax.cuh"
#include "lgh/core/philox.hpp"
#include "philox.cuh"
#include "soft_argmax_depth.cuh"

using namespace lgh;
using lgh_test::DeviceBuffer;
using lgh_test::require_device_ok;

namespace {

// ---- helpers ------------------------------------------------------------------

template <typename T>
std::vector<T> random_vec(size_t n, PhiloxEngine& rng, double lo, double hi) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform(lo, hi));
  return v;
}

template <typename T>
std::vector<std::vector<T>> random_vecs(size_t count, size_t n, PhiloxEngine& rng, double lo, double hi) {
  std::vector<std::vector<T>> v;
  for (size_t i = 0; i < count; ++i) v.push_back(random_vec<T>(n, rng, lo, hi));
  return v;
}

// Relative tolerance of each comparison, by precision.
template <typename T>
constexpr double rel_tol() {
  return sizeof(T) == sizeof(float) ? 2e-5 : 1e-12;
}

// |gpu - cpu| <= abs + |cpu| * rel element-wise, abs = rel * max|cpu|: the
// first offender is reported, and a NaN (an unwritten device element) never
// passes.
template <typename T>
void require_close(const std::vector<T>& gpu, const std::vector<T>& cpu, double rel, const std::string& what) {
  REQUIRE(gpu.size() == cpu.size());
  double scale = 0;
  for (T c : cpu) scale = std::fmax(scale, std::fabs(static_cast<double>(c)));
  const double abs_tol = rel * scale;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double g = gpu[i], c = cpu[i];
    if (!(std::fabs(g - c) <= abs_tol + std::fabs(c) * rel) && bad++ == 0) first = i;
  }
  INFO(what << ": " << bad << " of " << cpu.size() << " elements differ; first at " << first << ": device "
            << (bad ? static_cast<double>(gpu[first]) : 0.0) << " vs host " << (bad ? static_cast<double>(cpu[first]) : 0.0)
            << " (abs " << abs_tol << ", rel " << rel << ")");
  REQUIRE(bad == 0);
}

template <typename T>
void require_equal(const std::vector<T>& gpu, const std::vector<T>& cpu, const std::string& what) {
  REQUIRE(gpu.size() == cpu.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < cpu.size(); ++i)
    if (!(gpu[i] == cpu[i]) && bad++ == 0) first = i;
  INFO(what << ": " << bad << " of " << cpu.size() << " elements differ; first at " << first);
  REQUIRE(bad == 0);
}

template <typename T>
DeviceBuffer<T> nan_buffer(size_t n, size_t offset = 0) {
  return DeviceBuffer<T>::filled_bytes(n, 0xff, offset);
}

template <typename T>
const char* type_name() {
  return sizeof(T) == sizeof(float) ? "float" : "double";
}

// Host arrays of the device pointers of K buffers.
template <typename T>
std::vector<const T*> cptrs(const std::vector<DeviceBuffer<T>>& bufs) {
  std::vector<const T*> p;
  for (const auto& b : bufs) p.push_back(b.get());
  return p;
}
template <typename T>
std::vector<T*> ptrs(const std::vector<DeviceBuffer<T>>& bufs) {
  std::vector<T*> p;
  for (const auto& b : bufs) p.push_back(b.get());
  return p;
}
template <typename T>
std::vector<DeviceBuffer<T>> upload_all(const std::vector<std::vector<T>>& v, size_t offset = 0) {
  std::vector<DeviceBuffer<T>> out;
  for (const auto& x : v) out.emplace_back(x, offset);
  return out;
}
template <typename T>
std::vector<DeviceBuffer<T>> nan_buffers(size_t count, size_t n, size_t offset = 0) {
  std::vector<DeviceBuffer<T>> out;
  for (size_t i = 0; i < count; ++i) out.push_back(nan_buffer<T>(n, offset));
  return out;
}

// ---- Philox ----------------------------------------------------------------------

__global__ void philox_draws(Philox gen, uint64_t offset, int64_t n, uint32_t* bits, float* uf, double* ud,
                             float* gf, double* gd) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const uint64_t k = offset + static_cast<uint64_t>(i);
  bits[i] = gen.bits(k);
  uf[i] = gen.uniform(k);
  ud[i] = gen.uniform_double(k);
  gf[i] = math::gumbel_noise_at<float>(gen, k);
  gd[i] = math::gumbel_noise_at<double>(gen, k);
}

}  // namespace

TEST_CASE("Philox on the device draws exactly the CPU's numbers for the same seed and offset", "[cuda][philox]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int64_t n = 4099;
  struct Case {
    uint64_t seed, stream, offset;
  };
  for (const Case c : {Case{0, 0, 0}, Case{2021, 7, 5}, Case{0xdeadbeefcafef00dULL, 1ULL << 40, (1ULL << 32) - 1000},
                       Case{42, 3, (1ULL << 34) + 2}}) {
    INFO("seed " << c.seed << ", stream " << c.stream << ", offset " << c.offset);
    const Philox gen(c.seed, c.stream);
    DeviceBuffer<uint32_t> bits(n);
    DeviceBuffer<float> uf = nan_buffer<float>(n), gf = nan_buffer<float>(n), launcher = nan_buffer<float>(n);
    DeviceBuffer<double> ud = nan_buffer<double>(n), gd = nan_buffer<double>(n);
    REQUIRE_NOTHROW(cuda::launch_kernel("philox_draws", philox_draws, static_cast<unsigned>((n + 127) / 128), 128, 0,
                                        nullptr, gen, c.offset, n, bits.get(), uf.get(), ud.get(), gf.get(), gd.get()));
    REQUIRE_NOTHROW(cuda::philox_uniform(gen, c.offset, n, launcher.get()));
    require_device_ok();
    std::vector<uint32_t> cbits(n);
    std::vector<float> cuf(n), cgf(n);
    std::vector<double> cud(n), cgd(n);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t k = c.offset + static_cast<uint64_t>(i);
      cbits[i] = gen.bits(k);
      cuf[i] = gen.uniform(k);
      cud[i] = gen.uniform_double(k);
      cgf[i] = math::gumbel_noise_at<float>(gen, k);
      cgd[i] = math::gumbel_noise_at<double>(gen, k);
    }
    // The generator itself is integer arithmetic: bit for bit.
    require_equal(bits.download(), cbits, "Philox bits");
    require_equal(uf.download(), cuf, "float uniforms");
    require_equal(ud.download(), cud, "double uniforms");
    require_equal(launcher.download(), cuf, "cuda::philox_uniform");
    // The Gumbel transform goes through each side's log (CUDA's logf is within
    // 1 ulp, not correctly rounded): equal to rounding.
    require_close(gf.download(), cgf, 1e-6, "float Gumbel noise");
    require_close(gd.download(), cgd, 1e-14, "double Gumbel noise");
  }
}

// ---- Gumbel-softmax selector ------------------------------------------------------

namespace {

template <typename T>
void check_gumbel_softmax(int64_t J, int64_t K, double tau, uint64_t seed) {
  INFO(type_name<T>() << " selector [" << J << ", " << K << "], tau " << tau);
  PhiloxEngine rng(seed);
  const auto theta = random_vec<T>(J * K, rng, -2, 2);
  const auto uniforms = random_vec<T>(J * K, rng, 1e-6, 1 - 1e-6);
  const T inv_tau = static_cast<T>(1.0 / tau);
  DeviceBuffer<T> d_theta(theta), d_uniforms(uniforms);
  const Philox philox(seed * 31 + 7, seed);

  using Source = math::GumbelNoiseSource<T>;
  for (int kind : {Source::None, Source::Stream, Source::Uniforms}) {
    for (bool hard : {false, true}) {
      INFO("noise kind " << kind << (hard ? ", straight-through" : ""));
      Source host_noise, dev_noise;
      host_noise.kind = dev_noise.kind = kind;
      host_noise.philox = dev_noise.philox = philox;
      host_noise.uniforms = uniforms.data();
      dev_noise.uniforms = d_uniforms.get();
      std::vector<T> y_soft, y_hard;
      lgh_test::gumbel_softmax_forward_cpu(theta, J, K, inv_tau, host_noise, y_soft, hard ? &y_hard : nullptr);
      DeviceBuffer<T> d_soft = nan_buffer<T>(J * K), d_hard = nan_buffer<T>(J * K);
      REQUIRE_NOTHROW(cuda::gumbel_softmax_forward(d_theta.get(), J, K, inv_tau, dev_noise, d_soft.get(),
                                                   hard ? d_hard.get() : static_cast<T*>(nullptr), nullptr));
      require_device_ok();
      require_close(d_soft.download(), y_soft, rel_tol<T>(), "relaxed selector");
      if (hard) require_equal(d_hard.download(), y_hard, "one-hot of the relaxed selector");

      // Backward from the relaxed rows.
      const auto dy = random_vec<T>(J * K, rng, -1, 1);
      const auto dtheta = lgh_test::gumbel_softmax_backward_cpu(y_soft, dy, J, K, inv_tau);
      DeviceBuffer<T> d_ys(y_soft), d_dy(dy), d_dtheta = nan_buffer<T>(J * K);
      REQUIRE_NOTHROW(cuda::gumbel_softmax_backward(d_ys.get(), d_dy.get(), J, K, inv_tau, d_dtheta.get(), nullptr));
      require_device_ok();
      require_close(d_dtheta.download(), dtheta, rel_tol<T>(), "dtheta");
    }
  }

  // Hard mode: Eq. (7)'s one-hot argmax of theta.
  const auto hard = lgh_test::gumbel_softmax_hard_cpu(theta, J, K);
  DeviceBuffer<T> d_hard = nan_buffer<T>(J * K);
  REQUIRE_NOTHROW(cuda::gumbel_softmax_hard(d_theta.get(), J, K, d_hard.get(), nullptr));
  require_device_ok();
  require_equal(d_hard.download(), hard, "hard selector");
}

}  // namespace

TEST_CASE("fused Gumbel-softmax matches the CPU op in every mode", "[cuda][fused][gumbel]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  struct Case {
    int64_t J, K;
    double tau;
  };
  uint64_t seed = 1;
  for (const Case c : {Case{21, 3, 1.0}, Case{21, 3, 5.0}, Case{1, 1, 0.5}, Case{37, 5, 0.3}, Case{300, 2, 2.0},
                       Case{7, 17, 0.1}}) {
    check_gumbel_softmax<float>(c.J, c.K, c.tau, seed++);
    check_gumbel_softmax<double>(c.J, c.K, c.tau, seed++);
  }
}

// ---- masked group selection ---------------------------------------------------------

namespace {

template <typename T>
void check_group_select(int64_t B, int64_t K, int64_t J, int64_t C, bool scaled, uint64_t seed) {
  INFO(type_name<T>() << " group selection x [" << B << ", " << K << ", " << J << ", " << C << "]"
                      << (scaled ? ", scaled" : ""));
  PhiloxEngine rng(seed);
  const auto s = random_vec<T>(J * K, rng, 0, 1);
  const auto x = random_vec<T>(B * K * J * C, rng, -30, 60);
  const auto dy = random_vec<T>(B * J * C, rng, -1, 1);
  std::vector<T> scale;
  if (scaled) scale = random_vec<T>(C, rng, 0.5, 4);
  const cuda::ChannelScale<T> cs = cuda::make_channel_scale(scaled ? scale.data() : nullptr, C);
  DeviceBuffer<T> d_s(s), d_x(x), d_dy(dy);

  const auto y = lgh_test::group_select_forward_cpu(s, x, B, K, J, C, scale);
  DeviceBuffer<T> d_y = nan_buffer<T>(B * J * C);
  REQUIRE_NOTHROW(cuda::group_select_forward(d_s.get(), d_x.get(), B, K, J, C, cs, d_y.get(), nullptr));
  require_device_ok();
  require_close(d_y.download(), y, rel_tol<T>(), "y");

  std::vector<T> ds, dx;
  lgh_test::group_select_backward_cpu(s, x, dy, B, K, J, C, scale, ds, dx);
  for (int want : {3, 1, 2}) {  // both, dS only, dx only
    INFO("gradients wanted: " << (want & 1 ? "dS " : "") << (want & 2 ? "dx" : ""));
    DeviceBuffer<T> d_ds = nan_buffer<T>(J * K), d_dx = nan_buffer<T>(B * K * J * C);
    REQUIRE_NOTHROW(cuda::group_select_backward(d_s.get(), d_x.get(), d_dy.get(), B, K, J, C, cs,
                                                want & 1 ? d_ds.get() : static_cast<T*>(nullptr),
                                                want & 2 ? d_dx.get() : static_cast<T*>(nullptr), nullptr));
    require_device_ok();
    if (want & 1) require_close(d_ds.download(), ds, 4 * rel_tol<T>(), "dS");
    if (want & 2) require_close(d_dx.download(), dx, rel_tol<T>(), "dx");
  }
}

}  // namespace

TEST_CASE("fused group selection matches the CPU op, forward and backward", "[cuda][fused][group_select]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  struct Case {
    int64_t B, K, J, C;
    bool scaled;
  };
  uint64_t seed = 100;
  for (const Case c : {Case{64, 3, 21, 3, true}, Case{1, 1, 21, 3, false}, Case{3, 4, 13, 5, true},
                       Case{300, 2, 7, 1, true}, Case{5, 5, 1, 16, true}, Case{2, 3, 21, 7, false}}) {
    check_group_select<float>(c.B, c.K, c.J, c.C, c.scaled, seed++);
    check_group_select<double>(c.B, c.K, c.J, c.C, c.scaled, seed++);
  }
}

// ---- concat + 1x1 fusion --------------------------------------------------------------

namespace {

template <typename T>
void check_group_fusion(int64_t K, int64_t B, int64_t P, int64_t H, int64_t W, size_t offset, uint64_t seed) {
  INFO(type_name<T>() << " fusion of " << K << " x [" << B << ", " << P << ", " << H << ", " << W
                      << "], pointer offset " << offset);
  PhiloxEngine rng(seed);
  const int64_t M = K * P, HW = H * W, n = B * P * HW;
  const auto F = random_vecs<T>(K, n, rng, -1, 1);
  const auto Wt = random_vecs<T>(K, P * M, rng, -0.5, 0.5);
  const auto bias = random_vecs<T>(K, P, rng, -1, 1);
  const auto scale = random_vecs<T>(K, P, rng, 0.5, 2);
  const auto shift = random_vecs<T>(K, P, rng, -0.5, 0.5);
  const auto dG = random_vecs<T>(K, n, rng, -1, 1);
  const auto d_F = upload_all(F, offset), d_W = upload_all(Wt), d_b = upload_all(bias), d_sc = upload_all(scale),
             d_sh = upload_all(shift), d_dG = upload_all(dG, offset);
  const auto f = cptrs(d_F), w = cptrs(d_W), b = cptrs(d_b), sc = cptrs(d_sc), sh = cptrs(d_sh), g = cptrs(d_dG);

  // Training forward: conv + bias.
  {
    const auto ref = lgh_test::group_fusion_forward_cpu(F, Wt, bias, B, P, H, W);
    auto out = nan_buffers<T>(K, n, offset);
    const auto o = ptrs(out);
    REQUIRE_NOTHROW(cuda::group_fusion_forward(f.data(), w.data(), b.data(), K, B, P, HW, o.data(),
                                               static_cast<const T* const*>(nullptr),
                                               static_cast<const T* const*>(nullptr), false, nullptr));
    require_device_ok();
    for (int64_t k = 0; k < K; ++k) require_close(out[k].download(), ref[k], rel_tol<T>(), "G_" + std::to_string(k));
  }
  // Eval forward: folded BatchNorm, with and without the ReLU.
  for (bool relu : {true, false}) {
    INFO("eval epilogue, relu " << relu);
    const auto ref = lgh_test::group_fusion_forward_cpu(F, Wt, bias, B, P, H, W, &scale, &shift, relu);
    auto out = nan_buffers<T>(K, n, offset);
    const auto o = ptrs(out);
    REQUIRE_NOTHROW(cuda::group_fusion_forward(f.data(), w.data(), b.data(), K, B, P, HW, o.data(), sc.data(),
                                               sh.data(), relu, nullptr));
    require_device_ok();
    for (int64_t k = 0; k < K; ++k) require_close(out[k].download(), ref[k], rel_tol<T>(), "G_" + std::to_string(k));
  }
  // Backward: every gradient, then each kind alone.
  std::vector<std::vector<T>> dF, dW, db;
  lgh_test::group_fusion_backward_cpu(F, Wt, dG, B, P, H, W, dF, dW, db);
  const size_t ws_bytes = cuda::group_fusion_backward_workspace_bytes<T>(K, B, P, HW, true);
  DeviceBuffer<unsigned char> workspace(ws_bytes);
  for (int want : {7, 1, 2, 4}) {
    INFO("gradients wanted: " << (want & 1 ? "dF " : "") << (want & 2 ? "dW " : "") << (want & 4 ? "db" : ""));
    auto gF = nan_buffers<T>(K, n, offset), gW = nan_buffers<T>(K, P * M), gb = nan_buffers<T>(K, P);
    const auto pf = ptrs(gF), pw = ptrs(gW), pb = ptrs(gb);
    REQUIRE_NOTHROW(cuda::group_fusion_backward(f.data(), w.data(), g.data(), K, B, P, HW,
                                                want & 1 ? pf.data() : static_cast<T* const*>(nullptr),
                                                want & 2 ? pw.data() : static_cast<T* const*>(nullptr),
                                                want & 4 ? pb.data() : static_cast<T* const*>(nullptr),
                                                workspace.get(), ws_bytes, nullptr));
    require_device_ok();
    for (int64_t k = 0; k < K; ++k) {
      const std::string i = std::to_string(k);
      if (want & 1) require_close(gF[k].download(), dF[k], rel_tol<T>(), "dF_" + i);
      // Sums over B*H*W pixels: a longer reduction, in another order.
      if (want & 2) require_close(gW[k].download(), dW[k], 10 * rel_tol<T>(), "dW_" + i);
      if (want & 4) require_close(gb[k].download(), db[k], 10 * rel_tol<T>(), "db_" + i);
    }
  }
}

}  // namespace

TEST_CASE("fused concat + 1x1 fusion matches the CPU op, forward, eval and backward", "[cuda][fused][group_fusion]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  struct Case {
    int64_t K, B, P, H, W;
    size_t offset;
  };
  uint64_t seed = 200;
  for (const Case c : {Case{3, 2, 32, 64, 64, 0},   // the paper's fusion (vector path)
                       Case{3, 2, 32, 16, 16, 1},   // the same shapes through the scalar path
                       Case{1, 1, 5, 3, 7, 0},      // K = 1, odd everything
                       Case{2, 3, 17, 9, 13, 0},    // tiles cut across groups and pixels
                       Case{4, 2, 33, 5, 6, 0},     // M = 132: a fifth, nearly empty channel tile
                       Case{5, 1, 40, 12, 12, 0},   // M = 200
                       Case{3, 1, 1, 1, 1, 0}}) {   // one pixel, one channel
    check_group_fusion<float>(c.K, c.B, c.P, c.H, c.W, c.offset, seed++);
    check_group_fusion<double>(c.K, c.B, c.P, c.H, c.W, c.offset, seed++);
  }
}

// ---- soft-argmax with depth (+ Eq. 3) --------------------------------------------------

namespace {

template <typename T>
void check_soft_argmax(int64_t B, int64_t J, int64_t H, int64_t W, size_t offset, uint64_t seed) {
  INFO(type_name<T>() << " soft-argmax [" << B << ", " << J << ", " << H << ", " << W << "], pointer offset "
                      << offset);
  PhiloxEngine rng(seed);
  const int64_t n = B * J * H * W;
  const auto h = random_vec<T>(n, rng, -3, 3);
  const auto dm = random_vec<T>(n, rng, -1, 1);
  const auto beta = random_vec<T>(J, rng, 0.5, 20);  // logits up to 60: the max subtraction matters
  std::vector<T> intr(B * 4), z_root = random_vec<T>(B, rng, 400, 900), s0 = random_vec<T>(B, rng, 20, 60);
  for (int64_t b = 0; b < B; ++b) {
    intr[b * 4] = static_cast<T>(rng.uniform(200, 600));
    intr[b * 4 + 1] = static_cast<T>(rng.uniform(200, 600));
    intr[b * 4 + 2] = static_cast<T>(rng.uniform(0, W));
    intr[b * 4 + 3] = static_cast<T>(rng.uniform(0, H));
  }
  DeviceBuffer<T> d_h(h, offset), d_dm(dm, offset), d_beta(beta), d_k(intr), d_z(z_root), d_s0(s0);
  cuda::Backprojection<T> bp;
  bp.intrinsics = d_k.get();
  bp.z_root = d_z.get();
  bp.s0 = d_s0.get();

  std::vector<T> uvd, stats;
  lgh_test::soft_argmax_depth_forward_cpu(h, dm, beta, B, J, H, W, uvd, stats);
  const auto xyz = lgh_test::backproject_forward_cpu(uvd, intr, z_root, s0, B, J);
  for (bool fused : {false, true}) {
    INFO((fused ? "with Eq. (3) fused" : "without back-projection"));
    DeviceBuffer<T> d_uvd = nan_buffer<T>(B * J * 3), d_stats = nan_buffer<T>(B * J * 2),
                    d_xyz = nan_buffer<T>(B * J * 3);
    REQUIRE_NOTHROW(cuda::soft_argmax_depth_forward(d_h.get(), d_dm.get(), d_beta.get(), B, J, H, W, d_uvd.get(),
                                                    d_stats.get(), fused ? bp : cuda::Backprojection<T>(),
                                                    fused ? d_xyz.get() : static_cast<T*>(nullptr), nullptr));
    require_device_ok();
    require_close(d_uvd.download(), uvd, 5 * rel_tol<T>(), "uvd");
    // (max, sum): the max is exact; the sum is relative to it.
    require_close(d_stats.download(), stats, 5 * rel_tol<T>(), "stats");
    if (fused) require_close(d_xyz.download(), xyz, 5 * rel_tol<T>(), "xyz");
  }

  // Backward, fed the CPU forward's uvd and stats on both sides.
  const auto duvd = random_vec<T>(B * J * 3, rng, -1, 1);
  const auto dxyz = random_vec<T>(B * J * 3, rng, -0.01, 0.01);
  const auto via_xyz = lgh_test::backproject_backward_cpu(uvd, intr, z_root, s0, dxyz, B, J);
  DeviceBuffer<T> d_uvd(uvd), d_stats(stats), d_duvd(duvd), d_dxyz(dxyz);
  DeviceBuffer<unsigned char> workspace(cuda::soft_argmax_depth_backward_workspace_bytes<T>(B, J));
  for (int source : {1, 2, 3}) {  // duvd, dxyz through Eq. (3), both
    std::vector<T> g(B * J * 3, T(0));
    for (size_t i = 0; i < g.size(); ++i) g[i] = (source & 1 ? duvd[i] : T(0)) + (source & 2 ? via_xyz[i] : T(0));
    std::vector<T> dh, ddm, dbeta;
    lgh_test::soft_argmax_depth_backward_cpu(h, dm, beta, B, J, H, W, uvd, stats, g, dh, ddm, dbeta);
    for (int want : {7, 1, 2, 4}) {
      INFO("gradient from " << (source & 1 ? "duvd " : "") << (source & 2 ? "dxyz" : "") << "; wanted "
                            << (want & 1 ? "dh " : "") << (want & 2 ? "ddm " : "") << (want & 4 ? "dbeta" : ""));
      DeviceBuffer<T> d_dh = nan_buffer<T>(n, offset), d_ddm = nan_buffer<T>(n, offset), d_dbeta = nan_buffer<T>(J);
      REQUIRE_NOTHROW(cuda::soft_argmax_depth_backward(
          d_h.get(), d_dm.get(), d_beta.get(), B, J, H, W, d_uvd.get(), d_stats.get(),
          source & 1 ? d_duvd.get() : static_cast<T*>(nullptr), source & 2 ? d_dxyz.get() : static_cast<T*>(nullptr),
          source & 2 ? bp : cuda::Backprojection<T>(), want & 1 ? d_dh.get() : static_cast<T*>(nullptr),
          want & 2 ? d_ddm.get() : static_cast<T*>(nullptr), want & 4 ? d_dbeta.get() : static_cast<T*>(nullptr),
          workspace.get(), workspace.size(), nullptr));
      require_device_ok();
      if (want & 1) require_close(d_dh.download(), dh, 5 * rel_tol<T>(), "dh");
      if (want & 2) require_close(d_ddm.download(), ddm, 5 * rel_tol<T>(), "ddm");
      if (want & 4) require_close(d_dbeta.download(), dbeta, 20 * rel_tol<T>(), "dbeta");
    }
  }
}

}  // namespace

TEST_CASE("fused soft-argmax with depth matches the CPU ops, forward and backward, with Eq. (3) fused",
          "[cuda][fused][soft_argmax]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  struct Case {
    int64_t B, J, H, W;
    size_t offset;
  };
  uint64_t seed = 300;
  for (const Case c : {Case{2, 21, 64, 64, 0},    // the paper's maps (vector path, 128 threads)
                       Case{2, 21, 64, 64, 1},    // the same through the scalar path
                       Case{3, 5, 7, 9, 0},       // odd maps
                       Case{2, 4, 33, 30, 0},     // float scalar, double vector (W % 2 == 0)
                       Case{1, 3, 1, 1, 0},       // one pixel
                       Case{1, 2, 128, 128, 0},   // 256 threads
                       Case{5, 1, 3, 200, 0}}) {  // one joint, long rows
    check_soft_argmax<float>(c.B, c.J, c.H, c.W, c.offset, seed++);
    check_soft_argmax<double>(c.B, c.J, c.H, c.W, c.offset, seed++);
  }
}

// ---- fused multi-tensor Adam -------------------------------------------------------------

namespace {

template <typename T>
void check_adam(const std::vector<lgh_test::AdamGroupSpec>& groups, int steps, uint64_t seed) {
  INFO(type_name<T>() << " Adam over " << groups.size() << " groups, " << steps << " steps");
  PhiloxEngine rng(seed);
  std::vector<int64_t> sizes;
  std::vector<size_t> group_of;
  for (size_t g = 0; g < groups.size(); ++g)
    for (int64_t n : groups[g].sizes) {
      sizes.push_back(n);
      group_of.push_back(g);
    }
  const size_t np = sizes.size();
  std::vector<std::vector<T>> initial;
  for (int64_t n : sizes) initial.push_back(random_vec<T>(n, rng, -1, 1));
  // Gradients per step; parameter 1 (when there is one) has none on step 1,
  // so step counts differ within its group.
  std::vector<std::vector<std::vector<T>>> grads(steps);
  for (int s = 0; s < steps; ++s)
    for (size_t i = 0; i < np; ++i)
      grads[s].push_back((s == 1 && i == 1) ? std::vector<T>() : random_vec<T>(sizes[i], rng, -1, 1));
  const lgh_test::AdamResult<T> ref = lgh_test::adam_cpu(groups, initial, grads);

  // Device state: per group one flat buffer of each kind, parameters at
  // consecutive offsets (as lgh allocates them).
  struct Flat {
    DeviceBuffer<T> param, grad, m, v, vmax;
    std::vector<int64_t> offsets;
    int64_t total = 0;
  };
  std::vector<Flat> flat(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    Flat& f = flat[g];
    std::vector<T> p;
    for (size_t i = 0; i < np; ++i)
      if (group_of[i] == g) {
        f.offsets.push_back(f.total);
        f.total += sizes[i];
        p.insert(p.end(), initial[i].begin(), initial[i].end());
      }
    f.param = DeviceBuffer<T>(p);
    f.grad = DeviceBuffer<T>(static_cast<size_t>(f.total));
    for (DeviceBuffer<T>* b : {&f.m, &f.v, &f.vmax}) *b = DeviceBuffer<T>(std::vector<T>(f.total, T(0)));
  }
  std::vector<int64_t> step_count(np, 0);
  for (int s = 0; s < steps; ++s) {
    std::vector<cuda::launch::AdamRun<T>> runs;
    size_t i = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
      Flat& f = flat[g];
      const lgh_test::AdamGroupSpec& spec = groups[g];
      std::vector<T> gflat(f.total, T(0));
      bool all = true;
      const size_t first = i;
      for (size_t k = 0; k < f.offsets.size(); ++k, ++i) {
        if (grads[s][i].empty()) {
          all = false;
          continue;
        }
        ++step_count[i];
        std::copy(grads[s][i].begin(), grads[s][i].end(), gflat.begin() + f.offsets[k]);
      }
      f.grad.upload(gflat);
      bool same_step = true;
      for (size_t k = first; k < i; ++k) same_step = same_step && step_count[k] == step_count[first];
      auto run_of = [&](size_t k, int64_t off, int64_t n) {
        cuda::launch::AdamRun<T> r;
        r.param = f.param.get() + off;
        r.grad = f.grad.get() + off;
        r.exp_avg = f.m.get() + off;
        r.exp_avg_sq = f.v.get() + off;
        r.max_exp_avg_sq = spec.amsgrad ? f.vmax.get() + off : nullptr;
        r.n = n;
        r.scalars = optim::adam_step_scalars<T>(spec.lr, spec.beta1, spec.beta2, spec.eps, spec.weight_decay,
                                                step_count[k]);
        return r;
      };
      if (all && same_step && i > first) {
        runs.push_back(run_of(first, 0, f.total));  // the whole group as one run
      } else {
        for (size_t k = first; k < i; ++k)
          if (!grads[s][k].empty()) runs.push_back(run_of(k, f.offsets[k - first], sizes[k]));
      }
    }
    REQUIRE_NOTHROW(cuda::adam_step(runs.data(), runs.size(), nullptr));
    require_device_ok();
  }
  CHECK(step_count == ref.steps);
  size_t i = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto p = flat[g].param.download(), m = flat[g].m.download(), v = flat[g].v.download(),
               vm = flat[g].vmax.download();
    for (size_t k = 0; k < flat[g].offsets.size(); ++k, ++i) {
      const int64_t off = flat[g].offsets[k], n = sizes[i];
      auto slice = [&](const std::vector<T>& x) {
        return std::vector<T>(x.begin() + off, x.begin() + off + n);
      };
      const std::string what = "group '" + groups[g].name + "' parameter " + std::to_string(k);
      // Within 1e-6 of the CPU Adam (relative to the values' scale).
      require_close(slice(p), ref.param[i], 1e-6, what + " value");
      require_close(slice(m), ref.exp_avg[i], 1e-6, what + " exp_avg");
      require_close(slice(v), ref.exp_avg_sq[i], 1e-6, what + " exp_avg_sq");
      require_close(slice(vm), ref.max_exp_avg_sq[i], 1e-6, what + " max_exp_avg_sq");
    }
  }
}

}  // namespace

TEST_CASE("fused multi-tensor Adam matches the CPU Adam within 1e-6, per-group lr", "[cuda][fused][adam]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  // The paper's stage 2: theta at 1e-1, the fusion at 1e-2, the rest at 1e-4;
  // plus weight decay and AMSGrad, chunk-boundary sizes and an empty parameter.
  lgh_test::AdamGroupSpec selector{"selector", 1e-1};
  selector.sizes = {63};
  lgh_test::AdamGroupSpec fusion{"fusion", 1e-2};
  fusion.sizes = {3072, 32, 3072, 32, 3072, 32};
  lgh_test::AdamGroupSpec rest{"rest", 1e-4};
  rest.sizes = {4095, 4096, 4097, 0, 100003, 1};
  rest.weight_decay = 1e-4;
  lgh_test::AdamGroupSpec ams{"amsgrad", 3e-3};
  ams.amsgrad = true;
  ams.beta1 = 0.8;
  ams.sizes = {5000, 17};
  check_adam<float>({selector, fusion, rest, ams}, 4, 1);
  check_adam<double>({selector, fusion, rest, ams}, 4, 2);

  // More runs than one launch's table holds (parameter 1 has no gradient on
  // step 1, so the group splits into one run per parameter then).
  lgh_test::AdamGroupSpec many{"many", 1e-3};
  many.sizes = std::vector<int64_t>(cuda::launch::kAdamMaxRuns + 7, 33);
  check_adam<float>({many}, 3, 3);
}

// ---- argument checks (host only: they run without a device) ---------------------------------

TEST_CASE("fused kernel launchers reject bad arguments with the shapes in the message", "[cuda][fused][errors]") {
  using Catch::Matchers::Contains;
  float dummy = 0;
  float* p = &dummy;  // never dereferenced: every check fails before a launch
  math::GumbelNoiseSource<float> noise;
  CHECK_THROWS_WITH(cuda::gumbel_softmax_forward(p, 0, 3, 1.f, noise, p, p, nullptr), Contains("[0, 3]"));
  CHECK_THROWS_WITH(cuda::gumbel_softmax_forward(p, 21, 3, 0.f, noise, p, p, nullptr), Contains("1/tau"));
  noise.kind = math::GumbelNoiseSource<float>::Uniforms;
  CHECK_THROWS_WITH(cuda::gumbel_softmax_forward(p, 21, 3, 1.f, noise, p, p, nullptr), Contains("uniforms"));
  CHECK_THROWS_WITH(cuda::gumbel_softmax_backward(p, p, 21, 0, 1.f, p, nullptr), Contains("[21, 0]"));

  const float scale[20] = {};
  CHECK_THROWS_WITH(cuda::make_channel_scale(scale, 20), Contains("20"));
  cuda::ChannelScale<float> cs = cuda::make_channel_scale(scale, 3);
  CHECK_THROWS_WITH(cuda::group_select_forward(p, p, 4, 3, 21, 2, cs, p, nullptr), Contains("C = 2"));
  CHECK_THROWS_WITH(cuda::group_select_backward(p, p, p, 0, 3, 21, 3, cs, p, p, nullptr), Contains("[0, 3, 21, 3]"));

  const float* in[9] = {p, p, p, p, p, p, p, p, p};
  float* out[9] = {p, p, p, p, p, p, p, p, p};
  CHECK_THROWS_WITH(cuda::group_fusion_forward(in, in, in, 9, 2, 32, 4096, out, static_cast<const float* const*>(nullptr),
                                               static_cast<const float* const*>(nullptr), false, nullptr),
                    Contains("9 groups"));
  CHECK_THROWS_WITH(cuda::group_fusion_forward(in, in, in, 8, 2, 200, 4096, out, static_cast<const float* const*>(nullptr),
                                               static_cast<const float* const*>(nullptr), false, nullptr),
                    Contains("K*P = 1600"));
  const float* with_null[3] = {p, nullptr, p};
  CHECK_THROWS_WITH(cuda::group_fusion_forward(with_null, in, in, 3, 2, 32, 4096, out,
                                               static_cast<const float* const*>(nullptr),
                                               static_cast<const float* const*>(nullptr), false, nullptr),
                    Contains("features[1]"));
  CHECK_THROWS_WITH(cuda::group_fusion_forward(in, in, in, 3, 2, 32, 4096, out, in,
                                               static_cast<const float* const*>(nullptr), false, nullptr),
                    Contains("scale and shift"));
  CHECK_THROWS_WITH(cuda::group_fusion_backward(in, in, in, 3, 2, 32, 4096, static_cast<float* const*>(nullptr), out,
                                                static_cast<float* const*>(nullptr), nullptr, 0, nullptr),
                    Contains("workspace"));

  cuda::Backprojection<float> bp;
  CHECK_THROWS_WITH(cuda::soft_argmax_depth_forward(p, p, p, 2, 21, 0, 64, p, p, bp, static_cast<float*>(nullptr),
                                                    nullptr),
                    Contains("[2, 21, 0, 64]"));
  bp.intrinsics = p;
  CHECK_THROWS_WITH(cuda::soft_argmax_depth_forward(p, p, p, 2, 21, 64, 64, p, p, bp, p, nullptr),
                    Contains("intrinsics [B,4], z_root [B] and s0 [B]"));
  CHECK_THROWS_WITH(cuda::soft_argmax_depth_backward(p, p, p, 2, 21, 64, 64, p, p, static_cast<float*>(nullptr),
                                                     static_cast<float*>(nullptr), cuda::Backprojection<float>(), p, p,
                                                     p, nullptr, 0, nullptr),
                    Contains("no output gradient"));
  CHECK_THROWS_WITH(cuda::soft_argmax_depth_backward(p, p, p, 2, 21, 64, 64, p, p, p, static_cast<float*>(nullptr),
                                                     cuda::Backprojection<float>(), p, p, p, nullptr, 0, nullptr),
                    Contains("dbeta needs 168 bytes"));

  cuda::launch::AdamRun<float> run{};
  run.n = 10;
  CHECK_THROWS_WITH(cuda::adam_step(&run, 1, nullptr), Contains("run 0 of 10 elements"));
  run.n = -1;
  CHECK_THROWS_WITH(cuda::adam_step(&run, 1, nullptr), Contains("-1 elements"));
}
