#include <catch2/catch.hpp>

#include <cmath>

#include <nlohmann/json.hpp>

#include "cli_fixtures.hpp"

using cli_test::q;
using cli_test::run_lgh;
using cli_test::write_tiny_config;

TEST_CASE("lgh bench writes timings as JSON for both modes", "[cli][bench]") {
  const auto dir = cli_test::scratch("bench_ok");
  const std::string cfg = write_tiny_config(dir);
  for (const char* mode : {"infer", "train"}) {
    const std::string out = (dir / (std::string(mode) + ".json")).string();
    auto r = run_lgh(std::string("bench --config ") + q(cfg) + " --batch 2 --mode " + mode +
                         " --iters 3 --warmup 1 --threads 1 --json " + q(out),
                     dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("iter 3/3") && Catch::Contains("images/s") && Catch::Contains("ETA"));
    const auto j = nlohmann::json::parse(cli_test::slurp(out));
    CHECK(j.at("mode") == mode);
    CHECK(j.at("batch") == 2);
    CHECK(j.at("threads") == 1);
    CHECK(j.at("times_ms").size() == 3);
    const double med = j.at("median_ms");
    CHECK(med > 0);
    CHECK(j.at("min_ms").get<double>() <= med);
    CHECK(j.at("images_per_s").get<double>() == Approx(2000.0 / med));
    CHECK(j.at("model").at("K") == 3);
  }
}

TEST_CASE("lgh bench argument errors", "[cli][bench]") {
  const auto dir = cli_test::scratch("bench_bad");
  const std::string out = (dir / "out.json").string();
  CHECK(run_lgh("bench --config small --mode infer", dir).exit_code == 2);                       // --json missing
  CHECK(run_lgh("bench --config small --mode fly --json " + q(out), dir).exit_code == 2);        // bad mode
  CHECK(run_lgh("bench --config small --batch 0 --json " + q(out), dir).exit_code == 2);         // bad batch
  auto r = run_lgh("bench --config huge --json " + q(out), dir);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("error: ") && Catch::Contains("'huge'"));
  std::ofstream((dir / "bad.json").string()) << R"({"S": 100})";
  r = run_lgh("bench --config " + q((dir / "bad.json").string()) + " --json " + q(out), dir);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("multiple of 64"));
  r = run_lgh("bench --config small --json " + q((dir / "missing/dir/out.json").string()), dir);
  CHECK(r.exit_code == 1);
  CHECK(cli_test::line_count(r.err) == 1);
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("lgh bench --device cuda: one error line without a GPU, timings with one", "[cli][bench][cuda]") {
  const auto dir = cli_test::scratch("bench_cuda");
  const std::string cfg = write_tiny_config(dir);
  for (const char* mode : {"infer", "train"}) {
    const std::string out = (dir / (std::string(mode) + ".json")).string();
    auto r = run_lgh(std::string("bench --config ") + q(cfg) + " --batch 2 --mode " + mode +
                         " --iters 2 --warmup 1 --device cuda --json " + q(out),
                     dir);
    INFO(r.err);
    if (!cli_test::gpu_present()) {
      CHECK(r.exit_code == 1);
      CHECK_THAT(r.err, Catch::StartsWith("error: bench: --device cuda:0 is not"));
      CHECK(cli_test::line_count(r.err) == 1);
      CHECK_FALSE(std::filesystem::exists(out));
      continue;
    }
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(cli_test::slurp(out));
    CHECK(j.at("device") == "cuda:0");
    CHECK(j.at("times_ms").size() == 2);
    if (std::string(mode) == "train") CHECK(std::isfinite(j.at("final_loss").get<double>()));
  }
}
