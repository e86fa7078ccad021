// The run-time CPU dispatch (cpu/isa.hpp) and the kernels it chooses
// between (cpu/sgemm.hpp): the choice and its override, and every variant the
// processor supports, forced in turn, against a double reference and against
// the other variants, on GEMM and convolution shapes with odd sizes.
//
// The same tests run as test_cpu_portable, built for the x86-64 baseline
// whatever the build's flags, under qemu-x86_64 emulating processors without
// AVX-512 and without AVX2 (tests/cpu/CMakeLists.txt): there
// LGH_EXPECT_CPU_ISA names the variant the dispatch must pick.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lgh/core/parallel.hpp"
#include "lgh/cpu/isa.hpp"
#include "lgh/cpu/sgemm.hpp"
#include "lgh/ops/conv_impl.hpp"

using lgh::cpu::Isa;

namespace {

std::vector<Isa> supported_variants() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (lgh::cpu::isa_supported(isa)) v.push_back(isa);
  return v;
}

// Restores the variant active when the test began.
struct IsaGuard {
  Isa saved = lgh::cpu::active_isa();
  ~IsaGuard() { lgh::cpu::set_isa(saved); }
};

std::vector<float> random_values(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

constexpr float kSentinel = -12345.0f;
constexpr double kEps = std::numeric_limits<float>::epsilon();

struct GemmCase {
  int64_t M, N, K;
};

// Odd sizes everywhere: partial micro-tiles in both directions for every
// variant's MR x NR, depths past one and two KC blocks (256), rows past one
// MC block (192), columns past one NC block (1024). Under emulation
// (LGH_EXPECT_CPU_ISA set), where qemu runs the AVX2 kernel about a thousand
// times slower, only the small ones: the blocking loops around the kernels
// are the same plain C++ for every variant.
std::vector<GemmCase> gemm_cases() {
  if (std::getenv("LGH_EXPECT_CPU_ISA"))
    return {{1, 1, 1}, {7, 13, 5}, {9, 33, 17}, {10, 25, 19}, {13, 19, 261}, {3, 2, 0}};
  return {{1, 1, 1},    {7, 13, 5},    {9, 33, 17},   {10, 25, 19}, {13, 47, 300},
          {67, 71, 531}, {201, 37, 41}, {5, 1050, 3}, {3, 2, 0}};
}

// C = op(A) op(B) (+ C0 when accumulating) for every variant, every
// combination of transposes, with row strides wider than the rows; checks
// each element against a double reference within the worst-case float bound
// K eps sum_k |a_ik b_kj| (+ eps |c0|), and that nothing past the rows'
// ends is written.
void check_gemm(const GemmCase& s, bool trans_a, bool trans_b, bool accumulate, unsigned seed,
                std::vector<std::vector<float>>* results) {
  const int64_t M = s.M, N = s.N, K = s.K;
  const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  const int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  const int64_t lda = a_cols + 3, ldb = b_cols + 5, ldc = N + 7;
  const auto A = random_values(static_cast<size_t>(std::max<int64_t>(a_rows * lda, 1)), seed);
  const auto B = random_values(static_cast<size_t>(std::max<int64_t>(b_rows * ldb, 1)), seed + 1);
  auto C0 = random_values(static_cast<size_t>(M * ldc), seed + 2);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) C0[static_cast<size_t>(i * ldc + j)] = kSentinel;
  auto a = [&](int64_t i, int64_t k) { return double(trans_a ? A[k * lda + i] : A[i * lda + k]); };
  auto b = [&](int64_t k, int64_t j) { return double(trans_b ? B[j * ldb + k] : B[k * ldb + j]); };

  for (Isa isa : supported_variants()) {
    std::vector<float> C = C0;
    lgh::cpu::sgemm(trans_a, trans_b, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate, isa);
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        const double c0 = accumulate ? double(C0[i * ldc + j]) : 0.0;
        double ref = c0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          ref += a(i, k) * b(k, j);
          mag += std::fabs(a(i, k) * b(k, j));
        }
        const double bound = double(K + 1) * kEps * (mag + std::fabs(c0)) + 1e-30;
        const double got = C[static_cast<size_t>(i * ldc + j)];
        if (!(std::fabs(got - ref) <= bound)) {
          INFO("variant " << lgh::cpu::isa_name(isa) << ", M=" << M << " N=" << N << " K=" << K << " trans_a="
                          << trans_a << " trans_b=" << trans_b << " accumulate=" << accumulate << ": C[" << i << ","
                          << j << "] = " << got << ", expected " << ref << " within " << bound);
          REQUIRE(std::fabs(got - ref) <= bound);
        }
      }
      for (int64_t j = N; j < ldc; ++j) {
        INFO("variant " << lgh::cpu::isa_name(isa) << ", M=" << M << " N=" << N << " K=" << K
                        << ": wrote past row " << i << " at column " << j);
        REQUIRE(C[static_cast<size_t>(i * ldc + j)] == kSentinel);
      }
    }
    results->push_back(std::move(C));
  }
}

