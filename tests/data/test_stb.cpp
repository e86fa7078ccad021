#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include <Eigen/Geometry>

#include "data_test_utils.hpp"
#include "lgh/data/stb.hpp"

using namespace lgh;
using namespace lgh::data;
using lgh_test::fixture;

TEST_CASE("STB joint order maps to the canonical one", "[data][stb]") {
  // STB: 0 palm, 1-4 little MCP..tip, 5-8 ring, 9-12 middle, 13-16 index, 17-20 thumb.
  CHECK(stb::joint_from_canonical(0) == 0);
  CHECK(stb::joint_from_canonical(1) == 20);   // thumb tip
  CHECK(stb::joint_from_canonical(4) == 17);   // thumb, most proximal
  CHECK(stb::joint_from_canonical(5) == 16);   // index tip
  CHECK(stb::joint_from_canonical(12) == 9);   // middle MCP: the root
  CHECK(stb::joint_from_canonical(11) == 10);  // middle PIP
  CHECK(stb::joint_from_canonical(17) == 4);   // little tip
  CHECK(stb::joint_from_canonical(20) == 1);   // little MCP
  bool seen[kNumJoints] = {};
  for (int j = 0; j < kNumJoints; ++j) seen[stb::joint_from_canonical(j)] = true;
  for (bool s : seen) CHECK(s);
  CHECK(stb::sequences("test") == std::vector<std::string>{"B1Counting", "B1Random"});
  CHECK(stb::sequences("train").size() == 10);
  CHECK(stb::sequences("train")[0] == "B2Counting");
  CHECK_THROWS_WITH(stb::sequences("val"), Catch::Contains("'val'"));
}

TEST_CASE("STB labels from any reader: order, palm or wrist, camera frame", "[data][stb]") {
  // One frame whose STB joint k sits at (k, 2k, 500 + k) in the label frame.
  const StbLabelReader reader = [](const std::string&) {
    StbLabels l;
    l.frames = 1;
    for (int k = 0; k < kNumJoints; ++k)
      for (double v : {double(k), 2.0 * k, 500.0 + k}) l.values.push_back(v);
    return l;
  };
  StbOptions o;
  o.sequences = {"B1Random"};
  o.camera = StbCamera::kStereoLeft;  // BB labels are already in the camera frame
  const StbDataset bb(fixture("stb"), o, reader);
  REQUIRE(bb.size() == 1);
  const HandSample s = bb.get(0);
  CHECK(s.id == "stb/B1Random/BB_left_0");
  CHECK(s.is_left);
  CHECK(s.K.fx == 822.79041);
  CHECK(s.K.cy == 250.31296);
  CHECK(s.xyz[12][0] == 9);   // middle MCP = STB 9
  CHECK(s.xyz[1][2] == 520);  // thumb tip = STB 20
  CHECK(s.xyz[0][1] == 0);    // palm centre in the wrist slot
  CHECK(s.uv[12][0] == Approx(822.79041 * 9 / 509 + 318.47345));
  CHECK(s.visible[12]);

  o.wrist = StbWrist::kExtrapolated;
  const HandSample w = StbDataset(fixture("stb"), o, reader).get(0);
  // wrist = mcp + 2 (palm - mcp) = 2 palm - mcp, with palm STB 0 and mcp STB 9.
  CHECK(w.xyz[0][0] == Approx(-9));
  CHECK(w.xyz[0][1] == Approx(-18));
  CHECK(w.xyz[0][2] == Approx(491));
  CHECK(w.xyz[5][0] == s.xyz[5][0]);

  // SK: from the depth camera to the colour camera; the points stay at the
  // same distances from each other.
  o.camera = StbCamera::kColor;
  o.wrist = StbWrist::kPalmCentre;
  const HandSample c = StbDataset(fixture("stb"), o, reader).get(0);
  CHECK(c.id == "stb/B1Random/SK_color_0");
  CHECK(c.K.fx == 607.92271);
  const auto dist = [](const std::array<double, 3>& a, const std::array<double, 3>& b) {
    return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
  };
  CHECK(dist(c.xyz[1], c.xyz[17]) == Approx(dist(s.xyz[1], s.xyz[17])).epsilon(1e-12));
  // The readme's relation: depth = R(r) colour + T, with R from Eigen's angle-axis.
  const Eigen::Vector3d r(0.00531, -0.01196, 0.00301), T(-24.0381, -0.4563, -1.2326);
  const Eigen::Matrix3d R = Eigen::AngleAxisd(r.norm(), r.normalized()).toRotationMatrix();
  for (int j = 0; j < kNumJoints; ++j) {
    const Eigen::Vector3d d = R * Eigen::Vector3d(c.xyz[j][0], c.xyz[j][1], c.xyz[j][2]) + T;
    for (int k = 0; k < 3; ++k) CHECK(d[k] == Approx(s.xyz[j][k]).margin(1e-9));
  }
}

