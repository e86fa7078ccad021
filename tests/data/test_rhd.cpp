#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include "data_test_utils.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/rhd.hpp"

using namespace lgh;
using namespace lgh::data;
using lgh_test::fixture;

TEST_CASE("RHD samples match the annotations Python wrote", "[data][rhd]") {
  const auto expected = lgh_test::read_json(fixture("rhd/expected.json"));
  for (const std::string set : {"training", "evaluation"}) {
    INFO(set);
    RhdOptions opt;
    opt.set = set;
    const RhdDataset ds(fixture("rhd"), opt);
    const auto& want = expected[set];
    REQUIRE(ds.size() == static_cast<int64_t>(want.size()));
    CHECK(ds.name() == "rhd:" + set);
    for (int64_t i = 0; i < ds.size(); ++i) {
      const auto& w = want[static_cast<size_t>(i)];
      const HandSample s = ds.get(i);
      INFO("sample " << i);
      CHECK(ds.key(i) == w["key"].get<int64_t>());
      CHECK(s.id == w["id"].get<std::string>());
      CHECK(s.is_left == w["is_left"].get<bool>());
      for (int j = 0; j < kNumJoints; ++j) {
        for (int c = 0; c < 3; ++c) CHECK(s.xyz[j][c] == Approx(w["xyz_mm"][j][c].get<double>()).epsilon(1e-12));
        // uv is kept in single precision.
        for (int c = 0; c < 2; ++c) CHECK(s.uv[j][c] == Approx(w["uv"][j][c].get<double>()).margin(1e-4));
        CHECK(s.visible[j] == w["visible"][j].get<bool>());
      }
      CHECK(s.K.fx == w["K"][0].get<double>());
      CHECK(s.K.fy == w["K"][1].get<double>());
      CHECK(s.K.cx == w["K"][2].get<double>());
      CHECK(s.K.cy == w["K"][3].get<double>());
      REQUIRE(s.rgb.width == 320);
      REQUIRE(s.rgb.height == 320);
      for (int c = 0; c < 3; ++c) CHECK(s.rgb.at(0, 0)[c] == w["pixel00"][c].get<int>());
      int64_t hand = 0;
      for (uint8_t v : s.mask.pixels) hand += v == 255;
      CHECK(hand == w["mask_pixels"].get<int64_t>());
      // Labels are consistent with the camera, so the crop keeps them so.
      const CropSample c = crop_hand(s, CropOptions{});
      CHECK(c.mirrored == s.is_left);
      for (int j = 0; j < kNumJoints; ++j) {
        CHECK(c.K.fx * c.xyz[j][0] / c.xyz[j][2] + c.K.cx == Approx(c.uv[j][0]).margin(1e-3));
        CHECK(c.K.fy * c.xyz[j][1] / c.xyz[j][2] + c.K.cy == Approx(c.uv[j][1]).margin(1e-3));
      }
    }
  }
}

TEST_CASE("RHD reports missing, corrupt and mis-sized files by sample and file", "[data][rhd]") {
  lgh_test::ScratchDir tmp("rhd");
  const std::string root = lgh_test::copy_fixture(tmp, "rhd");
  const std::string color = root + "/training/color/";

  std::filesystem::remove(color + "00001.png");
  lgh_test::truncate_file(color + "00002.png", 60);
  RhdDataset ds(root);
  CHECK_NOTHROW(ds.get(0));
  CHECK_THROWS_WITH(ds.get(1), Catch::Contains("rhd/training/00001") && Catch::Contains("00001.png") &&
                                   Catch::Contains("missing"));
  CHECK_THROWS_WITH(ds.get(2), Catch::Contains("rhd/training/00002") && Catch::Contains("00002.png") &&
                                   Catch::Contains("cannot read image"));
  CHECK_THROWS_WITH(ds.get(3), Catch::Contains("out of range"));

  write_image(color + "00000.png", Image(100, 100, 3, 7));
  CHECK_THROWS_WITH(ds.get(0), Catch::Contains("rhd/training/00000") && Catch::Contains("100x100") &&
                                   Catch::Contains("expected 320x320"));
  RhdOptions any_size;
  any_size.image_size = 0;
  // Without the size check the colour image is read, but the mask must still match it.
  CHECK_THROWS_WITH(RhdDataset(root, any_size).get(0), Catch::Contains("mask/00000.png") &&
                                                         Catch::Contains("expected 100x100"));
}

TEST_CASE("RHD refuses missing or malformed annotation files", "[data][rhd]") {
  lgh_test::ScratchDir tmp("rhd_anno");
  const std::string root = lgh_test::copy_fixture(tmp, "rhd");
  const std::string anno = root + "/evaluation/anno_evaluation.pickle";
  RhdOptions eval;
  eval.set = "evaluation";
  RhdOptions bogus;
  bogus.set = "test";
  CHECK_THROWS_WITH(RhdDataset(root, bogus), Catch::Contains("'test'"));

  std::filesystem::copy_file(fixture("rhd_bad_anno/missing_K.pickle"), anno,
                             std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(RhdDataset(root, eval), Catch::Contains("anno_evaluation.pickle") &&
                                                Catch::Contains("sample 5") && Catch::Contains("missing key 'K'"));
  std::filesystem::copy_file(fixture("rhd_bad_anno/short_xyz.pickle"), anno,
                             std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(RhdDataset(root, eval), Catch::Contains("sample 0 'xyz'") && Catch::Contains("[21, 3]") &&
                                                Catch::Contains("expected [42, 3]"));
  std::filesystem::copy_file(fixture("rhd/evaluation/anno_evaluation.pickle"), anno,
                             std::filesystem::copy_options::overwrite_existing);
  lgh_test::truncate_file(anno, 1000);
  CHECK_THROWS_WITH(RhdDataset(root, eval), Catch::Contains("anno_evaluation.pickle") && Catch::Contains("truncated"));
  std::filesystem::remove(anno);
  CHECK_THROWS_WITH(RhdDataset(root, eval), Catch::Contains("anno_evaluation.pickle") && Catch::Contains("missing"));
}
