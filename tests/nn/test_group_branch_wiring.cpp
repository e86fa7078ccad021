// Which tensor each block of a group branch consumes (DESIGN §2, the authors'
// nets/Net.py, Learnable_Groups.forward):
//
//   b0 = b_conv0(x)   b1 = b_conv1(b0)   b2 = b_down1(b1)   b3 = b_down2(b2)
//   b21 = b_up1(concat[b_up2(b3), b2])   F = b_up0(concat[b21, b1, b0])
//
// The reference values below are computed from the block definitions alone
// (nets/Block_lib.py: Basic2DBlock, Res2DBlock, DownsampleConv2D_R,
// Upsample2DBlock_R) with naive loops over the weights looked up by their
// checkpoint names, without any of the library's blocks or convolution
// kernels. Key names and shapes cannot tell a miswired branch (b1 = b_conv1(x),
// say) from the right one; these values can.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lgh/nn/joint_groups.hpp"

using namespace lgh;

namespace {

// A batch of feature maps [N, C, H, W] in plain storage.
struct Maps {
  int64_t n = 0, c = 0, h = 0, w = 0;
  std::vector<double> v;
  Maps() = default;
  Maps(int64_t n_, int64_t c_, int64_t h_, int64_t w_) : n(n_), c(c_), h(h_), w(w_), v(size_t(n_ * c_ * h_ * w_), 0.0) {}
  double& at(int64_t i, int64_t ch, int64_t y, int64_t x) { return v[size_t(((i * c + ch) * h + y) * w + x)]; }
  double at(int64_t i, int64_t ch, int64_t y, int64_t x) const { return v[size_t(((i * c + ch) * h + y) * w + x)]; }
};

Maps from_tensor(const TensorD& t) {
  REQUIRE(t.ndim() == 4);
  Maps m(t.size(0), t.size(1), t.size(2), t.size(3));
  m.v = t.to_vector();
  return m;
}

using Weights = std::map<std::string, TensorD>;

const TensorD& param(const Weights& w, const std::string& key) {
  auto it = w.find(key);
  INFO("key " << key);
  REQUIRE(it != w.end());
  return it->second;
}

// Cross-correlation with zero padding, weight [O, C, k, k], bias [O].
Maps conv(const Maps& x, const Weights& ws, const std::string& prefix, int64_t stride, int64_t pad) {
  const std::vector<double> wt = param(ws, prefix + ".weight").to_vector(), b = param(ws, prefix + ".bias").to_vector();
  const Shape s = param(ws, prefix + ".weight").shape();
  const int64_t O = s[0], k = s[2];
  REQUIRE(s[1] == x.c);
  const int64_t ho = (x.h + 2 * pad - k) / stride + 1, wo = (x.w + 2 * pad - k) / stride + 1;
  Maps y(x.n, O, ho, wo);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          double acc = b[size_t(o)];
          for (int64_t c = 0; c < x.c; ++c)
            for (int64_t ky = 0; ky < k; ++ky)
              for (int64_t kx = 0; kx < k; ++kx) {
                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                acc += wt[size_t(((o * x.c + c) * k + ky) * k + kx)] * x.at(i, c, iy, ix);
              }
          y.at(i, o, oy, ox) = acc;
        }
  return y;
}

// Transposed convolution 4x4, stride 2, padding 1 (weight [C, O, 4, 4]): each
// input pixel scatters its kernel into the output, which doubles H and W.
Maps conv_transpose(const Maps& x, const Weights& ws, const std::string& prefix) {
  const std::vector<double> wt = param(ws, prefix + ".weight").to_vector(), b = param(ws, prefix + ".bias").to_vector();
  const Shape s = param(ws, prefix + ".weight").shape();
  REQUIRE(s[0] == x.c);
  REQUIRE(s[2] == 4);
  const int64_t O = s[1], stride = 2, pad = 1, k = 4;
  Maps y(x.n, O, 2 * x.h, 2 * x.w);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t p = 0; p < y.h * y.w; ++p) y.v[size_t((i * O + o) * y.h * y.w + p)] = b[size_t(o)];
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t c = 0; c < x.c; ++c)
      for (int64_t iy = 0; iy < x.h; ++iy)
        for (int64_t ix = 0; ix < x.w; ++ix)
          for (int64_t o = 0; o < O; ++o)
            for (int64_t ky = 0; ky < k; ++ky)
              for (int64_t kx = 0; kx < k; ++kx) {
                const int64_t oy = iy * stride - pad + ky, ox = ix * stride - pad + kx;
                if (oy < 0 || oy >= y.h || ox < 0 || ox >= y.w) continue;
                y.at(i, o, oy, ox) += wt[size_t(((c * O + o) * k + ky) * k + kx)] * x.at(i, c, iy, ix);
              }
  return y;
}

