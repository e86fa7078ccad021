// The full network of Li, Gao, Sang (AAAI 2021), DESIGN.md §2:
//
//   image -> Backbone -> (H0, T) -> neck Res2D(J+F->128) -> Res2D(128->P0)
//         -> K GroupBranch -> [GroupFusion, Eq. 9] -> K GroupHead (heatmaps,
//            depth maps, soft-argmax) -> (u, v, d) per group
//         -> selection by S̃ (Eq. 8): uv_j = 4 Σ_k S̃_jk (u,v)_jk, d_j = Σ_k S̃_jk d_jk.
#pragma once

#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

#include "lgh/nn/hourglass.hpp"
#include "lgh/nn/joint_groups.hpp"
#include "lgh/ops/group_select.hpp"

namespace lgh {
namespace nn {

struct ModelConfig {
  int64_t input_size = 256;   // S: input crops are S x S (a multiple of 64)
  int64_t features = 256;     // F: hourglass channels
  int64_t p0 = 32;            // P0: neck output / branch input channels
  int64_t p1 = 32;            // P1: branch output channels
  int num_groups = 3;         // K
  bool fusion = true;         // Eq. (9); omitted when K = 1
  int hourglass_depth = 4;
  int hourglass_modules = 2;  // residual modules per hourglass level
  int num_joints = 21;        // J

  static constexpr int64_t kNeckChannels = 128;

  // The authors' configuration (7,502,833 parameters).
  static ModelConfig paper() { return ModelConfig{}; }
  // Same architecture at S 128, F 64 (1,342,513 parameters): fast on a CPU.
  static ModelConfig small() {
    ModelConfig c;
    c.input_size = 128;
    c.features = 64;
    return c;
  }
  static ModelConfig named(const std::string& name) {
    if (name == "paper") return paper();
    if (name == "small") return small();
    LGH_FAIL("unknown model config '" << name << "' (expected paper or small, or a JSON file)");
  }

  bool uses_fusion() const { return fusion && num_groups > 1; }
  int64_t heatmap_size() const { return input_size / 4; }

  // Upper bounds: a config comes from files (weights metadata, shapes, JSON
  // given to the tool), and each of these sizes multiplies memory. They are
  // far above the paper's (S 256, F 256, P0 = P1 = 32, K 3, depth 4, 2
  // modules, J 21) and refuse a forged config before a model is allocated.
  static constexpr int64_t kMaxInputSize = 1024;
  static constexpr int64_t kMaxChannels = 1024;  // F, P0, P1
  static constexpr int kMaxJoints = 256;         // J (and so K <= J)
  static constexpr int kMaxHourglassModules = 16;

  void validate() const {
    LGH_CHECK(input_size >= 64 && input_size % 64 == 0 && input_size <= kMaxInputSize,
              "model config: input size S must be a positive multiple of 64 up to " << kMaxInputSize << ", got " << input_size);
    LGH_CHECK(features >= 2 && features % 2 == 0 && features <= kMaxChannels,
              "model config: features F must be even, in [2, " << kMaxChannels << "], got " << features);
    LGH_CHECK(p0 >= 1 && p1 >= 1 && p0 <= kMaxChannels && p1 <= kMaxChannels,
              "model config: P0 and P1 must be in [1, " << kMaxChannels << "], got " << p0 << ", " << p1);
    LGH_CHECK(num_joints >= 1 && num_joints <= kMaxJoints,
              "model config: number of joints J must be in [1, " << kMaxJoints << "], got " << num_joints);
    LGH_CHECK(num_groups >= 1 && num_groups <= num_joints,
              "model config: number of groups K must be in [1, J = " << num_joints << "], got " << num_groups);
    LGH_CHECK(hourglass_modules >= 1 && hourglass_modules <= kMaxHourglassModules,
              "model config: hourglass modules must be in [1, " << kMaxHourglassModules << "], got " << hourglass_modules);
    LGH_CHECK(hourglass_depth >= 1 && hourglass_depth < 62 && (heatmap_size() >> hourglass_depth) >= 1 &&
                  heatmap_size() % (int64_t(1) << hourglass_depth) == 0,
              "model config: hourglass depth " << hourglass_depth << " does not fit heatmaps of " << heatmap_size()
                                               << " pixels (S/4 must be divisible by 2^depth)");
  }

  nlohmann::json to_json() const {
    return {{"S", input_size}, {"F", features}, {"P0", p0}, {"P1", p1}, {"K", num_groups}, {"fusion", fusion},
            {"hourglass_depth", hourglass_depth}, {"hourglass_modules", hourglass_modules}, {"J", num_joints}};
  }

  static ModelConfig from_json(const nlohmann::json& j) {
    LGH_CHECK(j.is_object(), "model config: expected a JSON object");
    ModelConfig c;
    auto get_int = [&](const char* key, auto& field) {
      using Field = std::remove_reference_t<decltype(field)>;
      if (!j.contains(key)) return;
      const auto& v = j.at(key);
      LGH_CHECK(v.is_number_integer(), "model config: '" << key << "' must be an integer");
      // Range-checked before narrowing, so that 2^32 + 3 cannot pass as 3.
      const bool fits = v.is_number_unsigned() ? v.template get<uint64_t>() <= uint64_t(std::numeric_limits<Field>::max())
                                               : v.template get<int64_t>() >= int64_t(std::numeric_limits<Field>::min()) &&
                                                     v.template get<int64_t>() <= int64_t(std::numeric_limits<Field>::max());
      LGH_CHECK(fits, "model config: '" << key << "' = " << v.dump() << " is out of range");
      field = static_cast<Field>(v.template get<int64_t>());
    };
    get_int("S", c.input_size);
    get_int("F", c.features);
    get_int("P0", c.p0);
    get_int("P1", c.p1);
    get_int("K", c.num_groups);
    get_int("hourglass_depth", c.hourglass_depth);
    get_int("hourglass_modules", c.hourglass_modules);
    get_int("J", c.num_joints);
    if (j.contains("fusion")) {
      LGH_CHECK(j.at("fusion").is_boolean(), "model config: 'fusion' must be true or false");
      c.fusion = j.at("fusion").get<bool>();
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      static const char* known[] = {"S", "F", "P0", "P1", "K", "fusion", "hourglass_depth", "hourglass_modules", "J"};
      LGH_CHECK(std::find_if(std::begin(known), std::end(known), [&](const char* k) { return it.key() == k; }) != std::end(known),
                "model config: unknown key '" << it.key() << "'");
    }
    c.validate();
    return c;
  }

