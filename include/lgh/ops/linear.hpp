// Dense layers: linear (y = x w^T + b, PyTorch's layout) and matmul; on the
// CPU through the GEMM of ops/gemm.hpp.
//
// That GEMM is single-threaded, so detail::parallel_gemm
// splits the output into blocks of rows (or of columns, when there are few
// rows, as at batch 1) and gives each thread its own product. Backward
// kernels overwrite their outputs.
#pragma once

#include "lgh/ops/gemm.hpp"
#include "lgh/ops/reduce.hpp"

namespace lgh {
namespace ops {

namespace detail {

// Below this many multiply-adds a product stays on one thread.
constexpr int64_t kGemmParallelFlops = int64_t(1) << 18;

// C[M, N] = op(A) op(B) (+ C when accumulate), all row-major and contiguous,
// over the thread pool. A is stored [M, K], or [K, M] when trans_a; B is
// [K, N], or [N, K] when trans_b. The longer side of C is split into one
// part per thread (at least 8 wide, so each part is still a GEMM), and each
// part is one call of the single-threaded gemm of ops/gemm.hpp.
template <typename T>
void parallel_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C,
                   bool accumulate = false) {
  const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
  // op(A) rows [r0, r0 + rn) times op(B) columns [c0, c0 + cn).
  auto block = [&](int64_t r0, int64_t rn, int64_t c0, int64_t cn) {
    const T* a = trans_a ? A + r0 : A + r0 * lda;
    const T* b = trans_b ? B + c0 * ldb : B + c0;
    gemm<T>(trans_a, trans_b, rn, cn, K, a, lda, b, ldb, C + r0 * N + c0, N, accumulate);
  };
  const int threads = num_threads();
  if (threads <= 1 || M * N * K < kGemmParallelFlops) {
    block(0, M, 0, N);
    return;
  }
  const bool by_rows = M >= N;
  const int64_t len = by_rows ? M : N;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, len / 8));
  const int64_t step = (len + parts - 1) / parts;
  parallel_for(0, parts, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const int64_t s = p * step, n = std::min(step, len - s);
      if (n <= 0) continue;
      if (by_rows)
        block(s, n, 0, N);
      else
        block(0, M, s, n);
    }
  });
}

}  // namespace detail

// ---- CPU kernels ------------------------------------------------------------------
namespace cpu {

// y[R, out] = x[R, in] w^T (+ b). All contiguous; b may be undefined.
template <typename T>
void linear_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const Tensor<T>& y) {
  const int64_t out = w.size(0), in = w.size(1), R = x.numel() / std::max<int64_t>(1, in);
  T* py = y.data();
  if (b.defined()) {
    const T* pb = b.data();
    for (int64_t r = 0; r < R; ++r) std::copy(pb, pb + out, py + r * out);
  }
  detail::parallel_gemm(false, true, R, out, in, x.data(), w.data(), py, b.defined());
}

// Writes each of gx [R, in], gw [out, in], gb [out] that is defined, from
// gy [R, out]. All contiguous.
template <typename T>
void linear_backward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& gy, const Tensor<T>& gx,
                     const Tensor<T>& gw, const Tensor<T>& gb) {
  const int64_t out = w.size(0), in = w.size(1), R = gy.numel() / std::max<int64_t>(1, out);
  if (gx.defined()) detail::parallel_gemm(false, false, R, in, out, gy.data(), w.data(), gx.data());
  if (gw.defined()) detail::parallel_gemm(true, false, out, in, R, gy.data(), x.data(), gw.data());
  if (gb.defined()) detail::reduce_forward(gy.data(), int64_t(1), R, out, T(1), gb.data());
}

// C[M, N] = op(A) op(B), row-major and contiguous: A is [M, K] ([K, M] when
// trans_a), B is [K, N] ([N, K] when trans_b).
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor<T>& A, const Tensor<T>& B,
          const Tensor<T>& C) {
  detail::parallel_gemm(trans_a, trans_b, M, N, K, A.data(), B.data(), C.data());
}

}  // namespace cpu

// ---- entries ---------------------------------------------------------------------
namespace entries {

struct LinearForward {
  static constexpr const char* name = "linear_forward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const Tensor<T>& y);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::linear_forward<T>;
};

struct LinearBackward {
  static constexpr const char* name = "linear_backward";
  template <typename T>
  using Fn = void (*)(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& gy, const Tensor<T>& gx,
                      const Tensor<T>& gw, const Tensor<T>& gb);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::linear_backward<T>;
};

struct Gemm {
  static constexpr const char* name = "gemm";
  template <typename T>
  using Fn = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor<T>& A,
                      const Tensor<T>& B, const Tensor<T>& C);
  template <typename T>
  static constexpr Fn<T> cpu_entry = &cpu::gemm<T>;
};

}  // namespace entries

