// conv2d / conv_transpose2d at the model's real shapes (benchmarks/conv_shapes.json):
// forward at batch 1 (inference) and forward + backward at batch 8 (training).
// Threads: LGH_NUM_THREADS (default: all cores). Compare with PyTorch through
// benchmarks/compare_conv.py, which runs this binary and torch_conv.py in one go.
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "lgh/ops/conv.hpp"

namespace {

using lgh::Shape;
using lgh::TensorF;

struct ConvShape {
  std::string name;
  int64_t c, h, o, k, s, p;
  bool transposed;
};

TensorF random(const Shape& s, uint64_t seed) {
  lgh::PhiloxEngine rng(seed);
  return TensorF::uniform(s, -1, 1, rng);
}

TensorF run(const ConvShape& cs, const TensorF& x, const TensorF& w, const TensorF& b) {
  return cs.transposed ? lgh::ops::conv_transpose2d(x, w, b, cs.s, cs.p) : lgh::ops::conv2d(x, w, b, cs.s, cs.p);
}

Shape weight_shape(const ConvShape& cs) {
  return cs.transposed ? Shape{cs.c, cs.o, cs.k, cs.k} : Shape{cs.o, cs.c, cs.k, cs.k};
}

void forward(benchmark::State& state, ConvShape cs, int64_t batch) {
  lgh::autograd::NoGradGuard no_grad;
  TensorF x = random({batch, cs.c, cs.h, cs.h}, 1), w = random(weight_shape(cs), 2), b = random({cs.o}, 3);
  for (auto _ : state) {
    TensorF y = run(cs, x, w, b);
    benchmark::DoNotOptimize(y.data());
  }
}

void forward_backward(benchmark::State& state, ConvShape cs, int64_t batch) {
  TensorF x = random({batch, cs.c, cs.h, cs.h}, 1).set_requires_grad();
  TensorF w = random(weight_shape(cs), 2).set_requires_grad();
  TensorF b = random({cs.o}, 3).set_requires_grad();
  TensorF gy;
  {
    lgh::autograd::NoGradGuard no_grad;  // the output shape, untimed
    gy = random(run(cs, x.detach(), w.detach(), b.detach()).shape(), 4);
  }
  for (auto _ : state) {
    TensorF y = run(cs, x, w, b);
    y.backward(gy);
    benchmark::DoNotOptimize(w.grad().data());
  }
}

std::vector<ConvShape> load_shapes() {
  std::ifstream in(LGH_BENCH_DIR "/conv_shapes.json");
  const auto j = nlohmann::json::parse(in);
  std::vector<ConvShape> out;
  for (const auto& s : j.at("shapes"))
    out.push_back({s.at("name"), s.at("c"), s.at("h"), s.at("o"), s.at("k"), s.at("s"), s.at("p"),
                   s.value("transposed", false)});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  for (const ConvShape& cs : load_shapes()) {
    benchmark::RegisterBenchmark(("fwd_b1/" + cs.name).c_str(), forward, cs, 1)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("fwdbwd_b8/" + cs.name).c_str(), forward_backward, cs, 8)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
