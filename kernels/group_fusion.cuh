// Feature fusion among the groups, Eq. (9), on the GPU: for each group k a
// 1x1 convolution over the channel concatenation of the K branch outputs,
//   G_k = sum_m W_k[:, mP:(m+1)P] . F_m + b_k,
// F_m, G_k [B,P,H,W], W_k [P, K*P] (PyTorch's [P, K*P, 1, 1]), b_k [P], as the
// CPU op lgh/ops/group_fusion.hpp. The concatenation is never built: the
// kernels read row c = m*P + q of the virtual concatenation straight from F_m
// through a table of row pointers, and write row r = k*P + p of the result
// straight to G_k. Per image this is one GEMM (fused_launch.hpp):
//   G[b] = Wall . Fcat[b] + bias,   Wall = [W_0; ...; W_{K-1}]  (M x M, M = K*P).
//
// Kernels: a shared-memory tiled GEMM (32 output channels x 128 pixels per
// block, 16 input channels per stage, 4 x 4 accumulators per thread) for the
// forward and for the input gradient (the same kernel reading Wall
// transposed); a split-reduction GEMM for the weight gradient (96 x 96 entries
// of dWall per block, 6 x 6 per thread, the next stage loaded into registers
// during the products), whose splits are summed in order by a second launch.
// The eval form (group_fusion_forward with scale and shift, as the CPU's
// group_fusion_eval) applies the folded BatchNorm and the ReLU in the
// forward's epilogue (math::fusion_epilogue, as the CPU op).
//
// Gradients (group_fusion_backward overwrites them; dG_k = dL/dG_k):
//   dF_m                = sum_k W_k[:, mP:(m+1)P]^T . dG_k      (dFcat[b] = Wall^T . dGcat[b])
//   dW_k[:, mP:(m+1)P]  = sum_b dG_k[b] . F_m[b]^T             (dWall = sum_b dGcat[b] . Fcat[b]^T)
//   db_k                = sum_b sum_{h,w} dG_k[b]
// Derivation, launch shapes and memory traffic: docs/fused_ops.md.
//
// Pointers are host arrays of K device pointers, every tensor contiguous.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "fused_launch.hpp"
#include "lgh/ops/math/group_fusion.hpp"

