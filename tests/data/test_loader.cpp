#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "data_test_utils.hpp"
#include "lgh/data/freihand.hpp"
#include "lgh/data/loader.hpp"
#include "lgh/data/rhd.hpp"

using namespace lgh;
using namespace lgh::data;

namespace {

// A dataset computed from the index: a textured image and a hand whose
// labels are consistent with the camera. Indices in `bad` raise lgh::Error,
// in `crash` a std::runtime_error; each get() can be slowed down.
class MemoryDataset : public Dataset {
 public:
  explicit MemoryDataset(int64_t n, std::set<int64_t> bad = {}, std::set<int64_t> crash = {},
                         std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : n_(n), bad_(std::move(bad)), crash_(std::move(crash)), delay_(delay) {}

  int64_t size() const override { return n_; }
  std::string name() const override { return "memory"; }
  HandSample get(int64_t i) const override {
    ++gets;
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (bad_.count(i)) throw Error("memory/" + std::to_string(i) + ": unreadable file 'img" + std::to_string(i) + ".png'");
    if (crash_.count(i)) throw std::runtime_error("allocator exploded");
    HandSample s;
    s.id = "memory/" + std::to_string(i);
    s.rgb = Image(80, 60, 3);
    for (int y = 0; y < 60; ++y)
      for (int x = 0; x < 80; ++x) {
        uint8_t* p = s.rgb.at(x, y);
        p[0] = static_cast<uint8_t>(x * 3 + i);
        p[1] = static_cast<uint8_t>(y * 4 + 2 * i);
        p[2] = static_cast<uint8_t>(x * y + i);
      }
    s.K = Intrinsics{70.0 + i % 5, 72.0, 40.0, 30.0};
    for (int j = 0; j < kNumJoints; ++j) {
      s.xyz[j] = {-40.0 + 4 * j + i % 7, -30.0 + 2.5 * j, 300.0 + 3 * j};
      s.uv[j] = {s.K.fx * s.xyz[j][0] / s.xyz[j][2] + s.K.cx, s.K.fy * s.xyz[j][1] / s.xyz[j][2] + s.K.cy};
      s.visible[j] = (i + j) % 4 != 0;
    }
    s.is_left = i % 3 == 0;
    return s;
  }

  mutable std::atomic<int64_t> gets{0};

 private:
  int64_t n_;
  std::set<int64_t> bad_, crash_;
  std::chrono::milliseconds delay_;
};

LoaderOptions small_options(int workers) {
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = workers;
  o.prefetch = 2;
  o.epochs = 2;
  o.seed = 17;
  o.crop.size = 32;
  return o;
}

std::vector<Batch> drain(Loader& loader) {
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

bool same_floats(const TensorF& a, const TensorF& b) {
  return a.shape() == b.shape() && std::memcmp(a.contiguous().data(), b.contiguous().data(), a.nbytes()) == 0;
}

void require_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    INFO("batch " << k);
    REQUIRE(a[k].indices == b[k].indices);
    REQUIRE(a[k].global_batch == b[k].global_batch);
    REQUIRE(same_floats(a[k].image, b[k].image));
    REQUIRE(same_floats(a[k].uv, b[k].uv));
    REQUIRE(same_floats(a[k].xyz, b[k].xyz));
    REQUIRE(same_floats(a[k].K, b[k].K));
    REQUIRE(same_floats(a[k].vis, b[k].vis));
    REQUIRE(same_floats(a[k].s0, b[k].s0));
    REQUIRE(same_floats(a[k].z_root, b[k].z_root));
    REQUIRE(same_floats(a[k].to_original, b[k].to_original));
  }
}

// Runs f on its own thread; false if it has not finished within `limit`
// (a hang), rethrows what it threw otherwise.
template <typename F>
bool finishes_within(std::chrono::seconds limit, F f) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> fut = done->get_future();
  std::thread([f, done]() mutable {
    try {
      f();
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  }).detach();
  if (fut.wait_for(limit) != std::future_status::ready) return false;
  fut.get();
  return true;
}

}  // namespace

