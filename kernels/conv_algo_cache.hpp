// The per-shape choice of a convolution algorithm, host-only (no CUDA
// header, so the bookkeeping is unit-tested on any machine): the cuDNN
// entries of conv_cudnn.cuh ask the library once for each (pass, shape,
// precision, math mode, device) and reuse its answer, the algorithm and the
// workspace it needs, for every later call of that shape. A training step of
// one model repeats the same few dozen shapes, so after the first step no
// call asks cuDNN again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "lgh/ops/conv_common.hpp"

namespace lgh {
namespace cuda {

// The three passes of a convolution (a transposed convolution's forward is
// the backward-data pass of its adjoint).
enum class ConvPass { Forward, BackwardData, BackwardFilter };

// Everything the choice depends on.
struct ConvAlgoKey {
  ConvPass pass = ConvPass::Forward;
  int device = 0;
  int dtype_bytes = 4;  // 4: float, 8: double
  bool tf32 = false;    // TF32 tensor-op math allowed (float only)
  int64_t N = 0, C = 0, H = 0, W = 0, O = 0, KH = 0, KW = 0, stride = 1, pad = 0, OH = 0, OW = 0;

  std::tuple<int, int, int, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
             int64_t, int64_t>
  tie() const {
    return std::make_tuple(static_cast<int>(pass), device, dtype_bytes, tf32, N, C, H, W, O, KH, KW, stride, pad, OH,
                           OW);
  }
  friend bool operator<(const ConvAlgoKey& a, const ConvAlgoKey& b) { return a.tie() < b.tie(); }
  friend bool operator==(const ConvAlgoKey& a, const ConvAlgoKey& b) { return a.tie() == b.tie(); }
};

inline ConvAlgoKey conv_algo_key(ConvPass pass, const ops::detail::ConvGeometry& g, int device, int dtype_bytes,
                                 bool tf32) {
  ConvAlgoKey k;
  k.pass = pass;
  k.device = device;
  k.dtype_bytes = dtype_bytes;
  k.tf32 = tf32 && dtype_bytes == 4;  // TF32 means nothing for double
  k.N = g.N; k.C = g.C; k.H = g.H; k.W = g.W;
  k.O = g.O; k.KH = g.KH; k.KW = g.KW;
  k.stride = g.stride; k.pad = g.pad;
  k.OH = g.OH; k.OW = g.OW;
  return k;
}

// The library's answer for one key.
struct ConvAlgoChoice {
  int algo = 0;                // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace_bytes = 0;  // scratch the algorithm needs
  int math_type = 0;           // the cudnnMathType_t it runs under
};

// Key -> choice, filled on first use; thread-safe. `find` (the library call)
// runs outside the lock, so two threads meeting a new shape at once may both
// ask; the first answer stored wins and both use it.
class ConvAlgoCache {
 public:
  template <typename Find>
  ConvAlgoChoice get(const ConvAlgoKey& key, Find&& find) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = map_.find(key);
      if (it != map_.end()) {
        ++hits_;
        return it->second;
      }
    }
    const ConvAlgoChoice found = find();
    std::lock_guard<std::mutex> lock(mutex_);
    ++misses_;
    return map_.emplace(key, found).first->second;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_.size();
  }
  uint64_t hits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return hits_;
  }
  uint64_t misses() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return misses_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    map_.clear();
    hits_ = misses_ = 0;
  }

 private:
  mutable std::mutex mutex_;
  std::map<ConvAlgoKey, ConvAlgoChoice> map_;
  uint64_t hits_ = 0, misses_ = 0;
};

// The process's cache (one for every device: the device is in the key).
inline ConvAlgoCache& conv_algo_cache() {
  static ConvAlgoCache cache;
  return cache;
}

// The index of the first candidate that the library can run (`ok`), that
// needs at most `limit` bytes of workspace and, when `want_deterministic`,
// is deterministic; failing that the first runnable one within the limit
// whatever its determinism; -1 if none. Candidates come best first (cuDNN's
// heuristic order), so this keeps the library's preference among the
// admissible ones.
template <typename Perf, typename Ok, typename Deterministic>
int pick_conv_algo(const Perf* perf, int count, size_t limit, bool want_deterministic, Ok&& ok,
                   Deterministic&& deterministic) {
  for (int pass = want_deterministic ? 0 : 1; pass < 2; ++pass)
    for (int i = 0; i < count; ++i) {
      if (!ok(perf[i]) || perf[i].memory > limit) continue;
      if (pass == 0 && !deterministic(perf[i])) continue;
      return i;
    }
  return -1;
}

}  // namespace cuda
}  // namespace lgh