// Eval-mode batch norm (running statistics, eps 1e-5).
Maps batch_norm(Maps x, const Weights& ws, const std::string& prefix) {
  const auto g = param(ws, prefix + ".weight").to_vector(), b = param(ws, prefix + ".bias").to_vector();
  const auto mean = param(ws, prefix + ".running_mean").to_vector(), var = param(ws, prefix + ".running_var").to_vector();
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t c = 0; c < x.c; ++c)
      for (int64_t p = 0; p < x.h * x.w; ++p) {
        double& e = x.v[size_t((i * x.c + c) * x.h * x.w + p)];
        e = (e - mean[size_t(c)]) / std::sqrt(var[size_t(c)] + 1e-5) * g[size_t(c)] + b[size_t(c)];
      }
  return x;
}

Maps relu(Maps x) {
  for (double& e : x.v) e = std::max(e, 0.0);
  return x;
}

Maps add(Maps a, const Maps& b) {
  REQUIRE(a.v.size() == b.v.size());
  for (size_t i = 0; i < a.v.size(); ++i) a.v[i] += b.v[i];
  return a;
}

Maps concat(const std::vector<const Maps*>& parts) {
  int64_t C = 0;
  for (const Maps* p : parts) C += p->c;
  const Maps& f = *parts.front();
  Maps y(f.n, C, f.h, f.w);
  for (int64_t i = 0; i < f.n; ++i) {
    int64_t c0 = 0;
    for (const Maps* p : parts) {
      REQUIRE((p->n == f.n && p->h == f.h && p->w == f.w));
      for (int64_t c = 0; c < p->c; ++c)
        for (int64_t q = 0; q < f.h * f.w; ++q)
          y.v[size_t((i * C + c0 + c) * f.h * f.w + q)] = p->v[size_t((i * p->c + c) * f.h * f.w + q)];
      c0 += p->c;
    }
  }
  return y;
}

// Basic2DBlock: conv(k) + BN + ReLU.
Maps basic(const Maps& x, const Weights& ws, const std::string& p) {
  const int64_t k = param(ws, p + ".block.0.weight").size(2);
  return relu(batch_norm(conv(x, ws, p + ".block.0", 1, k / 2), ws, p + ".block.1"));
}
// Res2DBlock: ReLU(conv3x3, BN, ReLU, conv3x3, BN + skip); skip = conv1x1 + BN when in != out.
Maps res2d(const Maps& x, const Weights& ws, const std::string& p) {
  const Maps r = batch_norm(
      conv(relu(batch_norm(conv(x, ws, p + ".res_branch.0", 1, 1), ws, p + ".res_branch.1")), ws, p + ".res_branch.3", 1, 1),
      ws, p + ".res_branch.4");
  const bool projected = ws.count(p + ".skip_con.0.weight") > 0;
  return relu(add(r, projected ? batch_norm(conv(x, ws, p + ".skip_con.0", 1, 0), ws, p + ".skip_con.1") : x));
}
// DownsampleConv2D_R: ReLU(conv3x3 s2, BN, ReLU, conv3x3, BN, ReLU + conv1x1 s2, BN).
Maps down(const Maps& x, const Weights& ws, const std::string& p) {
  const Maps r = relu(batch_norm(
      conv(relu(batch_norm(conv(x, ws, p + ".res_branch.0", 2, 1), ws, p + ".res_branch.1")), ws, p + ".res_branch.3", 1, 1),
      ws, p + ".res_branch.4"));
  return relu(add(r, batch_norm(conv(x, ws, p + ".skip_con.0", 2, 0), ws, p + ".skip_con.1")));
}
// Upsample2DBlock_R: convT 4x4 s2 p1 + BN + ReLU.
Maps up(const Maps& x, const Weights& ws, const std::string& p) {
  return relu(batch_norm(conv_transpose(x, ws, p + ".block.0"), ws, p + ".block.1"));
}

double max_abs_diff(const Maps& a, const TensorD& t) {
  const std::vector<double> b = t.to_vector();
  REQUIRE(a.v.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(a.v[i] - b[i]));
  return m;
}

double max_abs(const Maps& a) {
  double m = 0;
  for (double e : a.v) m = std::max(m, std::abs(e));
  return m;
}

