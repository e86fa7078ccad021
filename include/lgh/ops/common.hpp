// Shared helpers of the op headers: argument checks with messages that name
// the op, the argument and the expected and found shapes; broadcasting.
//
// How an op reads (see elementwise.hpp for the simplest ones):
//   * <op>_forward(...) / <op>_backward(...): plain functions on tensors, the
//     "kernels". Backward functions overwrite their outputs (never
//     accumulate); the autograd engine sums contributions.
//   * <Op>Backward<T>: the tape node, saving what backward needs.
//   * <op>(...): the public, differentiable function: checks arguments, runs
//     the forward kernel and records the node when needs_grad().
#pragma once

#include <string>

#include "lgh/autograd/engine.hpp"
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

// Every defined tensor must be on the CPU: the CUDA versions of the ops are
// dispatched by the lgh::cuda backend.
template <typename T>
void check_cpu(const char* op, std::initializer_list<const Tensor<T>*> ts) {
  for (const Tensor<T>* t : ts)
    LGH_CHECK(!t || !t->defined() || t->device().is_cpu(),
              op << ": tensor on " << t->device().str() << "; this op runs on the CPU only in this build");
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

// Sums `g` (shaped like a broadcast result) down to `shape`.
template <typename T>
Tensor<T> sum_to_shape(const Tensor<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor<T> out = Tensor<T>::zeros(shape, g.device());
  Tensor<T> gc = g.contiguous();
  const Shape st = broadcast_strides(out, g.shape());
  const int last = g.ndim() - 1;
  const int64_t n = g.shape()[last], s = st[last];
  T* o = out.data();
  const T* src = gc.data();
  const Shape gst = gc.strides();
  lgh::detail::for_each_row(g.shape(), st, gst, [&](int64_t oo, int64_t go) {
    for (int64_t i = 0; i < n; ++i) o[oo + i * s] += src[go + i];
  });
  return out;
}

// Grain sizes: elementwise loops below this many elements stay on one thread.
constexpr int64_t kElementwiseGrain = 1 << 15;

}  // namespace detail
}  // namespace ops
}  // namespace lgh
