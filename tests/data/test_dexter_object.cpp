#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include "data_test_utils.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/dexter_object.hpp"

using namespace lgh;
using namespace lgh::data;
using lgh_test::fixture;

namespace {
DexterObjectOptions fixture_sequences() {
  DexterObjectOptions o;
  o.sequences = {"Grasp1", "Rigid"};
  return o;
}
}  // namespace

TEST_CASE("Dexter+Object fingertips in the colour camera, other joints unlabelled", "[data][dexter_object]") {
  const auto expected = lgh_test::read_json(fixture("dexter_object/expected.json"));
  const DexterObjectDataset ds(fixture("dexter_object"), fixture_sequences());
  REQUIRE(ds.size() == static_cast<int64_t>(expected.size()));
  const int tips[5] = {1, 5, 9, 13, 17};
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto& w = expected[static_cast<size_t>(i)];
    const HandSample s = ds.get(i);
    INFO(s.id);
    CHECK(s.id == w["id"].get<std::string>());
    CHECK(s.is_left);
    CHECK(s.K.fx == 587.45209);
    CHECK(s.K.fy == 600.67456);
    for (int c = 0; c < 3; ++c) CHECK(s.rgb.at(0, 0)[c] == w["pixel00"][c].get<int>());
    int annotated = 0;
    for (int t = 0; t < 5; ++t) {
      const int j = tips[t];
      if (w["tips_xyz"][t].is_null()) {
        CHECK_FALSE(s.visible[j]);
        CHECK(std::isnan(s.xyz[j][0]));
        continue;
      }
      ++annotated;
      CHECK(s.visible[j]);
      for (int c = 0; c < 3; ++c) CHECK(s.xyz[j][c] == Approx(w["tips_xyz"][t][c].get<double>()).margin(1e-9));
      for (int c = 0; c < 2; ++c) CHECK(s.uv[j][c] == Approx(w["tips_uv"][t][c].get<double>()).margin(1e-9));
    }
    for (int j = 0; j < kNumJoints; ++j) {
      const bool tip = j == 1 || j == 5 || j == 9 || j == 13 || j == 17;
      if (!tip) {
        CHECK_FALSE(s.visible[j]);
        CHECK(std::isnan(s.xyz[j][2]));
      }
    }
    CHECK(annotated == (s.id == "dexter_object/Grasp1/image_0007" ? 4 : 5));
    // The crop takes the box from the fingertips and keeps the labels consistent.
    const CropSample c = crop_hand(s, CropOptions{});
    CHECK(c.mirrored);
    CHECK(c.s0 == 0);
    for (int j : tips) {
      if (!c.visible[j]) continue;
      CHECK(c.K.fx * c.xyz[j][0] / c.xyz[j][2] + c.K.cx == Approx(c.uv[j][0]).margin(1e-6));
      CHECK(c.K.fy * c.xyz[j][1] / c.xyz[j][2] + c.K.cy == Approx(c.uv[j][1]).margin(1e-6));
    }
  }
}

TEST_CASE("Dexter+Object reports malformed annotation files by file and line", "[data][dexter_object]") {
  lgh_test::ScratchDir tmp("dexter");
  const std::string root = lgh_test::copy_fixture(tmp, "dexter_object");
  const std::string anno = root + "/data/Grasp1/annotations/Grasp13D.txt";
  DexterObjectOptions o;
  o.sequences = {"Grasp1"};
  lgh_test::write_text(anno, "1, 2, 3;1, 2, 3;1, 2, 3;1, 2, 3;1, 2, 3\n1, 2, 3;1, 2, 3\n1,2,3;1,2,3;1,2,3;1,2,3;1,2,3\n");
  CHECK_THROWS_WITH(DexterObjectDataset(root, o), Catch::Contains("Grasp13D.txt' line 2") &&
                                                      Catch::Contains("found 2"));
  lgh_test::write_text(anno, "1, 2, 3;1, 2, 3;1, 2, 3;1, 2, 3;1, 2, 3\n1, 2, 3;1, x, 3;1, 2, 3;1, 2, 3;1, 2, 3\n");
  CHECK_THROWS_WITH(DexterObjectDataset(root, o), Catch::Contains("line 2, fingertip 1"));
  lgh_test::write_text(anno, "1, 2, 3;1, 2, 3;1, 2, 3;1, 2, 3;1, 2, 3\n");
  CHECK_THROWS_WITH(DexterObjectDataset(root, o), Catch::Contains("1 annotated frames") && Catch::Contains("3 images"));
  std::filesystem::remove(anno);
  CHECK_THROWS_WITH(DexterObjectDataset(root, o), Catch::Contains("Grasp13D.txt") && Catch::Contains("missing"));
  o.sequences = {"Pinch"};
  CHECK_THROWS_WITH(DexterObjectDataset(root, o), Catch::Contains("Pinch/color") && Catch::Contains("missing"));

  // Images: missing or of the wrong size.
  o.sequences = {"Rigid"};
  const DexterObjectDataset ds(root, o);
  write_image(root + "/data/Rigid/color/image_0000.png", Image(64, 48, 3, 0));
  std::filesystem::remove(root + "/data/Rigid/color/image_0007.png");
  CHECK_THROWS_WITH(ds.get(0), Catch::Contains("dexter_object/Rigid/image_0000") && Catch::Contains("64x48"));
  CHECK_THROWS_WITH(ds.get(1), Catch::Contains("dexter_object/Rigid/image_0007") && Catch::Contains("missing"));
}