TEST_CASE("loader epochs cover every sample once, in shuffled batches", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(18);
  LoaderOptions o = small_options(2);
  Loader loader(ds, o);
  CHECK(loader.batches_per_epoch() == 4);  // 18 / 4, the partial batch dropped
  const std::vector<Batch> batches = drain(loader);
  REQUIRE(batches.size() == 8);
  for (int64_t e = 0; e < 2; ++e) {
    const std::vector<int64_t> order = loader.epoch_order(e);
    std::set<int64_t> seen;
    for (int64_t k = 0; k < 4; ++k) {
      const Batch& b = batches[static_cast<size_t>(e * 4 + k)];
      CHECK(b.epoch == e);
      CHECK(b.batch_in_epoch == k);
      CHECK(b.global_batch == e * 4 + k);
      REQUIRE(b.size() == 4);
      CHECK(b.image.shape() == Shape({4, 3, 32, 32}));
      CHECK(b.uv.shape() == Shape({4, kNumJoints, 2}));
      CHECK(b.xyz.shape() == Shape({4, kNumJoints, 3}));
      CHECK(b.K.shape() == Shape({4, 4}));
      CHECK(b.vis.shape() == Shape({4, kNumJoints}));
      CHECK(b.s0.shape() == Shape({4}));
      CHECK(b.z_root.shape() == Shape({4}));
      for (int64_t r = 0; r < 4; ++r) {
        CHECK(b.indices[static_cast<size_t>(r)] == order[static_cast<size_t>(k * 4 + r)]);
        seen.insert(b.indices[static_cast<size_t>(r)]);
      }
    }
    CHECK(seen.size() == 16);
  }
  // Shuffled, and differently in each epoch.
  std::vector<int64_t> identity(18);
  for (int64_t i = 0; i < 18; ++i) identity[static_cast<size_t>(i)] = i;
  CHECK(loader.epoch_order(0) != identity);
  CHECK(loader.epoch_order(0) != loader.epoch_order(1));
  // Keeping the partial batch.
  o.drop_last = false;
  o.epochs = 1;
  Loader all(ds, o);
  const auto last = drain(all);
  REQUIRE(last.size() == 5);
  CHECK(last.back().size() == 2);
  CHECK(last.back().image.shape() == Shape({2, 3, 32, 32}));
}

TEST_CASE("batch content is each sample's crop with its own augmentation draw", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(8);
  LoaderOptions o = small_options(2);
  o.epochs = 1;
  Loader loader(ds, o);
  for (const Batch& b : drain(loader)) {
    for (int64_t r = 0; r < b.size(); ++r) {
      const int64_t idx = b.indices[static_cast<size_t>(r)];
      PhiloxEngine rng = augmentation_engine(o.seed, b.epoch, idx);
      const CropSample c = crop_hand(ds->get(idx), o.crop, draw_augmentation(o.augmentation, o.crop.size, rng));
      CHECK(b.ids[static_cast<size_t>(r)] == c.id);
      CHECK(b.mirrored[static_cast<size_t>(r)] == (idx % 3 == 0));
      for (int j = 0; j < kNumJoints; ++j) {
        CHECK(b.uv.at({r, j, 0}) == static_cast<float>(c.uv[j][0]));
        CHECK(b.xyz.at({r, j, 2}) == static_cast<float>(c.xyz[j][2]));
        CHECK(b.vis.at({r, j}) == (c.visible[j] ? 1.0f : 0.0f));
      }
      CHECK(b.K.at({r, 0}) == static_cast<float>(c.K.fx));
      CHECK(b.K.at({r, 3}) == static_cast<float>(c.K.cy));
      CHECK(b.s0.at({r}) == static_cast<float>(c.s0));
      CHECK(b.z_root.at({r}) == static_cast<float>(c.z_root));
      CHECK(b.crop_scale.at({r}) == static_cast<float>(c.scale));
      CHECK(b.to_original.at({r, 1, 2}) == static_cast<float>(c.to_original.m[1][2]));
      const float* img = b.image.data() + r * 3 * 32 * 32;
      for (size_t p = 0; p < c.image.size(); ++p) REQUIRE(img[p] == c.image[p]);
    }
  }
}

