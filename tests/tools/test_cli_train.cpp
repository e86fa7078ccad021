#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_fixtures.hpp"
#include "lgh/train/checkpoint.hpp"

using namespace cli_test;

namespace {

// A short run of the tiny model on synthetic hands; `extra` adds flags, and a
// flag it names replaces the default one (lgh takes each flag once). The
// default --stage1-steps goes with the default --stage (both) only.
std::string train_args(const std::string& cfg, const std::string& out, const std::string& extra = "") {
  const std::pair<const char*, std::string> defaults[] = {
      {"--data", "synthetic"}, {"--config", q(cfg)}, {"--out", q(out)}, {"--steps", "4"}, {"--batch", "2"},
      {"--stage1-steps", "2"}, {"--eval-every", "2"}, {"--eval-samples", "2"}, {"--checkpoint-every", "2"},
      {"--log-every", "1"}, {"--threads", "1"}};
  std::string args = "train";
  const bool other_stage = (" " + extra + " ").find(" --stage ") != std::string::npos;
  for (const auto& d : defaults)
    if ((" " + extra + " ").find(std::string(" ") + d.first + " ") == std::string::npos &&
        !(other_stage && std::string(d.first) == "--stage1-steps"))
      args += std::string(" ") + d.first + " " + d.second;
  return args + " " + extra;
}

std::vector<float> tensor(const std::string& file, const std::string& name) {
  return lgh::io::SafetensorsReader(file).load<float>(name).to_vector();
}

}  // namespace

TEST_CASE("lgh train writes a run: weights, state, log, groups and progress", "[cli][train]") {
  const auto dir = scratch("train_ok");
  const std::string cfg = write_tiny_config(dir), out = (dir / "run").string();
  auto r = run_lgh(train_args(cfg, out, "--tau-interval 1 --lr-2d 2e-3 --lr-rest 1e-3 --augment off --seed 3 --device cpu"), dir);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(entries(out) == std::vector<std::string>{"best.safetensors", "groups.png", "groups.txt", "last.safetensors",
                                                 "last.state.safetensors", "log.csv"});
  // The progress line: step, loss, lr, τ, images/s, ETA.
  CHECK_THAT(r.out, Catch::Contains("step 4/4  full  loss ") && Catch::Contains("lr 1e-03") &&
                        Catch::Contains("tau 4.90") && Catch::Contains("images/s") && Catch::Contains("ETA"));
  CHECK_THAT(r.out, Catch::Contains("step 1/4  2d    loss ") && Catch::Contains("lr 2e-03"));
  CHECK_THAT(r.out, Catch::Contains("held-out at step 0: EPE") && Catch::Contains("held-out at step 4: EPE"));
  // log.csv: header, one row per step and the evaluation of step 0.
  const std::string log = slurp(out + "/log.csv");
  CHECK(line_count(log) == 6);
  CHECK_THAT(log, Catch::StartsWith("step,stage,loss,loss_xy,loss_z,lr,tau,images_per_s,heldout_epe_mm"));
  CHECK_THAT(log, Catch::Contains("\n4,full,"));
  // The weights: config and τ in the metadata, loadable as a model.
  lgh::io::SafetensorsReader last(out + "/last.safetensors");
  CHECK(lgh::io::read_config(last) == tiny_config());
  CHECK(lgh::io::read_temperature(last, 0) == Approx(4.9));
  CHECK(last.metadata().at(lgh::train::kStepMetadataKey) == "4");
  CHECK(lgh::train::read_train_state(lgh::io::SafetensorsReader(out + "/last.state.safetensors")).step == 4);
  CHECK_THAT(slurp(out + "/groups.txt"), Catch::StartsWith("group 1:"));
  CHECK(slurp(out + "/groups.png").substr(1, 3) == "PNG");
}

TEST_CASE("lgh train --resume continues exactly", "[cli][train]") {
  const auto dir = scratch("train_resume");
  const std::string cfg = write_tiny_config(dir), a = (dir / "a").string(), b = (dir / "b").string();
  REQUIRE(run_lgh(train_args(cfg, a), dir).exit_code == 0);
  REQUIRE(run_lgh(train_args(cfg, b, "--steps 3"), dir).exit_code == 0);  // stopped at step 3 (in stage 2)
  auto r = run_lgh(train_args(cfg, b, "--resume"), dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("resumed from step 3"));
  lgh::io::SafetensorsReader fa(a + "/last.safetensors");
  for (const std::string& name : fa.names())
    if (fa.record(name).dtype == lgh::DType::F32) REQUIRE(tensor(a + "/last.safetensors", name) == tensor(b + "/last.safetensors", name));
  // Resuming a finished run does nothing more.
  r = run_lgh(train_args(cfg, b, "--resume"), dir);
  CHECK(r.exit_code == 0);
  CHECK(tensor(b + "/last.safetensors", "meta_S.weight") == tensor(a + "/last.safetensors", "meta_S.weight"));
}

