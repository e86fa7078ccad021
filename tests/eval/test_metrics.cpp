#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "lgh/eval/metrics.hpp"

using namespace lgh;

namespace {

Tensor<double> tensor_from(const nlohmann::json& j, const Shape& shape) {
  std::vector<double> v;
  std::function<void(const nlohmann::json&)> flat = [&](const nlohmann::json& x) {
    if (x.is_array())
      for (const auto& e : x) flat(e);
    else
      v.push_back(x.get<double>());
  };
  flat(j);
  REQUIRE(static_cast<int64_t>(v.size()) == shape.numel());
  return Tensor<double>::from_data(shape, v);
}

void check_close(double got, double want, const std::string& what) {
  INFO(what << ": got " << got << ", numpy " << want);
  CHECK(std::fabs(got - want) <= 1e-10 * std::max(1.0, std::fabs(want)));
}

void check_array(const std::vector<double>& got, const nlohmann::json& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) check_close(got[i], want[i].get<double>(), what + "[" + std::to_string(i) + "]");
}

void check_3d(const nlohmann::json& got, const nlohmann::json& want, const std::string& where) {
  for (const char* key : {"epe_mean_mm", "epe_median_mm", "auc_0_50", "auc_20_50_exact"})
    check_close(got.at(key).get<double>(), want.at(key).get<double>(), where + key);
  if (want.contains("auc_20_50")) check_close(got.at("auc_20_50").get<double>(), want.at("auc_20_50").get<double>(), where + "auc_20_50");
  CHECK(got.contains("auc_20_50") == want.contains("auc_20_50"));
  check_array(got.at("thresholds_mm").get<std::vector<double>>(), want.at("thresholds_mm"), where + "thresholds_mm");
  check_array(got.at("pck").get<std::vector<double>>(), want.at("pck"), where + "pck");
  check_array(got.at("pck_20_50_exact").get<std::vector<double>>(), want.at("pck_20_50_exact"), where + "pck_20_50_exact");
  CHECK(got.at("joints").get<int>() == want.at("joints").get<int>());
}

nlohmann::json load_fixture() {
  std::ifstream in(std::string(LGH_TEST_DATA_DIR) + "/eval/fixtures/metrics_reference.json");
  REQUIRE(in.good());
  nlohmann::json j;
  in >> j;
  return j;
}

}  // namespace

// The fixture is written by tests/eval/make_metrics_fixture.py, a numpy
// statement of DESIGN.md §5: four cases (rhd with 2D, stb with a visibility
// mask and a joint never measured, freihand with Procrustes alignment,
// Dexter+Object's fingertips with the best scale and translation).
TEST_CASE("metrics match the numpy statement of the protocol", "[eval][metrics]") {
  const nlohmann::json fixture = load_fixture();
  REQUIRE(fixture.at("cases").size() == 4);
  for (const auto& c : fixture.at("cases")) {
    const std::string name = c.at("name");
    SECTION(name) {
      const int64_t N = static_cast<int64_t>(c.at("gt_xyz").size());
      eval::PoseSet pred, gt;
      pred.xyz = tensor_from(c.at("pred_xyz"), {N, 21, 3});
      gt.xyz = tensor_from(c.at("gt_xyz"), {N, 21, 3});
      if (c.contains("vis")) gt.vis = tensor_from(c.at("vis"), {N, 21});
      if (c.contains("pred_uv")) {
        pred.uv = tensor_from(c.at("pred_uv"), {N, 21, 2});
        gt.uv = tensor_from(c.at("gt_uv"), {N, 21, 2});
      }
      const auto m = eval::compute_metrics(pred, gt, eval::parse_protocol(c.at("protocol")));
      const nlohmann::json got = m.to_json(), want = c.at("expected");
      check_3d(got, want, name + ": ");
      CHECK(got.contains("uv") == want.contains("uv"));
      if (want.contains("uv")) {
        for (const char* key : {"epe_mean_px", "epe_median_px", "auc_0_30"})
          check_close(got["uv"].at(key).get<double>(), want["uv"].at(key).get<double>(), name + ": uv." + key);
        check_array(got["uv"].at("pck").get<std::vector<double>>(), want["uv"].at("pck"), name + ": uv.pck");
        check_array(got["uv"].at("thresholds_px").get<std::vector<double>>(), want["uv"].at("thresholds_px"),
                    name + ": uv.thresholds_px");
      }
      CHECK(got.contains("aligned") == want.contains("aligned"));
      if (want.contains("aligned")) {
        check_3d(got["aligned"], want["aligned"], name + ": aligned.");
        CHECK(got["aligned"]["thresholds_mm"].size() == 100);
        CHECK(got["aligned"]["epe_mean_cm"].get<double>() == Approx(want["aligned"]["epe_mean_mm"].get<double>() / 10));
      }
    }
  }
}