TEST_CASE("loader output does not depend on the number of workers or on timing", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(26);
  auto run = [&](int workers, int prefetch) {
    LoaderOptions o = small_options(workers);
    o.prefetch = prefetch;
    o.epochs = 3;
    Loader loader(ds, o);
    return drain(loader);
  };
  const auto ref = run(0, 1);
  REQUIRE(ref.size() == 18);
  require_same(ref, run(1, 1));
  require_same(ref, run(2, 2));
  require_same(ref, run(3, 4));
  require_same(ref, run(2, 2));  // and again
  // A different seed changes order and augmentation.
  LoaderOptions other = small_options(2);
  other.seed = 18;
  Loader l2(ds, other);
  Batch b;
  REQUIRE(l2.next(b));
  CHECK(b.indices != ref[0].indices);
}

TEST_CASE("a resumed loader continues exactly where the batch count says", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(14);
  LoaderOptions o = small_options(2);
  o.epochs = 3;
  Loader full(ds, o);
  const auto all = drain(full);
  o.start_batch = 5;  // inside the second epoch
  Loader resumed(ds, o);
  const auto rest = drain(resumed);
  require_same(std::vector<Batch>(all.begin() + 5, all.end()), rest);
}

TEST_CASE("workers build at most `prefetch` batches ahead of the consumer", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(400);
  LoaderOptions o = small_options(2);
  o.prefetch = 3;
  o.epochs = 1;
  o.crop.size = 16;
  Loader loader(ds, o);
  Batch b;
  REQUIRE(loader.next(b));
  // After batch 0 the workers may claim batches 1 .. 1 + prefetch.
  const int64_t bound = (1 + 1 + o.prefetch) * o.batch_size;
  const auto t0 = std::chrono::steady_clock::now();
  while (ds->gets.load() < bound && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(ds->gets.load() == bound);
}

TEST_CASE("a consumer that stops early never hangs the loader", "[data][loader]") {
  for (int workers : {1, 2, 4}) {
    INFO(workers << " workers");
    CHECK(finishes_within(std::chrono::seconds(30), [workers] {
      auto ds = std::make_shared<MemoryDataset>(64, std::set<int64_t>{}, std::set<int64_t>{},
                                                std::chrono::milliseconds(2));
      LoaderOptions o = small_options(workers);
      o.epochs = 0;  // endless
      o.prefetch = 4;
      Loader loader(ds, o);
      Batch b;
      REQUIRE(loader.next(b));
    }));
    // Destroyed before taking anything.
    CHECK(finishes_within(std::chrono::seconds(30), [workers] {
      auto ds = std::make_shared<MemoryDataset>(64);
      Loader loader(ds, small_options(workers));
    }));
  }
}

TEST_CASE("sample errors reach the consumer as lgh::Error naming the sample", "[data][loader]") {
  for (int workers : {0, 2}) {
    INFO(workers << " workers");
    CHECK(finishes_within(std::chrono::seconds(30), [workers] {
      auto ds = std::make_shared<MemoryDataset>(16, std::set<int64_t>{5});
      LoaderOptions o = small_options(workers);
      o.shuffle = false;
      Loader loader(ds, o);
      Batch b;
      REQUIRE(loader.next(b));  // samples 0-3
      CHECK_THROWS_WITH(loader.next(b), Catch::Contains("memory sample 5") && Catch::Contains("img5.png"));
      // The loader stays failed.
      CHECK_THROWS_WITH(loader.next(b), Catch::Contains("memory sample 5"));
    }));
    // A failure that is not about the data is reported even when skipping.
    CHECK(finishes_within(std::chrono::seconds(30), [workers] {
      auto ds = std::make_shared<MemoryDataset>(16, std::set<int64_t>{}, std::set<int64_t>{2});
      LoaderOptions o = small_options(workers);
      o.skip_bad_samples = true;
      Loader loader(ds, o);
      Batch b;
      bool threw = false;
      try {
        while (loader.next(b)) {
        }
      } catch (const Error& e) {
        threw = true;
        CHECK(std::string(e.what()).find("allocator exploded") != std::string::npos);
      }
      CHECK(threw);
    }));
  }
}

TEST_CASE("skip_bad_samples leaves bad samples out, counts and reports them", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(16, std::set<int64_t>{3, 7, 8, 9, 10});
  std::vector<Batch> ref;
  for (int workers : {0, 2}) {
    LoaderOptions o = small_options(workers);
    o.skip_bad_samples = true;
    std::vector<std::string> reported;
    o.on_skip = [&](const std::string& m) { reported.push_back(m); };
    Loader loader(ds, o);
    const auto batches = drain(loader);
    int64_t delivered = 0, skipped = 0;
    for (const Batch& b : batches) {
      delivered += b.size();
      skipped += b.skipped;
      CHECK(b.size() > 0);
      CHECK(b.image.shape()[0] == b.size());
      CHECK(b.xyz.shape()[0] == b.size());
      for (int64_t i : b.indices) CHECK((i != 3 && i != 7 && i != 8 && i != 9 && i != 10));
    }
    CHECK(delivered == 2 * 11);
    CHECK(skipped == 2 * 5);
    CHECK(loader.skipped_samples() == 10);
    CHECK(loader.delivered_samples() == 22);
    REQUIRE(reported.size() == 10);
    CHECK(loader.skip_messages() == reported);
    CHECK(reported[0].find("img") != std::string::npos);
    if (ref.empty())
      ref = batches;
    else
      require_same(ref, batches);
  }
}

TEST_CASE("loader skips unreadable files of real readers", "[data][loader]") {
  lgh_test::ScratchDir tmp("loader");
  const std::string rhd = lgh_test::copy_fixture(tmp, "rhd");
  std::filesystem::remove(rhd + "/training/color/00001.png");
  const std::string frei = lgh_test::copy_fixture(tmp, "freihand");
  lgh_test::write_text(frei + "/training/rgb/00000004.jpg", "garbage");
  lgh_test::write_png_to(frei + "/training/rgb/00000000.jpg", Image(50, 50, 3, 0));

  LoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 1;
  o.epochs = 1;
  o.drop_last = false;
  o.crop.size = 64;
  o.skip_bad_samples = true;
  Loader a(std::make_shared<RhdDataset>(rhd), o);
  const auto ra = drain(a);
  CHECK(a.delivered_samples() == 2);
  CHECK(a.skipped_samples() == 1);
  REQUIRE(a.skip_messages().size() == 1);
  CHECK(a.skip_messages()[0].find("rhd/training/00001") != std::string::npos);
  CHECK(a.skip_messages()[0].find("00001.png") != std::string::npos);

  Loader f(std::make_shared<FreiHandDataset>(frei), o);
  drain(f);
  CHECK(f.delivered_samples() == 4);
  CHECK(f.skipped_samples() == 2);

  o.skip_bad_samples = false;
  o.shuffle = false;
  Loader strict(std::make_shared<FreiHandDataset>(frei), o);
  Batch b;
  CHECK_THROWS_WITH(strict.next(b), Catch::Contains("freihand/training/00000000") && Catch::Contains("50x50"));
}

TEST_CASE("loader options are checked", "[data][loader]") {
  auto ds = std::make_shared<MemoryDataset>(3);
  LoaderOptions o = small_options(1);
  CHECK_THROWS_WITH(Loader(ds, o), Catch::Contains("fewer than one batch"));
  o.batch_size = 0;
  CHECK_THROWS_WITH(Loader(ds, o), Catch::Contains("batch size"));
  o.batch_size = 1;
  o.prefetch = 0;
  CHECK_THROWS_WITH(Loader(ds, o), Catch::Contains("prefetch"));
  CHECK_THROWS_WITH(Loader(std::make_shared<MemoryDataset>(0), small_options(1)), Catch::Contains("empty"));
}
