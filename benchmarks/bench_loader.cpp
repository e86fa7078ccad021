// Loader throughput: batches/s and images/s of training batches (crop,
// bilinear resize, paper augmentation with hue jitter, label transform,
// batch assembly) at S = 128 and 256, batch 8 and 32, 1 and 2 workers, from
// an in-memory dataset of a pre-rendered 320x320 hand image (RHD's size).
// The "png" variant decodes a PNG per sample as a file-backed reader would.
// Compare images/s with the training step's images/s to see whether the
// loader keeps up. Wall-clock time (the work happens on the workers).
//
//   bench_loader --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <string>

#include "lgh/data/crop.hpp"
#include "lgh/data/image.hpp"
#include "lgh/data/loader.hpp"

namespace {

using namespace lgh;
using namespace lgh::data;

// A 320x320 sample with a textured image and a hand consistent with K.
HandSample render_sample() {
  HandSample s;
  s.id = "bench/0";
  s.rgb = Image(320, 320, 3);
  for (int y = 0; y < 320; ++y)
    for (int x = 0; x < 320; ++x) {
      uint8_t* p = s.rgb.at(x, y);
      p[0] = static_cast<uint8_t>(128 + 100 * std::sin(0.05 * x));
      p[1] = static_cast<uint8_t>(128 + 100 * std::cos(0.07 * y));
      p[2] = static_cast<uint8_t>((x ^ y) & 0xFF);
    }
  s.K = Intrinsics{300, 300, 160, 160};
  for (int j = 0; j < kNumJoints; ++j) {
    s.xyz[j] = {-50.0 + 5 * j, -40.0 + 4 * (j % 5), 500.0 + 2 * j};
    s.uv[j] = project(s.K, s.xyz[j]);
    s.visible[j] = true;
  }
  s.mask = Image(320, 320, 1, 0);
  for (int y = 100; y < 220; ++y)
    for (int x = 80; x < 240; ++x) s.mask.at(x, y)[0] = 255;
  return s;
}

class FixedDataset : public Dataset {
 public:
  explicit FixedDataset(bool decode_png) : sample_(render_sample()), decode_(decode_png) {
    if (decode_) {
      const std::string path = "/tmp/lgh_bench_loader_sample.png";
      write_image(path, sample_.rgb);
      std::FILE* f = std::fopen(path.c_str(), "rb");
      png_.resize(1 << 20);
      png_.resize(std::fread(png_.data(), 1, png_.size(), f));
      std::fclose(f);
      std::remove(path.c_str());
    }
  }
  int64_t size() const override { return 4096; }
  std::string name() const override { return decode_ ? "fixed-png" : "fixed"; }
  HandSample get(int64_t index) const override {
    HandSample s = sample_;  // copies the image, as a reader hands out a fresh one
    s.is_left = index % 2 == 1;
    if (decode_) s.rgb = decode_image(png_.data(), png_.size(), "bench sample");
    return s;
  }

 private:
  HandSample sample_;
  bool decode_;
  std::vector<uint8_t> png_;
};

// Args: crop size S, batch size, workers, decode PNG (0/1).
void BM_LoaderThroughput(benchmark::State& state) {
  const int S = static_cast<int>(state.range(0));
  const int64_t B = state.range(1);
  const int workers = static_cast<int>(state.range(2));
  auto ds = std::make_shared<FixedDataset>(state.range(3) != 0);
  LoaderOptions o;
  o.batch_size = B;
  o.num_workers = workers;
  o.prefetch = 2;
  o.crop.size = S;
  o.epochs = 0;
  Loader loader(ds, o);
  Batch b;
  loader.next(b);  // warm-up: threads started, allocator caches filled
  for (auto _ : state) {
    loader.next(b);
    benchmark::DoNotOptimize(b.image.data());
  }
  state.counters["batches/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * B), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderThroughput)
    ->ArgNames({"S", "B", "workers", "png"})
    ->ArgsProduct({{128, 256}, {8, 32}, {1, 2}, {0}})
    ->Args({256, 32, 2, 1})
    ->Args({256, 32, 1, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

// One augmented crop on the calling thread: the per-image cost inside a batch.
void BM_CropAugmented(benchmark::State& state) {
  const int S = static_cast<int>(state.range(0));
  const HandSample s = render_sample();
  CropOptions o;
  o.size = S;
  std::vector<float> out(static_cast<size_t>(3) * S * S);
  Augmentation a;
  a.scale = 1.1;
  a.rotation = 0.7;
  a.tx = 5;
  a.hue = state.range(1) ? 0.05 : 0.0;
  for (auto _ : state) {
    CropSample c = crop_hand(s, o, a, out.data());
    benchmark::DoNotOptimize(c.uv[0][0]);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CropAugmented)->ArgNames({"S", "hue"})->ArgsProduct({{128, 256}, {0, 1}})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
