// Adam with parameter groups: the optimiser of the paper's training stage 2,
// which gives the group selector θ, the fusion layers and the rest of the
// network their own learning rates (1e-1, 1e-2 and 1e-4).
//
// Semantics are PyTorch 1.13's torch.optim.Adam (see adam_math.hpp for the
// update itself):
//   * a parameter whose gradient is undefined is skipped, and its step count
//     does not advance (bias corrections are per parameter);
//   * zero_grad() zeroes the gradients in place by default (PyTorch 1.13's
//     set_to_none=False), which keeps gradient buffers that are views of one
//     flat buffer attached;
//   * step counts are int64 here; PyTorch keeps them in a float32 tensor, which
//     agrees up to 2^24 steps.
//
// The whole step is one pass: every (parameter, gradient, state) triple
// becomes a run of elements, runs that continue each other in memory with the
// same step constants are merged (parameters and gradients that are views of
// one flat buffer become a single run, since the state of a group is also
// allocated flat), and the AdamUpdate entry runs them all at once: on the
// CPU parallel_for splits the concatenation of all runs across threads, so
// hundreds of small tensors cost one parallel loop; on a device it is one
// multi-tensor launch. The parameters, their gradients and the state must be
// on one device (Adam::to moves the state).
//
// Checkpoints: state_dict() snapshots the state as named tensors, and
// load_state_dict() validates and restores it, so that a resumed run repeats
// an uninterrupted one bit for bit. The names use the group's name (or its
// index when unnamed) and the parameter's index within the group:
//   "<group>.<i>.exp_avg", "<group>.<i>.exp_avg_sq",
//   "<group>.<i>.max_exp_avg_sq" (AMSGrad groups only)      -> Tensor<T>
//   "<group>.step" (int64 [num_params], updates per parameter) -> Tensor<int64_t>
//   "<group>.lr"                                               -> double
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "lgh/autograd/node.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/optim/adam_math.hpp"

namespace lgh {
namespace optim {

// A set of parameters sharing hyper-parameters. `name` identifies the group
// in error messages and checkpoint entries (its index is used when empty).
template <typename T>
struct ParamGroup {
  std::string name;
  std::vector<Tensor<T>> params;
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // L2 penalty added to the gradient (PyTorch's Adam)
  bool amsgrad = false;
};

// A snapshot of an Adam optimiser's state (see the naming at the top).
template <typename T>
struct AdamState {
  std::vector<std::pair<std::string, Tensor<T>>> tensors;
  std::vector<std::pair<std::string, Tensor<int64_t>>> steps;
  std::vector<std::pair<std::string, double>> learning_rates;
};

// A contiguous run of elements updated with one set of step constants
// (pointers into memory of the optimiser's device).
template <typename T>
struct AdamRun {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;  // null unless AMSGrad
  int64_t n;
  int scalars;        // index into the step's AdamScalars
};

// ---- CPU kernel ---------------------------------------------------------------------
namespace cpu {

// The Adam update of every run (adam_math.hpp), the concatenation of all runs
// split evenly across threads.
template <typename T>
void adam_update_runs(const std::vector<AdamRun<T>>& runs, const std::vector<AdamScalars<T>>& scalars, Device) {
  if (runs.empty()) return;
  constexpr int64_t kGrain = int64_t(1) << 14;  // elements per thread below which a step stays on one thread
  std::vector<int64_t> start(runs.size() + 1, 0);
  for (size_t k = 0; k < runs.size(); ++k) start[k + 1] = start[k] + runs[k].n;
  parallel_for(0, start.back(), kGrain, [&](int64_t lo, int64_t hi) {
    size_t k = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
    while (lo < hi) {
      const AdamRun<T>& r = runs[k];
      const int64_t off = lo - start[k];
      const int64_t n = std::min(hi, start[k + 1]) - lo;
      adam_update_range(r.param + off, r.grad + off, r.exp_avg + off, r.exp_avg_sq + off,
                        r.max_exp_avg_sq ? r.max_exp_avg_sq + off : nullptr, n,
                        scalars[static_cast<size_t>(r.scalars)]);
      lo += n;
      ++k;
    }
  });
}

}  // namespace cpu

// ---- entry ------------------------------------------------------------------------
namespace entries {

// One step over all runs of one device (a fused multi-tensor update on a GPU).
struct AdamUpdate {
  static constexpr const char* name = "adam_update";
  template <typename T>
  using Fn = void (*)(const std::vector<AdamRun<T>>& runs, const std::vector<AdamScalars<T>>& scalars,
                      Device device);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::adam_update_runs<T>;
};

}  // namespace entries

template <typename T>
class Adam {
  static_assert(std::is_floating_point<T>::value, "Adam: parameters must be float or double");

