// The Winograd F(2x2, 3x3) and F(4x4, 3x3) kernels (ops/winograd.hpp,
// ops/winograd_f4.hpp) against a direct convolution computed in double, and
// the dispatching conv_forward / conv_backward_data against the im2col path.
#include "lgh/ops/conv_impl.hpp"
#include "op_test_utils.hpp"

using namespace lgh;
using namespace lgh_test;
using ops::detail::ConvEpilogue;
using ops::detail::ConvGeometry;

namespace {

struct Shape5 {
  int64_t N, Cin, Cout, H, W;
};

// y[n, o, i, j] = b[o] + sum_{c, ki, kj} x[n, c, i + ki - 1, j + kj - 1] k(o, c, ki, kj)
// with k = w[o, c, ki, kj] (forward, w is [Cout][Cin][3][3]) or
// k = w[c, o, 2 - ki, 2 - kj] (adjoint, w is [Cin][Cout][3][3]).
template <typename T>
std::vector<double> direct_conv3x3(const std::vector<T>& x, const std::vector<T>& w, bool adjoint,
                                   const std::vector<T>& bias, const Shape5& s) {
  std::vector<double> y(static_cast<size_t>(s.N * s.Cout * s.H * s.W));
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t i = 0; i < s.H; ++i)
        for (int64_t j = 0; j < s.W; ++j) {
          double acc = bias.empty() ? 0.0 : double(bias[o]);
          for (int64_t c = 0; c < s.Cin; ++c)
            for (int64_t ki = 0; ki < 3; ++ki)
              for (int64_t kj = 0; kj < 3; ++kj) {
                const int64_t ih = i + ki - 1, iw = j + kj - 1;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const T k = adjoint ? w[((c * s.Cout + o) * 3 + (2 - ki)) * 3 + (2 - kj)]
                                    : w[((o * s.Cin + c) * 3 + ki) * 3 + kj];
                acc += double(x[((n * s.Cin + c) * s.H + ih) * s.W + iw]) * double(k);
              }
          y[((n * s.Cout + o) * s.H + i) * s.W + j] = acc;
        }
  return y;
}

template <typename T>
std::vector<T> random_values(int64_t n, uint64_t seed) {
  const auto v = random_tensor({n}, seed).to_vector();
  return std::vector<T>(v.begin(), v.end());
}

// Max |a - b| relative to max |b|.
template <typename T>
double relative_error(const std::vector<T>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / std::max(scale, 1e-300);
}

void apply_epilogue(std::vector<double>& y, const ConvEpilogue<float>& e) {
  for (size_t i = 0; i < y.size(); ++i) {
    double v = y[i];
    if (e.relu) v = std::max(v, 0.0);
    if (e.residual) v += e.residual[i];
    if (e.relu_after_residual) v = std::max(v, 0.0);
    y[i] = v;
  }
}

// Odd sizes (partial tiles in the last row and column), a 1x1 image, channel
// counts that are multiples of nothing, batches, one shape that the dispatch
// sends to Winograd, and one whose tiles make several blocks of F(4x4)'s
// (runs of tiles that start and end inside a tile row).
const std::vector<Shape5> kShapes = {{1, 1, 1, 1, 1},    {2, 3, 5, 7, 5},    {1, 5, 3, 2, 3},
                                     {3, 17, 13, 9, 11}, {2, 70, 65, 6, 4},  {2, 64, 72, 16, 13},
                                     {1, 40, 48, 36, 70}};

using Kernel = void (*)(const float*, const float*, bool, const float*, float*, int64_t, int64_t, int64_t, int64_t,
                        int64_t, const ConvEpilogue<float>&);
using KernelD = void (*)(const double*, const double*, bool, const double*, double*, int64_t, int64_t, int64_t,
                         int64_t, int64_t, const ConvEpilogue<double>&);

