// Tensor<T>: a shared handle to an N-d array of T on a device.
//
// Storage is contiguous row-major (NCHW for images); a tensor is a view over a
// Storage with its own shape, strides and offset, so slicing and reshaping
// share memory. Copying a Tensor copies the handle, not the data (clone()
// copies the data).
//
// The methods here are data-level operations and never record on the autograd
// tape. The differentiable operations are the free functions of lgh::ops
// (ops::reshape, ops::slice, ops::conv2d, ...). A data-level view of a tensor
// that requires grad, taken while grad mode is on, throws rather than silently
// cutting the graph.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <ostream>
#include <type_traits>
#include <vector>

#include "lgh/core/backend.hpp"
#include "lgh/core/dtype.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/core/shape.hpp"
#include "lgh/core/storage.hpp"

namespace lgh {

template <typename T>
class Tensor;

namespace autograd {
template <typename T>
struct Node;

// Grad mode is per thread; NoGradGuard turns it off for a scope.
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool grad_enabled() { return grad_mode_flag(); }
}  // namespace autograd

namespace debug {
// While a PoisonScope is alive (on any thread), every newly created
// floating-point tensor is filled with NaN and every integer tensor with 0x5A
// bytes, so that a kernel which forgets to write an element is caught. The
// gradient checker uses it around backward.
inline std::atomic<int>& poison_depth() {
  static std::atomic<int> depth{0};
  return depth;
}
class PoisonScope {
 public:
  PoisonScope() { ++poison_depth(); }
  ~PoisonScope() { --poison_depth(); }
  PoisonScope(const PoisonScope&) = delete;
  PoisonScope& operator=(const PoisonScope&) = delete;
};
}  // namespace debug

namespace detail {

template <typename T>
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements

