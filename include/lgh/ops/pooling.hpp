// Pooling and upsampling of NCHW tensors: 2-d max pooling (the backbone's
// "maxpool 2" and the hourglass's downsampling) and nearest-neighbour
// upsampling by 2 (the hourglass's "nearest-upsample×2", DESIGN §2).
//
// max_pool2d follows PyTorch (ceil_mode = false, dilation 1): padded
// positions never win, ties go to the first element of the window in
// row-major order, a NaN wins (it propagates), and the saved argmax is the
// flat index h * W + w within the input plane. Backward routes each output
// gradient to its argmax (summing where windows overlap). Backward kernels
// overwrite their outputs.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "lgh/ops/common.hpp"

namespace lgh {
namespace ops {

namespace detail {

inline int64_t pool_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}

// Whether v replaces the running maximum m (PyTorch's rule: larger, or NaN).
// Planes per parallel task: enough elements per task to pay for the dispatch.
inline int64_t pool_plane_grain(int64_t elements_per_plane) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, elements_per_plane));
}

template <typename T>
inline bool pool_takes(T v, T m) {
  return v > m || std::isnan(v);
}

// The 2x2 / stride 2 window of the model over one plane, unrolled and
// branch-free (selects, not jumps: random data would mispredict every
// comparison), so that the compiler vectorises it. Comparisons follow the
// row-major order of the window, so ties keep the first element. Without
// `ip` only the values are computed.
template <typename T>
void max_pool2x2_plane(const T* LGH_RESTRICT xp, int64_t W, int64_t Ho, int64_t Wo, T* LGH_RESTRICT yp,
                       int64_t* LGH_RESTRICT ip) {
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const T* r0 = xp + 2 * oh * W;
    const T* r1 = r0 + W;
    T* y = yp + oh * Wo;
    if (ip) {
      int64_t* id = ip + oh * Wo;
      const int64_t base = 2 * oh * W;
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        T m = a;
        int64_t k = 0;
        bool t = (b > m) | (b != b);  // b != b: NaN wins, as in PyTorch
        m = t ? b : m;
        k = t ? 1 : k;
        t = (c > m) | (c != c);
        m = t ? c : m;
        k = t ? W : k;
        t = (d > m) | (d != d);
        m = t ? d : m;
        k = t ? W + 1 : k;
        y[ow] = m;
        id[ow] = base + 2 * ow + k;
      }
    } else {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        T m = a;
        m = ((b > m) | (b != b)) ? b : m;
        m = ((c > m) | (c != c)) ? c : m;
        m = ((d > m) | (d != d)) ? d : m;
        y[ow] = m;
      }
    }
  }
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// Forward kernel. x: contiguous [N, C, H, W]; y: contiguous [N, C, Ho, Wo]
// (written); indices: the same shape (written), or undefined when only the
// values are wanted (inference).
template <typename T>
void max_pool2d_forward(const Tensor<T>& x, int64_t kernel, int64_t stride, int64_t padding, const Tensor<T>& y,
                        const Tensor<int64_t>& indices) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = y.size(2), Wo = y.size(3);
  const T* px = x.data();
  T* py = y.data();
  int64_t* pi = indices.defined() ? indices.data() : nullptr;
  const bool fast = kernel == 2 && stride == 2 && padding == 0;
  parallel_for(0, planes, detail::pool_plane_grain(H * W), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const T* xp = px + p * H * W;
      T* yp = py + p * Ho * Wo;
      int64_t* ip = pi ? pi + p * Ho * Wo : nullptr;
      if (fast) {
        detail::max_pool2x2_plane(xp, W, Ho, Wo, yp, ip);
        continue;
      }
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t h0 = std::max<int64_t>(oh * stride - padding, 0);
        const int64_t h1 = std::min<int64_t>(oh * stride - padding + kernel, H);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = std::max<int64_t>(ow * stride - padding, 0);
          const int64_t w1 = std::min<int64_t>(ow * stride - padding + kernel, W);
          T m = -std::numeric_limits<T>::infinity();
          int64_t idx = h0 * W + w0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const T v = xp[h * W + w];
              if (detail::pool_takes(v, m)) {
                m = v;
                idx = h * W + w;
              }
            }
          yp[oh * Wo + ow] = m;
          if (ip) ip[oh * Wo + ow] = idx;
        }
      }
    }
  });
}