// Each kernel with the float error it may show against the direct sum, as a
// fraction of the output's largest magnitude. F(2x2) agrees to about 1e-6
// (at most 1.2e-6 against im2col on the model's shapes, up to 277 input
// channels); F(4x4), whose transforms scale rounding errors by up to 8 and
// whose G is inexact in binary, to about 1e-5 (at most 9.6e-6 on the model's
// shapes). The bounds leave room for deeper sums, not for a wrong transform,
// whose error is of the order of the outputs themselves.
struct KernelCase {
  const char* name;
  Kernel kernel;
  KernelD kernel_double;
  double tolerance;
};
const std::vector<KernelCase> kKernels = {
    {"F(2x2, 3x3)", &ops::detail::winograd_conv3x3<float>, &ops::detail::winograd_conv3x3<double>, 1e-5},
    {"F(4x4, 3x3)", &ops::detail::winograd4_conv3x3<float>, &ops::detail::winograd4_conv3x3<double>, 5e-5}};

}  // namespace

TEST_CASE("Winograd forward matches a direct convolution, with bias and each epilogue", "[ops][conv][winograd]") {
  for (const KernelCase& k : kKernels)
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    uint64_t seed = 100;
    for (const Shape5& s : kShapes) {
      const auto x = random_values<float>(s.N * s.Cin * s.H * s.W, ++seed);
      const auto w = random_values<float>(s.Cout * s.Cin * 9, ++seed);
      const auto b = random_values<float>(s.Cout, ++seed);
      const auto residual = random_values<float>(s.N * s.Cout * s.H * s.W, ++seed);
      struct Case {
        const char* name;
        bool with_bias;
        ConvEpilogue<float> epilogue;
      };
      const std::vector<Case> cases = {{"no bias", false, {}},
                                       {"bias", true, {}},
                                       {"relu", true, {true, nullptr, false}},
                                       {"residual", true, {false, residual.data(), false}},
                                       {"residual, relu", true, {false, residual.data(), true}},
                                       {"relu, residual, relu", true, {true, residual.data(), true}}};
      for (const Case& c : cases) {
        INFO(k.name << ", shape N=" << s.N << " C=" << s.Cin << " O=" << s.Cout << " " << s.H << "x" << s.W << ", "
                    << c.name << ", threads " << threads);
        std::vector<float> y(static_cast<size_t>(s.N * s.Cout * s.H * s.W), -7.0f);
        k.kernel(x.data(), w.data(), false, c.with_bias ? b.data() : nullptr, y.data(), s.N, s.Cin, s.Cout, s.H, s.W,
                 c.epilogue);
        std::vector<double> ref = direct_conv3x3(x, w, false, c.with_bias ? b : std::vector<float>{}, s);
        apply_epilogue(ref, c.epilogue);
        CHECK(relative_error(y, ref) < k.tolerance);
      }
    }
  }
  set_num_threads(2);
}

TEST_CASE("Winograd adjoint (data gradient) matches a direct transposed convolution", "[ops][conv][winograd]") {
  for (const KernelCase& k : kKernels)
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    uint64_t seed = 200;
    for (const Shape5& s : kShapes) {
      INFO(k.name << ", shape N=" << s.N << " C=" << s.Cin << " O=" << s.Cout << " " << s.H << "x" << s.W
                  << ", threads " << threads);
      const auto gy = random_values<float>(s.N * s.Cin * s.H * s.W, ++seed);
      // The forward convolution maps Cout channels to Cin: w is [Cin][Cout][3][3].
      const auto w = random_values<float>(s.Cin * s.Cout * 9, ++seed);
      std::vector<float> gx(static_cast<size_t>(s.N * s.Cout * s.H * s.W), -7.0f);
      k.kernel(gy.data(), w.data(), true, nullptr, gx.data(), s.N, s.Cin, s.Cout, s.H, s.W, {});
      CHECK(relative_error(gx, direct_conv3x3(gy, w, true, {}, s)) < k.tolerance);
    }
  }
  set_num_threads(2);
}

TEST_CASE("Winograd in double is as exact as the direct sum", "[ops][conv][winograd]") {
  for (const KernelCase& k : kKernels)
  for (const Shape5& s : kShapes) {
    INFO(k.name << ", shape N=" << s.N << " C=" << s.Cin << " O=" << s.Cout << " " << s.H << "x" << s.W);
    const auto x = random_values<double>(s.N * s.Cin * s.H * s.W, 301);
    const auto w = random_values<double>(s.Cout * s.Cin * 9, 302);
    const auto b = random_values<double>(s.Cout, 303);
    std::vector<double> y(static_cast<size_t>(s.N * s.Cout * s.H * s.W));
    k.kernel_double(x.data(), w.data(), false, b.data(), y.data(), s.N, s.Cin, s.Cout, s.H, s.W, {});
    CHECK(relative_error(y, direct_conv3x3(x, w, false, b, s)) < 1e-13);
  }
}