  // Autograd metadata. A leaf that requires grad accumulates into `grad`;
  // a tensor produced by a recorded op points at its producer.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl<T>> grad;
  std::shared_ptr<autograd::Node<T>> grad_fn;
  int output_nr = 0;
};

// Calls f(dst_offset, src_offset, n) for every innermost run of a strided
// copy of `shape`; the last dimension is walked by the caller with the given
// strides.
template <typename F>
void for_each_row(const Shape& shape, const Shape& a_strides, const Shape& b_strides, F&& f) {
  const int nd = shape.ndim();
  if (nd == 0) {
    f(int64_t(0), int64_t(0));
    return;
  }
  if (shape.numel() == 0) return;
  int64_t rows = 1;
  for (int d = 0; d < nd - 1; ++d) rows *= shape[d];
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  int64_t ao = 0, bo = 0;
  for (int64_t r = 0; r < rows; ++r) {
    f(ao, bo);
    for (int d = nd - 2; d >= 0; --d) {
      ++idx[static_cast<size_t>(d)];
      ao += a_strides[d];
      bo += b_strides[d];
      if (idx[static_cast<size_t>(d)] < shape[d]) break;
      ao -= a_strides[d] * shape[d];
      bo -= b_strides[d] * shape[d];
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}

// Elements per chunk below which copies and in-place adds stay on one thread.
constexpr int64_t kCopyGrain = 1 << 16;

// dst[0..n) = src[0..n) (no overlap), split over the thread pool when large.
template <typename T>
void parallel_copy(T* dst, const T* src, int64_t n) {
  if (n < 2 * kCopyGrain) {
    std::memmove(dst, src, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  parallel_for(0, n, kCopyGrain, [dst, src](int64_t lo, int64_t hi) {
    std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(T));
  });
}

}  // namespace detail

template <typename T>
class Tensor {
 public:
  using value_type = T;
  using Impl = detail::TensorImpl<T>;

  Tensor() = default;
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  // ---- creation ---------------------------------------------------------

  // Uninitialised (or poisoned, under debug::PoisonScope) contiguous tensor.
  static Tensor empty(const Shape& shape, Device device = Device::cpu()) {
    auto impl = std::make_shared<Impl>();
    impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * sizeof(T), device);
    impl->shape = shape;
    impl->strides = shape.contiguous_strides();
    Tensor t(std::move(impl));
    if (LGH_UNLIKELY(debug::poison_depth().load() > 0)) t.poison_();
    return t;
  }
  static Tensor zeros(const Shape& shape, Device device = Device::cpu()) {
    Tensor t = empty(shape, device);
    backend(device).memset_zero(t.data(), t.nbytes());
    return t;
  }
  static Tensor full(const Shape& shape, T value, Device device = Device::cpu()) {
    return empty(shape, device).fill_(value);
  }
  static Tensor ones(const Shape& shape, Device device = Device::cpu()) { return full(shape, T(1), device); }
  // A 0-d tensor holding `value`.
  static Tensor scalar(T value, Device device = Device::cpu()) { return full(Shape{}, value, device); }

  // Copies `values` (row-major) into a new CPU tensor of `shape`.
  static Tensor from_data(const Shape& shape, const std::vector<T>& values) {
    LGH_CHECK(static_cast<int64_t>(values.size()) == shape.numel(),
              "from_data: " << values.size() << " values for shape " << shape.str() << " ("
                            << shape.numel() << " elements)");
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }
  static Tensor from_data(const Shape& shape, std::initializer_list<T> values) {
    return from_data(shape, std::vector<T>(values));
  }

  // Wraps memory owned by the caller (no copy). `release` runs when the last
  // tensor using it is destroyed; pass {} for memory that outlives the tensor.
  static Tensor from_blob(T* data, const Shape& shape, Device device = Device::cpu(),
                          std::function<void(void*)> release = {}) {
    auto impl = std::make_shared<Impl>();
    impl->storage = std::make_shared<Storage>(static_cast<void*>(data),
                                              static_cast<size_t>(shape.numel()) * sizeof(T), device,
                                              std::move(release));
    impl->shape = shape;
    impl->strides = shape.contiguous_strides();
    return Tensor(std::move(impl));
  }

  // Uniform in (lo, hi) / standard normal scaled, drawn from `rng` (CPU).
  static Tensor uniform(const Shape& shape, double lo, double hi, PhiloxEngine& rng) {
    Tensor t = empty(shape);
    T* p = t.data();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(rng.uniform(lo, hi));
    return t;
  }
  static Tensor normal(const Shape& shape, double mean, double stddev, PhiloxEngine& rng) {
    Tensor t = empty(shape);
    T* p = t.data();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(mean + stddev * rng.normal());
    return t;
  }

  // ---- properties -------------------------------------------------------

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  const Shape& strides() const { return checked().strides; }
  int64_t offset() const { return checked().offset; }
  int ndim() const { return shape().ndim(); }
  int64_t size(int dim) const { return shape()[shape().axis(dim)]; }
  int64_t numel() const { return shape().numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * sizeof(T); }
  Device device() const { return checked().storage->device(); }
  static constexpr DType dtype() { return dtype_of<T>::value; }
  bool is_contiguous() const { return strides() == shape().contiguous_strides() || numel() <= 1; }
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }
  Impl* impl() const { return impl_.get(); }
  const std::shared_ptr<Impl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }
  bool shares_storage(const Tensor& o) const { return defined() && o.defined() && storage() == o.storage(); }

  // Pointer to the first element (storage base + offset). Tensors are
  // handles: a const Tensor still gives write access to its elements.
  T* data() const {
    const Impl& i = checked();
    return static_cast<T*>(i.storage->data()) + i.offset;
  }

  // ---- element access (CPU; for tests, tools and small tensors) ------------

  T item() const {
    LGH_CHECK(numel() == 1, "item(): tensor of shape " << shape().str() << " has " << numel()
                                                         << " elements, expected 1");
    if (device().is_cpu()) return *data();
    T v;
    backend(device()).copy_to_host(&v, data(), sizeof(T));
    return v;
  }

  T& at(std::initializer_list<int64_t> index) const {
    LGH_CHECK(device().is_cpu(), "at(): tensor is on " << device().str() << ", expected cpu");
    LGH_CHECK(static_cast<int>(index.size()) == ndim(),
              "at(): " << index.size() << " indices for a " << ndim() << "-d tensor");
    int64_t off = 0;
    int d = 0;
    for (int64_t i : index) {
      LGH_CHECK(i >= 0 && i < shape()[d], "at(): index " << i << " out of range for dimension " << d
                                                          << " of shape " << shape().str());
      off += i * strides()[d];
      ++d;
    }
    return data()[off];
  }