namespace lgh {
namespace cuda {

namespace detail {

// 16-byte aligned groups of N elements, so that a tile row moves with vector
// loads and stores (N * sizeof(T) a multiple of 16).
template <typename T, int N>
struct alignas(16) Pack {
  T v[N];
};
// Two elements, aligned to their size (shared-memory reads of pairs).
template <typename T>
struct alignas(2 * sizeof(T)) Pack2 {
  T v[2];
};

// The per-group pointers, by value in the kernel's parameters.
template <typename T>
struct FusionGemmArgs {
  int K = 0, P = 0, M = 0;
  int64_t HW = 0;
  const T* in[launch::kMaxFusionGroups] = {};      // rows of the B operand: F_m (forward) or dG_k (input gradient)
  const T* weight[launch::kMaxFusionGroups] = {};  // W_k [P, M]
  T* out[launch::kMaxFusionGroups] = {};           // G_k (forward) or dF_m (input gradient)
  const T* bias[launch::kMaxFusionGroups] = {};    // b_k, or null (input gradient)
  const T* scale[launch::kMaxFusionGroups] = {};   // eval epilogue, or null
  const T* shift[launch::kMaxFusionGroups] = {};
  bool relu = false;
};

template <typename T>
struct FusionWgradArgs {
  int K = 0, P = 0, M = 0;
  int64_t B = 0, HW = 0;
  launch::FusionWgradPlan plan;
  const T* grad_out[launch::kMaxFusionGroups] = {};  // dG_k
  const T* features[launch::kMaxFusionGroups] = {};  // F_m
  T* workspace = nullptr;                             // splits x (M*M + M)
};

// Where the weight-gradient sums go: dW_k [P, M] and db_k [P], null when not wanted.
template <typename T>
struct FusionGradTargets {
  T* weight[launch::kMaxFusionGroups] = {};
  T* bias[launch::kMaxFusionGroups] = {};
};

}  // namespace detail

// ---- kernels ------------------------------------------------------------------
namespace kernels {

// G (or dF) tile: rows r0..r0+BM of the virtual output, pixels n0..n0+BN of
// image blockIdx.z. kTransposed reads A(r, c) = Wall[c][r] (input gradient)
// instead of Wall[r][c]. kVec: HW % 4 == 0 and every pointer 16-byte aligned.
template <typename T, bool kTransposed, bool kVec>
__global__ void __launch_bounds__(launch::kFusionThreads) group_fusion_gemm(detail::FusionGemmArgs<T> a) {
  constexpr int BM = launch::kFusionBM, BN = launch::kFusionBN, BK = launch::kFusionBK;
  constexpr int TM = launch::kFusionTM, TN = launch::kFusionTN, PAD = launch::kFusionPad;
  constexpr int NT = launch::kFusionThreads;
  using PackM = detail::Pack<T, TM>;
  using PackN = detail::Pack<T, TN>;
  static_assert((BM * BK) % NT == 0 && (BK * BN / TN) % NT == 0 && (BK * BN) % NT == 0, "tile loads must split evenly");
  __shared__ PackM As_raw[BK * (BM + PAD) / TM];
  __shared__ PackN Bs_raw[BK * BN / TN];
  LGH_DYNAMIC_SHARED(fusion_table_raw);
  T(*As)[BM + PAD] = reinterpret_cast<T(*)[BM + PAD]>(As_raw);
  T(*Bs)[BN] = reinterpret_cast<T(*)[BN]>(Bs_raw);
  const T** in_row = reinterpret_cast<const T**>(fusion_table_raw);  // row c of the B operand, image 0
  const T** w_row = in_row + a.M;                                     // row r of Wall

  const int t = threadIdx.x;
  const int M = a.M, P = a.P;
  const int64_t HW = a.HW;
  for (int i = t; i < M; i += NT) {
    const int g = i / P, q = i - g * P;
    in_row[i] = a.in[g] + q * HW;
    w_row[i] = a.weight[g] + static_cast<int64_t>(q) * M;
  }
  __syncthreads();

  const int64_t img = static_cast<int64_t>(blockIdx.z) * P * HW;  // image b in every F_m / G_k
  const int r0 = blockIdx.y * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int ty = t / (BN / TN), tx = t % (BN / TN);

  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int c0 = 0; c0 < M; c0 += BK) {
    // A tile, BM x BK, stored k-major; the loads walk the contiguous index.
#pragma unroll
    for (int it = 0; it < BM * BK / NT; ++it) {
      const int e = t + it * NT;
      const int rr = kTransposed ? e % BM : e / BK;
      const int kk = kTransposed ? e / BM : e % BK;
      const int r = r0 + rr, c = c0 + kk;
      T v = T(0);
      if (r < M && c < M) v = kTransposed ? w_row[c][r] : w_row[r][c];
      As[kk][rr] = v;
    }
    // B tile, BK x BN: rows of the concatenation, read in place.
    if (kVec) {
#pragma unroll
      for (int it = 0; it < BK * BN / TN / NT; ++it) {
        const int e = t + it * NT;
        const int kk = e / (BN / TN), nn = (e % (BN / TN)) * TN;
        const int c = c0 + kk;
        const int64_t n = n0 + nn;
        PackN v;
        if (c < M && n < HW) {
          v = *reinterpret_cast<const PackN*>(in_row[c] + img + n);
        } else {
#pragma unroll
          for (int j = 0; j < TN; ++j) v.v[j] = T(0);
        }
        *reinterpret_cast<PackN*>(&Bs[kk][nn]) = v;
      }
    } else {
#pragma unroll
      for (int it = 0; it < BK * BN / NT; ++it) {
        const int e = t + it * NT;
        const int kk = e / BN, nn = e % BN;
        const int c = c0 + kk;
        const int64_t n = n0 + nn;
        Bs[kk][nn] = (c < M && n < HW) ? in_row[c][img + n] : T(0);
      }
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      const PackM av = *reinterpret_cast<const PackM*>(&As[k][ty * TM]);
      const PackN bv = *reinterpret_cast<const PackN*>(&Bs[k][tx * TN]);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += av.v[i] * bv.v[j];
    }
    __syncthreads();
  }