// A branch of group k with random weights and random BN statistics (so that
// every BN is a non-trivial affine map), in eval mode.
std::shared_ptr<nn::GroupBranch<double>> random_branch(int k, int64_t p0, int64_t p1, uint64_t seed) {
  PhiloxEngine rng(seed);
  auto branch = std::make_shared<nn::GroupBranch<double>>(k, p0, p1, rng);
  autograd::NoGradGuard no_grad;
  for (auto& b : branch->named_buffers()) {
    // Statistics of the order of the random convolutions' outputs (~0.1-0.5),
    // so that no layer normalises its whole input below ReLU's kink.
    const bool var = b.first.find("running_var") != std::string::npos;
    b.second.copy_(TensorD::uniform(b.second.shape(), var ? 0.02 : -0.05, var ? 0.1 : 0.05, rng));
  }
  for (auto& p : branch->named_parameters()) {
    if (p.name.find(".1.weight") != std::string::npos || p.name.find(".4.weight") != std::string::npos)
      p.tensor.copy_(TensorD::uniform(p.tensor.shape(), 0.6, 1.4, rng));  // BN gamma
    else if (p.name.find(".1.bias") != std::string::npos || p.name.find(".4.bias") != std::string::npos)
      p.tensor.copy_(TensorD::uniform(p.tensor.shape(), 0.0, 0.2, rng));  // BN beta
  }
  branch->parameters_changed();
  branch->eval();
  return branch;
}

Weights weights_of(const nn::Module<double>& m) {
  Weights w;
  for (const auto& p : m.named_parameters()) w[p.name] = p.tensor.detach();
  for (const auto& b : m.named_buffers()) w[b.first] = b.second;
  return w;
}

}  // namespace

TEST_CASE("group branch: each block consumes the tensor of the authors' wiring", "[nn][branch]") {
  // P0 != P1 gives b_conv1 a projected skip; P0 == P1 an identity skip.
  const int64_t p0 = GENERATE(3, 4), p1 = GENERATE(4, 5);
  const int k = 1;
  auto branch = random_branch(k, p0, p1, 90 + uint64_t(10 * p0 + p1));
  const Weights ws = weights_of(*branch);
  const std::string g = "." + std::to_string(k);

  PhiloxEngine rng(7);
  const TensorD x = TensorD::uniform(Shape{2, p0, 8, 8}, -1.0, 1.0, rng);
  const Maps xm = from_tensor(x);

  // The reference, from the block definitions.
  const Maps b0 = basic(xm, ws, "b_conv0" + g);
  const Maps b1 = res2d(b0, ws, "b_conv1" + g);
  const Maps b2 = down(b1, ws, "b_down1" + g);
  const Maps b3 = down(b2, ws, "b_down2" + g);
  const Maps b31 = up(b3, ws, "b_up2" + g + ".0");
  const Maps b21 = up(basic(concat({&b31, &b2}), ws, "b_up1" + g + ".0"), ws, "b_up1" + g + ".1");
  const Maps f = res2d(basic(concat({&b21, &b1, &b0}), ws, "b_up0" + g + ".0"), ws, "b_up0" + g + ".1");
  INFO("max |b0| " << max_abs(b0) << ", |b1| " << max_abs(b1) << ", |b2| " << max_abs(b2) << ", |b3| " << max_abs(b3)
                   << ", |b21| " << max_abs(b21) << ", |F| " << max_abs(f));
  // Every block is alive (a zero tensor would make its comparison vacuous).
  for (const Maps* m : {&b0, &b1, &b2, &b3, &b21, &f}) REQUIRE(max_abs(*m) > 0.1);

  // Both of the library's paths: the differentiable one (eval-mode BN with
  // grad on) and the folded inference one (eval mode, no grad).
  const bool inference = GENERATE(false, true);
  INFO("P0 " << p0 << ", P1 " << p1 << (inference ? ", folded inference path" : ", differentiable path"));
  std::unique_ptr<autograd::NoGradGuard> no_grad;
  if (inference) no_grad = std::make_unique<autograd::NoGradGuard>();
  const auto r = branch->forward_intermediates(x);
  const double tol = 1e-10;
  CHECK(max_abs_diff(b0, r.b0) < tol);
  CHECK(max_abs_diff(b1, r.b1) < tol);
  CHECK(max_abs_diff(b2, r.b2) < tol);
  CHECK(max_abs_diff(b3, r.b3) < tol);
  CHECK(max_abs_diff(b21, r.b21) < tol);
  CHECK(max_abs_diff(f, r.features) < tol);
  CHECK(max_abs_diff(f, branch->forward(x)) < tol);

  // The wiring this pins is distinguishable: b_conv1 applied to the neck
  // output instead of b0 gives clearly different values.
  const Maps b1_from_x = res2d(xm, ws, "b_conv1" + g);
  CHECK(max_abs_diff(b1_from_x, r.b1) > 1e-3);
}
