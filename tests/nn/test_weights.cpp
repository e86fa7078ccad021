#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "lgh/io/weights.hpp"

using namespace lgh;
using nn::LearnableGroupsModel;
using nn::ModelConfig;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lgh_test_weights_" + name)).string();
}

ModelConfig tiny(int groups = 3, bool fusion = true) {
  ModelConfig c;
  c.input_size = 64;
  c.features = 8;
  c.p0 = 4;
  c.p1 = 6;
  c.num_groups = groups;
  c.fusion = fusion;
  c.hourglass_depth = 2;
  c.hourglass_modules = 1;
  return c;
}

// Writes the model's state dict without the config metadata (a plain dump),
// optionally renaming, dropping or replacing one tensor.
void write_plain(const nn::Module<float>& m, const std::string& path, const std::string& skip = "",
                 const std::string& extra = "", const std::string& reshape = "") {
  io::SafetensorsWriter w;
  for (const auto& p : m.named_parameters()) {
    if (p.name == skip) continue;
    if (p.name == reshape)
      w.add(p.name, TensorF::zeros({p.tensor.numel() + 1}));
    else
      w.add(p.name, p.tensor.detach());
  }
  for (const auto& b : m.named_buffers()) w.add(b.first, b.second);
  for (const auto& c : m.named_counters()) w.add(c.first, Tensor<int64_t>::scalar(*c.second));
  if (!extra.empty()) w.add(extra, TensorF::zeros({2, 3}));
  w.write(path);
}

}  // namespace

TEST_CASE("weights round trip with the config in the metadata", "[nn][weights]") {
  LearnableGroupsModel<float> a(tiny(), 1);
  a.backbone->stem_bn->num_batches_tracked = 17;
  {
    autograd::NoGradGuard ng;
    a.backbone->stem_bn->running_var.fill_(3.5f);
  }
  const std::string path = temp_path("roundtrip.safetensors");
  io::save_weights(a, path);
  auto b = io::load_model<float>(path);
  CHECK(b->config() == a.config());
  const auto pa = a.named_parameters(), pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].name);
    CHECK(pa[i].tensor.detach().to_vector() == pb[i].tensor.detach().to_vector());
  }
  CHECK(b->backbone->stem_bn->num_batches_tracked == 17);
  CHECK(b->backbone->stem_bn->running_var.to_vector() == std::vector<float>(64, 3.5f));
  std::remove(path.c_str());
}

TEST_CASE("a plain dump without metadata loads with the config inferred from shapes", "[nn][weights]") {
  for (ModelConfig c : {tiny(3, true), tiny(1, false), tiny(2, false), ModelConfig::small()}) {
    LearnableGroupsModel<float> a(c, 2);
    const std::string path = temp_path("plain.safetensors");
    write_plain(a, path);
    io::SafetensorsReader f(path);
    CHECK(f.metadata().count(io::kConfigMetadataKey) == 0);
    const ModelConfig inferred = io::infer_config(f);
    INFO(c.to_json().dump() << " vs inferred " << inferred.to_json().dump());
    CHECK(inferred.input_size == c.input_size);
    CHECK(inferred.features == c.features);
    CHECK(inferred.p0 == c.p0);
    CHECK(inferred.p1 == c.p1);
    CHECK(inferred.num_groups == c.num_groups);
    CHECK(inferred.uses_fusion() == c.uses_fusion());
    CHECK(inferred.hourglass_depth == c.hourglass_depth);
    CHECK(inferred.hourglass_modules == c.hourglass_modules);
    auto b = io::load_model<float>(path);
    CHECK(b->num_parameters() == a.num_parameters());
    std::remove(path.c_str());
  }
}

TEST_CASE("missing, extra and mis-shaped tensors are named with both shapes", "[nn][weights]") {
  LearnableGroupsModel<float> a(tiny(), 3);
  const std::string path = temp_path("bad.safetensors");

  write_plain(a, path, "backbone.r1.conv2.weight");
  {
    LearnableGroupsModel<float> b(tiny(), 4);
    io::SafetensorsReader f(path);
    CHECK_THROWS_WITH(io::load_weights(b, f), Catch::Contains("missing tensor 'backbone.r1.conv2.weight'") &&
                                                  Catch::Contains("[64, 64, 3, 3]") && Catch::Contains(path));
  }
  write_plain(a, path, "", "backbone.extra.weight");
  {
    LearnableGroupsModel<float> b(tiny(), 4);
    io::SafetensorsReader f(path);
    CHECK_THROWS_WITH(io::load_weights(b, f), Catch::Contains("unexpected tensor 'backbone.extra.weight' of shape [2, 3]"));
  }
  write_plain(a, path, "", "", "b_conv1.0.res_branch.0.weight");
  {
    LearnableGroupsModel<float> b(tiny(), 4);
    io::SafetensorsReader f(path);
    CHECK_THROWS_WITH(io::load_weights(b, f), Catch::Contains("tensor 'b_conv1.0.res_branch.0.weight' has shape [217] in the file, the model expects [6, 4, 3, 3]"));
  }
  // A model of another config: every mismatch is reported.
  write_plain(a, path);
  {
    LearnableGroupsModel<float> other(tiny(2, true), 4);
    io::SafetensorsReader f(path);
    CHECK_THROWS_WITH(io::load_weights(other, f), Catch::Contains("meta_S.weight") && Catch::Contains("more"));
  }
  std::remove(path.c_str());
}

TEST_CASE("soft-argmax grids must be the index grids", "[nn][weights]") {
  LearnableGroupsModel<float> a(tiny(), 5);
  {
    autograd::NoGradGuard ng;
    a.heads[1]->soft_argmax->wx.at({0, 3}) = 0.5f;
  }
  const std::string path = temp_path("grid.safetensors");
  io::save_weights(a, path);
  CHECK_THROWS_WITH(io::load_model<float>(path), Catch::Contains("b_get_uv.1.wx/wy") && Catch::Contains("index grids"));
  std::remove(path.c_str());
}

TEST_CASE("bad config metadata is reported", "[nn][weights]") {
  LearnableGroupsModel<float> a(tiny(), 6);
  const std::string path = temp_path("meta.safetensors");
  io::save_weights(a, path, {{io::kConfigMetadataKey, "{not json"}});
  CHECK_THROWS_WITH(io::load_model<float>(path), Catch::Contains("lgh.config") && Catch::Contains("not valid JSON"));
  std::remove(path.c_str());
}
