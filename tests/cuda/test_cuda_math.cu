// The host/device math of the fused ops and of Adam, compiled by nvcc and run
// in kernels, against the same functions on the host. Compiling this file is
// itself the check that the shared math is valid device code; running it
// needs a GPU (the cases skip, saying so, without one).
#include <catch2/catch.hpp>

#include "cuda_test_utils.cuh"

#include <cmath>
#include <vector>

#include "common.cuh"
#include "lgh/core/tensor.hpp"
#include "lgh/ops/math/backproject.hpp"
#include "lgh/ops/math/group_select.hpp"
#include "lgh/ops/math/gumbel_softmax.hpp"
#include "lgh/ops/math/soft_argmax.hpp"
#include "lgh/optim/adam_math.hpp"

using namespace lgh;

namespace {

// ---- kernels: one thread per row / point, calling the shared math ----------------

__global__ void gumbel_rows(const float* theta, int J, int K, float inv_tau, Philox philox, float* y) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= J) return;
  math::GumbelNoiseSource<float> noise;
  noise.kind = math::GumbelNoiseSource<float>::Stream;
  noise.philox = philox;
  math::gumbel_softmax_row(theta + j * K, K, inv_tau, noise, static_cast<uint64_t>(j) * K, y + j * K);
}

__global__ void soft_argmax_maps(const float* h, const float* dm, int maps, int H, int W, float beta, float* uvd) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= maps) return;
  math::SoftArgmaxState<float> st{};
  for (int y = 0; y < H; ++y)
    st.merge(math::soft_argmax_row_state(h + (i * H + y) * W, dm + (i * H + y) * W, W, beta, float(y)));
  st.result(uvd + 3 * i);
}

__global__ void select_and_backproject(const float* s, const float* x, int K, int J, const float* k, float z_root,
                                       float s0, float* uvd, float* xyz) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= J) return;
  const float scale[3] = {4.f, 4.f, 1.f};
  math::group_select_point(s + j * K, x + j * 3, static_cast<int64_t>(J) * 3, K, 3, scale, uvd + 3 * j);
  math::backproject_point(uvd + 3 * j, k, z_root, s0, xyz + 3 * j);
}

__global__ void adam_elements(float* p, const float* g, float* m, float* v, int n, optim::AdamScalars<float> s) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) optim::adam_update(p[i], g[i], m[i], v[i], static_cast<float*>(nullptr), s);
}

// ---- helpers ------------------------------------------------------------------------

