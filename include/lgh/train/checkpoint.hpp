// Training checkpoints: everything a run needs to continue exactly, in one
// safetensors file written atomically (DESIGN.md §3).
//
//   tensors   "model.<key>"  every parameter, buffer and counter of the model
//             "optim.<name>" the Adam state of the current stage
//                            (optim::Adam::state_dict: moments and step counts)
//   metadata  kTrainStateKey: JSON {step, stage, stage_step, tau, seed,
//             loader_batch, best, optimizer_lr, run}: optimizer steps done,
//             the stage whose optimizer is saved and its steps, τ, the seed
//             of the Gumbel noise and of the loader, the loader's next global
//             batch, the best held-out figure so far, and the run's settings
//             (checked on resume: a run continues only under the settings
//             it started with)
//             io::kConfigMetadataKey, io::kTemperatureMetadataKey as in any
//             weights file.
// The random state needs no more than this: the Gumbel noise of step s is the
// counter-based stream (seed, s), and the loader's batches and their
// augmentation are functions of (seed, batch index).
//
// One file holds all of it, so a process killed at any point leaves either
// the previous checkpoint or the new one, never a mix (io::AtomicFile: temp
// file, fsync, rename).
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "lgh/io/weights.hpp"
#include "lgh/optim/adam.hpp"
#include "lgh/train/step.hpp"

namespace lgh {
namespace train {

inline const std::string kTrainStateKey = "lgh.train_state";
inline const std::string kStepMetadataKey = "lgh.step";
inline const std::string kModelPrefix = "model.";
inline const std::string kOptimizerPrefix = "optim.";

struct TrainState {
  int64_t step = 0;          // optimizer steps done = batches consumed
  Stage stage = Stage::Full;
  int64_t stage_step = 0;    // steps done in `stage`
  double tau = 0;            // τ of the last step (stage 2)
  uint64_t seed = 0;
  int64_t loader_batch = 0;  // the next global batch of the training loader
  double best = std::numeric_limits<double>::infinity();  // best held-out figure (lower is better)
  int64_t best_step = -1;
  Stage best_stage = Stage::Full;
  nlohmann::json run = nlohmann::json::object();  // the run's settings

  nlohmann::json to_json() const {
    return {{"step", step},
            {"stage", stage_name(stage)},
            {"stage_step", stage_step},
            {"tau", tau},
            {"seed", std::to_string(seed)},  // as text: JSON numbers lose 64-bit integers in other readers
            {"loader_batch", loader_batch},
            {"best", std::isfinite(best) ? nlohmann::json(best) : nlohmann::json(nullptr)},
            {"best_step", best_step},
            {"best_stage", stage_name(best_stage)},
            {"run", run}};
  }

