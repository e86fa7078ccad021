#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli_fixtures.hpp"
#include "lgh/eval/metrics.hpp"

using namespace cli_test;

namespace {

struct PoseFiles {
  std::string pred, gt;
  lgh::eval::PoseSet p, g;
};

// Predictions and ground truth of 5 hands (xyz, uv; vis in the ground truth).
PoseFiles write_poses(const std::filesystem::path& dir) {
  using namespace lgh;
  PhiloxEngine rng(4);
  PoseFiles f;
  f.g.xyz = Tensor<double>::uniform({5, 21, 3}, -60, 60, rng);
  f.p.xyz = f.g.xyz.clone();
  for (int64_t i = 0; i < f.p.xyz.numel(); ++i) f.p.xyz.data()[i] += 25 * (rng.uniform() - 0.5);
  f.g.uv = Tensor<double>::uniform({5, 21, 2}, 0, 300, rng);
  f.p.uv = f.g.uv.clone();
  for (int64_t i = 0; i < f.p.uv.numel(); ++i) f.p.uv.data()[i] += 20 * (rng.uniform() - 0.5);
  f.g.vis = Tensor<double>::ones({5, 21});
  f.g.vis.data()[7] = 0;
  f.pred = (dir / "pred.safetensors").string();
  f.gt = (dir / "gt.safetensors").string();
  io::SafetensorsWriter wp, wg;
  wp.add("xyz", f.p.xyz.cast<float>());
  wp.add("uv", f.p.uv.cast<float>());
  wg.add("xyz", f.g.xyz.cast<float>());
  wg.add("uv", f.g.uv.cast<float>());
  wg.add("vis", f.g.vis.cast<float>());
  wp.write(f.pred);
  wg.write(f.gt);
  // What the files hold (float32).
  for (auto* t : {&f.p.xyz, &f.p.uv, &f.g.xyz, &f.g.uv}) *t = t->cast<float>().cast<double>();
  return f;
}

}  // namespace

TEST_CASE("lgh metrics: every protocol, equal to the library", "[cli][metrics]") {
  const auto dir = scratch("metrics_ok");
  const PoseFiles f = write_poses(dir);
  const std::string json = (dir / "m.json").string();
  for (const char* protocol : {"rhd", "stb", "freihand", "do"}) {
    INFO(protocol);
    auto r = run_lgh("metrics --pred " + q(f.pred) + " --gt " + q(f.gt) + " --protocol " + protocol + " --json " + q(json), dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(slurp(json));
    const auto ref = lgh::eval::compute_metrics(f.p, f.g, lgh::eval::parse_protocol(protocol)).to_json();
    CHECK(j == ref);
    for (const char* key : {"epe_mean_mm", "epe_median_mm", "auc_0_50", "auc_20_50", "auc_20_50_exact", "thresholds_mm", "pck"})
      CHECK(j.contains(key));
    CHECK(j.contains("aligned") == (std::string(protocol) == "freihand"));
    CHECK(j.at("joints") == (std::string(protocol) == "do" ? 5 : 21));
  }
}

TEST_CASE("lgh metrics: errors exit 1, usage errors 2", "[cli][metrics]") {
  const auto dir = scratch("metrics_errors");
  const PoseFiles f = write_poses(dir);
  const std::string json = (dir / "m.json").string();
  const std::string base = "metrics --protocol rhd --json " + q(json);
  {
    lgh::io::SafetensorsWriter w;
    w.add("xyz", lgh::TensorF::zeros({4, 21, 3}));
    w.write((dir / "four.safetensors").string());
    lgh::io::SafetensorsWriter n;
    n.add("joints", lgh::TensorF::zeros({5, 21, 3}));
    n.write((dir / "noxyz.safetensors").string());
    lgh::io::SafetensorsWriter b;
    lgh::TensorF bad = lgh::TensorF::zeros({5, 21, 3});
    bad.data()[4] = INFINITY;
    b.add("xyz", bad);
    b.write((dir / "inf.safetensors").string());
  }
  check_error(run_lgh(base + " --pred " + q((dir / "four.safetensors").string()) + " --gt " + q(f.gt), dir), "four.safetensors");
  check_error(run_lgh(base + " --pred " + q((dir / "noxyz.safetensors").string()) + " --gt " + q(f.gt), dir), "no tensor 'xyz'");
  check_error(run_lgh(base + " --pred " + q((dir / "inf.safetensors").string()) + " --gt " + q(f.gt), dir), "not finite");
  check_error(run_lgh("metrics --protocol rhd --pred " + q(f.pred) + " --gt " + q(f.gt) + " --json " +
                          q((dir / "no/dir/m.json").string()),
                      dir),
              "m.json");
  CHECK_FALSE(std::filesystem::exists(json));
  check_usage(run_lgh(base + " --gt " + q(f.gt), dir), "--pred");
  check_usage(run_lgh(base + " --pred " + q(f.pred), dir), "--gt");
  check_usage(run_lgh("metrics --pred " + q(f.pred) + " --gt " + q(f.gt) + " --json " + q(json), dir), "--protocol");
  check_usage(run_lgh("metrics --protocol rhd --pred " + q(f.pred) + " --gt " + q(f.gt), dir), "--json");
  check_usage(run_lgh("metrics --protocol coco --pred " + q(f.pred) + " --gt " + q(f.gt) + " --json " + q(json), dir));
  check_usage(run_lgh(base + " --pred " + q((dir / "missing").string()) + " --gt " + q(f.gt), dir));
  CHECK_FALSE(std::filesystem::exists(json));
  auto h = run_lgh("metrics --help", dir);
  CHECK(h.exit_code == 0);
  for (const char* flag : {"--pred", "--gt", "--protocol", "--json"}) CHECK_THAT(h.out, Catch::Contains(flag));
}