TEST_CASE("lgh train: groups, fusion, manual groups and stages", "[cli][train]") {
  const auto dir = scratch("train_variants");
  const std::string cfg = write_tiny_config(dir);
  {
    const std::string out = (dir / "k2").string();
    auto r = run_lgh(train_args(cfg, out, "--groups 2 --fusion off"), dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto c = lgh::io::read_config(lgh::io::SafetensorsReader(out + "/last.safetensors"));
    CHECK(c.num_groups == 2);
    CHECK_FALSE(c.fusion);
    CHECK_THAT(r.out, Catch::Contains("K = 2, fusion off"));
  }
  {
    const std::string out = (dir / "manual").string();
    auto r = run_lgh(train_args(cfg, out, "--manual-groups"), dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("manual groups"));
    CHECK(slurp(out + "/groups.txt") ==
          "group 1: thumb_tip thumb_ip thumb_mcp thumb_cmc\n"
          "group 2: index_tip index_dip index_pip index_mcp\n"
          "group 3: wrist middle_tip middle_dip middle_pip middle_mcp ring_tip ring_dip ring_pip ring_mcp little_tip "
          "little_dip little_pip little_mcp\n");
  }
  for (const char* stage : {"2d", "full"}) {
    const std::string out = (dir / stage).string();
    auto r = run_lgh("train --data synthetic --config " + q(cfg) + " --out " + q(out) +
                         " --steps 2 --batch 2 --eval-every 0 --eval-samples 2 --log-every 1 --threads 1 --stage " + stage,
                     dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const std::string log = slurp(out + "/log.csv");
    CHECK_THAT(log, Catch::Contains(std::string("\n1,") + stage + ",") && Catch::Contains(std::string("\n2,") + stage + ","));
    CHECK_THAT(r.out, !Catch::Contains("held-out at step 0"));  // --eval-every 0: at the end only
    CHECK_THAT(r.out, Catch::Contains("held-out at step 2"));
  }
}

TEST_CASE("lgh train --init starts from given weights; --beta weighs Eq. (10)'s depth term", "[cli][train]") {
  const auto dir = scratch("train_init_beta");
  const std::string cfg = write_tiny_config(dir), w = write_tiny_weights(dir), out = (dir / "init").string();
  auto r = run_lgh(train_args(cfg, out, "--init " + q(w) + " --stage 2d --eval-every 0"), dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // Stage 1 trains the backbone only: θ is still the one of the initial weights.
  CHECK(tensor(out + "/last.safetensors", "meta_S.weight") == tensor(w, "meta_S.weight"));
  CHECK(tensor(out + "/last.safetensors", "backbone.conv1_.weight") != tensor(w, "backbone.conv1_.weight"));
  // --beta 0: the loss is the 2D term alone.
  const std::string b0 = (dir / "beta0").string();
  r = run_lgh(train_args(cfg, b0, "--stage full --beta 0"), dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream log(b0 + "/log.csv");
  std::string line;
  std::getline(log, line);
  int rows = 0;
  while (std::getline(log, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
    if (cells.size() < 5 || cells[2].empty()) continue;  // an evaluation-only row
    CHECK(cells[2] == cells[3]);                          // loss == loss_xy
    ++rows;
  }
  CHECK(rows == 4);
  // Weights of another config: the tensors that fit are taken, the others stay random.
  const std::string k2 = (dir / "k2").string();
  r = run_lgh(train_args(cfg, k2, "--init " + q(w) + " --groups 2 --stage 2d --eval-every 0"), dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("keep their random initialisation") && Catch::Contains("meta_S.weight"));
  CHECK(tensor(k2 + "/last.safetensors", "backbone.r1.conv1.weight").size() > 0);
  // A file with nothing of the model is refused.
  lgh::io::SafetensorsWriter junk;
  junk.add("something", lgh::TensorF::zeros({3}));
  junk.write((dir / "junk.safetensors").string());
  check_error(run_lgh(train_args(cfg, (dir / "junkrun").string(), "--init " + q((dir / "junk.safetensors").string())), dir),
              "hold no tensor of this model");
}

TEST_CASE("lgh train: errors exit 1 with one line and leave nothing", "[cli][train]") {
  const auto dir = scratch("train_errors");
  const std::string cfg = write_tiny_config(dir), out = (dir / "run").string();
  REQUIRE(run_lgh(train_args(cfg, out), dir).exit_code == 0);
  const auto before = entries(out);
  check_error(run_lgh(train_args(cfg, out), dir), "already holds a training run");
  check_error(run_lgh(train_args(cfg, out, "--resume --batch 3"), dir), "batch");
  CHECK(entries(out) == before);
  const std::string none = (dir / "none").string();
  check_error(run_lgh(train_args(cfg, none, "--resume"), dir), "nothing to resume");
  // Without a GPU (or without the CUDA backend), --device cuda stops before
  // any work with forward's one line: what is not available, and why.
  if (!cli_test::gpu_present()) {
    check_error(run_lgh(train_args(cfg, none, "--device cuda"), dir), "train: --device cuda:0 is not");
    check_error(run_lgh(train_args(cfg, none, "--device cuda:1"), dir), "train: --device cuda:1 is not");
  }
  check_error(run_lgh(train_args(cfg, none, "--manual-groups --groups 2"), dir), "--manual-groups needs K = 3");
  check_error(run_lgh(train_args(cfg, none, "--stage full --stage1-steps 2"), dir), "--stage1-steps applies to --stage both only");
  check_error(run_lgh(train_args(cfg, none, "--data rhd:" + q((dir / "no_rhd").string())), dir), "is not a directory");
  std::filesystem::create_directories(dir / "empty_rhd");
  check_error(run_lgh(train_args(cfg, none, "--data rhd:" + q((dir / "empty_rhd").string())), dir), "anno_training.pickle");
  check_error(run_lgh(train_args(q((dir / "missing.json").string()), none), dir), "missing.json");
  std::ofstream((dir / "blocker").string()) << "a file, not a folder";
  check_error(run_lgh(train_args(cfg, (dir / "blocker" / "run").string()), dir), "cannot create the output directory");
  CHECK_FALSE(std::filesystem::exists(none));
}

TEST_CASE("lgh train: usage errors exit 2; --help lists every flag", "[cli][train]") {
  const auto dir = scratch("train_usage");
  const std::string cfg = write_tiny_config(dir), out = (dir / "run").string();
  check_usage(run_lgh("train --data synthetic --config " + q(cfg), dir), "--out");
  check_usage(run_lgh(train_args(cfg, out, "--init " + q((dir / "missing.safetensors").string())), dir));
  for (const char* bad : {"--steps 0", "--batch 0", "--stage 3d", "--fusion maybe", "--data somewhere", "--data rhd:",
                          "--augment sometimes", "--groups 0", "--groups 22", "--lr-rest 0", "--lr-2d 2", "--beta -1", "--tau-interval 0",
                          "--eval-every -1", "--eval-samples 0", "--checkpoint-every 0", "--log-every 0", "--seed -1",
                          "--threads -1", "--stage1-steps -1", "--device tpu", "--device cuda:x", "--frobnicate"}) {
    INFO(bad);
    check_usage(run_lgh(train_args(cfg, out, bad), dir));
  }
  CHECK_FALSE(std::filesystem::exists(out));
  auto h = run_lgh("train --help", dir);
  CHECK(h.exit_code == 0);
  for (const char* flag : {"--data", "--config", "--out", "--steps", "--batch", "--groups", "--fusion", "--manual-groups",
                           "--stage", "--stage1-steps", "--lr-2d", "--lr-rest", "--beta", "--init", "--tau-interval", "--augment", "--eval-every",
                           "--eval-samples", "--checkpoint-every", "--log-every", "--resume", "--seed", "--device",
                           "--threads"})
    CHECK_THAT(h.out, Catch::Contains(flag));
  CHECK_THAT(run_lgh("--help", dir).out, Catch::Contains("train") && Catch::Contains("eval") &&
                                             Catch::Contains("infer") && Catch::Contains("metrics"));
}
