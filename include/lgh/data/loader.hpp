// Loader: batches of network inputs from a Dataset, built on worker threads
// ahead of the consumer.
//
// Determinism: the batches, their order and their content are a function of
// (dataset, options) only, never of thread count or timing. Global batch g
// is batch g mod B_e of epoch g / B_e (B_e batches per epoch); an epoch's
// sample order is a Fisher-Yates shuffle driven by Philox (seeded from the
// seed and the epoch, so it is the same on every platform, unlike
// std::shuffle); each sample's augmentation comes from its own Philox stream
// addressed by (seed, epoch, sample index). Workers claim whole batches, and
// next() hands them out in order.
//
// Prefetch: at most `prefetch` batches beyond the one the consumer waits for
// are being built or waiting, so memory stays bounded. Shutdown: the
// destructor stops the workers and joins them (a worker finishes the sample
// it is reading first); a consumer that stops early never hangs.
//
// Errors: a sample that cannot be read or cropped raises lgh::Error in the
// consumer's next(), naming the dataset, the index and (from the reader) the
// file. With skip_bad_samples such samples are left out instead (the batch
// is then smaller), counted, and reported through skip_messages() and the
// on_skip callback. Errors that are not about a sample (out of memory, a
// bug) are never skipped; they reach next() as lgh::Error too. After an
// error the loader stops; further next() calls raise it again.
//
// next() is for one consumer thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/core/tensor.hpp"
#include "lgh/data/augment.hpp"
#include "lgh/data/crop.hpp"
#include "lgh/data/dataset.hpp"

namespace lgh {
namespace data {

struct LoaderOptions {
  int64_t batch_size = 32;
  int num_workers = 2;       // 0: each batch is built inside next(), on the caller's thread
  int prefetch = 2;          // batches built ahead of the consumer (>= 1)
  bool shuffle = true;
  bool augment = true;       // draw the training augmentation (else the plain crop; left hands still mirrored)
  bool drop_last = true;     // leave out an epoch's final partial batch
  int64_t epochs = 0;        // 0: endless
  int64_t start_batch = 0;   // the first global batch, to resume a run exactly
  uint64_t seed = 0;
  CropOptions crop;          // crop.size is the network's input size S
  AugmentOptions augmentation;
  bool skip_bad_samples = false;
  // Called on the consumer's thread, inside next(), once per skipped sample.
  std::function<void(const std::string&)> on_skip;
};

// One batch; B may be below batch_size for a final partial batch or when
// samples were skipped.
struct Batch {
  TensorF image;        // [B, 3, S, S] RGB in [0, 1]
  TensorF uv;           // [B, J, 2] crop pixels
  TensorF xyz;          // [B, J, 3] mm, crop camera frame
  TensorF K;            // [B, 4] fx, fy, cx, cy of the crop camera
  TensorF vis;          // [B, J] 1 where the joint is annotated visible
  TensorF in_crop;      // [B, J] 1 where uv lies inside the crop
  TensorF s0;           // [B] |J12 - J11| in mm (0 where not annotated)
  TensorF z_root;       // [B] depth of J12 in mm (0 where not annotated)
  TensorF crop_scale;   // [B] crop pixels per original pixel
  TensorF to_original;  // [B, 2, 3] affine map from crop to original pixels
  std::vector<int64_t> indices;   // dataset indices
  std::vector<std::string> ids;   // sample ids
  std::vector<uint8_t> mirrored;  // 1 where a left hand was mirrored
  int64_t epoch = 0;
  int64_t batch_in_epoch = 0;
  int64_t global_batch = 0;
  int64_t skipped = 0;            // samples of this batch left out

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
      : ds_(std::move(dataset)), opt_(std::move(options)) {
    LGH_CHECK(ds_ != nullptr, "loader: no dataset");
    LGH_CHECK(opt_.batch_size > 0, "loader: batch size must be positive, got " << opt_.batch_size);
    LGH_CHECK(opt_.num_workers >= 0 && opt_.prefetch >= 1,
              "loader: need num_workers >= 0 and prefetch >= 1, got " << opt_.num_workers << " and " << opt_.prefetch);
    LGH_CHECK(opt_.crop.size > 0, "loader: crop size must be positive, got " << opt_.crop.size);
    LGH_CHECK(opt_.epochs >= 0 && opt_.start_batch >= 0, "loader: epochs and start_batch must not be negative");
    n_ = ds_->size();
    LGH_CHECK(n_ > 0, "loader: dataset " << ds_->name() << " is empty");
    per_epoch_ = opt_.drop_last ? n_ / opt_.batch_size : (n_ + opt_.batch_size - 1) / opt_.batch_size;
    LGH_CHECK(per_epoch_ > 0, "loader: dataset " << ds_->name() << " has " << n_ << " samples, fewer than one batch of "
                                                 << opt_.batch_size << " (set drop_last = false)");
    end_ = opt_.epochs > 0 ? opt_.epochs * per_epoch_ : std::numeric_limits<int64_t>::max();
    next_claim_ = next_deliver_ = opt_.start_batch;
    shuffle_seed_ = mix(opt_.seed ^ 0x53485546464C45ull);  // a key of its own, apart from augmentation's
    for (int i = 0; i < opt_.num_workers; ++i) workers_.emplace_back([this] { worker(); });
  }