// max |a - b| / max |b|.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return err / std::max(scale, 1e-30);
}

// Direct convolution in double: y[n, o, i, j] = b[o] + sum x w.
std::vector<float> direct_conv(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& bias,
                               const lgh::ops::detail::ConvGeometry& g) {
  std::vector<float> y(static_cast<size_t>(g.N * g.O * g.OH * g.OW));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t i = 0; i < g.OH; ++i)
        for (int64_t j = 0; j < g.OW; ++j) {
          double acc = bias[static_cast<size_t>(o)];
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t ki = 0; ki < g.KH; ++ki)
              for (int64_t kj = 0; kj < g.KW; ++kj) {
                const int64_t ih = i * g.stride - g.pad + ki, iw = j * g.stride - g.pad + kj;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                acc += double(x[static_cast<size_t>(((n * g.C + c) * g.H + ih) * g.W + iw)]) *
                       double(w[static_cast<size_t>(((o * g.C + c) * g.KH + ki) * g.KW + kj)]);
              }
          y[static_cast<size_t>(((n * g.O + o) * g.OH + i) * g.OW + j)] = float(acc);
        }
  return y;
}

}  // namespace

TEST_CASE("the dispatch picks a variant the processor supports, and reports it", "[cpu]") {
  const Isa best = lgh::cpu::detected_isa();
  REQUIRE(lgh::cpu::isa_supported(Isa::baseline));
  REQUIRE(lgh::cpu::isa_supported(best));
  if (best == Isa::avx512) REQUIRE(lgh::cpu::isa_supported(Isa::avx2));
  std::cout << "lgh cpu variant: " << lgh::cpu::isa_name(lgh::cpu::active_isa()) << " (best supported: "
            << lgh::cpu::isa_name(best) << ")\n";
#if LGH_CPU_X86_DISPATCH
  // The compiler's own reading of cpuid, as a second opinion (it checks XCR0
  // as well).
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  CHECK(best == (avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::baseline));
#endif
  // Under emulation of an older processor, or with LGH_CPU_ISA set: the
  // variant the process must run.
  if (const char* expected = std::getenv("LGH_EXPECT_CPU_ISA")) {
    CHECK(std::string(lgh::cpu::isa_name(lgh::cpu::active_isa())) == expected);
    if (!std::getenv("LGH_CPU_ISA")) CHECK(std::string(lgh::cpu::isa_name(best)) == expected);
  }
}