// Backward kernel. gy, indices: contiguous [N, C, Ho, Wo]; gx: contiguous
// [N, C, H, W] (overwritten).
template <typename T>
void max_pool2d_backward(const Tensor<T>& gy, const Tensor<int64_t>& indices, const Tensor<T>& gx) {
  const int64_t planes = gx.size(0) * gx.size(1), HW = gx.size(2) * gx.size(3);
  const int64_t out = gy.size(2) * gy.size(3);
  const T* pg = gy.data();
  const int64_t* pi = indices.data();
  T* pd = gx.data();
  parallel_for(0, planes, detail::pool_plane_grain(HW), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      T* d = pd + p * HW;
      std::fill(d, d + HW, T(0));
      const T* g = pg + p * out;
      const int64_t* ip = pi + p * out;
      for (int64_t o = 0; o < out; ++o) d[ip[o]] += g[o];
    }
  });
}

// Forward kernel of upsample_nearest2x. x: contiguous [N, C, H, W]; y:
// contiguous [N, C, 2H, 2W] (written).
template <typename T>
void upsample_nearest2x_forward(const Tensor<T>& x, const Tensor<T>& y) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const T* px = x.data();
  T* py = y.data();
  parallel_for(0, planes, detail::pool_plane_grain(4 * H * W), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const T* xp = px + p * H * W;
      T* yp = py + p * 4 * H * W;
      for (int64_t h = 0; h < H; ++h) {
        const T* src = xp + h * W;
        T* r0 = yp + 2 * h * 2 * W;
        for (int64_t w = 0; w < W; ++w) r0[2 * w] = r0[2 * w + 1] = src[w];
        std::memcpy(r0 + 2 * W, r0, static_cast<size_t>(2 * W) * sizeof(T));
      }
    }
  });
}

// Backward kernel: each input gradient is the sum of its 4 children.
// gy: contiguous [N, C, 2H, 2W]; gx: contiguous [N, C, H, W] (overwritten).
template <typename T>
void upsample_nearest2x_backward(const Tensor<T>& gy, const Tensor<T>& gx) {
  const int64_t planes = gx.size(0) * gx.size(1), H = gx.size(2), W = gx.size(3);
  const T* pg = gy.data();
  T* pd = gx.data();
  parallel_for(0, planes, detail::pool_plane_grain(4 * H * W), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const T* gp = pg + p * 4 * H * W;
      T* dp = pd + p * H * W;
      for (int64_t h = 0; h < H; ++h) {
        const T* r0 = gp + 2 * h * 2 * W;
        const T* r1 = r0 + 2 * W;
        T* d = dp + h * W;
        for (int64_t w = 0; w < W; ++w) d[w] = (r0[2 * w] + r0[2 * w + 1]) + (r1[2 * w] + r1[2 * w + 1]);
      }
    }
  });
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct MaxPool2dForward {
  static constexpr const char* name = "max_pool2d_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, int64_t kernel, int64_t stride, int64_t padding, const Tensor<T>& y,
                      const Tensor<int64_t>& indices);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::max_pool2d_forward<T>;
};

struct MaxPool2dBackward {
  static constexpr const char* name = "max_pool2d_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& gy, const Tensor<int64_t>& indices, const Tensor<T>& gx);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::max_pool2d_backward<T>;
};

struct UpsampleNearest2xForward {
  static constexpr const char* name = "upsample_nearest2x_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::upsample_nearest2x_forward<T>;
};

struct UpsampleNearest2xBackward {
  static constexpr const char* name = "upsample_nearest2x_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& gy, const Tensor<T>& gx);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::upsample_nearest2x_backward<T>;
};

}  // namespace entries

