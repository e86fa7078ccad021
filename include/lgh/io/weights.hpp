// Model weights in safetensors (DESIGN.md §3).
//
// A weights file holds every parameter, buffer and counter of the model
// under the reference's PyTorch state-dict keys (F32; counters I64), and the
// model config as JSON in __metadata__["lgh.config"]. A file without that
// metadata (a plain dump of the authors' state dict) loads with the config
// inferred from the tensor shapes.
#pragma once

#include <cmath>
#include <memory>
#include <sstream>

#include "lgh/io/safetensors.hpp"
#include "lgh/nn/model.hpp"

namespace lgh {
namespace io {

inline const std::string kConfigMetadataKey = "lgh.config";
// The selector temperature τ a model was trained to (Eq. 8), written by
// training and read by inference as the default τ of the soft and sampled
// selectors.
inline const std::string kTemperatureMetadataKey = "lgh.tau";

// ---- state dicts of any module ---------------------------------------------------

// Adds every parameter, buffer and counter of `module` to `writer`, named
// prefix + key, parameters and buffers as `store_as` (F32 by default).
template <typename T>
void add_state(SafetensorsWriter& writer, const nn::Module<T>& module, const std::string& prefix = "",
               DType store_as = DType::F32) {
  for (const auto& p : module.named_parameters()) writer.add(prefix + p.name, p.tensor.detach(), store_as);
  for (const auto& b : module.named_buffers()) writer.add(prefix + b.first, b.second, store_as);
  for (const auto& c : module.named_counters()) writer.add(prefix + c.first, Tensor<int64_t>::scalar(*c.second));
}

// Copies the tensors named prefix + key from `file` into `module`. Every key
// of the module must be present with its shape; with `strict`, the file may
// hold no other tensor under `prefix`. Errors name the tensor and both shapes
// (all problems are listed, not just the first).
template <typename T>
void load_state(nn::Module<T>& module, const SafetensorsReader& file, const std::string& prefix = "", bool strict = true) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  auto check = [&](const std::string& key, const Shape& shape) {
    expected.insert(prefix + key);
    if (!file.contains(prefix + key)) {
      problems.push_back("missing tensor '" + prefix + key + "' (the model expects shape " + shape.str() + ")");
      return false;
    }
    const Shape& found = file.record(prefix + key).shape;
    if (found != shape) {
      problems.push_back("tensor '" + prefix + key + "' has shape " + found.str() + " in the file, the model expects " +
                         shape.str());
      return false;
    }
    return true;
  };
  const auto params = module.named_parameters();
  const auto buffers = module.named_buffers();
  const auto counters = module.named_counters();
  for (const auto& p : params) check(p.name, p.tensor.shape());
  for (const auto& b : buffers) check(b.first, b.second.shape());
  for (const auto& c : counters) {
    expected.insert(prefix + c.first);
    if (!file.contains(prefix + c.first))
      problems.push_back("missing tensor '" + prefix + c.first + "' (the model expects an int64 scalar)");
    else if (file.record(prefix + c.first).shape.numel() != 1)
      problems.push_back("tensor '" + prefix + c.first + "' has shape " + file.record(prefix + c.first).shape.str() +
                         " in the file, the model expects a scalar");
  }
  if (strict)
    for (const std::string& name : file.names())
      if (name.compare(0, prefix.size(), prefix) == 0 && !expected.count(name))
        problems.push_back("unexpected tensor '" + name + "' of shape " + file.record(name).shape.str() +
                           " (not part of this model)");
  if (!problems.empty()) {
    std::ostringstream msg;
    msg << "weights file '" << file.path() << "' does not fit the model: " << problems.front();
    for (size_t i = 1; i < std::min<size_t>(problems.size(), 6); ++i) msg << "; " << problems[i];
    if (problems.size() > 6) msg << "; and " << problems.size() - 6 << " more";
    LGH_FAIL(msg.str());
  }
  autograd::NoGradGuard no_grad;
  for (const auto& p : params) p.tensor.detach().copy_(file.load<T>(prefix + p.name));
  for (const auto& b : buffers) Tensor<T>(b.second).copy_(file.load<T>(prefix + b.first));
  for (const auto& c : counters) *c.second = file.load<int64_t>(prefix + c.first).data()[0];
  module.parameters_changed();
}

// ---- the model --------------------------------------------------------------------

namespace detail {
inline int64_t dim_of(const SafetensorsReader& f, const std::string& key, int axis) {
  LGH_CHECK(f.contains(key), "weights file '" << f.path() << "' has no model config in its metadata and no tensor '"
                                               << key << "' to infer it from");
  const Shape& s = f.record(key).shape;
  LGH_CHECK(axis < s.ndim(), "weights file '" << f.path() << "': tensor '" << key << "' has shape " << s.str()
                                              << ", expected at least " << axis + 1 << " dimensions");
  return s[axis];
}
}  // namespace detail

// The config of a state dict from its shapes (K from meta_S.weight, fusion
// from nddr_layer0.*, S from wx, F, P0, P1 and the hourglass from their weights).
inline nn::ModelConfig infer_config(const SafetensorsReader& f) {
  using detail::dim_of;
  nn::ModelConfig c;
  c.num_joints = static_cast<int>(dim_of(f, nn::names::kSelector + ".weight", 0));
  c.num_groups = static_cast<int>(dim_of(f, nn::names::kSelector + ".weight", 1));
  c.fusion = f.contains(nn::names::group_key(nn::names::kFusion, 0) + ".0.weight");
  c.input_size = 4 * dim_of(f, nn::names::group_key(nn::names::kSoftArgmax, 0) + ".wx", 0);
  c.features = dim_of(f, "backbone.r5.conv3.weight", 0);
  c.p0 = dim_of(f, nn::names::group_key(nn::names::kBranchConv0, 0) + ".block.0.weight", 0);
  c.p1 = dim_of(f, nn::names::group_key(nn::names::kBranchConv1, 0) + ".res_branch.0.weight", 0);
  // Depth: the number of nested levels down to the one holding low2_.
  const std::string top = "backbone." + nn::names::kHourglass + ".";
  int depth = 0;
  for (std::string p = top;; p += nn::names::kHourglassInner + ".") {
    ++depth;
    bool inner = false, bottom = false;
    for (const std::string& n : f.names()) {
      if (n.compare(0, p.size() + nn::names::kHourglassInner.size() + 1, p + nn::names::kHourglassInner + ".") == 0) inner = true;
      if (n.compare(0, p.size() + nn::names::kHourglassBottom.size() + 1, p + nn::names::kHourglassBottom + ".") == 0) bottom = true;
    }
    if (!inner) {
      LGH_CHECK(bottom, "weights file '" << f.path() << "': cannot infer the hourglass depth (no '" << p
                                         << nn::names::kHourglassBottom << ".*' tensors)");
      break;
    }
    LGH_CHECK(depth < 16, "weights file '" << f.path() << "': hourglass nesting deeper than 16 levels");
  }
  c.hourglass_depth = depth;
  int modules = 0;
  while (f.contains(top + nn::names::kHourglassUp + "." + std::to_string(modules) + ".conv1.weight")) ++modules;
  c.hourglass_modules = modules;
  try {
    c.validate();
  } catch (const Error& e) {
    LGH_FAIL("weights file '" << f.path() << "': the config inferred from its shapes is invalid: " << e.what());
  }
  return c;
}

// The config stored in the file's metadata, else the one inferred from shapes.
inline nn::ModelConfig read_config(const SafetensorsReader& f) {
  const auto& meta = f.metadata();
  auto it = meta.find(kConfigMetadataKey);
  if (it == meta.end()) return infer_config(f);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    LGH_FAIL("weights file '" << f.path() << "': metadata '" << kConfigMetadataKey << "' is not valid JSON: " << e.what());
  }
  try {
    return nn::ModelConfig::from_json(j);
  } catch (const Error& e) {
    LGH_FAIL("weights file '" << f.path() << "': metadata '" << kConfigMetadataKey << "': " << e.what());
  }
}

