// Module: the base of every layer and of the model. It names its parameters,
// buffers and int64 counters so that together they form the state dict, whose
// keys are the reference model's PyTorch state-dict keys (see
// nn/checkpoint_names.hpp for the one place where those names are chosen).
//
//   * parameters: learnable tensors (requires_grad), plus "frozen" ones that
//     the reference also counted as parameters (the soft-argmax grids);
//   * buffers: float state that is not learned (BN running statistics);
//   * counters: int64 state (BN num_batches_tracked), stored as I64 tensors.
//
// Each parameter carries the optimiser group it belongs to (the paper trains
// the selector θ, the fusion layers and the rest with different learning
// rates); a module's group is inherited by its children unless they set one.
//
// flatten() moves every parameter and its gradient into two flat buffers,
// ordered by group, so that Adam updates each group in one pass and a
// checkpoint writes each in one piece. Tensors held by modules stay valid: a
// flattened parameter is the same tensor, now a view of the flat buffer.
//
// to(device) moves the parameters, gradients and buffers in place (flat
// buffers included); the ops a layer calls then run on that device, where
// the device has entries for them (core/dispatch.hpp).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "lgh/autograd/node.hpp"
#include "lgh/core/tensor.hpp"

namespace lgh {
namespace nn {

// Optimiser groups of the paper (Implementation details): selector θ (lr 1e-1),
// fusion layers (1e-2) and everything else (1e-4).
enum class ParamGroup : int8_t { Inherit = -1, Backbone = 0, Selector = 1, Fusion = 2 };
constexpr int kNumParamGroups = 3;

inline const char* param_group_name(ParamGroup g) {
  switch (g) {
    case ParamGroup::Selector: return "selector";
    case ParamGroup::Fusion: return "fusion";
    case ParamGroup::Backbone: return "backbone";
    case ParamGroup::Inherit: return "inherit";
  }
  return "?";
}

template <typename T>
struct NamedParameter {
  std::string name;
  Tensor<T> tensor;
  ParamGroup group;
  bool trainable;
};

template <typename T>
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (from the constructors of subclasses) -----------------
  // A dotted name ("block.0") nests the key without an intermediate module,
  // to mirror the reference's Sequential containers.

  Tensor<T> register_parameter(const std::string& name, Tensor<T> value, bool trainable = true) {
    check_new_name(name);
    LGH_CHECK(value.defined(), "register_parameter: '" << name << "' is undefined");
    if (trainable) value.set_requires_grad(true);
    params_.push_back({name, value, trainable});
    return value;
  }

  Tensor<T> register_buffer(const std::string& name, Tensor<T> value) {
    check_new_name(name);
    buffers_.push_back({name, value});
    return value;
  }

  void register_counter(const std::string& name, int64_t* counter) {
    check_new_name(name);
    counters_.push_back({name, counter});
  }

  // An empty name registers a transparent child: its members' keys are
  // formed as if they were this module's own (a paper-named part, like one
  // group's branch, whose layers the reference keys by layer type first).
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    if (!name.empty()) check_new_name(name);
    LGH_CHECK(module != nullptr, "register_module: '" << name << "' is null");
    children_.push_back({name, module});
    module->train(training_);
    return module;
  }

  // Tags this module's parameters and those of its children (unless they set
  // their own) with an optimiser group.
  void set_param_group(ParamGroup g) { group_ = g; }

  // ---- traversal (registration order, full dotted names) -----------------

  std::vector<NamedParameter<T>> named_parameters() const {
    std::vector<NamedParameter<T>> out;
    visit("", ParamGroup::Backbone, [&](const Module& m, const std::string& prefix, ParamGroup g) {
      for (const auto& p : m.params_) out.push_back({prefix + p.name, p.tensor, g, p.trainable});
    });
    return out;
  }

  std::vector<std::pair<std::string, Tensor<T>>> named_buffers() const {
    std::vector<std::pair<std::string, Tensor<T>>> out;
    visit("", ParamGroup::Backbone, [&](const Module& m, const std::string& prefix, ParamGroup) {
      for (const auto& b : m.buffers_) out.push_back({prefix + b.first, b.second});
    });
    return out;
  }

  std::vector<std::pair<std::string, int64_t*>> named_counters() const {
    std::vector<std::pair<std::string, int64_t*>> out;
    visit("", ParamGroup::Backbone, [&](const Module& m, const std::string& prefix, ParamGroup) {
      for (const auto& c : m.counters_) out.push_back({prefix + c.first, c.second});
    });
    return out;
  }

  // Trainable parameters of one group, in registration order.
  std::vector<Tensor<T>> parameters(ParamGroup group) const {
    std::vector<Tensor<T>> out;
    for (const auto& p : named_parameters())
      if (p.trainable && p.group == group) out.push_back(p.tensor);
    return out;
  }

  std::vector<Tensor<T>> trainable_parameters() const {
    std::vector<Tensor<T>> out;
    for (const auto& p : named_parameters())
      if (p.trainable) out.push_back(p.tensor);
    return out;
  }

  // Elements of every parameter, frozen ones included (the reference's count).
  int64_t num_parameters() const {
    int64_t n = 0;
    for (const auto& p : named_parameters()) n += p.tensor.numel();
    return n;
  }

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  // ---- mode -----------------------------------------------------------------