TEST_CASE("LGH_CPU_ISA values: auto, each variant (lowered to what is supported), else an error", "[cpu]") {
  IsaGuard guard;
  const Isa best = lgh::cpu::detected_isa();
  CHECK(lgh::cpu::parse_isa("auto", "LGH_CPU_ISA") == best);
  CHECK(lgh::cpu::parse_isa(lgh::cpu::isa_name(Isa::baseline), "LGH_CPU_ISA") == Isa::baseline);
  CHECK(lgh::cpu::parse_isa("baseline", "LGH_CPU_ISA") == Isa::baseline);
  CHECK(lgh::cpu::parse_isa("avx2", "LGH_CPU_ISA") == Isa::avx2);
  CHECK(lgh::cpu::parse_isa("avx512", "LGH_CPU_ISA") == Isa::avx512);
  for (const char* bad : {"", "AVX2", "avx", "avx512f", "sse4"}) {
    INFO("value '" << bad << "'");
    try {
      lgh::cpu::parse_isa(bad, "LGH_CPU_ISA");
      FAIL("accepted");
    } catch (const lgh::Error& e) {
      const std::string what = e.what();
      CHECK(what.find("LGH_CPU_ISA='" + std::string(bad) + "'") != std::string::npos);
      CHECK(what.find("expected auto, ") != std::string::npos);
    }
  }
  // The variable itself, read at the first use.
  const char* saved = std::getenv("LGH_CPU_ISA");
  const std::string saved_value = saved ? saved : "";
  setenv("LGH_CPU_ISA", "avx3", 1);
  CHECK_THROWS_WITH(lgh::cpu::detail::initial_isa(), Catch::Contains("LGH_CPU_ISA='avx3'"));
  setenv("LGH_CPU_ISA", "avx512", 1);
  CHECK(lgh::cpu::detail::initial_isa() == best);
  setenv("LGH_CPU_ISA", lgh::cpu::isa_name(Isa::baseline), 1);
  CHECK(lgh::cpu::detail::initial_isa() == Isa::baseline);
  if (saved) setenv("LGH_CPU_ISA", saved_value.c_str(), 1);
  else unsetenv("LGH_CPU_ISA");
  // Asking for more than the processor has gives the best it has.
  CHECK(lgh::cpu::set_isa(Isa::avx512) == best);
  CHECK(lgh::cpu::active_isa() == best);
  CHECK(lgh::cpu::set_isa(Isa::baseline) == Isa::baseline);
  CHECK(lgh::cpu::active_isa() == Isa::baseline);
  if (lgh::cpu::isa_supported(Isa::avx2)) CHECK(lgh::cpu::set_isa(Isa::avx2) == Isa::avx2);
}

TEST_CASE("sgemm: every variant matches a double reference and the other variants", "[cpu][gemm]") {
  unsigned seed = 1;
  for (const GemmCase& s : gemm_cases())
    for (bool trans_a : {false, true})
      for (bool trans_b : {false, true})
        for (bool accumulate : {false, true}) {
          std::vector<std::vector<float>> results;
          check_gemm(s, trans_a, trans_b, accumulate, seed += 3, &results);
          // The variants differ only by rounding: within the same bound of each other.
          for (size_t v = 1; v < results.size(); ++v) {
            INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " variant " << v << " against the baseline");
            CHECK(relative_error(results[v], results[0]) <= 2.0 * double(s.K + 1) * kEps);
          }
        }
}