  ~Loader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch in order; false once the requested epochs are done.
  bool next(Batch& out) {
    for (;;) {
      if (failure_) std::rethrow_exception(failure_);
      int64_t g;
      Result r;
      {
        std::unique_lock<std::mutex> lock(mu_);
        g = next_deliver_;
        if (g >= end_) return false;
        if (!workers_.empty()) {
          ready_cv_.wait(lock, [&] { return ready_.count(g) > 0; });
          r = std::move(ready_[g]);
          ready_.erase(g);
        }
      }
      if (workers_.empty()) r = build(g);
      {
        std::lock_guard<std::mutex> lock(mu_);
        next_deliver_ = g + 1;
        if (r.error) stop_ = true;  // nothing after a failure is wanted
      }
      work_cv_.notify_all();
      for (const std::string& m : r.skip_messages) {
        ++skipped_;
        if (skip_messages_.size() < kKeptMessages) skip_messages_.push_back(m);
        if (opt_.on_skip) opt_.on_skip(m);
      }
      if (r.error) {
        failure_ = r.error;
        std::rethrow_exception(failure_);
      }
      delivered_ += r.batch.size();
      if (r.batch.size() == 0) continue;  // every sample of this batch was skipped
      out = std::move(r.batch);
      return true;
    }
  }

  int64_t batches_per_epoch() const { return per_epoch_; }
  const Dataset& dataset() const { return *ds_; }
  const LoaderOptions& options() const { return opt_; }
  // Samples left out so far (as seen by the consumer) and the first messages.
  int64_t skipped_samples() const { return skipped_; }
  const std::vector<std::string>& skip_messages() const { return skip_messages_; }
  int64_t delivered_samples() const { return delivered_; }

  // The dataset indices of `epoch`, in the order its batches take them.
  std::vector<int64_t> epoch_order(int64_t epoch) const { return *order(epoch); }

 private:
  static constexpr size_t kKeptMessages = 100;

  struct Result {
    Batch batch;
    std::vector<std::string> skip_messages;
    std::exception_ptr error;
  };

  static uint64_t mix(uint64_t x) {  // splitmix64 finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }

  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) const {
    std::lock_guard<std::mutex> lock(order_mu_);
    auto it = orders_.find(epoch);
    if (it != orders_.end()) return it->second;
    auto perm = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) (*perm)[static_cast<size_t>(i)] = i;
    if (opt_.shuffle) {
      PhiloxEngine rng(shuffle_seed_, static_cast<uint64_t>(epoch));
      for (int64_t i = n_ - 1; i > 0; --i)
        std::swap((*perm)[static_cast<size_t>(i)], (*perm)[rng.below(static_cast<uint64_t>(i) + 1)]);
    }
    // Workers run at most `prefetch` batches ahead, so at most two epochs
    // are in use at once; drop older ones.
    for (auto old = orders_.begin(); old != orders_.end();)
      old = old->first < epoch - 1 ? orders_.erase(old) : std::next(old);
    orders_[epoch] = perm;
    return perm;
  }

