#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli_fixtures.hpp"
#include "lgh/eval/evaluate.hpp"

using namespace cli_test;

namespace {

// `extra` adds flags; a flag it names replaces the default one.
std::string eval_args(const std::string& weights, const std::string& json, const std::string& extra = "") {
  const std::pair<const char*, std::string> defaults[] = {{"--weights", q(weights)}, {"--data", "synthetic"},
                                                          {"--json", q(json)},       {"--samples", "4"},
                                                          {"--batch", "2"},          {"--threads", "1"}};
  std::string args = "eval";
  for (const auto& d : defaults)
    if ((" " + extra + " ").find(std::string(" ") + d.first + " ") == std::string::npos)
      args += std::string(" ") + d.first + " " + d.second;
  return args + " " + extra;
}

}  // namespace

TEST_CASE("lgh eval: the protocol's JSON, equal to the library's, and the PCK plot", "[cli][eval]") {
  const auto dir = scratch("eval_ok");
  const std::string w = write_tiny_weights(dir), json = (dir / "m.json").string();
  for (const char* plot : {"pck.svg", "pck.png"}) {
    const std::string p = (dir / plot).string();
    const std::string g = (dir / "groups.png").string();
    auto r = run_lgh(eval_args(w, json, "--plot " + q(p) + " --groups " + q(g) + " --selector hard --device cpu"), dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("EPE mean") && Catch::Contains("AUC 20-50") && Catch::Contains("group 1:"));
    CHECK(slurp(g).substr(1, 3) == "PNG");
    const std::string bytes = slurp(p);
    if (std::string(plot) == "pck.svg")
      CHECK_THAT(bytes, Catch::StartsWith("<svg") && Catch::Contains("polyline"));
    else
      CHECK(bytes.substr(1, 3) == "PNG");
  }
  const auto j = nlohmann::json::parse(slurp(json));
  for (const char* key : {"epe_mean_mm", "epe_median_mm", "auc_0_50", "auc_20_50", "auc_20_50_exact", "thresholds_mm", "pck", "uv"})
    CHECK(j.contains(key));
  CHECK(j.at("samples") == 4);
  CHECK(j.at("protocol") == "rhd");
  CHECK(j.at("thresholds_mm").size() == 20);
  // The same evaluation through the library (with the tool's thread count).
  lgh::set_num_threads(1);
  auto model = lgh::io::load_model<float>(w);
  lgh::eval::EvalOptions o;
  o.batch = 2;
  o.max_samples = 4;
  const auto ref = lgh::eval::evaluate(*model, lgh::eval::synthetic_heldout(4, 80), o);
  CHECK(j.at("epe_mean_mm").get<double>() == ref.metrics.xyz.curve.epe_mean);
  CHECK(j.at("auc_20_50").get<double>() == ref.metrics.xyz.auc_20_50);
  CHECK(j.at("uv").at("epe_mean_px").get<double>() == ref.metrics.uv.epe_mean);
}

