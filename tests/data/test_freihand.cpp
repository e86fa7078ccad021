#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "data_test_utils.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/freihand.hpp"

using namespace lgh;
using namespace lgh::data;
using lgh_test::fixture;

TEST_CASE("FreiHAND samples match the JSON Python wrote, versions share annotations", "[data][freihand]") {
  const auto expected = lgh_test::read_json(fixture("freihand/expected.json"));
  const FreiHandDataset ds(fixture("freihand"));
  REQUIRE(ds.size() == static_cast<int64_t>(expected.size()));
  CHECK(ds.num_annotations() == 3);
  CHECK(ds.has_masks());
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto& w = expected[static_cast<size_t>(i)];
    const HandSample s = ds.get(i);
    INFO(s.id);
    CHECK(s.id == w["id"].get<std::string>());
    CHECK(ds.annotation_index(i) == w["annotation"].get<int64_t>());
    CHECK_FALSE(s.is_left);
    CHECK(s.K.fx == w["K"][0].get<double>());
    CHECK(s.K.fy == w["K"][1].get<double>());
    CHECK(s.K.cx == w["K"][2].get<double>());
    CHECK(s.K.cy == w["K"][3].get<double>());
    for (int j = 0; j < kNumJoints; ++j) {
      for (int c = 0; c < 3; ++c) CHECK(s.xyz[j][c] == Approx(w["xyz_mm"][j][c].get<double>()).epsilon(1e-12));
      for (int c = 0; c < 2; ++c) CHECK(s.uv[j][c] == Approx(w["uv"][j][c].get<double>()).margin(1e-9));
      CHECK(s.visible[j] == w["visible"][j].get<bool>());
    }
    REQUIRE(s.rgb.width == 224);
    for (int c = 0; c < 3; ++c) CHECK(std::abs(s.rgb.at(100, 100)[c] - w["colour"][c].get<int>()) <= 3);
    // The mask of the annotation (JPEG, thresholded): its box is the rectangle drawn.
    REQUIRE(s.mask.width == 224);
    HandBox box;
    REQUIRE(box_from_mask(s.mask, 1.0, 1.0, &box));
    const auto& mb = w["mask_box"];
    CHECK(box.cx == Approx(0.5 * (mb[0].get<double>() + mb[2].get<double>()) - 0.5));
    CHECK(box.cy == Approx(0.5 * (mb[1].get<double>() + mb[3].get<double>()) - 0.5));
  }
}

TEST_CASE("FreiHAND works without the optional visibility and mask files", "[data][freihand]") {
  lgh_test::ScratchDir tmp("freihand_plain");
  const std::string root = lgh_test::copy_fixture(tmp, "freihand");
  std::filesystem::remove(root + "/training_vis.json");
  std::filesystem::remove_all(root + "/training/mask");
  const FreiHandDataset ds(root);
  CHECK_FALSE(ds.has_masks());
  const auto expected = lgh_test::read_json(fixture("freihand/expected.json"));
  for (int64_t i = 0; i < ds.size(); ++i) {
    const HandSample s = ds.get(i);
    CHECK(s.mask.empty());
    for (int j = 0; j < kNumJoints; ++j) {
      // Without the flags, visible means inside the image.
      const double u = expected[static_cast<size_t>(i)]["uv"][j][0], v = expected[static_cast<size_t>(i)]["uv"][j][1];
      CHECK(s.visible[j] == (u >= -0.5 && u < 223.5 && v >= -0.5 && v < 223.5));
    }
  }
}

TEST_CASE("FreiHAND reports bad annotation files and images", "[data][freihand]") {
  lgh_test::ScratchDir tmp("freihand_bad");
  const std::string root = lgh_test::copy_fixture(tmp, "freihand");
  {
    FreiHandDataset ds(root);
    std::filesystem::remove(root + "/training/rgb/00000004.jpg");
    lgh_test::write_text(root + "/training/rgb/00000001.jpg", "not a jpeg");
    lgh_test::write_png_to(root + "/training/rgb/00000002.jpg", Image(100, 224, 3, 0));
    std::filesystem::remove(root + "/training/mask/00000000.jpg");
    CHECK_THROWS_WITH(ds.get(4), Catch::Contains("freihand/training/00000004") && Catch::Contains("missing"));
    CHECK_THROWS_WITH(ds.get(1), Catch::Contains("freihand/training/00000001") && Catch::Contains("cannot read"));
    CHECK_THROWS_WITH(ds.get(2), Catch::Contains("freihand/training/00000002") && Catch::Contains("100x224"));
    // Image 3 shows annotation 0, whose mask is gone.
    CHECK_THROWS_WITH(ds.get(3), Catch::Contains("freihand/training/00000003") && Catch::Contains("00000000.jpg"));
    CHECK_NOTHROW(ds.get(5));
  }
  lgh_test::write_text(root + "/training_vis.json", "[[true]]");
  CHECK_THROWS_WITH(FreiHandDataset(root), Catch::Contains("training_vis.json") && Catch::Contains("expected 3"));
  lgh_test::write_text(root + "/training_xyz.json", "[[[0,0,1]], [], []]");
  CHECK_THROWS_WITH(FreiHandDataset(root), Catch::Contains("training_xyz.json' entry 0") && Catch::Contains("21x3"));
  lgh_test::write_text(root + "/training_xyz.json", "[1, 2");
  CHECK_THROWS_WITH(FreiHandDataset(root), Catch::Contains("training_xyz.json") && Catch::Contains("not valid JSON"));
  std::filesystem::copy_file(fixture("freihand/training_xyz.json"), root + "/training_xyz.json",
                             std::filesystem::copy_options::overwrite_existing);
  lgh_test::write_text(root + "/training_K.json", "[]");
  CHECK_THROWS_WITH(FreiHandDataset(root), Catch::Contains("training_K.json") && Catch::Contains("found 0 and 3"));
  std::filesystem::remove(root + "/training_K.json");
  CHECK_THROWS_WITH(FreiHandDataset(root), Catch::Contains("training_K.json") && Catch::Contains("missing"));
}
