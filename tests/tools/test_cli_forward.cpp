#include <catch2/catch.hpp>

#include <cmath>

#include "cli_fixtures.hpp"
#include "lgh/io/weights.hpp"

using namespace lgh;
using cli_test::q;
using cli_test::run_lgh;

namespace {

struct ForwardFiles {
  std::filesystem::path dir;
  std::string weights, input, output;
};

ForwardFiles setup(const std::string& name, int batch = 2) {
  ForwardFiles f;
  f.dir = cli_test::scratch(name);
  f.weights = (f.dir / "w.safetensors").string();
  f.input = (f.dir / "in.safetensors").string();
  f.output = (f.dir / "out.safetensors").string();
  nn::LearnableGroupsModel<float> model(cli_test::tiny_config(), 3);
  {
    autograd::NoGradGuard ng;  // a non-uniform θ, so the hard selector has work to do
    PhiloxEngine rng(1);
    model.selector->theta.copy_(TensorF::uniform(model.selector->theta.shape(), -1, 1, rng));
  }
  io::save_weights(model, f.weights, {{io::kTemperatureMetadataKey, "0.5"}});
  PhiloxEngine rng(2);
  io::SafetensorsWriter w;
  w.add("image", TensorF::uniform({batch, 3, 64, 64}, 0, 1, rng));
  w.write(f.input);
  return f;
}

}  // namespace