 public:
  // Validates the groups and allocates the (zero) state of every parameter.
  explicit Adam(std::vector<ParamGroup<T>> groups) : groups_(std::move(groups)) {
    LGH_CHECK(!groups_.empty(), "Adam: no parameter groups given");
    for (size_t gi = 0; gi < groups_.size(); ++gi) validate_group(gi);
    check_unique_names();
    check_no_shared_parameters();
    state_.resize(groups_.size());
    for (size_t gi = 0; gi < groups_.size(); ++gi) allocate_state(gi);
  }

  Adam(const Adam&) = delete;  // the state is large and owned: no silent copies
  Adam& operator=(const Adam&) = delete;
  Adam(Adam&&) = default;
  Adam& operator=(Adam&&) = default;

  // ---- groups and hyper-parameters -------------------------------------

  size_t num_groups() const { return groups_.size(); }
  const ParamGroup<T>& group(size_t g) const { return groups_[checked_group(g, "group")]; }
  const std::vector<ParamGroup<T>>& groups() const { return groups_; }

  // Index of the group called `name`; throws when there is none.
  size_t group_index(const std::string& name) const {
    for (size_t g = 0; g < groups_.size(); ++g)
      if (groups_[g].name == name) return g;
    std::string known;
    for (size_t g = 0; g < groups_.size(); ++g) known += (g ? ", '" : "'") + key(g) + "'";
    LGH_FAIL("Adam: no parameter group named '" << name << "' (groups: " << known << ")");
  }

  double lr(size_t g) const { return groups_[checked_group(g, "lr")].lr; }

  // Sets a group's learning rate (schedules call this before each step).
  void set_lr(size_t g, double lr) {
    checked_group(g, "set_lr");
    LGH_CHECK(std::isfinite(lr) && lr >= 0,
              "Adam::set_lr: learning rate of group '" << key(g) << "' must be finite and >= 0, got " << lr);
    groups_[g].lr = lr;
  }

  // ---- per-parameter state (read-only views of the live state) ----------

  int64_t step_count(size_t g, size_t i) const { return param_state(g, i, "step_count").step; }
  const Tensor<T>& exp_avg(size_t g, size_t i) const { return param_state(g, i, "exp_avg").exp_avg; }
  const Tensor<T>& exp_avg_sq(size_t g, size_t i) const { return param_state(g, i, "exp_avg_sq").exp_avg_sq; }
  // Undefined unless the group uses AMSGrad.
  const Tensor<T>& max_exp_avg_sq(size_t g, size_t i) const {
    return param_state(g, i, "max_exp_avg_sq").max_exp_avg_sq;
  }

  // ---- the update ------------------------------------------------------