  friend bool operator==(const ModelConfig& a, const ModelConfig& b) { return a.to_json() == b.to_json(); }
  friend bool operator!=(const ModelConfig& a, const ModelConfig& b) { return !(a == b); }
};

template <typename T>
struct ModelOutput {
  Tensor<T> uvd;                   // [B,J,3]: u, v in input pixels, d relative depth (units of s0)
  Tensor<T> selector;              // S̃ [J,K]
  std::vector<Tensor<T>> groups;   // per group [B,J,3] at heatmap resolution (u, v, d)
  Tensor<T> heatmaps;              // the backbone's 2D heatmaps H0 [B,J,S/4,S/4]

  Tensor<T> uv() const { return ops::slice(uvd, 2, 0, 2); }
  Tensor<T> depth() const { return ops::reshape(ops::slice(uvd, 2, 2, 3), {uvd.size(0), uvd.size(1)}); }
};

template <typename T>
class LearnableGroupsModel : public Module<T> {
 public:
  explicit LearnableGroupsModel(const ModelConfig& config, uint64_t seed = 0) : config_(config) {
    config.validate();
    PhiloxEngine rng(seed, 0x6d6f64656cULL);
    const int64_t J = config.num_joints;
    backbone = this->register_module(names::kBackbone, std::make_shared<Backbone<T>>(
                                                           config.features, J, config.hourglass_depth, config.hourglass_modules, rng));
    neck_a = this->register_module(names::kNeck + ".0", std::make_shared<Res2D<T>>(J + config.features, ModelConfig::kNeckChannels, rng));
    neck_b = this->register_module(names::kNeck + ".1", std::make_shared<Res2D<T>>(ModelConfig::kNeckChannels, config.p0, rng));
    selector = this->register_module(names::kSelector, std::make_shared<JointGroupSelector<T>>(J, config.num_groups));
    for (int k = 0; k < config.num_groups; ++k)
      branches.push_back(this->register_module("", std::make_shared<GroupBranch<T>>(k, config.p0, config.p1, rng)));
    for (int k = 0; k < config.num_groups; ++k)
      heads.push_back(this->register_module(
          "", std::make_shared<GroupHead<T>>(k, config.p0, config.p1, J, config.heatmap_size(), rng)));
    if (config.uses_fusion())
      fusion = this->register_module("", std::make_shared<GroupFusion<T>>(config.num_groups, config.p1, rng));
  }

  const ModelConfig& config() const { return config_; }

  // image [B,3,S,S] in [0,1]. The selector is evaluated as `options` says.
  ModelOutput<T> forward(const Tensor<T>& image, const SelectorOptions& options = {}) {
    return forward_impl(image, [&] { return selector->forward(options); });
  }
  // Sample mode with explicit Gumbel uniforms U [J,K].
  ModelOutput<T> forward_with_uniforms(const Tensor<T>& image, const Tensor<T>& uniforms, double temperature) {
    return forward_impl(image, [&] { return selector->forward_with_uniforms(uniforms, temperature); });
  }

  std::shared_ptr<Backbone<T>> backbone;
  std::shared_ptr<Res2D<T>> neck_a, neck_b;
  std::shared_ptr<JointGroupSelector<T>> selector;
  std::vector<std::shared_ptr<GroupBranch<T>>> branches;
  std::vector<std::shared_ptr<GroupHead<T>>> heads;
  std::shared_ptr<GroupFusion<T>> fusion;  // null when K = 1 or fusion is off

 private:
  template <typename SelectorFn>
  ModelOutput<T> forward_impl(const Tensor<T>& image, SelectorFn&& select) {
    const ModelConfig& c = config_;
    ops::detail::check_shape("LearnableGroupsModel", "image", image, Shape{image.size(0), 3, c.input_size, c.input_size});
    ModelOutput<T> out;
    const auto bb = backbone->forward(image);
    out.heatmaps = bb.heatmaps;
    // Heatmaps first, then features (the reference's concatenation order).
    const Tensor<T> shared = neck_b->forward(neck_a->forward(ops::concat<T>({bb.heatmaps, bb.features}, 1)));
    std::vector<Tensor<T>> feats;
    for (auto& b : branches) feats.push_back(b->forward(shared));
    if (fusion) feats = fusion->forward(feats);
    std::vector<Tensor<T>> stacked;
    for (size_t k = 0; k < heads.size(); ++k) {
      out.groups.push_back(heads[k]->forward(feats[k]));
      stacked.push_back(ops::reshape(out.groups.back(), {image.size(0), 1, c.num_joints, 3}));
    }
    out.selector = select();
    // uv at 1/4 resolution -> input pixels: the factor 4 of DESIGN §2.
    out.uvd = ops::group_select(out.selector, ops::concat<T>(stacked, 1), {4.0, 4.0, 1.0});
    return out;
  }

  ModelConfig config_;
};

}  // namespace nn
}  // namespace lgh