// The baseline curves on STB that the authors plot, read from their
// plot_AUC_tools.py, plt_STB(): `pso`, `icppso` and `chpr` at thresholds 20,
// 25, ..., 50 mm (lines 53-61), labelled there 'PSO (AUC=0.709)', 'ICPPSO
// (AUC=0.748)' and 'CHPR (AUC=0.839)' (lines 74-76); the same curves are in
// utils/eval_utils.py, get_stb_ref_curves(). Their AUC is the normalised
// trapezoid (calc_auc in both files).
TEST_CASE("normalised AUC reproduces the published STB baselines", "[eval][metrics]") {
  const std::vector<double> t = {20, 25, 30, 35, 40, 45, 50};
  const std::vector<double> pso = {0.322368421052632, 0.539473684210526, 0.674342105263158, 0.756578947368421,
                                   0.809210526315789, 0.865131578947368, 0.894736842105263};
  const std::vector<double> icppso = {0.519736842105263, 0.644736842105263, 0.717105263157895, 0.773026315789474,
                                      0.809210526315789, 0.848684210526316, 0.868421052631579};
  const std::vector<double> chpr = {0.565789473684211, 0.717105263157895, 0.822368421052632, 0.881578947368421,
                                    0.914473684210526, 0.9375, 0.960526315789474};
  const auto rounded = [](double v) { return std::round(v * 1000) / 1000; };
  CHECK(rounded(eval::normalized_auc(t, pso)) == 0.709);
  CHECK(rounded(eval::normalized_auc(t, icppso)) == 0.748);
  CHECK(rounded(eval::normalized_auc(t, chpr)) == 0.839);
}

TEST_CASE("AUC 20-50: the reference's last 12 of 20 thresholds, and the true grid", "[eval][metrics]") {
  // eval_RHD.py (lines 56-59) takes pck_curve_all[8:] of linspace(0, 50 mm, 20):
  // the subset starts at 21.05 mm, not 20.
  const auto t = eval::linspace(0, 50, 20);
  CHECK(t[8] == Approx(21.0526315789).epsilon(1e-10));
  CHECK(t.back() == 50.0);
  // One joint, errors 20.5 mm (twice) and 60 mm: PCK 0 below 20.5, 2/3 up to
  // 50. The reference subset never sees the step at 20.5, the true grid does.
  eval::JointErrors e(1);
  e.add(0, 20.5);
  e.add(0, 20.5);
  e.add(0, 60);
  const eval::Metrics3d m = eval::summarize_3d(e);
  CHECK(m.auc_20_50 == Approx(2.0 / 3));
  CHECK(m.exact_20_50.auc < m.auc_20_50);
  CHECK(m.exact_20_50.thresholds.front() == 20.0);
  CHECK(m.curve.epe_mean == Approx((20.5 * 2 + 60) / 3));
  CHECK(m.curve.epe_median == 20.5);
}

TEST_CASE("EPE averages per-joint means and medians, not pooled errors", "[eval][metrics]") {
  eval::JointErrors e(2);
  for (double v : {1.0, 2.0, 3.0, 100.0}) e.add(0, v);  // mean 26.5, median 2.5
  e.add(1, 10.0);                                        // mean = median = 10
  const eval::PckSummary s = e.summarize(0, 50, 20);
  CHECK(s.epe_mean == Approx((26.5 + 10) / 2));
  CHECK(s.epe_median == Approx((2.5 + 10) / 2));
  CHECK(s.joints == 2);
}

TEST_CASE("Procrustes alignment removes a similarity transform exactly", "[eval][metrics]") {
  PhiloxEngine rng(3);
  eval::Joints3 gt(21), pred(21);
  const double c = std::cos(0.7), s = std::sin(0.7);
  for (int j = 0; j < 21; ++j) {
    for (int k = 0; k < 3; ++k) gt[j][k] = rng.uniform(-50, 50);
    // pred = 1.3 * Rz(0.7) * gt + (10, -5, 300)
    pred[j] = {1.3 * (c * gt[j][0] - s * gt[j][1]) + 10, 1.3 * (s * gt[j][0] + c * gt[j][1]) - 5, 1.3 * gt[j][2] + 300};
  }
  const eval::Joints3 a = eval::procrustes_align(pred, gt);
  for (int j = 0; j < 21; ++j)
    for (int k = 0; k < 3; ++k) CHECK(a[j][k] == Approx(gt[j][k]).margin(1e-6));
  const eval::Joints3 b = eval::scale_translation_align(pred, pred);
  for (int j = 0; j < 21; ++j)
    for (int k = 0; k < 3; ++k) CHECK(b[j][k] == Approx(pred[j][k]).margin(1e-9));
}

TEST_CASE("metrics reject bad input with the tensor named", "[eval][metrics]") {
  eval::PoseSet p, g;
  g.xyz = Tensor<double>::zeros({2, 21, 3});
  p.xyz = Tensor<double>::zeros({3, 21, 3});
  CHECK_THROWS_WITH(eval::compute_metrics(p, g, eval::Protocol::Rhd), Catch::Contains("xyz (predictions)") && Catch::Contains("[2, 21, 3]"));
  p.xyz = Tensor<double>::zeros({2, 21, 3});
  g.vis = Tensor<double>::zeros({2, 21});
  CHECK_THROWS_WITH(eval::compute_metrics(p, g, eval::Protocol::Rhd), Catch::Contains("no joint has a measurement"));
  g.vis = Tensor<double>::ones({2, 20});
  CHECK_THROWS_WITH(eval::compute_metrics(p, g, eval::Protocol::Rhd), Catch::Contains("'vis'"));
  g.vis = Tensor<double>();
  p.xyz.data()[5] = std::nan("");
  CHECK_THROWS_WITH(eval::compute_metrics(p, g, eval::Protocol::Rhd), Catch::Contains("not finite"));
  CHECK_THROWS_WITH(eval::parse_protocol("hands"), Catch::Contains("unknown protocol 'hands'"));
}