  // Epilogue: bias, and in eval the folded BatchNorm + ReLU (as the CPU op).
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int r = r0 + ty * TM + i;
    if (r >= M) continue;
    const int g = r / P, p = r - g * P;
    T* orow = a.out[g] + img + static_cast<int64_t>(p) * HW;
    const T bias = a.bias[g] ? a.bias[g][p] : T(0);
    const bool eval = a.scale[g] != nullptr;
    const T sc = eval ? a.scale[g][p] : T(1), sh = eval ? a.shift[g][p] : T(0);
    PackN o;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const T v = acc[i][j] + bias;
      o.v[j] = eval ? math::fusion_epilogue(v, sc, sh, a.relu) : v;
    }
    const int64_t n = n0 + tx * TN;
    if (kVec) {
      if (n < HW) *reinterpret_cast<PackN*>(orow + n) = o;
    } else {
#pragma unroll
      for (int j = 0; j < TN; ++j)
        if (n + j < HW) orow[n + j] = o.v[j];
    }
  }
}

// Partial dWall (and bias gradient) of split blockIdx.z: tile rows r0.. of
// dGcat, tile columns c0.. of Fcat, summed over the split's pixels. The next
// stage's tiles are loaded into registers while the current one is multiplied
// from shared memory, so the loads' latency overlaps the arithmetic even with
// few blocks per multiprocessor.
template <typename T, bool kVec>
__global__ void __launch_bounds__(launch::kFusionWgradThreads) group_fusion_wgrad_partial(
    detail::FusionWgradArgs<T> a) {
  constexpr int BW = launch::kFusionBW, BK = launch::kFusionBKW, TW = launch::kFusionTW, PAD = launch::kFusionPad;
  constexpr int NT = launch::kFusionWgradThreads;
  constexpr int V = 4;                                      // pixels per vector load (kVec)
  constexpr int kLoads = kVec ? (BW * BK / V + NT - 1) / NT  // per thread and tile
                              : (BW * BK + NT - 1) / NT;
  using Pack2 = detail::Pack2<T>;
  using PackV = detail::Pack<T, V>;
  static_assert(TW % 2 == 0 && BK % V == 0, "accumulator rows are read in pairs, vectors never straddle a stage");
  __shared__ PackV As_raw[BK * (BW + PAD) / V];
  __shared__ PackV Bs_raw[BK * (BW + PAD) / V];
  LGH_DYNAMIC_SHARED(fusion_table_raw);
  T(*As)[BW + PAD] = reinterpret_cast<T(*)[BW + PAD]>(As_raw);  // dG rows, pixel-major
  T(*Bs)[BW + PAD] = reinterpret_cast<T(*)[BW + PAD]>(Bs_raw);  // F rows, pixel-major
  const T** g_row = reinterpret_cast<const T**>(fusion_table_raw);
  const T** f_row = g_row + a.M;

  const int t = threadIdx.x;
  const int M = a.M, P = a.P;
  const int64_t HW = a.HW;
  for (int i = t; i < M; i += NT) {
    const int g = i / P, q = i - g * P;
    g_row[i] = a.grad_out[g] + q * HW;
    f_row[i] = a.features[g] + q * HW;
  }
  __syncthreads();

  const int64_t s = blockIdx.z;
  const launch::FusionWgradRange range = launch::fusion_wgrad_range(a.plan, s, a.B, HW);
  const int64_t per_image = (range.n1 - range.n0 + BK - 1) / BK;
  const int64_t stages = (range.b1 - range.b0) * per_image;
  const int r0 = blockIdx.y * BW, c0 = blockIdx.x * BW;
  const int ty = t / (BW / TW), tx = t % (BW / TW);
  const bool bias_block = blockIdx.x == 0;  // one column of tiles also sums the bias gradient

  // Registers of the stage in flight: kLoads vectors (or elements) of each tile.
  PackV gv[kLoads], fv[kLoads];
  auto load_stage = [&](int64_t st) {
    const int64_t img = (range.b0 + st / per_image) * P * HW;
    const int64_t n0 = range.n0 + (st % per_image) * BK;
#pragma unroll
    for (int l = 0; l < kLoads; ++l) {
      const int e = t + l * NT;
      const int rr = kVec ? e / (BK / V) : e / BK;
      const int64_t n = n0 + (kVec ? (e % (BK / V)) * V : e % BK);
      const bool ok = e < (kVec ? BW * BK / V : BW * BK) && n < range.n1;
#pragma unroll
      for (int j = 0; j < V; ++j) gv[l].v[j] = fv[l].v[j] = T(0);
      if (kVec) {
        if (ok && r0 + rr < M) gv[l] = *reinterpret_cast<const PackV*>(g_row[r0 + rr] + img + n);
        if (ok && c0 + rr < M) fv[l] = *reinterpret_cast<const PackV*>(f_row[c0 + rr] + img + n);
      } else {
        if (ok && r0 + rr < M) gv[l].v[0] = g_row[r0 + rr][img + n];
        if (ok && c0 + rr < M) fv[l].v[0] = f_row[c0 + rr][img + n];
      }
    }
  };
  auto store_stage = [&]() {
#pragma unroll
    for (int l = 0; l < kLoads; ++l) {
      const int e = t + l * NT;
      if (e >= (kVec ? BW * BK / V : BW * BK)) continue;
      const int rr = kVec ? e / (BK / V) : e / BK;
      const int kk = kVec ? (e % (BK / V)) * V : e % BK;
#pragma unroll
      for (int j = 0; j < (kVec ? V : 1); ++j) {
        As[kk + j][rr] = gv[l].v[j];
        Bs[kk + j][rr] = fv[l].v[j];
      }
    }
  };

  T acc[TW][TW];
#pragma unroll
  for (int i = 0; i < TW; ++i)
#pragma unroll
    for (int j = 0; j < TW; ++j) acc[i][j] = T(0);
  T bias_acc = T(0);

  if (stages > 0) {
    load_stage(0);
    store_stage();
  }
  __syncthreads();
  for (int64_t st = 0; st < stages; ++st) {
    if (st + 1 < stages) load_stage(st + 1);  // in flight during the products below
    if (bias_block && t < BW) {
#pragma unroll
      for (int k = 0; k < BK; ++k) bias_acc += As[k][t];
    }
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      T av[TW], bv[TW];
#pragma unroll
      for (int i = 0; i < TW / 2; ++i) {
        const Pack2 x = *reinterpret_cast<const Pack2*>(&As[k][ty * TW + 2 * i]);
        const Pack2 y = *reinterpret_cast<const Pack2*>(&Bs[k][tx * TW + 2 * i]);
        av[2 * i] = x.v[0];
        av[2 * i + 1] = x.v[1];
        bv[2 * i] = y.v[0];
        bv[2 * i + 1] = y.v[1];
      }
#pragma unroll
      for (int i = 0; i < TW; ++i)
#pragma unroll
        for (int j = 0; j < TW; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
    if (st + 1 < stages) store_stage();
    __syncthreads();
  }

  T* part = a.workspace + s * (static_cast<int64_t>(M) * M + M);
#pragma unroll
  for (int i = 0; i < TW; ++i) {
    const int r = r0 + ty * TW + i;
    if (r >= M) continue;
#pragma unroll
    for (int j = 0; j < TW; ++j) {
      const int c = c0 + tx * TW + j;
      if (c < M) part[static_cast<int64_t>(r) * M + c] = acc[i][j];
    }
  }
  if (bias_block && t < BW && r0 + t < M) part[static_cast<int64_t>(M) * M + r0 + t] = bias_acc;
}

// dW_k and db_k from the partial sums: each entry sums its splits in order.
template <typename T>
__global__ void group_fusion_wgrad_finalize(const T* __restrict__ workspace, int64_t splits, int P, int M,
                                            detail::FusionGradTargets<T> dst) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(M) * M + M;
  if (e >= stride) return;
  T sum = T(0);
  for (int64_t s = 0; s < splits; ++s) sum += workspace[s * stride + e];
  const bool is_weight = e < static_cast<int64_t>(M) * M;
  const int r = static_cast<int>(is_weight ? e / M : e - static_cast<int64_t>(M) * M);
  const int g = r / P, p = r - g * P;
  // The group's pointers by constant indices (a run-time index into the
  // kernel parameters would copy them to local memory).
  T* w = nullptr;
  T* db = nullptr;
#pragma unroll
  for (int k = 0; k < launch::kMaxFusionGroups; ++k)
    if (k == g) {
      w = dst.weight[k];
      db = dst.bias[k];
    }
  if (is_weight) {
    if (w) w[static_cast<int64_t>(p) * M + (e - static_cast<int64_t>(r) * M)] = sum;
  } else if (db) {
    db[p] = sum;
  }
}

}  // namespace kernels