  static TrainState from_json(const nlohmann::json& j, const std::string& path) {
    TrainState s;
    try {
      s.step = j.at("step").get<int64_t>();
      s.stage = parse_stage(j.at("stage").get<std::string>());
      s.stage_step = j.at("stage_step").get<int64_t>();
      s.tau = j.at("tau").get<double>();
      s.seed = std::stoull(j.at("seed").get<std::string>());
      s.loader_batch = j.at("loader_batch").get<int64_t>();
      s.best = j.at("best").is_null() ? std::numeric_limits<double>::infinity() : j.at("best").get<double>();
      s.best_step = j.at("best_step").get<int64_t>();
      s.best_stage = parse_stage(j.at("best_stage").get<std::string>());
      s.run = j.at("run");
    } catch (const std::exception& e) {
      LGH_FAIL("checkpoint '" << path << "': metadata '" << kTrainStateKey << "' is incomplete or malformed: " << e.what());
    }
    LGH_CHECK(s.step >= 0 && s.stage_step >= 0 && s.stage_step <= s.step && s.loader_batch >= 0,
              "checkpoint '" << path << "': inconsistent step counts (step " << s.step << ", stage step "
                             << s.stage_step << ", loader batch " << s.loader_batch << ")");
    return s;
  }
};

// Writes model, optimizer and state to `path` in one atomic write, from host
// copies when they live on a device (load_checkpoint copies each tensor to
// where the model's and the optimizer's are, so a checkpoint written on one
// device resumes on another, or on the CPU). Refuses (before writing
// anything) when a parameter is not finite, so that a diverged run can never
// replace a good checkpoint.
inline void save_checkpoint(const std::string& path, const nn::LearnableGroupsModel<float>& model,
                            const optim::Adam<float>& adam, const TrainState& state) {
  for (const auto& p : model.named_parameters()) {
    // A host copy where the model lives on a device (the file is the same either way).
    const Tensor<float> t = p.tensor.detach().to(Device::cpu()).contiguous();
    for (int64_t i = 0; i < t.numel(); ++i)
      LGH_CHECK(std::isfinite(t.data()[i]), "checkpoint '" << path << "' not written: parameter '" << p.name
                                                           << "' holds a non-finite value at step " << state.step);
  }
  io::SafetensorsWriter w;
  io::add_state(w, model, kModelPrefix);
  const optim::AdamState<float> opt = adam.state_dict();
  for (const auto& t : opt.tensors) w.add(kOptimizerPrefix + t.first, t.second);
  for (const auto& t : opt.steps) w.add(kOptimizerPrefix + t.first, t.second);
  nlohmann::json lrs = nlohmann::json::object();
  for (const auto& lr : opt.learning_rates) lrs[lr.first] = lr.second;
  nlohmann::json meta = state.to_json();
  meta["optimizer_lr"] = lrs;
  w.set_metadata(kTrainStateKey, meta.dump());
  w.set_metadata(io::kConfigMetadataKey, model.config().to_json().dump());
  w.set_metadata(io::kTemperatureMetadataKey, io::format_temperature(state.tau > 0 ? state.tau : 1.0));
  w.set_metadata(kStepMetadataKey, std::to_string(state.step));
  w.write(path);
}

// The state recorded in a checkpoint (without loading its tensors).
inline TrainState read_train_state(const io::SafetensorsReader& file) {
  auto it = file.metadata().find(kTrainStateKey);
  LGH_CHECK(it != file.metadata().end(), "'" << file.path() << "' is not a training checkpoint (no metadata '"
                                             << kTrainStateKey << "')");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    LGH_FAIL("checkpoint '" << file.path() << "': metadata '" << kTrainStateKey << "' is not valid JSON: " << e.what());
  }
  return TrainState::from_json(j, file.path());
}

// Restores model and optimizer from a checkpoint; `adam` must be the
// optimizer of the checkpoint's stage over the same model. Each of the two
// is validated before it changes (names, shapes, step counts); on an error
// the run should not go on.
inline TrainState load_checkpoint(const io::SafetensorsReader& file, nn::LearnableGroupsModel<float>& model,
                                  optim::Adam<float>& adam) {
  TrainState state = read_train_state(file);
  const nn::ModelConfig config = io::read_config(file);
  LGH_CHECK(config == model.config(), "checkpoint '" << file.path() << "' holds a model with config "
                                                     << config.to_json().dump() << ", this run's is "
                                                     << model.config().to_json().dump());
  optim::AdamState<float> opt;
  nlohmann::json lrs = nlohmann::json::parse(file.metadata().at(kTrainStateKey)).value("optimizer_lr", nlohmann::json::object());
  for (const std::string& name : file.names()) {
    if (name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) != 0) continue;
    const std::string key = name.substr(kOptimizerPrefix.size());
    if (file.record(name).dtype == DType::I64)
      opt.steps.emplace_back(key, file.load<int64_t>(name));
    else
      opt.tensors.emplace_back(key, file.load<float>(name));
  }
  for (auto it = lrs.begin(); it != lrs.end(); ++it) opt.learning_rates.emplace_back(it.key(), it.value().get<double>());
  try {
    adam.load_state_dict(opt);  // validates every entry before changing anything
  } catch (const Error& e) {
    LGH_FAIL("checkpoint '" << file.path() << "': optimizer state does not fit this run: " << e.what());
  }
  io::load_state(model, file, kModelPrefix);
  return state;
}

}  // namespace train
}  // namespace lgh