template <typename T>
struct MaxPool2dBackward : autograd::Node<T> {
  Tensor<int64_t> indices;
  Shape input_shape;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx = Tensor<T>::empty(input_shape, g[0].device());
    if (gx.numel() > 0) dispatch::call<entries::MaxPool2dBackward, T>(gx.device(), g[0].contiguous(), indices, gx);
    return {gx};
  }
  const char* name() const override { return "MaxPool2dBackward"; }
  void release_saved() override { indices = Tensor<int64_t>(); }
};

namespace detail {

template <typename T>
std::pair<Tensor<T>, Tensor<int64_t>> max_pool2d_impl(const Tensor<T>& x, int64_t kernel, int64_t stride,
                                                      int64_t padding, bool want_indices) {
  const char* op = "max_pool2d";
  check_ndim(op, "x", x, 4);
  LGH_CHECK(kernel >= 1 && stride >= 1, op << ": kernel and stride must be >= 1, got kernel " << kernel
                                           << ", stride " << stride);
  LGH_CHECK(padding >= 0 && 2 * padding <= kernel,
            op << ": padding must be in [0, kernel / 2], got padding " << padding << " for kernel " << kernel);
  const int64_t H = x.size(2), W = x.size(3);
  LGH_CHECK(H + 2 * padding >= kernel && W + 2 * padding >= kernel,
            op << ": input of shape " << x.shape().str() << " is smaller than the kernel " << kernel
               << " (padding " << padding << ")");
  const Shape out_shape{x.size(0), x.size(1), pool_out_size(H, kernel, stride, padding),
                        pool_out_size(W, kernel, stride, padding)};
  const bool record = autograd::needs_grad(x);
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(out_shape, x.device());
  // The argmax is needed by backward or by the caller; inference skips it.
  Tensor<int64_t> indices;
  if (record || want_indices) indices = Tensor<int64_t>::empty(out_shape, x.device());
  if (y.numel() > 0) dispatch::call<entries::MaxPool2dForward, T>(x.device(), xc, kernel, stride, padding, y, indices);
  if (record) {
    auto node = std::make_shared<MaxPool2dBackward<T>>();
    node->indices = indices;
    node->input_shape = x.shape();
    autograd::record<T>(node, {&x}, {&y});
  }
  return {y, indices};
}

}  // namespace detail

// y = max_pool2d(x) and the argmax of each output (flat h * W + w within its
// input plane). x: [N, C, H, W]; square kernel, stride and padding
// (padding <= kernel / 2, as PyTorch; padded positions never win).
template <typename T>
std::pair<Tensor<T>, Tensor<int64_t>> max_pool2d_with_indices(const Tensor<T>& x, int64_t kernel = 2,
                                                              int64_t stride = 2, int64_t padding = 0) {
  return detail::max_pool2d_impl(x, kernel, stride, padding, true);
}

template <typename T>
Tensor<T> max_pool2d(const Tensor<T>& x, int64_t kernel = 2, int64_t stride = 2, int64_t padding = 0) {
  return detail::max_pool2d_impl(x, kernel, stride, padding, false).first;
}

template <typename T>
struct UpsampleNearest2xBackward : autograd::Node<T> {
  Shape input_shape;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx = Tensor<T>::empty(input_shape, g[0].device());
    if (gx.numel() > 0) dispatch::call<entries::UpsampleNearest2xBackward, T>(gx.device(), g[0].contiguous(), gx);
    return {gx};
  }
  const char* name() const override { return "UpsampleNearest2xBackward"; }
};

// y[n, c, h, w] = x[n, c, h / 2, w / 2]. x: [N, C, H, W] -> [N, C, 2H, 2W].
template <typename T>
Tensor<T> upsample_nearest2x(const Tensor<T>& x) {
  const char* op = "upsample_nearest2x";
  detail::check_ndim(op, "x", x, 4);
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(Shape{x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)}, x.device());
  if (y.numel() > 0) dispatch::call<entries::UpsampleNearest2xForward, T>(x.device(), xc, y);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<UpsampleNearest2xBackward<T>>();
    node->input_shape = x.shape();
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

}  // namespace ops
}  // namespace lgh
