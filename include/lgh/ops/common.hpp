// Shared helpers of the op headers: argument checks with messages that name
// the op, the argument and the expected and found shapes or devices;
// broadcasting.
//
// How an op reads (see elementwise.hpp for the simplest ones):
//   * cpu::<op>_forward(...) / cpu::<op>_backward(...): the CPU kernels,
//     plain functions on tensors that are already checked, contiguous where
//     the op says so, and allocated. Backward kernels overwrite their outputs
//     (never accumulate); the autograd engine sums contributions.
//   * <Op>Forward / <Op>Backward: the entry descriptors of those kernels in
//     the dispatch registry (core/dispatch.hpp): name, signature, CPU entry.
//     Other devices register their own function of the same signature
//     (kernels/ for CUDA; docs/architecture.md, "Execution model").
//   * <Op>Backward<T> nodes: the tape nodes, saving what backward needs.
//   * <op>(...): the public, differentiable function: checks the arguments
//     and that they share one device, allocates the outputs on it, calls the
//     entry for that device (dispatch::call) and records the node when
//     needs_grad().
#pragma once

#include <string>

#include "lgh/autograd/engine.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/parallel.hpp"

namespace lgh {
namespace ops {
namespace detail {

template <typename T>
void check_defined(const char* op, const char* arg, const Tensor<T>& t) {
  LGH_CHECK(t.defined(), op << ": argument '" << arg << "' is an undefined tensor");
}

template <typename T>
void check_ndim(const char* op, const char* arg, const Tensor<T>& t, int ndim) {
  check_defined(op, arg, t);
  LGH_CHECK(t.ndim() == ndim, op << ": '" << arg << "' must be " << ndim << "-d, got shape " << t.shape().str());
}

template <typename T>
void check_shape(const char* op, const char* arg, const Tensor<T>& t, const Shape& expected) {
  check_defined(op, arg, t);
  LGH_CHECK(t.shape() == expected,
            op << ": '" << arg << "' has shape " << t.shape().str() << ", expected " << expected.str());
}

// A tensor argument with its name, for device checks.
template <typename T>
struct Arg {
  const char* name;
  const Tensor<T>* tensor;
};

// The device of an op: the one every defined argument is on. Arguments on two
// devices are an error naming both (ops never move data implicitly).
template <typename T>
Device common_device(const char* op, std::initializer_list<Arg<T>> args) {
  const Arg<T>* first = nullptr;
  for (const Arg<T>& a : args) {
    if (!a.tensor || !a.tensor->defined()) continue;
    if (!first) {
      first = &a;
      continue;
    }
    LGH_CHECK(a.tensor->device() == first->tensor->device(),
              op << ": '" << a.name << "' is on " << a.tensor->device().str() << " but '" << first->name
                 << "' is on " << first->tensor->device().str()
                 << " (an op's tensors must be on one device; move them with to())");
  }
  return first ? first->tensor->device() : Device::cpu();
}

// The same for a list of tensors named `what`[i].
template <typename T>
Device common_device(const char* op, const char* what, const std::vector<Tensor<T>>& ts, Device expected) {
  for (size_t i = 0; i < ts.size(); ++i)
    LGH_CHECK(!ts[i].defined() || ts[i].device() == expected,
              op << ": '" << what << "[" << i << "]' is on " << ts[i].device().str() << " but the op runs on "
                 << expected.str() << " (an op's tensors must be on one device; move them with to())");
  return expected;
}

// Shape of broadcasting a with b (NumPy rules).
inline Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const int n = std::max(a.ndim(), b.ndim());
  Shape out;
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - a.ndim()), ib = i - (n - b.ndim());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    LGH_CHECK(da == db || da == 1 || db == 1,
              op << ": shapes " << a.str() << " and " << b.str() << " cannot be broadcast together");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

// Strides that read `t` as if it had shape `out` (0 on broadcast dimensions).
template <typename T>
Shape broadcast_strides(const Tensor<T>& t, const Shape& out) {
  Shape s;
  const int lead = out.ndim() - t.ndim();
  for (int i = 0; i < out.ndim(); ++i) {
    const int it = i - lead;
    s.push_back(it < 0 || t.shape()[it] == 1 ? 0 : t.strides()[it]);
  }
  return s;
}

// Grain sizes: elementwise loops below this many elements stay on one thread.
constexpr int64_t kElementwiseGrain = 1 << 15;

}  // namespace detail
}  // namespace ops
}  // namespace lgh