  void worker() {
    for (;;) {
      int64_t g;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] {
          return stop_ || next_claim_ >= end_ || next_claim_ <= next_deliver_ + opt_.prefetch;
        });
        if (stop_ || next_claim_ >= end_) return;
        g = next_claim_++;
      }
      Result r = build(g);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_[g] = std::move(r);
      }
      ready_cv_.notify_all();
    }
  }

  // Builds global batch g; never throws (failures go into the result).
  Result build(int64_t g) const {
    Result r;
    try {
      r.batch = assemble(g, &r.skip_messages);
    } catch (const Error&) {
      r.error = std::current_exception();
    } catch (const std::exception& e) {
      r.error = std::make_exception_ptr(Error("loader: " + ds_->name() + ": " + e.what()));
    } catch (...) {
      r.error = std::make_exception_ptr(Error("loader: " + ds_->name() + ": unknown error in a worker"));
    }
    return r;
  }

  Batch assemble(int64_t g, std::vector<std::string>* skips) const {
    const int64_t epoch = g / per_epoch_, k = g % per_epoch_;
    const auto perm = order(epoch);
    const int64_t lo = k * opt_.batch_size, hi = std::min(lo + opt_.batch_size, n_);
    const int64_t B = hi - lo, S = opt_.crop.size, J = kNumJoints;
    Batch b;
    b.epoch = epoch;
    b.batch_in_epoch = k;
    b.global_batch = g;
    b.image = TensorF::empty({B, 3, S, S});
    b.uv = TensorF::empty({B, J, 2});
    b.xyz = TensorF::empty({B, J, 3});
    b.K = TensorF::empty({B, 4});
    b.vis = TensorF::empty({B, J});
    b.in_crop = TensorF::empty({B, J});
    b.s0 = TensorF::empty({B});
    b.z_root = TensorF::empty({B});
    b.crop_scale = TensorF::empty({B});
    b.to_original = TensorF::empty({B, 2, 3});
    int64_t row = 0;
    for (int64_t pos = lo; pos < hi; ++pos) {
      const int64_t idx = (*perm)[static_cast<size_t>(pos)];
      CropSample c;
      try {
        const HandSample s = ds_->get(idx);
        Augmentation aug;
        if (opt_.augment) {
          PhiloxEngine rng = augmentation_engine(opt_.seed, epoch, idx);
          aug = draw_augmentation(opt_.augmentation, static_cast<int>(S), rng);
        }
        c = crop_hand(s, opt_.crop, aug, b.image.data() + row * 3 * S * S);
      } catch (const Error& e) {
        const std::string msg = "loader: " + ds_->name() + " sample " + std::to_string(idx) + ": " + e.what();
        if (!opt_.skip_bad_samples) throw Error(msg, e.where());
        skips->push_back(msg);
        continue;
      }
      write_labels(b, row, c);
      b.indices.push_back(idx);
      b.ids.push_back(c.id);
      b.mirrored.push_back(c.mirrored ? 1 : 0);
      ++row;
    }
    b.skipped = B - row;
    if (row < B) {
      for (TensorF* t : {&b.image, &b.uv, &b.xyz, &b.K, &b.vis, &b.in_crop, &b.s0, &b.z_root, &b.crop_scale,
                         &b.to_original})
        *t = t->narrow(0, 0, row);
    }
    return b;
  }

  static void write_labels(Batch& b, int64_t row, const CropSample& c) {
    const int64_t J = kNumJoints;
    float* uv = b.uv.data() + row * J * 2;
    float* xyz = b.xyz.data() + row * J * 3;
    float* vis = b.vis.data() + row * J;
    float* in = b.in_crop.data() + row * J;
    for (int64_t j = 0; j < J; ++j) {
      uv[2 * j] = static_cast<float>(c.uv[j][0]);
      uv[2 * j + 1] = static_cast<float>(c.uv[j][1]);
      for (int r = 0; r < 3; ++r) xyz[3 * j + r] = static_cast<float>(c.xyz[j][r]);
      vis[j] = c.visible[j] ? 1.0f : 0.0f;
      in[j] = c.in_crop[j] ? 1.0f : 0.0f;
    }
    float* K = b.K.data() + row * 4;
    K[0] = static_cast<float>(c.K.fx);
    K[1] = static_cast<float>(c.K.fy);
    K[2] = static_cast<float>(c.K.cx);
    K[3] = static_cast<float>(c.K.cy);
    b.s0.data()[row] = static_cast<float>(c.s0);
    b.z_root.data()[row] = static_cast<float>(c.z_root);
    b.crop_scale.data()[row] = static_cast<float>(c.scale);
    float* A = b.to_original.data() + row * 6;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) A[3 * i + j] = static_cast<float>(c.to_original.m[i][j]);
  }

  std::shared_ptr<const Dataset> ds_;
  LoaderOptions opt_;
  int64_t n_ = 0, per_epoch_ = 0, end_ = 0;
  uint64_t shuffle_seed_ = 0;

  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  int64_t next_claim_ = 0, next_deliver_ = 0;
  bool stop_ = false;
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> workers_;

  mutable std::mutex order_mu_;
  mutable std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders_;

  // Consumer-side state.
  std::exception_ptr failure_;
  int64_t skipped_ = 0, delivered_ = 0;
  std::vector<std::string> skip_messages_;
};

}  // namespace data
}  // namespace lgh