TEST_CASE("STB reader errors name the file", "[data][stb]") {
  const StbLabelReader short_reader = [](const std::string&) {
    StbLabels l;
    l.frames = 2;
    l.values.assign(10, 0.0);
    return l;
  };
  StbOptions o;
  o.sequences = {"B1Counting"};
  CHECK_THROWS_WITH(StbDataset(fixture("stb"), o, short_reader),
                    Catch::Contains("B1Counting_SK.mat") && Catch::Contains("10 values for 2 frames"));
  o.sequences = {"B4Random"};
  CHECK_THROWS_WITH(StbDataset(fixture("stb"), o, short_reader),
                    Catch::Contains("B4Random_SK.mat") && Catch::Contains("missing"));
  CHECK_THROWS_WITH(StbDataset(fixture("stb"), o, StbLabelReader()), Catch::Contains("no label reader"));
}

#if defined(LGH_HAVE_MATIO)

TEST_CASE("STB .mat files written by scipy read with the dataset's conventions", "[data][stb]") {
  const auto expected = lgh_test::read_json(fixture("stb/expected.json"));
  for (StbCamera cam : {StbCamera::kColor, StbCamera::kStereoLeft}) {
    StbOptions o;  // the test split: B1Counting then B1Random
    o.camera = cam;
    const StbDataset ds = open_stb(fixture("stb"), o);
    const char* tag = cam == StbCamera::kColor ? "SK" : "BB";
    const auto& a = expected[std::string("B1Counting_") + tag];
    const auto& b = expected[std::string("B1Random_") + tag];
    REQUIRE(ds.size() == static_cast<int64_t>(a.size() + b.size()));
    StbOptions wo = o;
    wo.wrist = StbWrist::kExtrapolated;
    const StbDataset wrist = open_stb(fixture("stb"), wo);
    for (int64_t i = 0; i < ds.size(); ++i) {
      const auto& w = i < static_cast<int64_t>(a.size()) ? a[static_cast<size_t>(i)] : b[static_cast<size_t>(i) - a.size()];
      const HandSample s = ds.get(i);
      INFO(w["id"].get<std::string>());
      CHECK(s.id == w["id"].get<std::string>());
      CHECK(s.is_left);
      CHECK(s.K.fx == w["K"][0].get<double>());
      CHECK(s.K.fy == w["K"][1].get<double>());
      CHECK(s.K.cx == w["K"][2].get<double>());
      CHECK(s.K.cy == w["K"][3].get<double>());
      for (int j = 0; j < kNumJoints; ++j) {
        for (int c = 0; c < 3; ++c) CHECK(s.xyz[j][c] == Approx(w["xyz_mm"][j][c].get<double>()).margin(1e-9));
        for (int c = 0; c < 2; ++c) CHECK(s.uv[j][c] == Approx(w["uv"][j][c].get<double>()).margin(1e-9));
        CHECK(s.visible[j] == w["visible"][j].get<bool>());
      }
      for (int c = 0; c < 3; ++c) CHECK(s.rgb.at(0, 0)[c] == w["pixel00"][c].get<int>());
      const HandSample sw = wrist.get(i);
      for (int c = 0; c < 3; ++c) CHECK(sw.xyz[0][c] == Approx(w["wrist_mm"][c].get<double>()).margin(1e-9));
    }
  }
  StbOptions train;
  train.sequences = {"B2Counting"};
  CHECK(open_stb(fixture("stb"), train).size() == 2);
  // The full training split needs files the fixture does not have.
  StbOptions full;
  full.split = "train";
  CHECK_THROWS_WITH(open_stb(fixture("stb"), full), Catch::Contains("B2Random_SK.mat") && Catch::Contains("missing"));
}

TEST_CASE("STB refuses malformed .mat files and bad images", "[data][stb]") {
  StbOptions o;
  o.sequences = {"B1Counting"};
  CHECK_THROWS_WITH(open_stb(fixture("stb_bad"), o),
                    Catch::Contains("B1Counting_SK.mat") && Catch::Contains("2 x 21 x 3") &&
                        Catch::Contains("expected 3 x 21 x frames"));
  o.sequences = {"B1Random"};
  CHECK_THROWS_WITH(open_stb(fixture("stb_bad"), o), Catch::Contains("B1Random_SK.mat") && Catch::Contains("handPara"));
  o.sequences = {"B2Counting"};
  CHECK_THROWS_WITH(open_stb(fixture("stb_bad"), o), Catch::Contains("B2Counting_SK.mat") && Catch::Contains("real"));
  o.sequences = {"B2Random"};
  CHECK_THROWS_WITH(open_stb(fixture("stb_bad"), o), Catch::Contains("B2Random_SK.mat"));

  lgh_test::ScratchDir tmp("stb");
  const std::string root = lgh_test::copy_fixture(tmp, "stb");
  std::filesystem::remove(root + "/images/B1Counting/SK_color_1.png");
  write_image(root + "/images/B1Counting/SK_color_2.png", Image(320, 240, 3, 1));
  const StbDataset ds = open_stb(root, StbOptions{});
  CHECK_NOTHROW(ds.get(0));
  CHECK_THROWS_WITH(ds.get(1), Catch::Contains("stb/B1Counting/SK_color_1") && Catch::Contains("missing"));
  CHECK_THROWS_WITH(ds.get(2), Catch::Contains("stb/B1Counting/SK_color_2") && Catch::Contains("320x240") &&
                                   Catch::Contains("expected 640x480"));
}

#endif