// τ from the file's metadata (kTemperatureMetadataKey), else `fallback`.
inline double read_temperature(const SafetensorsReader& f, double fallback) {
  auto it = f.metadata().find(kTemperatureMetadataKey);
  if (it == f.metadata().end()) return fallback;
  double t = 0;
  try {
    t = std::stod(it->second);
  } catch (const std::exception&) {
    t = 0;
  }
  LGH_CHECK(t > 0 && std::isfinite(t), "weights file '" << f.path() << "': metadata '" << kTemperatureMetadataKey
                                                         << "' = '" << it->second << "' is not a positive number");
  return t;
}

inline std::string format_temperature(double tau) { return std::to_string(tau); }

template <typename T>
void save_weights(const nn::LearnableGroupsModel<T>& model, const std::string& path,
                  const std::map<std::string, std::string>& extra_metadata = {}) {
  SafetensorsWriter w;
  add_state(w, model);
  w.set_metadata(kConfigMetadataKey, model.config().to_json().dump());
  for (const auto& kv : extra_metadata) w.set_metadata(kv.first, kv.second);
  w.write(path);
}

template <typename T>
void load_weights(nn::LearnableGroupsModel<T>& model, const SafetensorsReader& file) {
  load_state(model, file);
  for (size_t k = 0; k < model.heads.size(); ++k)
    model.heads[k]->soft_argmax->check_grids("weights file '" + file.path() + "': " +
                                             nn::names::group_key(nn::names::kSoftArgmax, static_cast<int>(k)));
}

// Builds the model the file describes and loads it.
template <typename T>
std::unique_ptr<nn::LearnableGroupsModel<T>> load_model(const std::string& path) {
  SafetensorsReader file(path);
  auto model = std::make_unique<nn::LearnableGroupsModel<T>>(read_config(file));
  load_weights(*model, file);
  return model;
}

}  // namespace io
}  // namespace lgh