TEST_CASE("sgemm epilogue: bias, ReLU, residual, ReLU on the last depth block, every variant", "[cpu][gemm]") {
  // Depths of one and of three KC blocks (the epilogue must apply once, after
  // the last), partial tiles, and row strides of B past kSgemmPackLdb (full
  // panels packed too).
  struct Case {
    int64_t M, N, K, ldb;
  };
  const bool emulated = std::getenv("LGH_EXPECT_CPU_ISA") != nullptr;
  std::vector<Case> cases = {{9, 37, 13, 37}, {17, 70, 600, 70}, {10, 33, 20, lgh::cpu::detail::kSgemmPackLdb + 3}};
  if (emulated) cases = {{9, 37, 13, 37}, {5, 20, 270, 2100}};
  unsigned seed = 900;
  for (const Case& c : cases)
    for (bool accumulate : {false, true})
      for (int mode = 0; mode < 4; ++mode) {
        const int64_t M = c.M, N = c.N, K = c.K, ldc = N + 3, ldr = N + 5;
        const auto A = random_values(static_cast<size_t>(M * K), ++seed);
        const auto B = random_values(static_cast<size_t>(K * c.ldb), ++seed);
        const auto C0 = random_values(static_cast<size_t>(M * ldc), ++seed);
        const auto bias = random_values(static_cast<size_t>(M), ++seed);
        const auto res = random_values(static_cast<size_t>(M * ldr), ++seed);
        lgh::cpu::SgemmEpilogue e;
        e.bias = mode != 1 ? bias.data() : nullptr;
        e.relu = mode == 1 || mode == 3;
        e.residual = mode >= 2 ? res.data() : nullptr;
        e.ldr = ldr;
        e.relu_after_residual = mode == 2 || mode == 3;
        for (Isa isa : supported_variants()) {
          INFO("variant " << lgh::cpu::isa_name(isa) << ", M=" << M << " N=" << N << " K=" << K << " ldb=" << c.ldb
                          << " accumulate=" << accumulate << " epilogue mode " << mode);
          std::vector<float> C = C0;
          lgh::cpu::sgemm(false, false, M, N, K, A.data(), K, B.data(), c.ldb, C.data(), ldc, accumulate, e, isa);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const float got = C[static_cast<size_t>(i * ldc + j)];
              if (j >= N) {
                REQUIRE(got == C0[static_cast<size_t>(i * ldc + j)]);
                continue;
              }
              double v = accumulate ? double(C0[static_cast<size_t>(i * ldc + j)]) : 0.0, mag = std::fabs(v);
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(A[static_cast<size_t>(i * K + k)]) * double(B[static_cast<size_t>(k * c.ldb + j)]);
                v += p;
                mag += std::fabs(p);
              }
              if (e.bias) v += bias[static_cast<size_t>(i)], mag += std::fabs(bias[static_cast<size_t>(i)]);
              if (e.relu) v = std::max(v, 0.0);
              if (e.residual) v += res[static_cast<size_t>(i * ldr + j)], mag += std::fabs(res[static_cast<size_t>(i * ldr + j)]);
              if (e.relu_after_residual) v = std::max(v, 0.0);
              const double bound = double(K + 4) * kEps * mag + 1e-30;
              if (!(std::fabs(got - v) <= bound)) {
                INFO("C[" << i << "," << j << "] = " << got << ", expected " << v << " within " << bound);
                REQUIRE(std::fabs(got - v) <= bound);
              }
            }
        }
      }
}

TEST_CASE("sgemm with A packed once: the same bits as sgemm, for any block of panel rows", "[cpu][gemm]") {
  const int64_t M = 45, K = 300, N = 50;
  const auto A = random_values(static_cast<size_t>(K * M), 31);  // stored [K, M]: trans_a
  const auto B = random_values(static_cast<size_t>(N * K), 32);  // stored [N, K]: trans_b
  const auto bias = random_values(static_cast<size_t>(M), 33);
  for (Isa isa : supported_variants()) {
    INFO("variant " << lgh::cpu::isa_name(isa));
    std::vector<float> packed(static_cast<size_t>(lgh::cpu::sgemm_packed_a_size(M, K, isa)), kSentinel);
    const lgh::cpu::SgemmPackedA a = lgh::cpu::sgemm_pack_a(true, M, K, A.data(), M, packed.data(), isa);
    REQUIRE(a.isa == isa);
    std::vector<float> want(static_cast<size_t>(M * N));
    lgh::cpu::SgemmEpilogue e;
    e.bias = bias.data();
    e.relu = true;
    lgh::cpu::sgemm(true, true, M, N, K, A.data(), M, B.data(), K, want.data(), N, false, e, isa);
    const int64_t mr = lgh::cpu::sgemm_panel_rows(isa);
    for (int64_t i0 : {int64_t(0), mr, 2 * mr})
      for (int64_t m : {M - i0, int64_t(1), mr + 1}) {
        if (i0 + m > M) continue;
        INFO("rows " << i0 << ".." << i0 + m);
        std::vector<float> C(static_cast<size_t>(m * N), kSentinel);
        lgh::cpu::SgemmEpilogue rows = e;
        rows.bias += i0;
        lgh::cpu::sgemm_packed(a, i0, m, true, N, B.data(), K, C.data(), N, false, rows);
        CHECK(std::equal(C.begin(), C.end(), want.begin() + i0 * N));
      }
    if (mr > 1) CHECK_THROWS_WITH(lgh::cpu::sgemm_packed(a, 1, 2, true, N, B.data(), K, want.data(), N, false),
                                  Catch::Contains("panels of"));
  }
}