  // Copies the elements out in row-major order (any device, any strides).
  std::vector<T> to_vector() const {
    Tensor c = to(Device::cpu()).contiguous();
    return std::vector<T>(c.data(), c.data() + c.numel());
  }

  // ---- data-level views (share storage; never recorded by autograd) -------

  // Same elements, new shape (contiguous tensors only). One extent may be -1.
  Tensor view(std::vector<int64_t> dims) const {
    check_view_allowed("view");
    LGH_CHECK(is_contiguous(), "view(): tensor of shape " << shape().str() << " is not contiguous");
    Shape s = infer_shape(std::move(dims));
    auto impl = alias_impl();
    impl->shape = s;
    impl->strides = s.contiguous_strides();
    return Tensor(std::move(impl));
  }

  // Elements [start, end) of dimension `dim`.
  Tensor narrow(int dim, int64_t start, int64_t end) const {
    check_view_allowed("narrow");
    const int d = shape().axis(dim);
    LGH_CHECK(0 <= start && start <= end && end <= shape()[d],
              "narrow(): range [" << start << ", " << end << ") out of bounds for dimension " << d
                                  << " of shape " << shape().str());
    auto impl = alias_impl();
    impl->shape[d] = end - start;
    impl->offset += start * strides()[d];
    return Tensor(std::move(impl));
  }

  // Reorders dimensions (a strided view).
  Tensor permute(const std::vector<int>& order) const {
    check_view_allowed("permute");
    LGH_CHECK(static_cast<int>(order.size()) == ndim(), "permute(): " << order.size()
                                                                       << " axes for a " << ndim()
                                                                       << "-d tensor");
    auto impl = alias_impl();
    std::vector<bool> seen(static_cast<size_t>(ndim()), false);
    for (int i = 0; i < ndim(); ++i) {
      const int a = shape().axis(order[static_cast<size_t>(i)]);
      LGH_CHECK(!seen[static_cast<size_t>(a)], "permute(): axis " << a << " repeated");
      seen[static_cast<size_t>(a)] = true;
      impl->shape[i] = shape()[a];
      impl->strides[i] = strides()[a];
    }
    return Tensor(std::move(impl));
  }

  // A new handle on the same data with no autograd history.
  Tensor detach() const {
    auto impl = std::make_shared<Impl>();
    impl->storage = storage();
    impl->shape = shape();
    impl->strides = strides();
    impl->offset = offset();
    return Tensor(std::move(impl));
  }

  // This tensor if contiguous, else a contiguous copy (data-level).
  Tensor contiguous() const {
    if (is_contiguous()) return *this;
    Tensor out = empty(shape(), device());
    out.copy_(*this);
    return out;
  }

  // A contiguous deep copy with no autograd history.
  Tensor clone() const {
    Tensor out = empty(shape(), device());
    out.copy_(*this);
    return out;
  }

  // A copy on `device` (this tensor itself if already there).
  Tensor to(Device device) const {
    if (device == this->device()) return *this;
    Tensor src = contiguous();
    Tensor out = empty(shape(), device);
    if (src.device().is_cpu())
      backend(device).copy_from_host(out.data(), src.data(), nbytes());
    else if (device.is_cpu())
      backend(src.device()).copy_to_host(out.data(), src.data(), nbytes());
    else {
      std::vector<T> host(static_cast<size_t>(numel()));
      backend(src.device()).copy_to_host(host.data(), src.data(), nbytes());
      backend(device).copy_from_host(out.data(), host.data(), nbytes());
    }
    return out;
  }

  // Element-type conversion (CPU), e.g. float weights to double for checks.
  template <typename U>
  Tensor<U> cast() const {
    LGH_CHECK(device().is_cpu(), "cast(): tensor is on " << device().str() << ", expected cpu");
    Tensor c = contiguous();
    Tensor<U> out = Tensor<U>::empty(shape());
    const T* s = c.data();
    U* d = out.data();
    for (int64_t i = 0; i < numel(); ++i) d[i] = static_cast<U>(s[i]);
    return out;
  }

  // ---- in-place data operations (not recorded) --------------------------