// ---- linear -----------------------------------------------------------------

template <typename T>
struct LinearBackward : autograd::Node<T> {
  Tensor<T> x, w;  // contiguous; x saved only when w needs grad
  Shape x_shape;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    Tensor<T> gx, gw, gb;
    if (this->needs_input_grad(0)) gx = Tensor<T>::empty(x_shape, g[0].device());
    if (this->needs_input_grad(1)) gw = Tensor<T>::empty(w.shape(), g[0].device());
    if (this->needs_input_grad(2)) gb = Tensor<T>::empty(Shape{w.size(0)}, g[0].device());
    dispatch::call<entries::LinearBackward, T>(g[0].device(), x, w, g[0].contiguous(), gx, gw, gb);
    return {gx, gw, gb};
  }
  const char* name() const override { return "LinearBackward"; }
  void release_saved() override { x = w = Tensor<T>(); }
};

// y = x w^T + b. x: [..., in] (any leading dims); w: [out, in]; b: [out] or
// undefined. y: [..., out].
template <typename T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b = Tensor<T>()) {
  const char* op = "linear";
  detail::check_ndim(op, "w", w, 2);
  detail::check_defined(op, "x", x);
  const int64_t out = w.size(0), in = w.size(1);
  LGH_CHECK(x.ndim() >= 1 && x.size(-1) == in,
            op << ": 'x' has shape " << x.shape().str() << ", expected [..., " << in << "] to match 'w' of shape "
               << w.shape().str());
  if (b.defined()) detail::check_shape(op, "b", b, Shape{out});
  const Device device = detail::common_device<T>(op, {{"x", &x}, {"w", &w}, {"b", &b}});
  const Tensor<T> xc = x.contiguous(), wc = w.contiguous(), bc = b.defined() ? b.contiguous() : b;
  Shape y_shape = x.shape();
  y_shape[y_shape.ndim() - 1] = out;
  Tensor<T> y = Tensor<T>::empty(y_shape, device);
  dispatch::call<entries::LinearForward, T>(device, xc, wc, bc, y);
  if (autograd::needs_grad(x, w, b)) {
    auto node = std::make_shared<LinearBackward<T>>();
    node->x_shape = x.shape();
    if (w.requires_grad()) node->x = xc.detach();
    node->w = wc.detach();  // also gives backward the sizes
    autograd::record<T>(node, {&x, &w, &b}, {&y});
  }
  return y;
}

// ---- matmul -----------------------------------------------------------------

template <typename T>
struct MatmulBackward : autograd::Node<T> {
  Tensor<T> a, b;  // contiguous; each saved only when the other needs grad
  int64_t M = 0, K = 0, N = 0;
  std::vector<Tensor<T>> backward(const std::vector<Tensor<T>>& g) override {
    const Tensor<T> gc = g[0].contiguous();
    Tensor<T> ga, gb;
    if (this->needs_input_grad(0)) {  // ga = g b^T
      ga = Tensor<T>::empty(Shape{M, K}, gc.device());
      dispatch::call<entries::Gemm, T>(gc.device(), false, true, M, K, N, gc, b, ga);
    }
    if (this->needs_input_grad(1)) {  // gb = a^T g
      gb = Tensor<T>::empty(Shape{K, N}, gc.device());
      dispatch::call<entries::Gemm, T>(gc.device(), true, false, K, N, M, a, gc, gb);
    }
    return {ga, gb};
  }
  const char* name() const override { return "MatmulBackward"; }
  void release_saved() override { a = b = Tensor<T>(); }
};

// a [M, K] times b [K, N].
template <typename T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  const char* op = "matmul";
  detail::check_ndim(op, "a", a, 2);
  detail::check_ndim(op, "b", b, 2);
  LGH_CHECK(a.size(1) == b.size(0), op << ": inner dimensions differ: 'a' has shape " << a.shape().str()
                                       << ", 'b' has shape " << b.shape().str() << " (expected ["
                                       << a.size(1) << ", N])");
  const Device device = detail::common_device<T>(op, {{"a", &a}, {"b", &b}});
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  const Tensor<T> ac = a.contiguous(), bc = b.contiguous();
  Tensor<T> y = Tensor<T>::empty(Shape{M, N}, device);
  dispatch::call<entries::Gemm, T>(device, false, false, M, N, K, ac, bc, y);
  if (autograd::needs_grad(a, b)) {
    auto node = std::make_shared<MatmulBackward<T>>();
    if (b.requires_grad()) node->a = ac.detach();
    if (a.requires_grad()) node->b = bc.detach();
    node->M = M;
    node->K = K;
    node->N = N;
    autograd::record<T>(node, {&a, &b}, {&y});
  }
  return y;
}

}  // namespace ops
}  // namespace lgh
