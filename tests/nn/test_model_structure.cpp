#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "lgh/nn/model.hpp"

using namespace lgh;
using nn::LearnableGroupsModel;
using nn::ModelConfig;

namespace {

// key -> shape string ("64x3x7x7", "" for scalars) from the reference list.
std::map<std::string, std::string> reference_keys() {
  std::ifstream in(std::string(LGH_TEST_DATA_DIR) + "/fixtures/state_dict_keys.tsv");
  REQUIRE(in.good());
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string key, shape;
    std::getline(ls, key, '\t');
    std::getline(ls, shape, '\t');
    out[key] = shape;
  }
  return out;
}

std::string shape_string(const Shape& s) {
  std::string r;
  for (int i = 0; i < s.ndim(); ++i) r += (i ? "x" : "") + std::to_string(s[i]);
  return r;
}

template <typename T>
std::map<std::string, std::string> model_keys(const nn::Module<T>& m) {
  std::map<std::string, std::string> out;
  for (const auto& p : m.named_parameters()) REQUIRE(out.emplace(p.name, shape_string(p.tensor.shape())).second);
  for (const auto& b : m.named_buffers()) REQUIRE(out.emplace(b.first, shape_string(b.second.shape())).second);
  for (const auto& c : m.named_counters()) REQUIRE(out.emplace(c.first, "").second);
  return out;
}

}  // namespace

TEST_CASE("paper config: every key and shape of the reference state dict", "[nn][model]") {
  LearnableGroupsModel<float> model(ModelConfig::paper());
  const auto ours = model_keys(model);
  const auto ref = reference_keys();
  REQUIRE(ref.size() == 1104);
  for (const auto& kv : ref) {
    INFO("reference key " << kv.first);
    auto it = ours.find(kv.first);
    REQUIRE(it != ours.end());
    CHECK(it->second == kv.second);
  }
  for (const auto& kv : ours) {
    INFO("our key " << kv.first);
    CHECK(ref.count(kv.first) == 1);
  }
}

TEST_CASE("parameter counts equal the reference's", "[nn][model]") {
  CHECK(LearnableGroupsModel<float>(ModelConfig::paper()).num_parameters() == 7502833);
  CHECK(LearnableGroupsModel<float>(ModelConfig::small()).num_parameters() == 1342513);
}

TEST_CASE("parameter groups: selector, fusion, everything else", "[nn][model]") {
  LearnableGroupsModel<float> model(ModelConfig::small());
  int64_t selector = 0, fusion = 0, other = 0, frozen = 0;
  for (const auto& p : model.named_parameters()) {
    if (!p.trainable) {
      ++frozen;
      CHECK((p.name.find(".wx") != std::string::npos || p.name.find(".wy") != std::string::npos));
      continue;
    }
    if (p.group == nn::ParamGroup::Selector) {
      ++selector;
      CHECK(p.name == "meta_S.weight");
    } else if (p.group == nn::ParamGroup::Fusion) {
      ++fusion;
      CHECK(p.name.rfind("nddr_layer0.", 0) == 0);
    } else {
      ++other;
    }
  }
  CHECK(selector == 1);
  CHECK(fusion == 3 * 4);  // per group: conv weight, bias, BN weight, bias
  CHECK(frozen == 6);      // wx, wy per group
  CHECK(other > 100);
}

TEST_CASE("K = 1 and fusion off omit the fusion layers", "[nn][model]") {
  ModelConfig c = ModelConfig::small();
  c.num_groups = 1;
  LearnableGroupsModel<float> one(c);
  CHECK(one.fusion == nullptr);
  c.num_groups = 3;
  c.fusion = false;
  LearnableGroupsModel<float> nofuse(c);
  CHECK(nofuse.fusion == nullptr);
  for (const auto& p : nofuse.named_parameters()) CHECK(p.name.find("nddr") == std::string::npos);
}

TEST_CASE("config validation and JSON round trip", "[nn][model]") {
  ModelConfig c = ModelConfig::small();
  CHECK(ModelConfig::from_json(c.to_json()) == c);
  c.input_size = 100;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("multiple of 64"));
  CHECK_THROWS_WITH(ModelConfig::from_json({{"S", 128}, {"Q", 1}}), Catch::Contains("unknown key 'Q'"));
  CHECK_THROWS_WITH(ModelConfig::named("huge"), Catch::Contains("unknown model config 'huge'"));
  ModelConfig d = ModelConfig::small();
  d.hourglass_depth = 6;  // 32 / 2^6 < 1
  CHECK_THROWS_WITH(d.validate(), Catch::Contains("hourglass depth 6"));
}