// ---- launchers ----------------------------------------------------------------
namespace detail {

inline void check_fusion_dims(const char* op, int64_t K, int64_t B, int64_t P, int64_t HW) {
  LGH_CHECK(K >= 1 && K <= launch::kMaxFusionGroups,
            op << ": " << K << " groups; the CUDA kernels take 1 to " << launch::kMaxFusionGroups);
  LGH_CHECK(B >= 1 && P >= 1 && HW >= 1,
            op << ": features must be K x [B, P, H, W] with no zero extent, got " << K << " x [" << B << ", " << P
               << ", H*W = " << HW << "]");
  LGH_CHECK(K * P <= launch::kMaxFusionRows,
            op << ": K*P = " << K * P << " concatenated channels (K = " << K << ", P = " << P
               << "); the CUDA kernels take at most " << launch::kMaxFusionRows);
  LGH_CHECK(B <= launch::kMaxGridYZ, op << ": batch " << B << " exceeds the " << launch::kMaxGridYZ
                                        << " images of one launch (features K x [" << B << ", " << P << ", " << HW
                                        << " pixels])");
  LGH_CHECK(launch::ceil_div(HW, launch::kFusionBN) <= launch::kMaxGridX,
            op << ": " << HW << " pixels per map is too large for one launch");
}

template <typename T>
inline void check_group_pointers(const char* op, const char* what, const T* const* p, int64_t K, bool entries_required) {
  LGH_CHECK(p != nullptr, op << ": null array of '" << what << "' pointers (" << K << " groups)");
  if (!entries_required) return;
  for (int64_t k = 0; k < K; ++k)
    LGH_CHECK(p[k] != nullptr, op << ": '" << what << "[" << k << "]' is null (" << K << " groups)");
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace detail

// Outputs G_k [B,P,H,W] (HW = H*W) of Eq. (9). With scale and shift (K x [P]
// each, both given) the eval epilogue relu_if(scale * (conv + b) + shift);
// without, the plain convolution + bias.
template <typename T>
inline void group_fusion_forward(const T* const* features, const T* const* weights, const T* const* biases, int64_t K,
                                 int64_t B, int64_t P, int64_t HW, T* const* outputs, const T* const* scale,
                                 const T* const* shift, bool relu, cudaStream_t stream) {
  const char* op = "cuda::group_fusion_forward";
  detail::check_fusion_dims(op, K, B, P, HW);
  if (K > launch::kMaxFusionGroups) return;  // (rejected above; bounds the loops below for the compiler)
  detail::check_group_pointers(op, "features", features, K, true);
  detail::check_group_pointers(op, "weights", weights, K, true);
  detail::check_group_pointers(op, "biases", biases, K, true);
  detail::check_group_pointers(op, "outputs", const_cast<const T* const*>(outputs), K, true);
  LGH_CHECK((scale == nullptr) == (shift == nullptr), op << ": the eval epilogue needs both scale and shift");
  if (scale) {
    detail::check_group_pointers(op, "scale", scale, K, true);
    detail::check_group_pointers(op, "shift", shift, K, true);
  }
  detail::FusionGemmArgs<T> a;
  a.K = static_cast<int>(K);
  a.P = static_cast<int>(P);
  a.M = static_cast<int>(K * P);
  a.HW = HW;
  a.relu = relu;
  bool aligned = HW % launch::kFusionTN == 0;
  for (int64_t k = 0; k < K; ++k) {
    a.in[k] = features[k];
    a.weight[k] = weights[k];
    a.out[k] = outputs[k];
    a.bias[k] = biases[k];
    a.scale[k] = scale ? scale[k] : nullptr;
    a.shift[k] = shift ? shift[k] : nullptr;
    aligned = aligned && detail::aligned16(features[k]) && detail::aligned16(outputs[k]);
  }
  const launch::Dim3 g = launch::fusion_gemm_grid(B, K * P, HW);
  const dim3 grid(static_cast<unsigned>(g.x), static_cast<unsigned>(g.y), static_cast<unsigned>(g.z));
  const size_t smem = launch::fusion_row_table_bytes(K * P);
  if (aligned)
    launch_kernel("group_fusion_forward", kernels::group_fusion_gemm<T, false, true>, grid, launch::kFusionThreads,
                  smem, stream, a);
  else
    launch_kernel("group_fusion_forward", kernels::group_fusion_gemm<T, false, false>, grid, launch::kFusionThreads,
                  smem, stream, a);
}

// Bytes of device workspace group_fusion_backward needs for the weight and
// bias gradients (0 when neither is wanted).
template <typename T>
inline size_t group_fusion_backward_workspace_bytes(int64_t K, int64_t B, int64_t P, int64_t HW, bool want_weights) {
  if (!want_weights) return 0;
  const launch::FusionWgradPlan plan = launch::fusion_wgrad_plan(B, K * P, HW);
  return static_cast<size_t>(launch::fusion_wgrad_workspace_elems(plan, K * P)) * sizeof(T);
}

// Gradients of group_fusion_forward (without epilogue) from dG_k = grad_outputs.
// grad_features (dF_m), grad_weights (dW_k [P, K*P]) and grad_biases (db_k)
// are host arrays of K device pointers, or null when not wanted. The weight
// and bias gradients need `workspace` of group_fusion_backward_workspace_bytes.
template <typename T>
inline void group_fusion_backward(const T* const* features, const T* const* weights, const T* const* grad_outputs,
                                  int64_t K, int64_t B, int64_t P, int64_t HW, T* const* grad_features,
                                  T* const* grad_weights, T* const* grad_biases, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream) {
  const char* op = "cuda::group_fusion_backward";
  detail::check_fusion_dims(op, K, B, P, HW);
  if (K > launch::kMaxFusionGroups) return;  // (rejected above; bounds the loops below for the compiler)
  detail::check_group_pointers(op, "grad_outputs", grad_outputs, K, true);
  const int64_t M = K * P;
  bool aligned = HW % launch::kFusionTN == 0;
  for (int64_t k = 0; k < K; ++k) aligned = aligned && detail::aligned16(grad_outputs[k]);

  if (grad_features) {
    detail::check_group_pointers(op, "weights", weights, K, true);
    detail::check_group_pointers(op, "grad_features", const_cast<const T* const*>(grad_features), K, true);
    detail::FusionGemmArgs<T> a;
    a.K = static_cast<int>(K);
    a.P = static_cast<int>(P);
    a.M = static_cast<int>(M);
    a.HW = HW;
    bool al = aligned;
    for (int64_t k = 0; k < K; ++k) {
      a.in[k] = grad_outputs[k];
      a.weight[k] = weights[k];
      a.out[k] = grad_features[k];
      al = al && detail::aligned16(grad_features[k]);
    }
    const launch::Dim3 g = launch::fusion_gemm_grid(B, M, HW);
    const dim3 grid(static_cast<unsigned>(g.x), static_cast<unsigned>(g.y), static_cast<unsigned>(g.z));
    const size_t smem = launch::fusion_row_table_bytes(M);
    if (al)
      launch_kernel("group_fusion_backward (input gradient)", kernels::group_fusion_gemm<T, true, true>, grid,
                    launch::kFusionThreads, smem, stream, a);
    else
      launch_kernel("group_fusion_backward (input gradient)", kernels::group_fusion_gemm<T, true, false>, grid,
                    launch::kFusionThreads, smem, stream, a);
  }

  if (grad_weights || grad_biases) {
    detail::check_group_pointers(op, "features", features, K, true);
    if (grad_weights)
      detail::check_group_pointers(op, "grad_weights", const_cast<const T* const*>(grad_weights), K, true);
    if (grad_biases)
      detail::check_group_pointers(op, "grad_biases", const_cast<const T* const*>(grad_biases), K, true);
    const launch::FusionWgradPlan plan = launch::fusion_wgrad_plan(B, M, HW);
    const size_t need = static_cast<size_t>(launch::fusion_wgrad_workspace_elems(plan, M)) * sizeof(T);
    LGH_CHECK(workspace != nullptr && workspace_bytes >= need,
              op << ": the weight gradient needs " << need << " bytes of workspace, got " << workspace_bytes
                 << " (K = " << K << ", features [" << B << ", " << P << ", " << HW << " pixels])");
    detail::FusionWgradArgs<T> w;
    w.K = static_cast<int>(K);
    w.P = static_cast<int>(P);
    w.M = static_cast<int>(M);
    w.B = B;
    w.HW = HW;
    w.plan = plan;
    w.workspace = static_cast<T*>(workspace);
    bool al = aligned;
    for (int64_t k = 0; k < K; ++k) {
      w.grad_out[k] = grad_outputs[k];
      w.features[k] = features[k];
      al = al && detail::aligned16(features[k]);
    }
    const dim3 grid(static_cast<unsigned>(plan.tiles), static_cast<unsigned>(plan.tiles),
                    static_cast<unsigned>(plan.splits));
    const size_t smem = launch::fusion_row_table_bytes(M);
    if (al)
      launch_kernel("group_fusion_backward (weight gradient, partial sums)",
                    kernels::group_fusion_wgrad_partial<T, true>, grid, launch::kFusionWgradThreads, smem, stream, w);
    else
      launch_kernel("group_fusion_backward (weight gradient, partial sums)",
                    kernels::group_fusion_wgrad_partial<T, false>, grid, launch::kFusionWgradThreads, smem, stream, w);

    detail::FusionGradTargets<T> dst;
    for (int64_t k = 0; k < K; ++k) {
      dst.weight[k] = grad_weights ? grad_weights[k] : nullptr;
      dst.bias[k] = grad_biases ? grad_biases[k] : nullptr;
    }
    const launch::Launch1D l = launch::one_thread_per_item(M * M + M, 256);
    launch_kernel("group_fusion_backward (weight gradient, sum of splits)", kernels::group_fusion_wgrad_finalize<T>,
                  static_cast<unsigned>(l.blocks), l.threads, 0, stream, static_cast<const T*>(workspace), plan.splits,
                  static_cast<int>(P), static_cast<int>(M), dst);
  }
}

}  // namespace cuda
}  // namespace lgh