  Tensor& fill_(T value) {
    check_inplace_allowed("fill_");
    require_cpu("fill_");
    T* p = data();
    const Shape& st = strides();
    detail::for_each_row(shape(), st, st, [&](int64_t o, int64_t) {
      const int64_t n = ndim() ? shape()[ndim() - 1] : 1;
      const int64_t s = ndim() ? st[ndim() - 1] : 1;
      for (int64_t i = 0; i < n; ++i) p[o + i * s] = value;
    });
    return *this;
  }
  Tensor& zero_() {
    if (is_contiguous() && defined()) {
      check_inplace_allowed("zero_");
      backend(device()).memset_zero(data(), nbytes());
      return *this;
    }
    return fill_(T(0));
  }

  // Copies src's elements into this tensor (same shape; any strides; across
  // devices when both are contiguous).
  Tensor& copy_(const Tensor& src) {
    check_inplace_allowed("copy_");
    LGH_CHECK(src.shape() == shape(), "copy_(): source shape " << src.shape().str()
                                                               << " differs from destination shape "
                                                               << shape().str());
    if (numel() == 0) return *this;
    if (is_contiguous() && src.is_contiguous()) {
      if (device().is_cpu() && src.device().is_cpu())
        detail::parallel_copy(data(), src.data(), numel());
      else if (src.device().is_cpu())
        backend(device()).copy_from_host(data(), src.data(), nbytes());
      else if (device().is_cpu())
        backend(src.device()).copy_to_host(data(), src.data(), nbytes());
      else
        backend(device()).copy_within(data(), src.data(), nbytes());
      return *this;
    }
    LGH_CHECK(device().is_cpu() && src.device().is_cpu(),
              "copy_(): strided copies between devices are not supported (make both contiguous)");
    T* d = data();
    const T* s = src.data();
    const int last = ndim() - 1;
    const int64_t n = shape()[last], ds = strides()[last], ss = src.strides()[last];
    detail::for_each_row(shape(), strides(), src.strides(), [&](int64_t od, int64_t os) {
      for (int64_t i = 0; i < n; ++i) d[od + i * ds] = s[os + i * ss];
    });
    return *this;
  }

  // this += alpha * other (same shape, CPU). Used for gradient accumulation
  // and by optimisers.
  Tensor& add_(const Tensor& other, T alpha = T(1)) {
    check_inplace_allowed("add_");
    require_cpu("add_");
    LGH_CHECK(other.shape() == shape(), "add_(): shape " << other.shape().str() << " added to shape "
                                                         << shape().str());
    if (is_contiguous() && other.is_contiguous()) {
      T* dp = data();
      const T* sp = other.data();
      parallel_for(0, numel(), detail::kCopyGrain, [dp, sp, alpha](int64_t lo, int64_t hi) {
        T* LGH_RESTRICT d = dp;
        const T* LGH_RESTRICT s = sp;
        if (alpha == T(1))
          for (int64_t i = lo; i < hi; ++i) d[i] += s[i];
        else
          for (int64_t i = lo; i < hi; ++i) d[i] += alpha * s[i];
      });
      return *this;
    }
    T* d = data();
    const T* s = other.data();
    const int last = ndim() - 1;
    const int64_t n = shape()[last], ds = strides()[last], ss = other.strides()[last];
    detail::for_each_row(shape(), strides(), other.strides(), [&](int64_t od, int64_t os) {
      for (int64_t i = 0; i < n; ++i) d[od + i * ds] += alpha * s[os + i * ss];
    });
    return *this;
  }

  Tensor& mul_(T factor) {
    check_inplace_allowed("mul_");
    require_cpu("mul_");
    T* p = data();
    const int last = ndim() - 1;
    const int64_t n = ndim() ? shape()[last] : 1, s = ndim() ? strides()[last] : 1;
    detail::for_each_row(shape(), strides(), strides(), [&](int64_t o, int64_t) {
      for (int64_t i = 0; i < n; ++i) p[o + i * s] *= factor;
    });
    return *this;
  }

  // Fills with NaN (floating point) or 0x5A bytes (integers).
  Tensor& poison_() {
    if (!defined() || numel() == 0) return *this;
    if (device().is_cpu()) {
      if (std::is_floating_point<T>::value) {
        std::fill(data(), data() + numel(), std::numeric_limits<T>::quiet_NaN());
      } else {
        std::memset(static_cast<void*>(data()), 0x5A, nbytes());
      }
    } else {
      std::vector<T> host(static_cast<size_t>(numel()));
      Tensor<T>::from_blob(host.data(), shape()).poison_();
      backend(device()).copy_from_host(data(), host.data(), nbytes());
    }
    return *this;
  }

