// Soft-argmax with depth on the GPU (DESIGN §2), with the Eq. (3)
// back-projection fused at the end as an option. For each (b, j), with
// p = softmax over the H*W pixels of beta_j * h[b,j],
//   (u, v, d) = sum_i p_i (x_i, y_i, dm[b,j,i])      (x = column, y = row)
//   optionally xyz = Eq. (3) of (u, v, d) with the intrinsics, z_root, s0 of image b.
//
// Forward: one block per (b, j), one pass over h and dm. Each thread keeps an
// online-softmax state (math::SoftArgmaxState: running max and sums relative
// to it) over its pixels, taking one 16-byte vector at a time as a run of one
// image row (math::soft_argmax_span_state); the states are merged across the
// warp by shuffles and across warps through shared memory (the merge rule of
// docs/fused_ops.md). It also writes (max, sum) per (b, j) for the backward.
//
// Backward, fused per (b, j) (overwrites its outputs): the output gradient is
// (du, dv, dd) plus, when the back-projection was fused, its Jacobian applied
// to dxyz (math::backproject_point_backward); p_i is recomputed from the saved
// (max, sum), so one pass reads h, dm and writes dh, ddm:
//   ds_i = p_i (g_i - <do, o>),  dh_i = beta_j ds_i,  ddm_i = dd p_i,
//   dbeta_j = sum_b sum_i h_i ds_i
// (per-(b, j) shares to a workspace, summed over b in order by a second
// launch). The math is lgh/ops/math/soft_argmax.hpp and backproject.hpp, as in
// the CPU ops (lgh/ops/soft_argmax_depth.hpp, lgh/ops/backproject.hpp).
//
// All arrays contiguous in device memory: h, dm, dh, ddm [B,J,H,W], beta [J],
// uvd, duvd, xyz, dxyz [B,J,3], stats [B,J,2], intrinsics [B,4] = (fx, fy, cx, cy),
// z_root, s0 [B].
#pragma once

#include <cstdint>

#include "block_reduce.cuh"
#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/ops/math/backproject.hpp"
#include "lgh/ops/math/soft_argmax.hpp"