  // One Adam step on every parameter that has a gradient.
  void step() {
    autograd::NoGradGuard no_grad;
    std::vector<AdamRun<T>> runs;
    std::vector<AdamScalars<T>> scalars;
    std::vector<Tensor<T>> keep_alive;                         // contiguous copies of strided inputs
    std::vector<std::pair<Tensor<T>, Tensor<T>>> write_back;  // (strided param, its updated copy)

    // Check every gradient before changing anything, so that a bad gradient
    // leaves the optimiser and the parameters as they were.
    Device device;
    bool have_device = false;
    for (size_t g = 0; g < groups_.size(); ++g)
      for (size_t i = 0; i < groups_[g].params.size(); ++i) check_grad(g, i, device, have_device);
    if (have_device) (void)dispatch::entry<entries::AdamUpdate, T>(device);  // throws before anything changes

    for (size_t g = 0; g < groups_.size(); ++g) {
      const ParamGroup<T>& grp = groups_[g];
      std::vector<std::pair<int64_t, int>> scalars_of_step;  // usually one entry per group
      for (size_t i = 0; i < grp.params.size(); ++i) {
        const Tensor<T>& p = grp.params[i];
        const Tensor<T> grad = p.grad();
        if (!grad.defined()) continue;  // PyTorch: no gradient, no update, no step
        ParamState& st = state_[g][i];
        ++st.step;
        int sc = -1;
        for (const auto& e : scalars_of_step)
          if (e.first == st.step) sc = e.second;
        if (sc < 0) {
          sc = static_cast<int>(scalars.size());
          scalars.push_back(adam_step_scalars<T>(grp.lr, grp.beta1, grp.beta2, grp.eps, grp.weight_decay, st.step));
          scalars_of_step.emplace_back(st.step, sc);
        }
        if (p.numel() == 0) continue;

        Tensor<T> pc = p, gc = grad;
        if (!p.is_contiguous()) {
          pc = p.clone();
          keep_alive.push_back(pc);
          write_back.emplace_back(p, pc);
        }
        if (!grad.is_contiguous()) {
          gc = grad.contiguous();
          keep_alive.push_back(gc);
        }
        add_run(runs, AdamRun<T>{pc.data(), gc.data(), st.exp_avg.data(), st.exp_avg_sq.data(),
                                 st.max_exp_avg_sq.defined() ? st.max_exp_avg_sq.data() : nullptr, p.numel(), sc});
      }
    }
    last_step_runs_ = runs.size();
    if (!runs.empty()) dispatch::call<entries::AdamUpdate, T>(device, runs, scalars, device);
    for (auto& wb : write_back) wb.first.copy_(wb.second);
  }

  // Moves the state (moments) to `device`, in place; the parameters move
  // with their module (nn::Module::to). Create the optimiser after moving
  // the model, or move both.
  void to(Device device) {
    for (auto& group : state_)
      for (ParamState& st : group)
        for (Tensor<T>* t : {&st.exp_avg, &st.exp_avg_sq, &st.max_exp_avg_sq})
          if (t->defined()) t->storage()->move_to(device);
  }

  // Number of contiguous runs the last step() was split into: 1 per group
  // when its parameters and gradients are adjacent views of flat buffers in
  // parameter order (and share a step count); one per parameter otherwise.
  size_t last_step_runs() const { return last_step_runs_; }

  // Zeroes every parameter's gradient in place (set_to_none = false), or drops
  // the gradients (set_to_none = true; the next backward allocates new ones).
  void zero_grad(bool set_to_none = false) {
    autograd::NoGradGuard no_grad;
    for (ParamGroup<T>& grp : groups_)
      for (Tensor<T>& p : grp.params) {
        if (set_to_none)
          p.set_grad(Tensor<T>());
        else
          p.zero_grad();
      }
  }

  // ---- checkpoints -----------------------------------------------------

  // A deep copy of the state, independent of later steps.
  AdamState<T> state_dict() const {
    AdamState<T> out;
    for (size_t g = 0; g < groups_.size(); ++g) {
      const size_t n = groups_[g].params.size();
      std::vector<int64_t> steps(n);
      for (size_t i = 0; i < n; ++i) {
        const ParamState& st = state_[g][i];
        steps[i] = st.step;
        out.tensors.emplace_back(entry_name(g, i, "exp_avg"), st.exp_avg.clone());
        out.tensors.emplace_back(entry_name(g, i, "exp_avg_sq"), st.exp_avg_sq.clone());
        if (groups_[g].amsgrad) out.tensors.emplace_back(entry_name(g, i, "max_exp_avg_sq"), st.max_exp_avg_sq.clone());
      }
      out.steps.emplace_back(key(g) + ".step",
                             Tensor<int64_t>::from_data(Shape{static_cast<int64_t>(n)}, steps));
      out.learning_rates.emplace_back(key(g) + ".lr", groups_[g].lr);
    }
    return out;
  }