  // ---- autograd ---------------------------------------------------------

  bool requires_grad() const { return defined() && impl_->requires_grad; }

  // Marks a leaf tensor as a parameter/input whose gradient is wanted.
  Tensor& set_requires_grad(bool on = true) {
    LGH_CHECK(!checked().grad_fn, "set_requires_grad(): only leaf tensors can change requires_grad");
    impl_->requires_grad = on;
    return *this;
  }

  bool is_leaf() const { return !checked().grad_fn; }
  const std::shared_ptr<autograd::Node<T>>& grad_fn() const { return checked().grad_fn; }
  int output_nr() const { return checked().output_nr; }

  // The accumulated gradient of a leaf (undefined until a backward reaches it).
  Tensor grad() const { return defined() && impl_->grad ? Tensor(impl_->grad) : Tensor(); }

  // Installs the buffer that backward accumulates into (e.g. a view of a
  // flat gradient buffer); it must have this tensor's shape.
  void set_grad(const Tensor& g) {
    LGH_CHECK(!g.defined() || g.shape() == shape(),
              "set_grad(): gradient of shape " << g.shape().str() << " for tensor of shape "
                                               << shape().str());
    checked().grad = g.impl_;
  }

  // Sets the gradient to zero (keeping its buffer) if there is one.
  void zero_grad() {
    if (defined() && impl_->grad) Tensor(impl_->grad).zero_();
  }

  // Back-propagates from this tensor (defined in lgh/autograd/engine.hpp).
  // `grad` defaults to ones (a scalar loss).
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

 private:
  const Impl& checked() const {
    LGH_CHECK(impl_ != nullptr, "operation on an undefined tensor");
    return *impl_;
  }
  Impl& checked() {
    LGH_CHECK(impl_ != nullptr, "operation on an undefined tensor");
    return *impl_;
  }

  std::shared_ptr<Impl> alias_impl() const {
    auto impl = std::make_shared<Impl>();
    impl->storage = storage();
    impl->shape = shape();
    impl->strides = strides();
    impl->offset = offset();
    return impl;
  }

  Shape infer_shape(std::vector<int64_t> dims) const {
    int64_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == -1) {
        LGH_CHECK(infer < 0, "view(): more than one -1 in the new shape");
        infer = static_cast<int>(i);
      } else {
        LGH_CHECK(dims[i] >= 0, "view(): negative extent " << dims[i]);
        known *= dims[i];
      }
    }
    if (infer >= 0) {
      LGH_CHECK(known > 0 && numel() % known == 0,
                "view(): cannot infer -1 reshaping " << shape().str() << " (" << numel() << " elements)");
      dims[static_cast<size_t>(infer)] = numel() / known;
    }
    Shape s(dims);
    LGH_CHECK(s.numel() == numel(), "view(): shape " << s.str() << " (" << s.numel()
                                                      << " elements) does not match " << shape().str()
                                                      << " (" << numel() << " elements)");
    return s;
  }

  void check_view_allowed(const char* what) const {
    LGH_CHECK(!(requires_grad() && autograd::grad_enabled()),
              what << "(): data-level view of a tensor that requires grad would cut the autograd graph; "
                      "use the lgh::ops version or detach() first");
  }
  void check_inplace_allowed(const char* what) const {
    LGH_CHECK(!(requires_grad() && autograd::grad_enabled()),
              what << "(): in-place change of a tensor that requires grad while grad mode is on "
                      "(wrap it in autograd::NoGradGuard)");
  }
  void require_cpu(const char* what) const {
    LGH_CHECK(device().is_cpu(), what << "(): tensor is on " << device().str()
                                      << "; this operation is CPU-only");
  }

  std::shared_ptr<Impl> impl_;
};

// Prints shape and (for small tensors) values.
template <typename T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor" << t.shape().str() << "(" << t.device().str() << ")";
  if (t.numel() <= 64) {
    const std::vector<T> v = t.to_vector();
    os << " {";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "}";
  }
  return os;
}

using TensorF = Tensor<float>;
using TensorD = Tensor<double>;

}  // namespace lgh