TEST_CASE("lgh eval: protocols, selectors and a FreiHAND-layout folder", "[cli][eval]") {
  const auto dir = scratch("eval_variants");
  const std::string w = write_tiny_weights(dir), json = (dir / "m.json").string();
  auto r = run_lgh(eval_args(w, json, "--protocol freihand"), dir);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(slurp(json));
  CHECK(j.at("protocol") == "freihand");
  CHECK(j.at("aligned").at("thresholds_mm").size() == 100);
  CHECK(j.at("aligned").at("epe_mean_mm").get<double>() <= j.at("epe_mean_mm").get<double>());
  // Sampled selector: reproducible per seed, τ from the flag.
  const std::string a = (dir / "a.json").string(), b = (dir / "b.json").string(), c = (dir / "c.json").string();
  REQUIRE(run_lgh(eval_args(w, a, "--selector sample --tau 2 --seed 5"), dir).exit_code == 0);
  REQUIRE(run_lgh(eval_args(w, b, "--selector sample --tau 2 --seed 5"), dir).exit_code == 0);
  REQUIRE(run_lgh(eval_args(w, c, "--selector soft"), dir).exit_code == 0);
  CHECK(nlohmann::json::parse(slurp(a)).at("pck") == nlohmann::json::parse(slurp(b)).at("pck"));
  CHECK(nlohmann::json::parse(slurp(a)).at("epe_mean_mm") != nlohmann::json::parse(slurp(c)).at("epe_mean_mm"));
  // The authors' crop rule gives other crops, hence other figures.
  REQUIRE(run_lgh(eval_args(w, a, "--crop-box reference"), dir).exit_code == 0);
  REQUIRE(run_lgh(eval_args(w, b, "--crop-box auto"), dir).exit_code == 0);
  CHECK(nlohmann::json::parse(slurp(a)).at("epe_mean_mm") != nlohmann::json::parse(slurp(b)).at("epe_mean_mm"));
  // A folder written by lgh synth, read as FreiHAND (its training split).
  const std::string synth = (dir / "synth").string();
  REQUIRE(run_lgh("synth --out " + q(synth) + " --count 3 --size 224 --seed 9 --quiet", dir).exit_code == 0);
  r = run_lgh("eval --weights " + q(w) + " --data freihand:" + q(synth) + " --json " + q(json) + " --threads 1", dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  j = nlohmann::json::parse(slurp(json));
  CHECK(j.at("samples") == 3);
  CHECK(j.at("protocol") == "freihand");
  CHECK(j.contains("aligned"));
}

TEST_CASE("lgh eval: errors exit 1, usage errors 2, nothing written", "[cli][eval]") {
  const auto dir = scratch("eval_errors");
  const std::string w = write_tiny_weights(dir), json = (dir / "m.json").string();
  check_error(run_lgh(eval_args(w, json, "--plot " + q((dir / "pck.pdf").string())), dir), "must end in .png or .svg");
  check_error(run_lgh(eval_args(w, json, "--groups " + q((dir / "groups.svg").string())), dir), "must end in .png");
  if (!cli_test::gpu_present())  // forward's check: one line, what is not available and why
    check_error(run_lgh(eval_args(w, json, "--device cuda"), dir), "eval: --device cuda:0 is not");
  check_error(run_lgh("eval --weights " + q(w) + " --data rhd:" + q((dir / "nowhere").string()) + " --json " + q(json), dir),
              "is not a directory");
  std::ofstream((dir / "junk.safetensors").string()) << "not weights";
  check_error(run_lgh(eval_args((dir / "junk.safetensors").string(), json), dir), "junk.safetensors");
  check_error(run_lgh(eval_args(w, (dir / "no/such/m.json").string()), dir), "m.json");
  CHECK(entries(dir) == std::vector<std::string>{"junk.safetensors", "w.safetensors"});

  check_usage(run_lgh("eval --data synthetic --json " + q(json), dir), "--weights");
  check_usage(run_lgh("eval --weights " + q(w) + " --json " + q(json), dir), "--data");
  check_usage(run_lgh("eval --weights " + q(w) + " --data synthetic", dir), "--json");
  for (const char* bad : {"--protocol coco", "--selector argmax", "--samples 0", "--batch 0", "--crop-box tight", "--tau -1", "--data do",
                          "--threads -1", "--device tpu", "--seed -2"}) {
    INFO(bad);
    check_usage(run_lgh(eval_args(w, json, bad), dir));
  }
  check_usage(run_lgh(eval_args((dir / "missing.safetensors").string(), json), dir));
  CHECK_FALSE(std::filesystem::exists(json));
  auto h = run_lgh("eval --help", dir);
  CHECK(h.exit_code == 0);
  for (const char* flag : {"--weights", "--data", "--protocol", "--json", "--plot", "--groups", "--samples", "--crop-box", "--batch", "--selector",
                           "--tau", "--seed", "--device", "--threads"})
    CHECK_THAT(h.out, Catch::Contains(flag));
}
