// The data-level kernels behind Tensor's methods (fill_, copy_, add_, mul_,
// cast) and the autograd engine's gradient sums: their entry descriptors in
// the dispatch registry (core/dispatch.hpp) and their CPU entries. The CUDA
// entries are in kernels/tensor_ops.cuh.
//
// Contracts (every tensor on one device of the entry's type, shapes equal
// unless said otherwise, any strides unless said otherwise):
//   Fill       dst[i] = value
//   Copy       dst[i] = src[i]; dst and src may be two devices of one type
//              (cuda:0 and cuda:1), never overlapping
//   Axpy       dst[i] += alpha * src[i]
//   Scale      dst[i] *= factor
//   Sum        out[i] = a[i] + b[i]; out contiguous (a fresh gradient)
//   Cast<U>    dst[i] = U(src[i]); dst and src contiguous
// Copies between device types (host <-> device) are not entries: Tensor::copy_
// moves contiguous bytes with copy_bytes (core/backend.hpp) and uses Copy on
// one side for strides.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lgh/core/config.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/core/shape.hpp"

namespace lgh {

template <typename T>
class Tensor;

namespace detail {

// Calls f(a_offset, b_offset) for every innermost row of `shape` walked with
// the two sets of strides; the caller walks the last dimension itself.
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

// Extent and stride of the last dimension (1 and 1 for a 0-d tensor).
inline int64_t last_extent(const Shape& s) { return s.ndim() ? s[s.ndim() - 1] : 1; }
inline int64_t last_stride(const Shape& st) { return st.ndim() ? st[st.ndim() - 1] : 1; }

}  // namespace detail

namespace tensor_kernels {

// ---- CPU entries ----------------------------------------------------------------
namespace cpu {

template <typename T>
void fill(const Tensor<T>& dst, T value) {
  T* p = dst.data();
  if (dst.is_contiguous()) {
    std::fill(p, p + dst.numel(), value);
    return;
  }
  const int64_t n = detail::last_extent(dst.shape()), s = detail::last_stride(dst.strides());
  detail::for_each_row(dst.shape(), dst.strides(), dst.strides(), [&](int64_t o, int64_t) {
    for (int64_t i = 0; i < n; ++i) p[o + i * s] = value;
  });
}

template <typename T>
void copy(const Tensor<T>& dst, const Tensor<T>& src) {
  T* d = dst.data();
  const T* s = src.data();
  if (dst.is_contiguous() && src.is_contiguous()) {
    detail::parallel_copy(d, s, dst.numel());
    return;
  }
  const int64_t n = detail::last_extent(dst.shape()), ds = detail::last_stride(dst.strides()),
                ss = detail::last_stride(src.strides());
  detail::for_each_row(dst.shape(), dst.strides(), src.strides(), [&](int64_t od, int64_t os) {
    for (int64_t i = 0; i < n; ++i) d[od + i * ds] = s[os + i * ss];
  });
}

template <typename T>
void axpy(const Tensor<T>& dst, const Tensor<T>& src, T alpha) {
  if (dst.is_contiguous() && src.is_contiguous()) {
    T* dp = dst.data();
    const T* sp = src.data();
    parallel_for(0, dst.numel(), detail::kCopyGrain, [dp, sp, alpha](int64_t lo, int64_t hi) {
      T* LGH_RESTRICT d = dp;
      const T* LGH_RESTRICT s = sp;
      if (alpha == T(1))
        for (int64_t i = lo; i < hi; ++i) d[i] += s[i];
      else
        for (int64_t i = lo; i < hi; ++i) d[i] += alpha * s[i];
    });
    return;
  }
  T* d = dst.data();
  const T* s = src.data();
  const int64_t n = detail::last_extent(dst.shape()), ds = detail::last_stride(dst.strides()),
                ss = detail::last_stride(src.strides());
  detail::for_each_row(dst.shape(), dst.strides(), src.strides(), [&](int64_t od, int64_t os) {
    for (int64_t i = 0; i < n; ++i) d[od + i * ds] += alpha * s[os + i * ss];
  });
}

template <typename T>
void scale(const Tensor<T>& dst, T factor) {
  T* p = dst.data();
  const int64_t n = detail::last_extent(dst.shape()), s = detail::last_stride(dst.strides());
  detail::for_each_row(dst.shape(), dst.strides(), dst.strides(), [&](int64_t o, int64_t) {
    for (int64_t i = 0; i < n; ++i) p[o + i * s] *= factor;
  });
}

template <typename T>
void sum(const Tensor<T>& out, const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.is_contiguous() && b.is_contiguous())) {
    copy(out, a);
    axpy(out, b, T(1));
    return;
  }
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  parallel_for(0, a.numel(), detail::kCopyGrain, [pa, pb, po](int64_t lo, int64_t hi) {
    const T* LGH_RESTRICT x = pa;
    const T* LGH_RESTRICT y = pb;
    T* LGH_RESTRICT z = po;
    for (int64_t i = lo; i < hi; ++i) z[i] = x[i] + y[i];
  });
}

template <typename U, typename T>
void cast(const Tensor<U>& dst, const Tensor<T>& src) {
  const T* s = src.data();
  U* d = dst.data();
  const int64_t n = src.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<U>(s[i]);
}

}  // namespace cpu

// ---- entry descriptors ------------------------------------------------------------

struct Fill {
  static constexpr const char* name = "fill_";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& dst, T value);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::fill<T>;
};

struct Copy {
  static constexpr const char* name = "copy_";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& dst, const Tensor<T>& src);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::copy<T>;
};

struct Axpy {
  static constexpr const char* name = "add_";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& dst, const Tensor<T>& src, T alpha);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::axpy<T>;
};

struct Scale {
  static constexpr const char* name = "mul_";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& dst, T factor);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::scale<T>;
};

struct Sum {
  static constexpr const char* name = "gradient sum";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& out, const Tensor<T>& a, const Tensor<T>& b);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::sum<T>;
};

// Conversion to U; the element type the registry keys on is the source's.
template <typename U>
struct Cast {
  static constexpr const char* name = "cast";
  template <typename T>
  using Fn = void (*)(const Tensor<U>& dst, const Tensor<T>& src);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::cast<U, T>;
};

}  // namespace tensor_kernels
}  // namespace lgh
