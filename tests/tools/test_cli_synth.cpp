#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli_fixtures.hpp"
#include "lgh/data/synthetic.hpp"

using namespace lgh;
using cli_test::q;
using cli_test::run_lgh;
namespace fs = std::filesystem;

namespace {

const char* const kOutputs[] = {"training_K.json", "training_xyz.json", "training_scale.json", "training_vis.json",
                                "contact_sheet.png", "training/rgb/00000000.jpg", "training/rgb/00000004.jpg",
                                "training/mask/00000004.jpg"};
}  // namespace

TEST_CASE("lgh synth writes FreiHAND's layout with the library's samples", "[cli][synth]") {
  const fs::path dir = cli_test::scratch("synth_ok");
  const fs::path out = dir / "hands";
  auto r = run_lgh("synth --out " + q(out.string()) + " --count 5 --size 64 --seed 3 --threads 2", dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());  // a short run reports no progress
  for (const char* f : kOutputs) CHECK(fs::is_regular_file(out / f));
  CHECK_FALSE(fs::exists(out / "training/rgb/00000005.jpg"));

  data::SyntheticConfig cfg;
  cfg.image_size = 64;
  cfg.count = 5;
  cfg.seed = 3;
  const data::SyntheticHands hands(cfg);
  const auto xyz = nlohmann::json::parse(cli_test::slurp((out / "training_xyz.json").string()));
  const auto K = nlohmann::json::parse(cli_test::slurp((out / "training_K.json").string()));
  REQUIRE(xyz.size() == 5);
  REQUIRE(K.size() == 5);
  for (int i = 0; i < 5; ++i) {
    const data::HandSample s = hands.get(i);
    for (int j = 0; j < data::kNumJoints; ++j)
      for (int c = 0; c < 3; ++c)
        CHECK(xyz[i][data::freihand_from_canonical(j)][c].get<double>() == Approx(s.xyz[j][c] / 1000).epsilon(1e-12));
    CHECK(K[i][0][0].get<double>() == s.K.fx);
  }
  const data::Image rgb = data::read_image((out / "training/rgb/00000002.jpg").string());
  CHECK(rgb.width == 64);
  CHECK(rgb.height == 64);

  // Deterministic: another run, on one thread, writes the same bytes.
  const fs::path again = dir / "again";
  REQUIRE(run_lgh("synth --out " + q(again.string()) + " --count 5 --size 64 --seed 3 --threads 1", dir).exit_code == 0);
  for (const char* f : kOutputs) CHECK(cli_test::slurp((out / f).string()) == cli_test::slurp((again / f).string()));
  // A different seed does not.
  const fs::path other = dir / "other";
  REQUIRE(run_lgh("synth --out " + q(other.string()) + " --count 5 --size 64 --seed 4", dir).exit_code == 0);
  CHECK(cli_test::slurp((out / "training_xyz.json").string()) != cli_test::slurp((other / "training_xyz.json").string()));
  fs::remove_all(dir);
}

TEST_CASE("lgh synth: usage errors exit 2 and write nothing", "[cli][synth]") {
  const fs::path dir = cli_test::scratch("synth_usage");
  const fs::path out = dir / "hands";
  for (const std::string args : {"--count 0", "--count -3", "--count many", "--count 4 --size 100", "--count 4 --size 32",
                                 "--count 4 --size 63.5", "--count 4 --seed -1", ""}) {
    const auto r = run_lgh("synth --out " + q(out.string()) + " " + args, dir);
    INFO(args << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
    CHECK_FALSE(fs::exists(out));
  }
  const auto r = run_lgh("synth --count 3", dir);  // no --out
  CHECK(r.exit_code == 2);
  const auto help = run_lgh("synth --help", dir);
  CHECK(help.exit_code == 0);
  for (const char* flag : {"--out", "--count", "--size", "--seed", "--threads"}) CHECK(help.out.find(flag) != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("lgh synth: an unusable output path exits 1 with one error line", "[cli][synth]") {
  const fs::path dir = cli_test::scratch("synth_badout");
  const fs::path file = dir / "a_file";
  std::ofstream(file) << "not a directory";
  for (const fs::path& out : {file, file / "below"}) {
    const auto r = run_lgh("synth --out " + q(out.string()) + " --count 2 --size 64", dir);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(cli_test::line_count(r.err) == 1);
    CHECK(r.err.find("a_file") != std::string::npos);
  }
  CHECK(cli_test::slurp(file.string()) == "not a directory");
  fs::remove_all(dir);
}