std::vector<float> random_values(size_t n, uint64_t seed, double lo, double hi) {
  PhiloxEngine rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

float* to_device(const std::vector<float>& v) {
  float* d = nullptr;
  LGH_CUDA_CHECK(cudaMalloc(&d, v.size() * sizeof(float)));
  LGH_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

std::vector<float> to_host(const float* d, size_t n) {
  std::vector<float> v(n);
  LGH_CUDA_CHECK(cudaDeviceSynchronize());
  LGH_CUDA_CHECK(cudaMemcpy(v.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
  return v;
}

void require_close(const std::vector<float>& gpu, const std::vector<float>& cpu, float rel) {
  REQUIRE(gpu.size() == cpu.size());
  for (size_t i = 0; i < gpu.size(); ++i) {
    INFO("element " << i << ": device " << gpu[i] << " vs host " << cpu[i]);
    REQUIRE(std::fabs(gpu[i] - cpu[i]) <= rel * (1.f + std::fabs(cpu[i])));
  }
}

}  // namespace

TEST_CASE("Gumbel-softmax rows agree on host and device", "[cuda][math]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int J = 21, K = 3;
  const auto theta = random_values(J * K, 1, -1, 1);
  const Philox philox(5, 9);
  std::vector<float> cpu(J * K);
  math::GumbelNoiseSource<float> noise;
  noise.kind = math::GumbelNoiseSource<float>::Stream;
  noise.philox = philox;
  for (int j = 0; j < J; ++j) math::gumbel_softmax_row(theta.data() + j * K, K, 0.5f, noise, uint64_t(j) * K, cpu.data() + j * K);
  float* d_theta = to_device(theta);
  float* d_y = to_device(std::vector<float>(J * K, NAN));
  cuda::launch_kernel("gumbel_rows", gumbel_rows, 1, 64, 0, nullptr, d_theta, J, K, 0.5f, philox, d_y);
  require_close(to_host(d_y, J * K), cpu, 1e-5f);
  cudaFree(d_theta);
  cudaFree(d_y);
}

TEST_CASE("online soft-argmax agrees on host and device", "[cuda][math]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int maps = 6, H = 16, W = 16;
  const auto h = random_values(maps * H * W, 2, -30, 30), dm = random_values(maps * H * W, 3, -1, 1);
  std::vector<float> cpu(3 * maps);
  for (int i = 0; i < maps; ++i) {
    math::SoftArgmaxState<float> st{};
    for (int y = 0; y < H; ++y)
      st.merge(math::soft_argmax_row_state(h.data() + (i * H + y) * W, dm.data() + (i * H + y) * W, W, 1.5f, float(y)));
    st.result(cpu.data() + 3 * i);
  }
  float* d_h = to_device(h);
  float* d_dm = to_device(dm);
  float* d_out = to_device(std::vector<float>(3 * maps, NAN));
  cuda::launch_kernel("soft_argmax_maps", soft_argmax_maps, 1, 32, 0, nullptr, d_h, d_dm, maps, H, W, 1.5f, d_out);
  require_close(to_host(d_out, 3 * maps), cpu, 1e-5f);
  cudaFree(d_h);
  cudaFree(d_dm);
  cudaFree(d_out);
}

TEST_CASE("group selection and back-projection agree on host and device", "[cuda][math]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int J = 21, K = 3;
  const auto s = random_values(J * K, 4, 0, 1), x = random_values(K * J * 3, 5, 0, 60);
  const std::vector<float> k = {500.f, 510.f, 128.f, 120.f};
  const float z_root = 600.f, s0 = 40.f;
  std::vector<float> cpu_uvd(J * 3), cpu(J * 3);
  const float scale[3] = {4.f, 4.f, 1.f};
  for (int j = 0; j < J; ++j) {
    math::group_select_point(s.data() + j * K, x.data() + j * 3, int64_t(J) * 3, K, 3, scale, cpu_uvd.data() + 3 * j);
    math::backproject_point(cpu_uvd.data() + 3 * j, k.data(), z_root, s0, cpu.data() + 3 * j);
  }
  float *d_s = to_device(s), *d_x = to_device(x), *d_k = to_device(k);
  float *d_uvd = to_device(std::vector<float>(J * 3, NAN)), *d_xyz = to_device(std::vector<float>(J * 3, NAN));
  cuda::launch_kernel("select_and_backproject", select_and_backproject, 1, 32, 0, nullptr, d_s, d_x, K, J, d_k, z_root,
                      s0, d_uvd, d_xyz);
  // The selection is a sum of K positive products: a few roundings, whether
  // or not a compiler fuses them into FMAs.
  const float rel = 1e-6f;
  require_close(to_host(d_uvd, J * 3), cpu_uvd, rel);
  // Eq. 1-3 subtract the principal point from u and v, which cancels where
  // a joint lies near it: an error of rel |u| in u becomes z rel |u| / fx in
  // x. The device must stay within what that rounding of (u, v, d) gives.
  const auto gpu = to_host(d_xyz, J * 3);
  for (int j = 0; j < J; ++j) {
    const float* uvd = cpu_uvd.data() + 3 * j;
    const float z = s0 * uvd[2] + z_root, dz = rel * (std::fabs(s0 * uvd[2]) + z_root);
    for (int c = 0; c < 2; ++c) {
      const float xn = (uvd[c] - k[2 + c]) / k[c];
      const float bound = z * rel * (std::fabs(uvd[c]) + k[2 + c]) / k[c] + std::fabs(xn) * dz + rel * std::fabs(cpu[3 * j + c]);
      INFO("joint " << j << " axis " << c << ": device " << gpu[3 * j + c] << " vs host " << cpu[3 * j + c]);
      REQUIRE(std::fabs(gpu[3 * j + c] - cpu[3 * j + c]) <= bound);
    }
    INFO("joint " << j << " depth: device " << gpu[3 * j + 2] << " vs host " << z);
    REQUIRE(std::fabs(gpu[3 * j + 2] - cpu[3 * j + 2]) <= dz);
  }
  for (float* p : {d_s, d_x, d_k, d_uvd, d_xyz}) cudaFree(p);
}

TEST_CASE("the Adam update is bit-identical on host and device", "[cuda][math][optim]") {
  LGH_REQUIRE_DEVICE_OR_SKIP();
  const int n = 4096;
  auto p = random_values(n, 6, -1, 1), g = random_values(n, 7, -1, 1), m = random_values(n, 8, -0.1, 0.1),
       v = random_values(n, 9, 0, 0.01);
  const auto s = optim::adam_step_scalars<float>(1e-3, 0.9, 0.999, 1e-8, 1e-4, 7);
  float *d_p = to_device(p), *d_g = to_device(g), *d_m = to_device(m), *d_v = to_device(v);
  cuda::launch_kernel("adam_elements", adam_elements, (n + 255) / 256, 256, 0, nullptr, d_p, d_g, d_m, d_v, n, s);
  for (int i = 0; i < n; ++i) optim::adam_update(p[i], g[i], m[i], v[i], static_cast<float*>(nullptr), s);
  CHECK(to_host(d_p, n) == p);  // FMA, sqrt and division are correctly rounded on both
  CHECK(to_host(d_m, n) == m);
  CHECK(to_host(d_v, n) == v);
  for (float* q : {d_p, d_g, d_m, d_v}) cudaFree(q);
}