TEST_CASE("lgh forward writes uv, depth and selector equal to the library's", "[cli][forward]") {
  ForwardFiles f = setup("forward_ok");
  auto r = run_lgh("forward --weights " + q(f.weights) + " --input " + q(f.input) + " --output " + q(f.output) +
                       " --selector soft --threads 1",
                   f.dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  io::SafetensorsReader out(f.output);
  CHECK(out.record("uv").shape == Shape{2, 21, 2});
  CHECK(out.record("depth").shape == Shape{2, 21});
  CHECK(out.record("selector").shape == Shape{21, 3});
  CHECK(out.metadata().at(io::kTemperatureMetadataKey) == io::format_temperature(0.5));  // τ from the weights' metadata

  // The same computation through the library.
  auto model = io::load_model<float>(f.weights);
  model->eval();
  nn::SelectorOptions opt;
  opt.mode = nn::SelectorMode::Soft;
  opt.temperature = 0.5;
  autograd::NoGradGuard ng;
  const auto ref = model->forward(io::SafetensorsReader(f.input).load<float>("image"), opt);
  CHECK(out.load<float>("uv").to_vector() == ref.uv().to_vector());
  CHECK(out.load<float>("depth").to_vector() == ref.depth().contiguous().to_vector());
  CHECK(out.load<float>("selector").to_vector() == ref.selector.to_vector());
}

TEST_CASE("lgh forward: hard selector is one-hot, sample is reproducible per seed", "[cli][forward]") {
  ForwardFiles f = setup("forward_modes", 1);
  REQUIRE(run_lgh("forward --weights " + q(f.weights) + " --input " + q(f.input) + " --output " + q(f.output), f.dir).exit_code == 0);
  for (float v : io::SafetensorsReader(f.output).load<float>("selector").to_vector()) CHECK((v == 0.f || v == 1.f));
  const std::string a = (f.dir / "a.safetensors").string(), b = (f.dir / "b.safetensors").string(),
                    c = (f.dir / "c.safetensors").string();
  const std::string base = "forward --weights " + q(f.weights) + " --input " + q(f.input) + " --selector sample --tau 2 ";
  REQUIRE(run_lgh(base + "--seed 5 --output " + q(a), f.dir).exit_code == 0);
  REQUIRE(run_lgh(base + "--seed 5 --output " + q(b), f.dir).exit_code == 0);
  REQUIRE(run_lgh(base + "--seed 6 --output " + q(c), f.dir).exit_code == 0);
  const auto sa = io::SafetensorsReader(a).load<float>("selector").to_vector();
  CHECK(sa == io::SafetensorsReader(b).load<float>("selector").to_vector());
  CHECK(sa != io::SafetensorsReader(c).load<float>("selector").to_vector());
}

TEST_CASE("lgh forward: bad input exits 1 with one error line and no output file", "[cli][forward]") {
  ForwardFiles f = setup("forward_bad");
  auto expect_error = [&](const std::string& args, const std::string& message) {
    INFO(args);
    auto r = run_lgh(args, f.dir);
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(cli_test::line_count(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK_FALSE(std::filesystem::exists(f.output));
  };
  // Wrong image size for the model.
  {
    io::SafetensorsWriter w;
    w.add("image", TensorF::zeros({1, 3, 32, 32}));
    w.write((f.dir / "small.safetensors").string());
  }
  expect_error("forward --weights " + q(f.weights) + " --input " + q((f.dir / "small.safetensors").string()) +
                   " --output " + q(f.output),
               "expected [B,3,64,64]");
  // No 'image' tensor.
  {
    io::SafetensorsWriter w;
    w.add("picture", TensorF::zeros({1, 3, 64, 64}));
    w.write((f.dir / "noimage.safetensors").string());
  }
  expect_error("forward --weights " + q(f.weights) + " --input " + q((f.dir / "noimage.safetensors").string()) +
                   " --output " + q(f.output),
               "no tensor 'image'");
  // Weights that are not a safetensors file.
  {
    std::ofstream bad((f.dir / "junk.safetensors").string());
    bad << "this is not a weights file";
  }
  expect_error("forward --weights " + q((f.dir / "junk.safetensors").string()) + " --input " + q(f.input) +
                   " --output " + q(f.output),
               "junk.safetensors");
  // Input passed as weights: the tensors do not fit a model.
  expect_error("forward --weights " + q(f.input) + " --input " + q(f.input) + " --output " + q(f.output), "in.safetensors");
  // Output directory missing.
  {
    auto r = run_lgh("forward --weights " + q(f.weights) + " --input " + q(f.input) + " --output " +
                         q((f.dir / "no/such/dir/out.safetensors").string()),
                     f.dir);
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("error: ", 0) == 0);
  }
  // Without a GPU, --device cuda stops before any work (the runtime's reason,
  // or that the tool was built without the CUDA backend).
  if (!cli_test::gpu_present())
    expect_error("forward --weights " + q(f.weights) + " --input " + q(f.input) + " --output " + q(f.output) +
                     " --device cuda",
                 "forward: --device cuda:0 is not");
}

// Hidden from the plain test_cli run: its own ctest entry, test_cli_gpu,
// reported as skipped where there is no GPU.
TEST_CASE("lgh forward --device cuda equals the CPU's output where a GPU exists", "[.gpu][cli][forward]") {
  if (!cli_test::gpu_present()) {
    WARN("LGH_TEST_SKIPPED: no GPU here; lgh forward --device cuda not compared with the CPU");
    return;
  }
  ForwardFiles f = setup("forward_cuda", 2);
  const std::string cpu = (f.dir / "cpu.safetensors").string(), gpu = (f.dir / "gpu.safetensors").string();
  const std::string base = "forward --weights " + q(f.weights) + " --input " + q(f.input) + " --selector soft ";
  REQUIRE(run_lgh(base + "--output " + q(cpu), f.dir).exit_code == 0);
  auto r = run_lgh(base + "--device cuda --output " + q(gpu), f.dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* name : {"uv", "depth", "selector"}) {
    const auto a = io::SafetensorsReader(cpu).load<float>(name).to_vector();
    const auto b = io::SafetensorsReader(gpu).load<float>(name).to_vector();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 1e-3f + 1e-3f * std::abs(a[i]));
  }
}

TEST_CASE("lgh forward: usage errors exit 2", "[cli][forward]") {
  ForwardFiles f = setup("forward_usage");
  CHECK(run_lgh("forward --input " + q(f.input) + " --output " + q(f.output), f.dir).exit_code == 2);  // --weights missing
  CHECK(run_lgh("forward --weights " + q(f.weights) + " --input " + q(f.input) + " --output " + q(f.output) +
                    " --selector argmax",
                f.dir)
            .exit_code == 2);
  CHECK(run_lgh("forward --weights " + q(f.weights) + " --input " + q(f.input) + " --output " + q(f.output) + " --tau -1",
                f.dir)
            .exit_code == 2);
  CHECK(run_lgh("forward --weights " + q((f.dir / "missing.safetensors").string()) + " --input " + q(f.input) +
                    " --output " + q(f.output),
                f.dir)
            .exit_code == 2);
  CHECK(run_lgh("frobnicate", f.dir).exit_code == 2);
  CHECK(run_lgh("", f.dir).exit_code == 2);  // a subcommand is required
  // A usage error names the flag after "error: ", like every other error.
  const auto missing = run_lgh("forward --input " + q(f.input) + " --output " + q(f.output), f.dir);
  CHECK(missing.err.rfind("error: ", 0) == 0);
  CHECK_THAT(missing.err, Catch::Contains("--weights"));
  auto h = run_lgh("--help", f.dir);
  CHECK(h.exit_code == 0);
  CHECK_THAT(h.out, Catch::Contains("forward"));
  auto fh = run_lgh("forward --help", f.dir);
  CHECK(fh.exit_code == 0);
  for (const char* flag : {"--weights", "--input", "--output", "--selector", "--tau", "--seed", "--device"})
    CHECK_THAT(fh.out, Catch::Contains(flag));
  CHECK_FALSE(std::filesystem::exists(f.output));
}

// `lgh forward` on `paper` weights dumped by the PyTorch statement with no
// metadata (run by ctest after tests/reference/dump_model_case.py).
TEST_CASE("lgh forward runs paper weights dumped from PyTorch without metadata", "[.live][cli][forward]") {
  const char* dir = std::getenv("LGH_PAPER_CASE_DIR");
  REQUIRE(dir != nullptr);
  const std::string d(dir);
  const auto scratch = cli_test::scratch("forward_paper");
  const std::string out = (scratch / "out.safetensors").string();
  auto r = run_lgh("forward --weights " + q(d + "/weights.safetensors") + " --input " + q(d + "/case.safetensors") +
                       " --output " + q(out),
                   scratch);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  io::SafetensorsReader got(out), ref(d + "/case.safetensors");
  for (const char* name : {"uv", "depth", "selector"}) {
    const auto a = got.load<double>(name).to_vector(), b = ref.load<double>(std::string("eval_hard.") + name).to_vector();
    REQUIRE(a.size() == b.size());
    double err = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      err = std::max(err, std::fabs(a[i] - b[i]));
      scale = std::max(scale, std::fabs(b[i]));
    }
    INFO(name << ": error " << err << " of max " << scale);
    CHECK(err <= 1e-4 * scale);
  }
}