  void train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.second->train(on);
    on_mode_change();
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Sets every trainable parameter's gradient to zero (keeping its buffer).
  void zero_grad() {
    for (auto& p : named_parameters())
      if (p.trainable) p.tensor.zero_grad();
  }

  // ---- device -------------------------------------------------------------

  // Moves every parameter, parameter gradient and buffer to `device`, in
  // place: each storage behind them moves once (Storage::move_to), so the
  // module's tensors stay the same tensors (an optimiser's parameter list
  // follows), and flat buffers (flatten()) stay flat, with the parameters
  // and gradients still views of them. The int64 counters stay on the host.
  // Caches derived from the parameters (folded BN) are dropped.
  void to(Device device) {
    std::unordered_set<const Storage*> moved;
    auto move = [&](const Tensor<T>& t) {
      if (t.defined() && moved.insert(t.storage().get()).second) t.storage()->move_to(device);
    };
    for (const auto& p : named_parameters()) {
      move(p.tensor);
      move(p.tensor.grad());
    }
    for (const auto& b : named_buffers()) move(b.second);
    parameters_changed();
  }

  // The device of the first parameter (or buffer); the CPU for a module
  // without tensors.
  Device device() const {
    for (const auto& p : named_parameters()) return p.tensor.device();
    for (const auto& b : named_buffers()) return b.second.device();
    return Device::cpu();
  }

  // Called after parameters changed outside autograd (loading, an optimiser
  // step): modules that cache derived data (e.g. folded BN) drop it.
  void parameters_changed() {
    for (auto& c : children_) c.second->parameters_changed();
    on_parameters_changed();
  }

 protected:
  virtual void on_mode_change() {}
  virtual void on_parameters_changed() {}

 private:
  struct Param {
    std::string name;
    Tensor<T> tensor;
    bool trainable;
  };

  void check_new_name(const std::string& name) const {
    LGH_CHECK(!name.empty() && name.front() != '.' && name.back() != '.',
              "module member name '" << name << "' is not a valid key component");
    auto taken = [&](const std::string& n) {
      for (const auto& p : params_) if (p.name == n) return true;
      for (const auto& b : buffers_) if (b.first == n) return true;
      for (const auto& c : counters_) if (c.first == n) return true;
      for (const auto& c : children_) if (c.first == n) return true;
      return false;
    };
    LGH_CHECK(!taken(name), "module member '" << name << "' registered twice");
  }

  template <typename F>
  void visit(const std::string& prefix, ParamGroup inherited, F&& f) const {
    const ParamGroup g = group_ == ParamGroup::Inherit ? inherited : group_;
    f(*this, prefix, g);
    for (const auto& c : children_) c.second->visit(c.first.empty() ? prefix : prefix + c.first + ".", g, f);
  }

  std::vector<Param> params_;
  std::vector<std::pair<std::string, Tensor<T>>> buffers_;
  std::vector<std::pair<std::string, int64_t*>> counters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  ParamGroup group_ = ParamGroup::Inherit;
  bool training_ = true;
};

// ---- flat parameter storage -------------------------------------------------------

// Where flatten() put things: one flat buffer for the values and one for the
// gradients of the trainable parameters, each ordered by group (backbone,
// selector, fusion); frozen parameters keep their own storage.
template <typename T>
struct FlatParameters {
  Tensor<T> values;
  Tensor<T> grads;
  int64_t group_begin[kNumParamGroups + 1] = {0, 0, 0, 0};  // element ranges per group
};

namespace detail {
// Points `t` (and every handle sharing its impl) at `storage` + offset.
template <typename T>
void rebind(const Tensor<T>& t, const std::shared_ptr<Storage>& storage, int64_t offset) {
  auto* impl = t.impl();
  impl->storage = storage;
  impl->offset = offset;
  impl->strides = impl->shape.contiguous_strides();
}
}  // namespace detail

template <typename T>
FlatParameters<T> flatten(Module<T>& module) {
  auto params = module.named_parameters();
  FlatParameters<T> flat;
  int64_t total = 0;
  for (int g = 0; g < kNumParamGroups; ++g) {
    flat.group_begin[g] = total;
    for (const auto& p : params)
      if (p.trainable && static_cast<int>(p.group) == g) total += p.tensor.numel();
  }
  flat.group_begin[kNumParamGroups] = total;
  Device device = Device::cpu();
  for (const auto& p : params) device = p.tensor.device();
  flat.values = Tensor<T>::empty(Shape{total}, device);
  flat.grads = Tensor<T>::zeros(Shape{total}, device);
  int64_t offset = 0;
  for (int g = 0; g < kNumParamGroups; ++g) {
    for (auto& p : params) {
      if (!p.trainable || static_cast<int>(p.group) != g) continue;
      const int64_t n = p.tensor.numel();
      Tensor<T> dst = flat.values.detach().narrow(0, offset, offset + n);
      {
        autograd::NoGradGuard no_grad;
        dst.copy_(p.tensor.detach().contiguous().view({n}));
      }
      detail::rebind(p.tensor, flat.values.storage(), offset);
      Tensor<T> g_view = flat.grads.narrow(0, offset, offset + n).view(p.tensor.shape().vec());
      p.tensor.set_grad(g_view);
      offset += n;
    }
  }
  return flat;
}

}  // namespace nn
}  // namespace lgh