// gw[o, c, ki, kj] = sum_{n, i, j} gy[n, o, i, j] x[n, c, i + ki - 1, j + kj - 1],
// gb[o] = sum gy[n, o]: the weight gradient of the forward convolution above.
template <typename T>
std::vector<double> direct_weight_grad3x3(const std::vector<T>& x, const std::vector<T>& gy, const Shape5& s,
                                          std::vector<double>* gb) {
  std::vector<double> gw(static_cast<size_t>(s.Cout * s.Cin * 9), 0.0);
  if (gb) gb->assign(static_cast<size_t>(s.Cout), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t i = 0; i < s.H; ++i)
        for (int64_t j = 0; j < s.W; ++j) {
          const double g = double(gy[((n * s.Cout + o) * s.H + i) * s.W + j]);
          if (gb) (*gb)[o] += g;
          for (int64_t c = 0; c < s.Cin; ++c)
            for (int64_t ki = 0; ki < 3; ++ki)
              for (int64_t kj = 0; kj < 3; ++kj) {
                const int64_t ih = i + ki - 1, iw = j + kj - 1;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                gw[((o * s.Cin + c) * 3 + ki) * 3 + kj] += g * double(x[((n * s.Cin + c) * s.H + ih) * s.W + iw]);
              }
        }
  return gw;
}

TEST_CASE("Winograd weight gradient matches a direct sum", "[ops][conv][winograd]") {
  // F(2x2)'s transforms of x and gy only add and subtract, and G's entries
  // are 1/2: the float error is that of the im2col GEMM's long sums (about
  // 1e-6 of the largest gradient); a wrong transform is off by O(1).
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    uint64_t seed = 500;
    for (const Shape5& s : kShapes) {
      INFO("shape N=" << s.N << " C=" << s.Cin << " O=" << s.Cout << " " << s.H << "x" << s.W << ", threads "
                      << threads);
      const auto x = random_values<float>(s.N * s.Cin * s.H * s.W, ++seed);
      const auto gy = random_values<float>(s.N * s.Cout * s.H * s.W, ++seed);
      std::vector<double> gb_ref;
      const auto gw_ref = direct_weight_grad3x3(x, gy, s, &gb_ref);
      std::vector<float> gw(gw_ref.size(), -7.0f), gb(gb_ref.size(), -7.0f);
      ops::detail::winograd_conv3x3_backward_weight(x.data(), gy.data(), gw.data(), gb.data(), s.N, s.Cin, s.Cout,
                                                    s.H, s.W);
      CHECK(relative_error(gw, gw_ref) < 1e-5);
      CHECK(relative_error(gb, gb_ref) < 1e-5);
      std::vector<float> gw_nobias(gw_ref.size(), -7.0f);
      ops::detail::winograd_conv3x3_backward_weight(x.data(), gy.data(), gw_nobias.data(), static_cast<float*>(nullptr),
                                                    s.N, s.Cin, s.Cout, s.H, s.W);
      CHECK(gw_nobias == gw);
    }
  }
  set_num_threads(2);
  for (const Shape5& s : kShapes) {
    INFO("double, shape N=" << s.N << " C=" << s.Cin << " O=" << s.Cout << " " << s.H << "x" << s.W);
    const auto x = random_values<double>(s.N * s.Cin * s.H * s.W, 601);
    const auto gy = random_values<double>(s.N * s.Cout * s.H * s.W, 602);
    const auto gw_ref = direct_weight_grad3x3(x, gy, s, nullptr);
    std::vector<double> gw(gw_ref.size());
    ops::detail::winograd_conv3x3_backward_weight(x.data(), gy.data(), gw.data(), static_cast<double*>(nullptr), s.N,
                                                  s.Cin, s.Cout, s.H, s.W);
    CHECK(relative_error(gw, gw_ref) < 1e-13);
  }
}

