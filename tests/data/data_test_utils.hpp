// Helpers shared by the data tests: fixture paths, expected values written
// by tests/data/make_fixtures.py, and scratch directories.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unistd.h>

#include "lgh/data/image.hpp"
#include "scratch_dir.hpp"

namespace lgh_test {

inline std::string fixture(const std::string& relative) {
  return std::string(LGH_TEST_DATA_DIR) + "/data/fixtures/" + relative;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

// Copies a fixture tree into `dir` and returns the copy's path.
inline std::string copy_fixture(const ScratchDir& dir, const std::string& name) {
  const auto dst = dir.path() / name;
  std::filesystem::copy(fixture(name), dst, std::filesystem::copy_options::recursive);
  return dst.string();
}

// Keeps the first `keep` bytes of a file.
inline void truncate_file(const std::string& path, size_t keep) {
  std::filesystem::resize_file(path, keep);
}

// Writes `img` as PNG data under any name (readers detect the format from
// the content), so tests can put a mis-sized image where a JPEG belongs.
inline void write_png_to(const std::string& path, const lgh::data::Image& img) {
  lgh::data::write_image(path + ".tmp.png", img);
  std::filesystem::rename(path + ".tmp.png", path);
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  REQUIRE(f.good());
  f << text;
}

}  // namespace lgh_test
