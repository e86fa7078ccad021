// Resource limits of the weights path (docs/reliability.md): a forged
// safetensors header or model config is refused with an lgh::Error before
// anything of the size it declares is allocated.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "lgh/io/weights.hpp"
#include "scratch_dir.hpp"

using namespace lgh;
using Catch::Contains;
using lgh_test::write_bytes;

namespace {

// A safetensors file: header JSON, then `data` as the buffer.
std::string safetensors_bytes(const nlohmann::json& header, const std::string& data) {
  const std::string text = header.dump();
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff));
  return out + text + data;
}

}  // namespace

TEST_CASE("a safetensors header declaring 10^12 elements in a short file is refused", "[io][limits]") {
  lgh_test::ScratchDir dir("limits");
  const std::string path = dir.file("huge.safetensors");
  const nlohmann::json shape = {1000000, 1000000};  // 10^12 F32 elements: 4 TB
  SECTION("offsets consistent with the shape run past the end of the file") {
    write_bytes(path, safetensors_bytes({{"w", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 4000000000000ull}}}}},
                                        std::string(16, '\0')));
    REQUIRE_THROWS_WITH(io::SafetensorsReader(path), Contains("tensor 'w'") && Contains("runs past the end of the data buffer (16 bytes)"));
  }
  SECTION("offsets that fit the file do not fit the shape") {
    write_bytes(path, safetensors_bytes({{"w", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 16}}}}},
                                        std::string(16, '\0')));
    REQUIRE_THROWS_WITH(io::SafetensorsReader(path), Contains("tensor 'w'") && Contains("needs 4000000000000"));
  }
}

TEST_CASE("model configs beyond the limits are refused before a model is built", "[io][limits][nn]") {
  SECTION("S = 2^20 in a weights file's metadata") {
    lgh_test::ScratchDir dir("limits");
    const std::string path = dir.file("config.safetensors");
    const nlohmann::json header = {{"__metadata__", {{"lgh.config", nlohmann::json{{"S", 1 << 20}}.dump()}}}};
    write_bytes(path, safetensors_bytes(header, ""));
    const io::SafetensorsReader file(path);
    REQUIRE_THROWS_WITH(io::read_config(file), Contains("config.safetensors") &&
                                                   Contains("input size S must be a positive multiple of 64 up to 1024, got 1048576"));
  }
  SECTION("every size field has an upper bound") {
    const std::pair<const char*, int64_t> cases[] = {{"S", 1 << 20}, {"F", 1 << 20}, {"P0", 4096}, {"P1", 4096},
                                                     {"J", 100000}, {"K", 22}, {"hourglass_modules", 1000}};
    for (const auto& c : cases) {
      INFO(c.first);
      REQUIRE_THROWS_WITH(nn::ModelConfig::from_json({{c.first, c.second}}), Contains("model config"));
    }
    nn::ModelConfig c;
    c.input_size = int64_t(1) << 20;
    REQUIRE_THROWS_WITH(nn::LearnableGroupsModel<float>(c), Contains("up to 1024"));
  }
  SECTION("an integer that does not fit its field is refused, not wrapped") {
    // 2^32 + 3 would become K = 3 if narrowed to int.
    REQUIRE_THROWS_WITH(nn::ModelConfig::from_json({{"K", (int64_t(1) << 32) + 3}}),
                        Contains("'K' = 4294967299 is out of range"));
    REQUIRE_THROWS_WITH(nn::ModelConfig::from_json({{"J", uint64_t(1) << 63}}), Contains("'J'") && Contains("out of range"));
  }
  SECTION("the paper's and the small config stay valid") {
    REQUIRE_NOTHROW(nn::ModelConfig::paper().validate());
    REQUIRE_NOTHROW(nn::ModelConfig::small().validate());
    REQUIRE(nn::ModelConfig::from_json(nn::ModelConfig::paper().to_json()) == nn::ModelConfig::paper());
  }
}