  // Restores a state_dict() of an optimiser over the same groups (same names,
  // parameter counts and shapes). Every entry is checked before anything is
  // changed; a missing, mis-shaped, duplicated or unexpected entry throws an
  // error naming it.
  void load_state_dict(const AdamState<T>& state) {
    const char* op = "Adam::load_state_dict";
    std::map<std::string, const Tensor<T>*> tensors;
    for (const auto& e : state.tensors)
      LGH_CHECK(tensors.emplace(e.first, &e.second).second, op << ": entry '" << e.first << "' appears twice");
    std::map<std::string, const Tensor<int64_t>*> steps;
    for (const auto& e : state.steps)
      LGH_CHECK(steps.emplace(e.first, &e.second).second, op << ": entry '" << e.first << "' appears twice");
    std::map<std::string, double> lrs;
    for (const auto& e : state.learning_rates)
      LGH_CHECK(lrs.emplace(e.first, e.second).second, op << ": entry '" << e.first << "' appears twice");

    // Validate everything first.
    std::set<std::string> used;
    std::vector<std::vector<int64_t>> new_steps(groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g) {
      const ParamGroup<T>& grp = groups_[g];
      const int64_t n = static_cast<int64_t>(grp.params.size());
      for (size_t i = 0; i < grp.params.size(); ++i) {
        for (const char* kind : {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) {
          const std::string name = entry_name(g, i, kind);
          const bool wanted = grp.amsgrad || std::string(kind) != "max_exp_avg_sq";
          auto it = tensors.find(name);
          if (!wanted) {
            LGH_CHECK(it == tensors.end(), op << ": entry '" << name << "' is AMSGrad state, but group '"
                                              << key(g) << "' does not use AMSGrad");
            continue;
          }
          const Shape& expected = grp.params[i].shape();
          LGH_CHECK(it != tensors.end(), op << ": missing entry '" << name << "' (parameter " << i << " of group '"
                                            << key(g) << "', shape " << expected.str() << ")");
          LGH_CHECK(it->second->defined(), op << ": entry '" << name << "' is an undefined tensor");
          LGH_CHECK(it->second->shape() == expected, op << ": entry '" << name << "' has shape "
                                                        << it->second->shape().str() << ", expected "
                                                        << expected.str() << " (parameter " << i
                                                        << " of group '" << key(g) << "')");
          used.insert(name);
        }
      }
      const std::string step_name = key(g) + ".step";
      auto st = steps.find(step_name);
      LGH_CHECK(st != steps.end(), op << ": missing entry '" << step_name << "' (int64 [" << n
                                      << "], the step counts of group '" << key(g) << "')");
      LGH_CHECK(st->second->defined() && st->second->shape() == Shape{n},
                op << ": entry '" << step_name << "' has shape "
                   << (st->second->defined() ? st->second->shape().str() : std::string("undefined"))
                   << ", expected [" << n << "]");
      new_steps[g] = st->second->to_vector();
      for (size_t i = 0; i < new_steps[g].size(); ++i)
        LGH_CHECK(new_steps[g][i] >= 0, op << ": entry '" << step_name << "' holds a negative step count "
                                           << new_steps[g][i] << " for parameter " << i);
      const std::string lr_name = key(g) + ".lr";
      auto lr = lrs.find(lr_name);
      LGH_CHECK(lr != lrs.end(), op << ": missing entry '" << lr_name << "' (learning rate of group '" << key(g)
                                    << "')");
      LGH_CHECK(std::isfinite(lr->second) && lr->second >= 0,
                op << ": entry '" << lr_name << "' must be finite and >= 0, got " << lr->second);
    }
    for (const auto& e : tensors)
      LGH_CHECK(used.count(e.first), op << ": unexpected entry '" << e.first
                                        << "' (no such parameter state in this optimiser's groups)");
    for (const auto& e : steps) {
      bool known = false;
      for (size_t g = 0; g < groups_.size(); ++g) known = known || e.first == key(g) + ".step";
      LGH_CHECK(known, op << ": unexpected entry '" << e.first << "' (no such group)");
    }
    for (const auto& e : lrs) {
      bool known = false;
      for (size_t g = 0; g < groups_.size(); ++g) known = known || e.first == key(g) + ".lr";
      LGH_CHECK(known, op << ": unexpected entry '" << e.first << "' (no such group)");
    }

    // Then copy in place (keeping the flat state buffers).
    autograd::NoGradGuard no_grad;
    for (size_t g = 0; g < groups_.size(); ++g) {
      for (size_t i = 0; i < groups_[g].params.size(); ++i) {
        ParamState& st = state_[g][i];
        st.exp_avg.copy_(tensors.at(entry_name(g, i, "exp_avg"))->to(st.exp_avg.device()));
        st.exp_avg_sq.copy_(tensors.at(entry_name(g, i, "exp_avg_sq"))->to(st.exp_avg_sq.device()));
        if (groups_[g].amsgrad)
          st.max_exp_avg_sq.copy_(tensors.at(entry_name(g, i, "max_exp_avg_sq"))->to(st.max_exp_avg_sq.device()));
        st.step = new_steps[g][i];
      }
      groups_[g].lr = lrs.at(key(g) + ".lr");
    }
  }

 private:
  struct ParamState {
    Tensor<T> exp_avg, exp_avg_sq, max_exp_avg_sq;
    int64_t step = 0;
  };

  // The name used in messages and checkpoint entries.
  std::string key(size_t g) const { return groups_[g].name.empty() ? std::to_string(g) : groups_[g].name; }
  std::string entry_name(size_t g, size_t i, const char* kind) const {
    return key(g) + "." + std::to_string(i) + "." + kind;
  }

  size_t checked_group(size_t g, const char* what) const {
    LGH_CHECK(g < groups_.size(), "Adam::" << what << ": group index " << g << " out of range (" << groups_.size()
                                           << " groups)");
    return g;
  }
  const ParamState& param_state(size_t g, size_t i, const char* what) const {
    checked_group(g, what);
    LGH_CHECK(i < state_[g].size(), "Adam::" << what << ": parameter index " << i << " out of range (group '"
                                             << key(g) << "' has " << state_[g].size() << " parameters)");
    return state_[g][i];
  }

  void validate_group(size_t g) const {
    const ParamGroup<T>& grp = groups_[g];
    const std::string k = key(g);
    LGH_CHECK(std::isfinite(grp.lr) && grp.lr >= 0,
              "Adam: group '" << k << "': lr must be finite and >= 0, got " << grp.lr);
    LGH_CHECK(grp.beta1 >= 0 && grp.beta1 < 1, "Adam: group '" << k << "': beta1 must be in [0, 1), got " << grp.beta1);
    LGH_CHECK(grp.beta2 >= 0 && grp.beta2 < 1, "Adam: group '" << k << "': beta2 must be in [0, 1), got " << grp.beta2);
    LGH_CHECK(std::isfinite(grp.eps) && grp.eps >= 0, "Adam: group '" << k << "': eps must be finite and >= 0, got "
                                                                      << grp.eps);
    LGH_CHECK(std::isfinite(grp.weight_decay) && grp.weight_decay >= 0,
              "Adam: group '" << k << "': weight_decay must be finite and >= 0, got " << grp.weight_decay);
    for (size_t i = 0; i < grp.params.size(); ++i) {
      const Tensor<T>& p = grp.params[i];
      LGH_CHECK(p.defined(), "Adam: group '" << k << "': parameter " << i << " is an undefined tensor");
      LGH_CHECK(p.is_leaf(), "Adam: group '" << k << "': parameter " << i << " (shape " << p.shape().str()
                                             << ") is not a leaf tensor (it is the result of an operation)");
      LGH_CHECK(p.requires_grad(), "Adam: group '" << k << "': parameter " << i << " (shape " << p.shape().str()
                                                   << ") does not require grad");
    }
  }

  void check_unique_names() const {
    std::set<std::string> seen;
    for (size_t g = 0; g < groups_.size(); ++g)
      LGH_CHECK(seen.insert(key(g)).second, "Adam: two parameter groups are named '" << key(g)
                                                                                      << "' (checkpoint entries would collide)");
  }

  // No tensor may be updated twice: neither the same handle nor two views
  // whose elements overlap, within a group or across groups.
  void check_no_shared_parameters() const {
    struct Extent {
      const void* storage;
      int64_t begin, end;  // element range spanned in the storage
      size_t g, i;
    };
    std::vector<Extent> ext;
    for (size_t g = 0; g < groups_.size(); ++g)
      for (size_t i = 0; i < groups_[g].params.size(); ++i) {
        const Tensor<T>& p = groups_[g].params[i];
        if (p.numel() == 0) continue;
        int64_t span = 1;
        for (int d = 0; d < p.ndim(); ++d) span += (p.shape()[d] - 1) * std::abs(p.strides()[d]);
        ext.push_back(Extent{p.storage().get(), p.offset(), p.offset() + span, g, i});
      }
    std::sort(ext.begin(), ext.end(), [](const Extent& a, const Extent& b) {
      return a.storage != b.storage ? std::less<const void*>()(a.storage, b.storage) : a.begin < b.begin;
    });
    for (size_t k = 1; k < ext.size(); ++k) {
      const Extent& a = ext[k - 1];
      const Extent& b = ext[k];
      if (a.storage != b.storage || b.begin >= a.end) continue;
      const Tensor<T>& pa = groups_[a.g].params[a.i];
      const Tensor<T>& pb = groups_[b.g].params[b.i];
      if (pa.same(pb) || (pa.offset() == pb.offset() && pa.shape() == pb.shape() && pa.strides() == pb.strides()))
        LGH_FAIL("Adam: the same parameter (shape " << pa.shape().str() << ") is listed twice: parameter " << a.i
                                                     << " of group '" << key(a.g) << "' and parameter " << b.i
                                                     << " of group '" << key(b.g) << "'");
      LGH_FAIL("Adam: parameters share memory: parameter " << a.i << " of group '" << key(a.g) << "' (shape "
                                                           << pa.shape().str() << ") overlaps parameter " << b.i
                                                           << " of group '" << key(b.g) << "' (shape "
                                                           << pb.shape().str() << ")");
    }
  }

  // The state of a group lives in one flat buffer per kind, in parameter
  // order, so that parameters stored flat give one run per group.
  void allocate_state(size_t g) {
    const ParamGroup<T>& grp = groups_[g];
    state_[g].resize(grp.params.size());
    bool one_device = true;
    int64_t total = 0;
    for (const Tensor<T>& p : grp.params) {
      total += p.numel();
      one_device = one_device && p.device() == grp.params.front().device();
    }
    auto make = [&](Tensor<T> ParamState::*member) {
      if (one_device && !grp.params.empty()) {
        Tensor<T> flat = Tensor<T>::zeros(Shape{total}, grp.params.front().device());
        int64_t off = 0;
        for (size_t i = 0; i < grp.params.size(); ++i) {
          const Tensor<T>& p = grp.params[i];
          state_[g][i].*member = flat.narrow(0, off, off + p.numel()).view(p.shape().vec());
          off += p.numel();
        }
      } else {
        for (size_t i = 0; i < grp.params.size(); ++i)
          state_[g][i].*member = Tensor<T>::zeros(grp.params[i].shape(), grp.params[i].device());
      }
    };
    make(&ParamState::exp_avg);
    make(&ParamState::exp_avg_sq);
    if (grp.amsgrad) make(&ParamState::max_exp_avg_sq);
  }

  // `device` becomes the device of the first parameter with a gradient.
  void check_grad(size_t g, size_t i, Device& device, bool& have_device) const {
    const Tensor<T>& p = groups_[g].params[i];
    const Tensor<T> grad = p.grad();
    if (!grad.defined()) return;
    LGH_CHECK(grad.shape() == p.shape(), "Adam::step: gradient of parameter " << i << " of group '" << key(g)
                                                                             << "' has shape " << grad.shape().str()
                                                                             << ", expected " << p.shape().str());
    const ParamState& st = state_[g][i];
    LGH_CHECK(grad.device() == p.device() && st.exp_avg.device() == p.device(),
              "Adam::step: parameter " << i << " of group '" << key(g) << "' is on " << p.device().str()
                                       << " with its gradient on " << grad.device().str() << " and its state on "
                                       << st.exp_avg.device().str()
                                       << " (create the optimiser after moving the model, or call Adam::to)");
    if (!have_device) {
      device = p.device();
      have_device = true;
    }
    LGH_CHECK(p.device() == device, "Adam::step: parameter " << i << " of group '" << key(g) << "' is on "
                                                             << p.device().str() << " but others are on "
                                                             << device.str()
                                                             << " (one optimiser updates one device's parameters)");
  }

  static void add_run(std::vector<AdamRun<T>>& runs, const AdamRun<T>& r) {
    if (!runs.empty()) {
      AdamRun<T>& last = runs.back();
      const int64_t n = last.n;
      const bool adjacent = last.scalars == r.scalars && last.param + n == r.param && last.grad + n == r.grad &&
                            last.exp_avg + n == r.exp_avg && last.exp_avg_sq + n == r.exp_avg_sq &&
                            ((!last.max_exp_avg_sq && !r.max_exp_avg_sq) ||
                             (last.max_exp_avg_sq && r.max_exp_avg_sq && last.max_exp_avg_sq + n == r.max_exp_avg_sq));
      if (adjacent) {
        last.n += r.n;
        return;
      }
    }
    runs.push_back(r);
  }

  std::vector<ParamGroup<T>> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
  size_t last_step_runs_ = 0;
};

}  // namespace optim
}  // namespace lgh
