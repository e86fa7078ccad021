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

}  // namespace detail

// Forward kernel. x: contiguous [N, C, H, W]; y, indices: contiguous
// [N, C, Ho, Wo] (written).
template <typename T>
void max_pool2d_forward(const Tensor<T>& x, int64_t kernel, int64_t stride, int64_t padding, Tensor<T>& y,
                        Tensor<int64_t>& indices) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = y.size(2), Wo = y.size(3);
  const T* px = x.data();
  T* py = y.data();
  int64_t* pi = indices.data();
  const bool fast = kernel == 2 && stride == 2 && padding == 0;
  parallel_for(0, planes, detail::pool_plane_grain(H * W), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const T* xp = px + p * H * W;
      T* yp = py + p * Ho * Wo;
      int64_t* ip = pi + p * Ho * Wo;
      if (fast) {
        // The 2x2 / stride 2 window of the model, unrolled; order of the
        // comparisons = row-major order of the window, so ties keep the first.
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const T* r0 = xp + 2 * oh * W;
          const T* r1 = r0 + W;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t w0 = 2 * ow;
            T m = r0[w0];
            int64_t idx = 2 * oh * W + w0;
            if (detail::pool_takes(r0[w0 + 1], m)) { m = r0[w0 + 1]; idx = 2 * oh * W + w0 + 1; }
            if (detail::pool_takes(r1[w0], m)) { m = r1[w0]; idx = (2 * oh + 1) * W + w0; }
            if (detail::pool_takes(r1[w0 + 1], m)) { m = r1[w0 + 1]; idx = (2 * oh + 1) * W + w0 + 1; }
            yp[oh * Wo + ow] = m;
            ip[oh * Wo + ow] = idx;
          }
        }
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
          ip[oh * Wo + ow] = idx;
        }
      }
    }
  });
}

// Backward kernel. gy, indices: contiguous [N, C, Ho, Wo]; gx: contiguous
// [N, C, H, W] (overwritten).
template <typename T>
void max_pool2d_backward(const Tensor<T>& gy, const Tensor<int64_t>& indices, Tensor<T>& gx) {
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

template <typename T>
struct MaxPool2dBackward : autograd::Node<T> {
  Tensor<int64_t> indices;
  Shape input_shape;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx = Tensor<T>::empty(input_shape, g[0].device());
    max_pool2d_backward(g[0].contiguous(), indices, gx);
    return {gx};
  }
  const char* name() const override { return "MaxPool2dBackward"; }
  void release_saved() override { indices = Tensor<int64_t>(); }
};

// y = max_pool2d(x) and the argmax of each output (flat h * W + w within its
// input plane). x: [N, C, H, W]; square kernel, stride and padding
// (padding <= kernel / 2, as PyTorch; padded positions never win).
template <typename T>
std::pair<Tensor<T>, Tensor<int64_t>> max_pool2d_with_indices(const Tensor<T>& x, int64_t kernel = 2,
                                                              int64_t stride = 2, int64_t padding = 0) {
  const char* op = "max_pool2d";
  detail::check_ndim(op, "x", x, 4);
  detail::check_cpu<T>(op, {&x});
  LGH_CHECK(kernel >= 1 && stride >= 1, op << ": kernel and stride must be >= 1, got kernel " << kernel
                                           << ", stride " << stride);
  LGH_CHECK(padding >= 0 && 2 * padding <= kernel,
            op << ": padding must be in [0, kernel / 2], got padding " << padding << " for kernel " << kernel);
  const int64_t H = x.size(2), W = x.size(3);
  LGH_CHECK(H + 2 * padding >= kernel && W + 2 * padding >= kernel,
            op << ": input of shape " << x.shape().str() << " is smaller than the kernel " << kernel
               << " (padding " << padding << ")");
  const Shape out_shape{x.size(0), x.size(1), detail::pool_out_size(H, kernel, stride, padding),
                        detail::pool_out_size(W, kernel, stride, padding)};
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(out_shape, x.device());
  Tensor<int64_t> indices = Tensor<int64_t>::empty(out_shape, x.device());
  max_pool2d_forward(xc, kernel, stride, padding, y, indices);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<MaxPool2dBackward<T>>();
    node->indices = indices;
    node->input_shape = x.shape();
    autograd::record<T>(node, {&x}, {&y});
  }
  return {y, indices};
}

template <typename T>
Tensor<T> max_pool2d(const Tensor<T>& x, int64_t kernel = 2, int64_t stride = 2, int64_t padding = 0) {
  return max_pool2d_with_indices(x, kernel, stride, padding).first;
}

// Forward kernel of upsample_nearest2x. x: contiguous [N, C, H, W]; y:
// contiguous [N, C, 2H, 2W] (written).
template <typename T>
void upsample_nearest2x_forward(const Tensor<T>& x, Tensor<T>& y) {
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
void upsample_nearest2x_backward(const Tensor<T>& gy, Tensor<T>& gx) {
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

template <typename T>
struct UpsampleNearest2xBackward : autograd::Node<T> {
  Shape input_shape;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx = Tensor<T>::empty(input_shape, g[0].device());
    upsample_nearest2x_backward(g[0].contiguous(), gx);
    return {gx};
  }
  const char* name() const override { return "UpsampleNearest2xBackward"; }
};

// y[n, c, h, w] = x[n, c, h / 2, w / 2]. x: [N, C, H, W] -> [N, C, 2H, 2W].
template <typename T>
Tensor<T> upsample_nearest2x(const Tensor<T>& x) {
  const char* op = "upsample_nearest2x";
  detail::check_ndim(op, "x", x, 4);
  detail::check_cpu<T>(op, {&x});
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(Shape{x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)}, x.device());
  upsample_nearest2x_forward(xc, y);
  if (autograd::needs_grad(x)) {
    auto node = std::make_shared<UpsampleNearest2xBackward<T>>();
    node->input_shape = x.shape();
    autograd::record<T>(node, {&x}, {&y});
  }
  return y;
}

}  // namespace ops
}  // namespace lgh
