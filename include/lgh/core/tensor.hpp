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
//
// Every method works on any device: the data-level ones (fill_, copy_, add_,
// mul_, cast, zero_, poison_) run the entry of the tensor's device in the
// dispatch registry (core/tensor_kernels.hpp, core/dispatch.hpp), on the
// current stream of that device; to(device) and item() copy bytes through
// the device's backend. Only at() and the creation from host values
// (from_data, uniform, normal) are CPU-only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <ostream>
#include <type_traits>
#include <vector>

#include "lgh/core/backend.hpp"
#include "lgh/core/dispatch.hpp"
#include "lgh/core/dtype.hpp"
#include "lgh/core/error.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/core/shape.hpp"
#include "lgh/core/storage.hpp"
#include "lgh/core/tensor_kernels.hpp"

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
    if (t.nbytes()) backend(device).memset(t.data(), 0, t.nbytes(), device);
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

  // ---- element access (for tests, tools and small tensors) ------------------

  // The one element, on the host (from a device: waits for its stream).
  T item() const {
    LGH_CHECK(numel() == 1, "item(): tensor of shape " << shape().str() << " has " << numel()
                                                         << " elements, expected 1");
    if (device().is_cpu()) return *data();
    T v;
    copy_bytes(&v, Device::cpu(), data(), device(), sizeof(T));
    return v;
  }

  // A reference to one element of a CPU tensor.
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
    Tensor out = empty(shape(), device);
    out.copy_(*this);
    return out;
  }

  // Element-type conversion on the tensor's device, e.g. float weights to
  // double for gradient checks.
  template <typename U>
  Tensor<U> cast() const {
    Tensor c = contiguous();
    Tensor<U> out = Tensor<U>::empty(shape(), device());
    if (numel() > 0) dispatch::call<tensor_kernels::Cast<U>, T>(device(), out, c);
    return out;
  }

  // ---- in-place data operations (not recorded) --------------------------

  Tensor& fill_(T value) {
    check_inplace_allowed("fill_");
    if (numel() > 0) dispatch::call<tensor_kernels::Fill, T>(device(), *this, value);
    return *this;
  }
  Tensor& zero_() {
    if (is_contiguous() && defined()) {
      check_inplace_allowed("zero_");
      if (nbytes()) backend(device()).memset(data(), 0, nbytes(), device());
      return *this;
    }
    return fill_(T(0));
  }

  // Copies src's elements into this tensor: same shape, any strides, any two
  // devices (cuda:0 <- cpu, cuda:1 <- cuda:0, ...).
  Tensor& copy_(const Tensor& src) {
    check_inplace_allowed("copy_");
    LGH_CHECK(src.shape() == shape(), "copy_(): source shape " << src.shape().str()
                                                               << " differs from destination shape "
                                                               << shape().str());
    if (numel() == 0) return *this;
    const Device dd = device(), sd = src.device();
    if (dd.type == sd.type) {
      dispatch::call<tensor_kernels::Copy, T>(dd, *this, src);
      return *this;
    }
    // Between device types: contiguous bytes, with the strides handled on
    // the side that has them.
    const Tensor s = src.contiguous();
    if (is_contiguous()) {
      copy_bytes(data(), dd, s.data(), sd, nbytes());
      return *this;
    }
    const Tensor staged = empty(shape(), dd);
    copy_bytes(staged.data(), dd, s.data(), sd, nbytes());
    dispatch::call<tensor_kernels::Copy, T>(dd, *this, staged);
    return *this;
  }

  // this += alpha * other (same shape, same device). Used for gradient
  // accumulation and by optimisers.
  Tensor& add_(const Tensor& other, T alpha = T(1)) {
    check_inplace_allowed("add_");
    LGH_CHECK(other.shape() == shape(), "add_(): shape " << other.shape().str() << " added to shape "
                                                         << shape().str());
    LGH_CHECK(other.device() == device(), "add_(): tensor on " << other.device().str() << " added to a tensor on "
                                                               << device().str());
    if (numel() > 0) dispatch::call<tensor_kernels::Axpy, T>(device(), *this, other, alpha);
    return *this;
  }

  Tensor& mul_(T factor) {
    check_inplace_allowed("mul_");
    if (numel() > 0) dispatch::call<tensor_kernels::Scale, T>(device(), *this, factor);
    return *this;
  }

  // Fills with NaN (floating point) or 0x5A bytes (integers).
  Tensor& poison_() {
    if (!defined() || numel() == 0) return *this;
    T pattern;
    if (std::is_floating_point<T>::value) {
      pattern = std::numeric_limits<T>::quiet_NaN();
    } else {
      std::memset(static_cast<void*>(&pattern), 0x5A, sizeof(T));
    }
    dispatch::call<tensor_kernels::Fill, T>(device(), *this, pattern);
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
