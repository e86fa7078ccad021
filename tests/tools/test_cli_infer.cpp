#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli_fixtures.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/eval/estimate.hpp"

using namespace cli_test;

namespace {

// Two synthetic hands as PNG files in `dir`/images.
std::string write_images(const std::filesystem::path& dir) {
  const auto images = dir / "images";
  std::filesystem::create_directories(images);
  lgh::data::SyntheticConfig c;
  c.image_size = 96;
  c.seed = 21;
  c.count = 2;
  const lgh::data::SyntheticHands hands(c);
  lgh::data::write_image((images / "hand_a.png").string(), hands.get(0).rgb);
  lgh::data::write_image((images / "hand_b.png").string(), hands.get(1).rgb);
  return images.string();
}

}  // namespace

TEST_CASE("lgh infer: the JSON of every image, equal to the library's, and overlays", "[cli][infer]") {
  const auto dir = scratch("infer_ok");
  const std::string w = write_tiny_weights(dir), images = write_images(dir);
  const std::string json = (dir / "out.json").string(), overlay = (dir / "overlay").string();
  auto r = run_lgh("infer --weights " + q(w) + " --image " + q(images) + " --json " + q(json) + " --overlay " + q(overlay) +
                       " --bbox 10,12,70,60 --K 150,160,48,47 --bone-mm 40 --root reference-bone --threads 1 --device cpu",
                   dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(slurp(json));
  REQUIRE(j.at("images").size() == 2);
  CHECK(j.at("root_method") == "reference-bone");
  lgh::set_num_threads(1);  // the tool's thread count: the same sums in the same order
  auto model = lgh::io::load_model<float>(w);
  lgh::eval::EstimateOptions o;
  o.box = lgh::eval::PixelBox{10, 12, 70, 60};
  o.K = std::array<double, 4>{150, 160, 48, 47};
  o.bone_length_mm = 40;
  o.root_method = lgh::nn::RootMethod::ReferenceBone;
  for (int i = 0; i < 2; ++i) {
    const auto& e = j.at("images")[i];
    const std::string file = images + (i == 0 ? "/hand_a.png" : "/hand_b.png");
    CHECK(e.at("file") == file);
    CHECK(e.at("width") == 96);
    CHECK(e.at("height") == 96);
    CHECK(e.at("bbox") == nlohmann::json({10, 12, 70, 60}));
    CHECK(e.at("intrinsics") == nlohmann::json({150, 160, 48, 47}));
    CHECK(e.at("uv_px").size() == 21);
    CHECK(e.at("xyz_mm").size() == 21);
    CHECK(e.at("groups").size() == 21);
    const auto ref = lgh::eval::estimate_hand(*model, lgh::data::read_image(file), o);
    CHECK(e == lgh::eval::to_json(ref, file));
    CHECK(std::filesystem::exists(overlay + (i == 0 ? "/hand_a.png" : "/hand_b.png")));
  }
  // One file; the defaults (whole image, intrinsics from its size, all-bones root).
  r = run_lgh("infer --weights " + q(w) + " --image " + q(images + "/hand_b.png") + " --json " + q(json) + " --threads 1", dir);
  REQUIRE(r.exit_code == 0);
  const auto e = nlohmann::json::parse(slurp(json)).at("images").at(0);
  CHECK(e.at("bbox") == nlohmann::json({0, 0, 96, 96}));
  CHECK(e.at("intrinsics") == nlohmann::json({1.2 * 96, 1.2 * 96, 48, 48}));
  CHECK(nlohmann::json::parse(slurp(json)).at("bone_mm") == 42.0);
  CHECK(e == lgh::eval::to_json(lgh::eval::estimate_hand(*model, lgh::data::read_image(images + "/hand_b.png")),
                                images + "/hand_b.png"));
}

TEST_CASE("lgh infer without --weights runs the shipped model", "[cli][infer]") {
  const auto dir = scratch("infer_shipped");
  const std::string images = write_images(dir), json = (dir / "out.json").string();
  // LGH_MODELS_DIR comes first among the places looked at.
  std::filesystem::create_directories(dir / "models");
  write_tiny_weights(dir / "models", "lgh_small_synthetic.safetensors");
  const std::string env = "LGH_MODELS_DIR=" + q((dir / "models").string()) + " ";
  const std::string cmd = env + "\"" + LGH_CLI_PATH + "\" infer --image " + q(images) + " --json " + q(json) + " > " +
                          q((dir / "o.txt").string()) + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const auto j = nlohmann::json::parse(slurp(json));
  CHECK(j.at("weights") == (dir / "models" / "lgh_small_synthetic.safetensors").string());
  CHECK(j.at("images").size() == 2);
}

TEST_CASE("lgh infer: errors exit 1 and write nothing; usage errors exit 2", "[cli][infer]") {
  const auto dir = scratch("infer_errors");
  const std::string w = write_tiny_weights(dir), images = write_images(dir);
  const std::string json = (dir / "out.json").string(), overlay = (dir / "overlay").string();
  const std::string base = "infer --weights " + q(w) + " --json " + q(json) + " --overlay " + q(overlay) + " --image ";
  std::ofstream((dir / "junk.png").string()) << "not an image";
  // A bad image after a good one: neither the JSON nor any overlay is written.
  check_error(run_lgh(base + q(images + "/hand_a.png") + " " + q((dir / "junk.png").string()), dir), "junk.png");
  std::filesystem::create_directories(dir / "other");
  std::filesystem::copy_file(images + "/hand_a.png", (dir / "other" / "hand_a.png").string());
  check_error(run_lgh(base + q(images) + " " + q((dir / "other").string()), dir), "hand_a.png");  // two overlays of one name
  std::filesystem::create_directories(dir / "empty");
  check_error(run_lgh(base + q((dir / "empty").string()), dir), "holds no .png");
  check_error(run_lgh(base + q((dir / "nothing.png").string()), dir), "no such file or folder");
  check_error(run_lgh(base + q(images) + " --bbox 500,500,10,10", dir), "outside the 96x96 image");
  if (!cli_test::gpu_present())  // forward's check: one line, what is not available and why
    check_error(run_lgh(base + q(images) + " --device cuda", dir), "infer: --device cuda:0 is not");
  CHECK_FALSE(std::filesystem::exists(json));
  CHECK_FALSE(std::filesystem::exists(overlay));

  check_usage(run_lgh("infer --weights " + q(w) + " --image " + q(images), dir), "--json");
  check_usage(run_lgh("infer --weights " + q(w) + " --json " + q(json), dir), "--image");
  for (const char* bad : {"--bbox 1,2,3", "--bbox 1,2,-3,4", "--bbox a,b,c,d", "--K 0,100,50,50", "--K 100,100,50",
                          "--bone-mm 0", "--root middle", "--threads -1", "--device tpu"}) {
    INFO(bad);
    check_usage(run_lgh(base + q(images) + " " + bad, dir));
  }
  check_usage(run_lgh("infer --weights " + q((dir / "missing.safetensors").string()) + " --json " + q(json) + " --image " + q(images), dir));
  CHECK_FALSE(std::filesystem::exists(json));
  auto h = run_lgh("infer --help", dir);
  CHECK(h.exit_code == 0);
  for (const char* flag : {"--weights", "--image", "--bbox", "--K", "--bone-mm", "--root", "--json", "--overlay", "--device", "--threads"})
    CHECK_THAT(h.out, Catch::Contains(flag));
}