namespace lgh {
namespace cuda {

// The data of the Eq. (3) back-projection (all null: not fused).
template <typename T>
struct Backprojection {
  const T* intrinsics = nullptr;  // [B,4]
  const T* z_root = nullptr;      // [B]
  const T* s0 = nullptr;          // [B]
  bool enabled() const { return intrinsics != nullptr; }
};

namespace detail {
template <typename T, int N>
struct alignas(16) SoftArgmaxPack {
  T v[N];
};
}  // namespace detail

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// Vectors each thread loads before it computes: several 16-byte loads of h
// and dm in flight per thread keep the memory system busy.
constexpr int kSoftArgmaxUnroll = 4;

template <typename T>
__device__ __forceinline__ math::SoftArgmaxState<T> shfl_down_state(const math::SoftArgmaxState<T>& st, int offset) {
  math::SoftArgmaxState<T> o;
  o.m = __shfl_down_sync(kFullWarpMask, st.m, offset);
  o.s = __shfl_down_sync(kFullWarpMask, st.s, offset);
  o.sx = __shfl_down_sync(kFullWarpMask, st.sx, offset);
  o.sy = __shfl_down_sync(kFullWarpMask, st.sy, offset);
  o.sd = __shfl_down_sync(kFullWarpMask, st.sd, offset);
  return o;
}

// The merge of every thread's state (complete in thread 0): shuffles within
// each warp, then warp 0's thread 0 merges the other warps' states in order.
template <typename T, int kThreads>
__device__ __forceinline__ math::SoftArgmaxState<T> block_merge(math::SoftArgmaxState<T> st) {
  __shared__ math::SoftArgmaxState<T> warp_states[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) st.merge(shfl_down_state(st, offset));
  if (threadIdx.x % 32 == 0) warp_states[threadIdx.x / 32] = st;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < kThreads / 32; ++w) st.merge(warp_states[w]);
  return st;
}

template <typename T, int kThreads, bool kVec>
__global__ void __launch_bounds__(kThreads)
    soft_argmax_depth_forward(const T* __restrict__ h, const T* __restrict__ dm, const T* __restrict__ beta, int J,
                              int W, int HW, T* __restrict__ uvd, T* __restrict__ stats,
                              Backprojection<T> bp, T* __restrict__ xyz) {
  const int64_t r = blockIdx.x;  // r = b*J + j
  const T bj = beta[r % J];
  const T* hr = h + r * HW;
  const T* dr = dm + r * HW;
  math::SoftArgmaxState<T> st{};
  if (kVec) {
    constexpr int V = launch::soft_argmax_vector_width(sizeof(T));
    constexpr int U = kSoftArgmaxUnroll;
    using Vec = detail::SoftArgmaxPack<T, V>;
    const int nv = HW / V;
    for (int base = threadIdx.x; base < nv; base += kThreads * U) {
      Vec hv[U], dv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int v = base + u * kThreads;
        if (v < nv) {
          hv[u] = reinterpret_cast<const Vec*>(hr)[v];
          dv[u] = reinterpret_cast<const Vec*>(dr)[v];
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int v = base + u * kThreads;
        if (v < nv) {
          // A vector never crosses a row (W % V == 0): it is a run of row y from x0.
          const int i = v * V, y = i / W;
          st.merge(math::soft_argmax_span_state(hv[u].v, dv[u].v, V, bj, static_cast<T>(i - y * W),
                                                static_cast<T>(y)));
        }
      }
    }
  } else {
    for (int i = threadIdx.x; i < HW; i += kThreads) {
      const int y = i / W;
      st.push(bj * hr[i], static_cast<T>(i - y * W), static_cast<T>(y), dr[i]);
    }
  }
  st = block_merge<T, kThreads>(st);
  if (threadIdx.x == 0) {
    T o[3];
    st.result(o);
    uvd[r * 3] = o[0];
    uvd[r * 3 + 1] = o[1];
    uvd[r * 3 + 2] = o[2];
    if (stats) {
      stats[r * 2] = st.m;
      stats[r * 2 + 1] = st.s;
    }
    if (xyz) {
      const int64_t b = r / J;
      math::backproject_point(o, bp.intrinsics + b * 4, bp.z_root[b], bp.s0[b], xyz + r * 3);  // Eq. (3)
    }
  }
}

template <typename T, int kThreads, bool kVec>
__global__ void __launch_bounds__(kThreads)
    soft_argmax_depth_backward(const T* __restrict__ h, const T* __restrict__ dm, const T* __restrict__ beta, int J,
                               int W, int HW, const T* __restrict__ uvd, const T* __restrict__ stats,
                               const T* __restrict__ duvd, const T* __restrict__ dxyz, Backprojection<T> bp,
                               T* __restrict__ dh, T* __restrict__ ddm, T* __restrict__ dbeta_partial) {
  const int64_t r = blockIdx.x;  // r = b*J + j
  const int64_t b = r / J;
  // The gradient reaching (u, v, d): its own, plus Eq. (3)'s Jacobian applied to dxyz.
  T g[3] = {T(0), T(0), T(0)};
  if (duvd) {
    g[0] = duvd[r * 3];
    g[1] = duvd[r * 3 + 1];
    g[2] = duvd[r * 3 + 2];
  }
  if (dxyz) {
    T t[3];
    math::backproject_point_backward(uvd + r * 3, bp.intrinsics + b * 4, bp.z_root[b], bp.s0[b], dxyz + r * 3, t);
    g[0] += t[0];
    g[1] += t[1];
    g[2] += t[2];
  }
  const math::SoftArgmaxBackwardCoeffs<T> c =
      math::soft_argmax_backward_coeffs(beta[r % J], stats[r * 2], stats[r * 2 + 1], uvd + r * 3, g);
  const T* hr = h + r * HW;
  const T* dr = dm + r * HW;
  T* dhr = dh ? dh + r * HW : nullptr;
  T* ddr = ddm ? ddm + r * HW : nullptr;
  T acc = T(0);
  if (kVec) {
    constexpr int V = launch::soft_argmax_vector_width(sizeof(T));
    constexpr int U = kSoftArgmaxUnroll;
    using Vec = detail::SoftArgmaxPack<T, V>;
    const int nv = HW / V;
    for (int base = threadIdx.x; base < nv; base += kThreads * U) {
      Vec hv[U], dv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int v = base + u * kThreads;
        if (v < nv) {
          hv[u] = reinterpret_cast<const Vec*>(hr)[v];
          dv[u] = reinterpret_cast<const Vec*>(dr)[v];
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int v = base + u * kThreads;
        if (v < nv) {
          const int i = v * V, y = i / W;
          const T fy = static_cast<T>(y), x0 = static_cast<T>(i - y * W);
          Vec gh, gd;
#pragma unroll
          for (int e = 0; e < V; ++e)
            acc += math::soft_argmax_backward_point(c, hv[u].v[e], dv[u].v[e], x0 + static_cast<T>(e), fy, &gh.v[e],
                                                    &gd.v[e]);
          if (dhr) reinterpret_cast<Vec*>(dhr)[v] = gh;
          if (ddr) reinterpret_cast<Vec*>(ddr)[v] = gd;
        }
      }
    }
  } else {
    for (int i = threadIdx.x; i < HW; i += kThreads) {
      const int y = i / W;
      T gh, gd;
      acc += math::soft_argmax_backward_point(c, hr[i], dr[i], static_cast<T>(i - y * W), static_cast<T>(y), &gh, &gd);
      if (dhr) dhr[i] = gh;
      if (ddr) ddr[i] = gd;
    }
  }
  if (dbeta_partial) {
    acc = block_sum(acc);
    if (threadIdx.x == 0) dbeta_partial[r] = acc;
  }
}

// dbeta_j = sum over b, in order, of the per-(b, j) shares.
template <typename T>
__global__ void soft_argmax_dbeta_sum(const T* __restrict__ partial, int64_t B, int J, T* __restrict__ dbeta) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= J) return;
  T acc = T(0);
  for (int64_t b = 0; b < B; ++b) acc += partial[b * J + j];
  dbeta[j] = acc;
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
namespace detail {

inline void check_soft_argmax(const char* op, int64_t B, int64_t J, int64_t H, int64_t W) {
  LGH_CHECK(B >= 1 && J >= 1 && H >= 1 && W >= 1 && J <= 2147483647,
            op << ": heatmaps must be [B, J, H, W] with every extent >= 1, got [" << B << ", " << J << ", " << H << ", "
               << W << "]");
  LGH_CHECK(H * W <= 2147483647 / 2, op << ": maps of " << H << " x " << W << " pixels are too large (at most 2^30 pixels)");
  LGH_CHECK(B * J <= launch::kMaxGridX,
            op << ": B*J = " << B * J << " maps is too many for one launch ([" << B << ", " << J << ", " << H << ", "
               << W << "])");
}

template <typename T>
inline void check_backprojection(const char* op, const Backprojection<T>& bp) {
  LGH_CHECK((bp.intrinsics == nullptr) == (bp.z_root == nullptr) && (bp.z_root == nullptr) == (bp.s0 == nullptr),
            op << ": the fused back-projection needs all of intrinsics [B,4], z_root [B] and s0 [B], or none");
}

inline bool aligned16_or_null(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Instantiates the kernel for the block size the map needs.
template <template <typename, int, bool> class Launch, typename T, typename... Args>
inline void soft_argmax_dispatch(unsigned threads, bool vec, Args&&... args) {
  switch (threads) {
    case 32: vec ? Launch<T, 32, true>::run(args...) : Launch<T, 32, false>::run(args...); break;
    case 64: vec ? Launch<T, 64, true>::run(args...) : Launch<T, 64, false>::run(args...); break;
    case 128: vec ? Launch<T, 128, true>::run(args...) : Launch<T, 128, false>::run(args...); break;
    default: vec ? Launch<T, 256, true>::run(args...) : Launch<T, 256, false>::run(args...); break;
  }
}

template <typename T, int kThreads, bool kVec>
struct SoftArgmaxForwardLaunch {
  static void run(int64_t blocks, cudaStream_t stream, const T* h, const T* dm, const T* beta, int J, int W, int HW,
                  T* uvd, T* stats, const Backprojection<T>& bp, T* xyz) {
    launch_kernel("soft_argmax_depth_forward", kernels::soft_argmax_depth_forward<T, kThreads, kVec>,
                  static_cast<unsigned>(blocks), kThreads, 0, stream, h, dm, beta, J, W, HW, uvd, stats, bp, xyz);
  }
};

template <typename T, int kThreads, bool kVec>
struct SoftArgmaxBackwardLaunch {
  static void run(int64_t blocks, cudaStream_t stream, const T* h, const T* dm, const T* beta, int J, int W, int HW,
                  const T* uvd, const T* stats, const T* duvd, const T* dxyz, const Backprojection<T>& bp,
                  T* dh, T* ddm, T* partial) {
    launch_kernel("soft_argmax_depth_backward", kernels::soft_argmax_depth_backward<T, kThreads, kVec>,
                  static_cast<unsigned>(blocks), kThreads, 0, stream, h, dm, beta, J, W, HW, uvd, stats, duvd, dxyz, bp,
                  dh, ddm, partial);
  }
};

}  // namespace detail

// uvd [B,J,3] <- soft-argmax of heatmaps, depthmaps [B,J,H,W] with beta [J];
// stats [B,J,2] = (max, sum) per map when not null (the backward needs them);
// with bp enabled, also xyz [B,J,3] = Eq. (3) of uvd.
template <typename T>
inline void soft_argmax_depth_forward(const T* heatmaps, const T* depthmaps, const T* beta, int64_t B, int64_t J,
                                      int64_t H, int64_t W, T* uvd, T* stats, const Backprojection<T>& bp, T* xyz,
                                      cudaStream_t stream) {
  const char* op = "cuda::soft_argmax_depth_forward";
  detail::check_soft_argmax(op, B, J, H, W);
  detail::check_backprojection(op, bp);
  LGH_CHECK(heatmaps && depthmaps && beta && uvd,
            op << ": null heatmaps, depthmaps, beta or uvd ([" << B << ", " << J << ", " << H << ", " << W << "])");
  LGH_CHECK(bp.enabled() == (xyz != nullptr),
            op << ": xyz [B,J,3] is written exactly when the back-projection data is given");
  const int HW = static_cast<int>(H * W);
  const bool vec = launch::soft_argmax_can_vectorize(
      W, sizeof(T), detail::aligned16_or_null(heatmaps) && detail::aligned16_or_null(depthmaps));
  detail::soft_argmax_dispatch<detail::SoftArgmaxForwardLaunch, T>(launch::soft_argmax_threads(HW), vec, B * J, stream,
                                                                  heatmaps, depthmaps, beta, static_cast<int>(J),
                                                                  static_cast<int>(W), HW, uvd, stats, bp, xyz);
}

// Bytes of workspace the backward needs for dbeta (B*J partial sums).
template <typename T>
inline size_t soft_argmax_depth_backward_workspace_bytes(int64_t B, int64_t J) {
  return static_cast<size_t>(B * J) * sizeof(T);
}

// dh, ddm [B,J,H,W] and dbeta [J] (each may be null: not wanted) from the
// forward's inputs, uvd and stats, and the output gradient: duvd [B,J,3]
// and/or, when the back-projection was fused (bp enabled), dxyz [B,J,3].
// dbeta needs soft_argmax_depth_backward_workspace_bytes of workspace.
template <typename T>
inline void soft_argmax_depth_backward(const T* heatmaps, const T* depthmaps, const T* beta, int64_t B, int64_t J,
                                       int64_t H, int64_t W, const T* uvd, const T* stats, const T* duvd,
                                       const T* dxyz, const Backprojection<T>& bp, T* dh, T* ddm, T* dbeta,
                                       void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const char* op = "cuda::soft_argmax_depth_backward";
  detail::check_soft_argmax(op, B, J, H, W);
  detail::check_backprojection(op, bp);
  LGH_CHECK(heatmaps && depthmaps && beta && uvd && stats,
            op << ": null heatmaps, depthmaps, beta, uvd or stats ([" << B << ", " << J << ", " << H << ", " << W
               << "])");
  LGH_CHECK(duvd || dxyz, op << ": no output gradient (duvd and dxyz both null)");
  LGH_CHECK(!dxyz || bp.enabled(), op << ": dxyz given without the back-projection data (intrinsics, z_root, s0)");
  if (!dh && !ddm && !dbeta) return;
  if (dbeta) {
    const size_t need = soft_argmax_depth_backward_workspace_bytes<T>(B, J);
    LGH_CHECK(workspace != nullptr && workspace_bytes >= need,
              op << ": dbeta needs " << need << " bytes of workspace, got " << workspace_bytes << " ([" << B << ", "
                 << J << ", " << H << ", " << W << "])");
  }
  const int HW = static_cast<int>(H * W);
  const bool vec = launch::soft_argmax_can_vectorize(
      W, sizeof(T),
      detail::aligned16_or_null(heatmaps) && detail::aligned16_or_null(depthmaps) && detail::aligned16_or_null(dh) &&
          detail::aligned16_or_null(ddm));
  T* partial = dbeta ? static_cast<T*>(workspace) : nullptr;
  detail::soft_argmax_dispatch<detail::SoftArgmaxBackwardLaunch, T>(
      launch::soft_argmax_threads(HW), vec, B * J, stream, heatmaps, depthmaps, beta, static_cast<int>(J),
      static_cast<int>(W), HW, uvd,
      stats, duvd, dxyz, bp, dh, ddm, partial);
  if (dbeta) {
    const launch::Launch1D l = launch::soft_argmax_dbeta_launch(J);
    launch_kernel("soft_argmax_depth_backward (dbeta)", kernels::soft_argmax_dbeta_sum<T>,
                  static_cast<unsigned>(l.blocks), l.threads, 0, stream, partial, B, static_cast<int>(J), dbeta);
  }
}

}  // namespace cuda
}  // namespace lgh
