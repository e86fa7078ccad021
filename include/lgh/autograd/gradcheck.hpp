// The gradient checker: compares the gradients backward() computes with
// central differences, in double precision.
//
//   L(x) = sum_o <w_o, f(x)_o>    with fixed random weights w_o
//   numeric dL/dx_i = (L(x + h e_i) - L(x - h e_i)) / 2h
//
// Everything runs under debug::PoisonScope: each buffer an op allocates
// starts as NaN, so a forward or backward that forgets to write an element
// shows up as NaN and fails the check. Points where the two one-sided
// differences disagree straddle a kink (ReLU at 0, a max-pool tie, an argmax
// switch); their central difference means nothing there and they are skipped
// (and counted: too many skips fail the check too).
#pragma once

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "lgh/autograd/engine.hpp"

namespace lgh {
namespace autograd {

struct GradCheckOptions {
  double step = 1e-6;       // h
  double atol = 1e-7;       // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-5;
  double kink_tol = 1e-3;   // one-sided slopes differing by more than kink_tol*(1+|slope|) mark a kink
  double max_skipped_fraction = 0.2;
  int64_t max_elements_per_input = 0;  // 0: every element; else an even sample of this many
  uint64_t seed = 0x5eed;
};

struct GradCheckResult {
  bool ok = true;
  int64_t checked = 0;
  int64_t skipped = 0;
  double max_abs_error = 0;
  double max_rel_error = 0;
  std::string message;  // the first failures, if any
};

inline std::ostream& operator<<(std::ostream& os, const GradCheckResult& r) {
  return os << (r.ok ? "ok" : "FAILED") << ": " << r.checked << " elements checked, " << r.skipped
            << " skipped at kinks, max abs error " << r.max_abs_error << ", max rel error "
            << r.max_rel_error << (r.message.empty() ? "" : "\n") << r.message;
}

using MultiFn = std::function<std::vector<TensorD>(const std::vector<TensorD>&)>;

// Checks d(outputs)/d(inputs[i]) for every i with check[i] (all when empty).
inline GradCheckResult gradcheck(const MultiFn& f, const std::vector<TensorD>& inputs_in,
                                 const GradCheckOptions& opt = {}, std::vector<bool> check = {}) {
  if (check.empty()) check.assign(inputs_in.size(), true);
  LGH_CHECK(check.size() == inputs_in.size(), "gradcheck: " << check.size() << " flags for "
                                                            << inputs_in.size() << " inputs");
  debug::PoisonScope poison;
  EnableGradGuard grad_on;

  // Fresh leaves, so the caller's tensors are never touched.
  std::vector<TensorD> inputs;
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    TensorD x = inputs_in[i].defined() ? inputs_in[i].detach().clone() : TensorD();
    if (x.defined() && check[i]) x.set_requires_grad(true);
    inputs.push_back(x);
  }

  std::vector<TensorD> outputs = f(inputs);
  std::vector<TensorD> weights;
  PhiloxEngine rng(opt.seed, 7);
  for (const TensorD& o : outputs) weights.push_back(TensorD::uniform(o.shape(), -1.0, 1.0, rng));

  auto objective = [&](const std::vector<TensorD>& outs) {
    double sum = 0;
    for (size_t o = 0; o < outs.size(); ++o) {
      const std::vector<double> v = outs[o].to_vector();
      const std::vector<double> w = weights[o].to_vector();
      for (size_t i = 0; i < v.size(); ++i) sum += v[i] * w[i];
    }
    return sum;
  };

  GradCheckResult result;
  std::ostringstream msg;
  int failures = 0;
  auto fail = [&](const std::string& what) {
    result.ok = false;
    if (failures++ < 8) msg << what << "\n";
  };

  const double base = objective(outputs);
  if (!std::isfinite(base)) fail("forward produced a non-finite value (an output element never written?)");

  {
    std::vector<TensorD> roots, grads;
    for (size_t o = 0; o < outputs.size(); ++o)
      if (outputs[o].requires_grad()) {
        roots.push_back(outputs[o]);
        grads.push_back(weights[o]);
      }
    if (!roots.empty()) backward(roots, grads);
  }

  int64_t considered = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!check[i] || !inputs[i].defined()) continue;
    TensorD x = inputs[i];
    TensorD g = x.grad();
    const int64_t n = x.numel();
    std::vector<double> analytic = g.defined() ? g.to_vector() : std::vector<double>(size_t(n), 0.0);

    std::vector<int64_t> elements;
    if (opt.max_elements_per_input > 0 && n > opt.max_elements_per_input) {
      for (int64_t k = 0; k < opt.max_elements_per_input; ++k)
        elements.push_back(k * n / opt.max_elements_per_input);
    } else {
      for (int64_t k = 0; k < n; ++k) elements.push_back(k);
    }

    double* p = x.data();  // inputs are fresh contiguous clones
    for (int64_t e : elements) {
      ++considered;
      const double orig = p[e];
      const double h = opt.step * std::max(1.0, std::fabs(orig));
      double lp, lm;
      {
        NoGradGuard no_grad;
        p[e] = orig + h;
        lp = objective(f(inputs));
        p[e] = orig - h;
        lm = objective(f(inputs));
        p[e] = orig;
      }
      const double numeric = (lp - lm) / (2 * h);
      const double fwd = (lp - base) / h, bwd = (base - lm) / h;
      const double a = analytic[static_cast<size_t>(e)];
      if (!std::isfinite(a)) {
        std::ostringstream s;
        s << "input " << i << " element " << e << ": analytic gradient is " << a
          << " (a gradient element never written?)";
        fail(s.str());
        continue;
      }
      if (std::fabs(fwd - bwd) > opt.kink_tol * (1.0 + std::fabs(numeric))) {
        ++result.skipped;
        continue;
      }
      ++result.checked;
      const double err = std::fabs(a - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      result.max_rel_error = std::max(result.max_rel_error, err / std::max(1e-12, std::fabs(numeric)));
      if (err > opt.atol + opt.rtol * std::fabs(numeric)) {
        std::ostringstream s;
        s << "input " << i << " element " << e << ": analytic " << a << " vs numeric " << numeric;
        fail(s.str());
      }
    }
  }
  if (considered > 0 && double(result.skipped) > opt.max_skipped_fraction * double(considered)) {
    std::ostringstream s;
    s << result.skipped << " of " << considered << " points skipped as kinks (limit "
      << opt.max_skipped_fraction * 100 << "%)";
    fail(s.str());
  }
  if (considered == 0) fail("nothing to check (no input flagged)");
  if (failures > 8) msg << "... and " << failures - 8 << " more\n";
  result.message = msg.str();
  return result;
}

// Single-output convenience.
inline GradCheckResult gradcheck(const std::function<TensorD(const std::vector<TensorD>&)>& f,
                                 const std::vector<TensorD>& inputs, const GradCheckOptions& opt = {},
                                 std::vector<bool> check = {}) {
  return gradcheck(MultiFn([&](const std::vector<TensorD>& x) { return std::vector<TensorD>{f(x)}; }),
                   inputs, opt, std::move(check));
}

}  // namespace autograd
}  // namespace lgh
