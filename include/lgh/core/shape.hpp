// Shape: the extents of a tensor, up to kMaxDims dimensions, stored inline so
// that creating a tensor never allocates for its shape.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"

namespace lgh {

class Shape {
 public:
  static constexpr int kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }

  int ndim() const { return ndim_; }
  bool empty() const { return ndim_ == 0; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + ndim_; }

  // Normalises a possibly negative axis (-1 = last) and checks its range.
  int axis(int i) const {
    int a = i < 0 ? i + ndim_ : i;
    LGH_CHECK(a >= 0 && a < ndim_, "axis " << i << " out of range for shape " << str());
    return a;
  }

  // Number of elements; 1 for a scalar (ndim 0).
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim_; ++i) n *= dims_[static_cast<size_t>(i)];
    return n;
  }

  void push_back(int64_t d) {
    LGH_CHECK(ndim_ < kMaxDims, "shape has more than " << kMaxDims << " dimensions");
    dims_[static_cast<size_t>(ndim_++)] = d;
  }

  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }

  // "[2, 3, 4]"
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < ndim_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<size_t>(i)]);
    }
    return s + "]";
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.ndim_ != b.ndim_) return false;
    for (int i = 0; i < a.ndim_; ++i)
      if (a.dims_[static_cast<size_t>(i)] != b.dims_[static_cast<size_t>(i)]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

  // Row-major (C order) strides of this shape, in elements.
  Shape contiguous_strides() const {
    Shape s;
    s.ndim_ = ndim_;
    int64_t acc = 1;
    for (int i = ndim_ - 1; i >= 0; --i) {
      s.dims_[static_cast<size_t>(i)] = acc;
      acc *= dims_[static_cast<size_t>(i)];
    }
    return s;
  }

 private:
  template <typename It>
  void assign(It first, It last) {
    for (; first != last; ++first) {
      LGH_CHECK(*first >= 0, "negative extent " << *first << " in shape");
      push_back(*first);
    }
  }

  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace lgh
