// Schedules over the training step: the Gumbel-softmax temperature of the
// joint-group selector, and learning rates.
//
// Each is a small immutable value type, validated on construction, with
// `double value(int64_t step) const` for steps counted from 0. Learning-rate
// schedules also expose `factor(step)`, the multiplier of their base rate, so
// that one schedule can drive parameter groups with different base rates
// (stage 2 of the paper uses 1e-1 for θ, 1e-2 for the fusion layers and 1e-4
// for the rest): lr_group = base_group * factor(step).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <variant>

#include "lgh/core/error.hpp"

namespace lgh {
namespace optim {

namespace detail {
inline void check_step(const char* schedule, int64_t step) {
  LGH_CHECK(step >= 0, schedule << "::value: step must be >= 0, got " << step);
}
}  // namespace detail

// Temperature τ of the relaxed one-hot selector (Eq. 8, S̃ = softmax((θ + g)/τ)).
// The paper starts at τ = 5 and lowers it by 0.1 every 1,000 steps to a small
// positive floor, so that the selection hardens as training proceeds:
//   τ(step) = max(floor, initial - decrement * ⌊step / interval⌋).
class TemperatureSchedule {
 public:
  TemperatureSchedule() : TemperatureSchedule(5.0, 0.1, 1000, 0.1) {}
  TemperatureSchedule(double initial, double decrement, int64_t interval, double floor)
      : initial_(initial), decrement_(decrement), interval_(interval), floor_(floor) {
    // τ divides the logits: it must stay strictly positive.
    LGH_CHECK(std::isfinite(floor) && floor > 0, "TemperatureSchedule: floor must be finite and > 0, got " << floor);
    LGH_CHECK(std::isfinite(initial) && initial >= floor,
              "TemperatureSchedule: initial temperature must be finite and >= the floor " << floor << ", got "
                                                                                          << initial);
    LGH_CHECK(std::isfinite(decrement) && decrement >= 0,
              "TemperatureSchedule: decrement must be finite and >= 0, got " << decrement);
    LGH_CHECK(interval >= 1, "TemperatureSchedule: interval must be >= 1 step, got " << interval);
  }

  double value(int64_t step) const {
    detail::check_step("TemperatureSchedule", step);
    const double drops = static_cast<double>(step / interval_);
    return std::max(floor_, initial_ - decrement_ * drops);
  }

  double initial() const { return initial_; }
  double decrement() const { return decrement_; }
  int64_t interval() const { return interval_; }
  double floor() const { return floor_; }

 private:
  double initial_, decrement_;
  int64_t interval_;
  double floor_;
};

// lr(step) = base_lr.
class ConstantLR {
 public:
  explicit ConstantLR(double base_lr) : base_lr_(base_lr) {
    LGH_CHECK(std::isfinite(base_lr) && base_lr >= 0, "ConstantLR: base_lr must be finite and >= 0, got " << base_lr);
  }
  double factor(int64_t step) const {
    detail::check_step("ConstantLR", step);
    return 1.0;
  }
  double value(int64_t step) const { return base_lr_ * factor(step); }
  double base_lr() const { return base_lr_; }

 private:
  double base_lr_;
};

// lr(step) = base_lr * gamma^⌊step / step_size⌋ (PyTorch's StepLR).
class StepDecayLR {
 public:
  StepDecayLR(double base_lr, double gamma, int64_t step_size)
      : base_lr_(base_lr), gamma_(gamma), step_size_(step_size) {
    LGH_CHECK(std::isfinite(base_lr) && base_lr >= 0, "StepDecayLR: base_lr must be finite and >= 0, got " << base_lr);
    LGH_CHECK(std::isfinite(gamma) && gamma > 0, "StepDecayLR: gamma must be finite and > 0, got " << gamma);
    LGH_CHECK(step_size >= 1, "StepDecayLR: step_size must be >= 1 step, got " << step_size);
  }
  double factor(int64_t step) const {
    detail::check_step("StepDecayLR", step);
    return std::pow(gamma_, static_cast<double>(step / step_size_));
  }
  double value(int64_t step) const { return base_lr_ * factor(step); }
  double base_lr() const { return base_lr_; }
  double gamma() const { return gamma_; }
  int64_t step_size() const { return step_size_; }

 private:
  double base_lr_, gamma_;
  int64_t step_size_;
};

// Linear warm-up then cosine decay:
//   step <  warmup:          factor = (step + 1) / warmup      (reaches 1 at step warmup - 1)
//   warmup <= step < total:  factor = min + (1 - min) * (1 + cos(π p)) / 2,
//                            p = (step - warmup) / (total - warmup)
//   step >= total:           factor = min
// where min = min_factor, the final rate as a fraction of base_lr.
class WarmupCosineLR {
 public:
  WarmupCosineLR(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_factor = 0.0)
      : base_lr_(base_lr), warmup_(warmup_steps), total_(total_steps), min_factor_(min_factor) {
    LGH_CHECK(std::isfinite(base_lr) && base_lr >= 0,
              "WarmupCosineLR: base_lr must be finite and >= 0, got " << base_lr);
    LGH_CHECK(warmup_steps >= 0, "WarmupCosineLR: warmup_steps must be >= 0, got " << warmup_steps);
    LGH_CHECK(total_steps > warmup_steps, "WarmupCosineLR: total_steps must exceed warmup_steps ("
                                              << warmup_steps << "), got " << total_steps);
    LGH_CHECK(min_factor >= 0 && min_factor <= 1,
              "WarmupCosineLR: min_factor must be in [0, 1], got " << min_factor);
  }
  double factor(int64_t step) const {
    detail::check_step("WarmupCosineLR", step);
    if (step < warmup_) return static_cast<double>(step + 1) / static_cast<double>(warmup_);
    if (step >= total_) return min_factor_;
    const double pi = 3.14159265358979323846;
    const double p = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
    return min_factor_ + (1.0 - min_factor_) * 0.5 * (1.0 + std::cos(pi * p));
  }
  double value(int64_t step) const { return base_lr_ * factor(step); }
  double base_lr() const { return base_lr_; }
  int64_t warmup_steps() const { return warmup_; }
  int64_t total_steps() const { return total_; }
  double min_factor() const { return min_factor_; }

 private:
  double base_lr_;
  int64_t warmup_, total_;
  double min_factor_;
};

// Any of the learning-rate schedules, as one value type (for configs and the
// training loop).
class LrSchedule {
 public:
  using Variant = std::variant<ConstantLR, StepDecayLR, WarmupCosineLR>;

  LrSchedule() : s_(ConstantLR(1e-3)) {}
  LrSchedule(ConstantLR s) : s_(std::move(s)) {}      // NOLINT: implicit by design
  LrSchedule(StepDecayLR s) : s_(std::move(s)) {}     // NOLINT
  LrSchedule(WarmupCosineLR s) : s_(std::move(s)) {}  // NOLINT

  double value(int64_t step) const {
    return std::visit([step](const auto& s) { return s.value(step); }, s_);
  }
  double factor(int64_t step) const {
    return std::visit([step](const auto& s) { return s.factor(step); }, s_);
  }
  double base_lr() const {
    return std::visit([](const auto& s) { return s.base_lr(); }, s_);
  }
  const Variant& variant() const { return s_; }

 private:
  Variant s_;
};

}  // namespace optim
}  // namespace lgh