// conv_forward / conv_backward_data on a geometry: the same bits as `kernel`
// (the one the dispatch must choose), and within its tolerance of im2col.
void check_dispatch(const ConvGeometry& g, const KernelCase& k) {
  INFO(k.name << ", N=" << g.N << " C=" << g.C << " O=" << g.O << " " << g.H << "x" << g.W);
  const auto x = random_values<float>(g.N * g.C * g.H * g.W, 401);
  const auto w = random_values<float>(g.O * g.C * 9, 402);
  const auto b = random_values<float>(g.O, 403);
  const auto residual = random_values<float>(g.N * g.O * g.H * g.W, 404);
  const ConvEpilogue<float> epilogue{true, residual.data(), true};
  std::vector<float> y(residual.size()), y_kernel(residual.size()), y_ref(residual.size());
  ops::detail::conv_forward(x.data(), w.data(), b.data(), y.data(), g, epilogue);
  k.kernel(x.data(), w.data(), false, b.data(), y_kernel.data(), g.N, g.C, g.O, g.H, g.W, epilogue);
  ops::detail::conv_forward_im2col(x.data(), w.data(), b.data(), y_ref.data(), g, epilogue);
  CHECK(y == y_kernel);
  CHECK(relative_error(y, std::vector<double>(y_ref.begin(), y_ref.end())) < k.tolerance);

  const auto gy = random_values<float>(g.N * g.O * g.H * g.W, 405);
  std::vector<float> gx(x.size()), gx_kernel(x.size()), gx_ref(x.size());
  ops::detail::conv_backward_data(gy.data(), w.data(), gx.data(), g);
  k.kernel(gy.data(), w.data(), true, nullptr, gx_kernel.data(), g.N, g.O, g.C, g.H, g.W, {});
  ops::detail::conv_backward_data_im2col(gy.data(), w.data(), gx_ref.data(), g);
  CHECK(gx == gx_kernel);
  CHECK(relative_error(gx, std::vector<double>(gx_ref.begin(), gx_ref.end())) < k.tolerance);

  // The weight gradient: F(2x2) wherever Winograd pays.
  std::vector<float> gw(w.size()), gb(b.size()), gw_kernel(w.size()), gb_kernel(b.size());
  ops::detail::conv_backward_weight(x.data(), gy.data(), gw.data(), gb.data(), g);
  ops::detail::winograd_conv3x3_backward_weight(x.data(), gy.data(), gw_kernel.data(), gb_kernel.data(), g.N, g.C, g.O,
                                                g.H, g.W);
  CHECK(gw == gw_kernel);
  CHECK(gb == gb_kernel);
  const Shape5 s{g.N, g.C, g.O, g.H, g.W};
  CHECK(relative_error(gw, direct_weight_grad3x3(x, gy, s, nullptr)) < 1e-5);
}

TEST_CASE("conv_forward, conv_backward_data and conv_backward_weight choose Winograd and agree with im2col", "[ops][conv][winograd]") {
  // 40 tiles of 4x4 over the batch: F(2x2) (160 tiles of 2x2).
  ConvGeometry g;
  g.N = 2, g.C = 64, g.H = 16, g.W = 17, g.O = 72, g.KH = 3, g.KW = 3, g.stride = 1, g.pad = 1;
  g.OH = g.H, g.OW = g.W;
  REQUIRE(ops::detail::winograd_pays(g));
  REQUIRE_FALSE(ops::detail::winograd4_pays(g));
  check_dispatch(g, kKernels[0]);
  // 72 tiles of 4x4: F(4x4).
  ConvGeometry large = g;
  large.N = 1, large.H = large.OH = 32, large.W = large.OW = 33;
  REQUIRE(ops::detail::winograd4_pays(large));
  check_dispatch(large, kKernels[1]);

  ConvGeometry small = g;
  small.N = 1, small.H = 8, small.W = 8, small.OH = 8, small.OW = 8;
  CHECK_FALSE(ops::detail::winograd_pays(small));
  CHECK_FALSE(ops::detail::winograd4_pays(small));
  for (ConvGeometry strided : {g, large}) {
    strided.stride = 2;
    CHECK_FALSE(ops::detail::winograd_pays(strided));
    CHECK_FALSE(ops::detail::winograd4_pays(strided));
  }
  ConvGeometry narrow = large;
  narrow.C = 4;
  CHECK_FALSE(ops::detail::winograd4_pays(narrow));
}
