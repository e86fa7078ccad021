// Launch shapes of the fused CUDA kernels (gumbel_softmax.cuh,
// group_select.cuh, group_fusion.cuh, soft_argmax_depth.cuh, adam.cuh): grid
// and block sizes, tile constants, shared-memory and workspace sizes, and the
// index maps that split work between blocks. Plain C++ with no CUDA header, so
// that a CPU test checks the arithmetic (every element covered exactly once,
// limits respected) where no GPU runs; the maps marked LGH_HOST_DEVICE are
// the very functions the kernels call.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lgh/core/config.hpp"
#include "lgh/optim/adam_math.hpp"

namespace lgh {
namespace cuda {
namespace launch {

constexpr int64_t kMaxGridX = 2147483647;  // 2^31 - 1
constexpr int64_t kMaxGridYZ = 65535;
constexpr size_t kMaxStaticSharedBytes = 48 * 1024;  // without cudaFuncSetAttribute

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// A one-dimensional launch: blocks x threads.
struct Launch1D {
  int64_t blocks = 0;
  unsigned threads = 0;
};

// One thread per item, `max_threads` per block at most, whole warps.
inline Launch1D one_thread_per_item(int64_t items, unsigned max_threads) {
  Launch1D l;
  const int64_t warps = ceil_div(items, 32);
  l.threads = static_cast<unsigned>(warps * 32 < max_threads ? warps * 32 : max_threads);
  if (l.threads == 0) l.threads = 32;
  l.blocks = ceil_div(items, l.threads);
  return l;
}

// ---- Gumbel-softmax selector (Eq. 8) -------------------------------------------
// One thread per selector row j (K groups each): J x K is 21 x 3 in the model,
// so the launch is one block; the whole op is a single launch either way.
inline Launch1D gumbel_softmax_launch(int64_t J) { return one_thread_per_item(J, 128); }

// ---- masked group selection ----------------------------------------------------
// Forward: one thread per output point (b, j), C channels each.
inline Launch1D group_select_forward_launch(int64_t B, int64_t J) { return one_thread_per_item(B * J, 128); }

// Backward in one launch: the first dx_blocks blocks write dx, one thread per
// (b, k, j) point; the next ds_blocks blocks each reduce one selector entry
// (j, k) over the batch (threads stride over b, then a fixed-order tree), so
// dS needs no atomics and is the same on every run.
constexpr unsigned kGroupSelectBackwardThreads = 128;
struct GroupSelectBackwardLaunch {
  int64_t dx_blocks = 0;
  int64_t ds_blocks = 0;
  unsigned threads = kGroupSelectBackwardThreads;
  int64_t blocks() const { return dx_blocks + ds_blocks; }
};
inline GroupSelectBackwardLaunch group_select_backward_launch(int64_t B, int64_t K, int64_t J, bool want_ds,
                                                              bool want_dx) {
  GroupSelectBackwardLaunch l;
  l.dx_blocks = want_dx ? ceil_div(B * K * J, kGroupSelectBackwardThreads) : 0;
  l.ds_blocks = want_ds ? J * K : 0;
  return l;
}

// ---- concat + 1x1 fusion (Eq. 9) -------------------------------------------------
// Read as one GEMM per image b over the virtual concatenation (M = K*P rows):
//   G[b] (M x HW) = Wall (M x M) . Fcat[b] (M x HW) + bias,
// row r = k*P + p of Wall being row p of W_k, row c = m*P + q of Fcat being
// channel q of F_m. The input-gradient GEMM is dFcat[b] = Wall^T . dGcat[b];
// the weight gradient dWall = sum_b dGcat[b] . Fcat[b]^T.
constexpr int kMaxFusionGroups = 8;
// GEMM tile of the forward and input-gradient kernel: BM output channels x BN
// pixels per block, BK input channels per shared-memory stage, 256 threads
// as 8 x 32, each holding a TM x TN accumulator tile in registers.
constexpr int kFusionBM = 32, kFusionBN = 128, kFusionBK = 16;
constexpr int kFusionTM = 4, kFusionTN = 4;
constexpr int kFusionThreads = (kFusionBM / kFusionTM) * (kFusionBN / kFusionTN);
// Tile of the weight-gradient kernel: BW x BW entries of dWall per block,
// BKW pixels per stage, the same 256 threads as 16 x 16 with 6 x 6 each. 96 is
// the paper's M = K*P = 3 x 32: one tile holds all of dWall, so every pixel of
// dG and F is read by one block only, and no accumulator is wasted.
constexpr int kFusionBW = 96, kFusionBKW = 16, kFusionTW = 6;
constexpr int kFusionWgradThreads = (kFusionBW / kFusionTW) * (kFusionBW / kFusionTW);
static_assert(kFusionThreads == 256 && kFusionWgradThreads == 256, "fusion kernels assume 256 threads");
// Rows of a shared tile are padded by 4 elements: the transposed stores of
// the operand tiles then hit 8 banks instead of one, and the rows stay 16-byte
// aligned for vector reads.
constexpr int kFusionPad = 4;
// Largest virtual concatenation: the kernels keep one row pointer per input
// and weight row (M of each) in dynamic shared memory.
constexpr int64_t kMaxFusionRows = 1024;

// Static shared memory (the operand tiles) of the GEMM kernels, for element
// size `elem`, and the dynamic part (the row pointer tables) for M rows; a
// test checks that their sum stays under the 48 KB a block gets by default.
constexpr size_t fusion_gemm_static_shared_bytes(size_t elem) {
  return elem * (kFusionBK * (kFusionBM + kFusionPad) + kFusionBK * kFusionBN);
}
constexpr size_t fusion_wgrad_static_shared_bytes(size_t elem) {
  return elem * (2 * kFusionBKW * (kFusionBW + kFusionPad));
}
constexpr size_t fusion_row_table_bytes(int64_t M) { return 2 * sizeof(void*) * static_cast<size_t>(M); }

struct Dim3 {
  int64_t x = 1, y = 1, z = 1;
};

// Forward and input-gradient grid: (pixel tiles, channel tiles, images).
inline Dim3 fusion_gemm_grid(int64_t B, int64_t M, int64_t HW) {
  Dim3 g;
  g.x = ceil_div(HW, kFusionBN);
  g.y = ceil_div(M, kFusionBM);
  g.z = B;
  return g;
}

// The weight gradient is a long reduction (over B*HW pixels) into a small
// M x M result, so it is split: split s covers the pixel columns
// [n0, n1) of the images [b0, b1) (whole images when there are many, column
// chunks of one image when there are few), writes its partial dWall and
// partial bias gradient to a workspace, and a second launch sums the splits
// in order (deterministic: no atomics). The plan depends on the shapes only,
// never on the device, so every GPU gives the same sums.
constexpr int64_t kFusionWgradTargetBlocks = 256;
constexpr int64_t kFusionWgradMaxSplits = 256;
struct FusionWgradPlan {
  int64_t images_per_split = 1;  // > 1 only when chunks_per_image == 1
  int64_t chunk = 0;             // pixel columns per split, a multiple of kFusionBKW
  int64_t chunks_per_image = 1;
  int64_t splits = 0;
  int64_t tiles = 0;  // ceil(M / BW) per side
};
struct FusionWgradRange {
  int64_t b0, b1, n0, n1;
};

inline FusionWgradPlan fusion_wgrad_plan(int64_t B, int64_t M, int64_t HW) {
  FusionWgradPlan p;
  p.tiles = ceil_div(M, kFusionBW);
  const int64_t want = ceil_div(kFusionWgradTargetBlocks, p.tiles * p.tiles);
  const int64_t splits_wanted = want < kFusionWgradMaxSplits ? want : kFusionWgradMaxSplits;
  if (B >= splits_wanted) {
    p.images_per_split = ceil_div(B, splits_wanted);
    p.chunks_per_image = 1;
    p.chunk = round_up(HW, kFusionBKW);
    p.splits = ceil_div(B, p.images_per_split);
  } else {
    const int64_t per_image = ceil_div(splits_wanted, B);
    const int64_t max_chunks = ceil_div(HW, kFusionBKW);
    const int64_t chunks = per_image < max_chunks ? per_image : max_chunks;
    p.chunk = round_up(ceil_div(HW, chunks), kFusionBKW);
    p.chunks_per_image = ceil_div(HW, p.chunk);
    p.images_per_split = 1;
    p.splits = B * p.chunks_per_image;
  }
  return p;
}

// The images and pixel columns of split s (the kernel's own map).
LGH_HOST_DEVICE inline FusionWgradRange fusion_wgrad_range(const FusionWgradPlan& p, int64_t s, int64_t B,
                                                           int64_t HW) {
  FusionWgradRange r;
  if (p.chunks_per_image == 1) {
    r.b0 = s * p.images_per_split;
    r.b1 = r.b0 + p.images_per_split < B ? r.b0 + p.images_per_split : B;
    r.n0 = 0;
    r.n1 = HW;
  } else {
    r.b0 = s / p.chunks_per_image;
    r.b1 = r.b0 + 1;
    r.n0 = (s % p.chunks_per_image) * p.chunk;
    r.n1 = r.n0 + p.chunk < HW ? r.n0 + p.chunk : HW;
  }
  return r;
}

// Workspace of the weight gradient, in elements: per split the partial
// dWall (M x M) and the partial bias gradient (M).
inline int64_t fusion_wgrad_workspace_elems(const FusionWgradPlan& p, int64_t M) { return p.splits * (M * M + M); }

// ---- soft-argmax with depth -------------------------------------------------------
// One block per (b, j). The threads per block follow the map size (a power of
// two, 32..256, about 32 pixels per thread): each thread then has several
// 16-byte loads of h and dm in flight, and at the paper's 64 x 64 maps a block
// is 128 threads, which keeps the blocks short and many (a batch of 64 is
// 1344 of them, over 8 per multiprocessor on a 132-multiprocessor card).
inline unsigned soft_argmax_threads(int64_t HW) {
  unsigned t = 32;
  while (t < 256 && static_cast<int64_t>(t) * 32 < HW) t *= 2;
  return t;
}

// Pixels per vector access (16 bytes) for elements of `elem` bytes.
LGH_HOST_DEVICE constexpr int soft_argmax_vector_width(size_t elem) { return static_cast<int>(16 / elem); }

// The vector path needs every (b, j) map to start on a 16-byte boundary and
// every vector to lie inside one image row: W a multiple of the width (then
// HW is too) and the base pointers aligned.
inline bool soft_argmax_can_vectorize(int64_t W, size_t elem, bool pointers_aligned) {
  return pointers_aligned && W % soft_argmax_vector_width(elem) == 0;
}

// The batch sum of dbeta: one thread per joint, b in order.
inline Launch1D soft_argmax_dbeta_launch(int64_t J) { return one_thread_per_item(J, 128); }

// ---- fused multi-tensor Adam ---------------------------------------------------------
// The host describes the step as runs: contiguous stretches of elements that
// share one set of step constants (one run per parameter group when the
// parameters are views of flat buffers). Runs are cut into chunks of
// kAdamChunk elements, one block each; the run table travels by value as the
// kernel's parameter (which lives in constant memory), so one launch covers
// up to kAdamMaxRuns runs and nothing is copied to the device beforehand.
constexpr unsigned kAdamThreads = 256;
constexpr int64_t kAdamChunk = 4096;  // 16 elements per thread
constexpr int kAdamMaxRuns = 24;

template <typename T>
struct AdamRun {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;  // null unless AMSGrad
  int64_t n;
  optim::AdamScalars<T> scalars;
};

template <typename T>
struct AdamTable {
  int num_runs;
  int64_t chunk_start[kAdamMaxRuns + 1];  // first chunk (block) of each run; [num_runs] = total
  AdamRun<T> runs[kAdamMaxRuns];
};
// Kernel parameters are limited to 4 KB on older toolkits and drivers.
static_assert(sizeof(AdamTable<double>) <= 4096, "the Adam run table must fit the kernel parameter space");

// Fills table.chunk_start for runs[0..num_runs) (already in table.runs).
template <typename T>
inline int64_t adam_plan_chunks(AdamTable<T>& table) {
  int64_t c = 0;
  for (int r = 0; r < table.num_runs; ++r) {
    table.chunk_start[r] = c;
    c += ceil_div(table.runs[r].n, kAdamChunk);
  }
  table.chunk_start[table.num_runs] = c;
  return c;
}

// The run of block `chunk` (the kernel's own map): the last run whose first
// chunk is <= chunk (binary search; chunk_start is non-decreasing, and a run
// without elements shares its start with the next run, so it is never the
// last one at or below a chunk that exists).
template <typename T>
LGH_HOST_DEVICE inline int adam_chunk_run(const AdamTable<T>& table, int64_t chunk) {
  int lo = 0, hi = table.num_runs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table.chunk_start[mid] <= chunk)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace launch
}  // namespace cuda
}  // namespace lgh