TEST_CASE("convolutions: every variant forced in turn gives the same outputs", "[cpu][conv]") {
  IsaGuard guard;
  using lgh::ops::detail::ConvGeometry;
  struct ConvCase {
    int64_t N, C, H, W, O, K, stride, pad;
  };
  // 3x3 stride 1 (the Winograd paths: F(2x2), then F(4x4) with 64 tiles and
  // more), 3x3 stride 2, 1x1 (no im2col) and 5x5, with channel counts and
  // image sizes that fill no tile exactly.
  const std::vector<ConvCase> cases = {{2, 9, 13, 11, 11, 3, 1, 1}, {2, 9, 30, 29, 10, 3, 1, 1},
                                       {1, 5, 9, 7, 7, 3, 2, 1},    {2, 13, 5, 9, 10, 1, 1, 0},
                                       {1, 3, 11, 10, 5, 5, 1, 2}};
  lgh::set_num_threads(2);
  unsigned seed = 50;
  for (const ConvCase& c : cases) {
    ConvGeometry g;
    g.N = c.N, g.C = c.C, g.H = c.H, g.W = c.W, g.O = c.O, g.KH = c.K, g.KW = c.K, g.stride = c.stride, g.pad = c.pad;
    g.OH = lgh::ops::detail::conv_out_size(g.H, g.KH, g.stride, g.pad);
    g.OW = lgh::ops::detail::conv_out_size(g.W, g.KW, g.stride, g.pad);
    const auto x = random_values(static_cast<size_t>(g.N * g.C * g.H * g.W), ++seed);
    const auto w = random_values(static_cast<size_t>(g.O * g.rows()), ++seed);
    const auto bias = random_values(static_cast<size_t>(g.O), ++seed);
    const auto gy = random_values(static_cast<size_t>(g.N * g.O * g.cols()), ++seed);
    const auto y_ref = direct_conv(x, w, bias, g);
    std::vector<float> y0, gx0, gw0, gb0;
    for (Isa isa : supported_variants()) {
      INFO("variant " << lgh::cpu::isa_name(isa) << ", N=" << g.N << " C=" << g.C << " " << g.H << "x" << g.W
                      << " O=" << g.O << " k=" << g.KH << " s=" << g.stride << " p=" << g.pad);
      REQUIRE(lgh::cpu::set_isa(isa) == isa);
      std::vector<float> y(y_ref.size(), kSentinel), gx(x.size(), kSentinel), gw(w.size(), kSentinel),
          gb(bias.size(), kSentinel);
      lgh::ops::detail::conv_forward(x.data(), w.data(), bias.data(), y.data(), g);
      lgh::ops::detail::conv_backward_data(gy.data(), w.data(), gx.data(), g);
      lgh::ops::detail::conv_backward_weight(x.data(), gy.data(), gw.data(), gb.data(), g);
      // Winograd agrees with the direct sum to ~1e-6 (F(2x2)) and ~1e-5
      // (F(4x4)) of the largest output: the bounds of tests/ops/test_winograd.cpp.
      const double tol = lgh::ops::detail::winograd4_pays(g) ? 5e-5 : 1e-5;
      CHECK(relative_error(y, y_ref) < tol);
      if (y0.empty()) {
        y0 = y, gx0 = gx, gw0 = gw, gb0 = gb;
        continue;
      }
      CHECK(relative_error(y, y0) < tol);
      CHECK(relative_error(gx, gx0) < tol);
      CHECK(relative_error(gw, gw0) < 1e-5);
      CHECK(relative_error(gb, gb0) < 1e-5);
    }
  }
}
