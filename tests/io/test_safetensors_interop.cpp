// Safetensors interop with independent implementations.
//
// The interop tensor set (defined by the same formulas in
// safetensors_interop.py) is checked
//  - in fixtures/reference_torch.safetensors, written by the reference
//    safetensors implementation from PyTorch tensors;
//  - in fixtures/interop_numpy.safetensors and in a file written at test time,
//    both by safetensors_interop.py (numpy only);
//  - the other way round: a file written here is verified value by value by
//    safetensors_interop.py.
// The cases that run Python are tagged [.python]: hidden from the plain
// test_io run, they have their own ctest entry (test_io_python_interop).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "lgh/io/safetensors.hpp"
#include "scratch_dir.hpp"

using namespace lgh;
namespace fs = std::filesystem;

namespace {

using ScratchDir = lgh_test::ScratchDir;

const std::string kFixtures = std::string(LGH_TEST_DATA_DIR) + "/io/fixtures/";
const std::string kScript = std::string(LGH_TEST_DATA_DIR) + "/io/safetensors_interop.py";

const int64_t kI64Min = std::numeric_limits<int64_t>::min();
const int64_t kI64Max = std::numeric_limits<int64_t>::max();

const std::map<std::string, std::string> kMetadata = {
    {"format", "pt"},
    {"config", R"({"groups": 3, "fusion": true})"},
    {"note", "gr\xc3\xb6\xc3\x9f" "e \xe2\x9c\x93"},
};

// The interop set's values, written out as in safetensors_interop.py.
std::vector<float> f32_values() {
  std::vector<float> v;
  for (int64_t i = 0; i < 24; ++i) v.push_back(static_cast<float>(static_cast<double>(i - 7) * 0.37));
  return v;
}
std::vector<double> f64_values() {
  std::vector<double> v;
  for (int64_t i = 0; i < 5; ++i) v.push_back(static_cast<double>(i - 2) / 3.0);
  return v;
}
std::vector<double> f16_source() {  // before rounding to half
  std::vector<double> v;
  for (int64_t i = 0; i < 5; ++i) v.push_back(static_cast<double>(i - 3) * 0.1);
  v.push_back(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40));
  return v;
}
std::vector<float> bf16_source() {  // before rounding to bfloat16
  std::vector<float> v;
  for (int64_t i = 0; i < 5; ++i) v.push_back(static_cast<float>(static_cast<double>(i - 2) * 0.3));
  v.push_back(1.0f + std::ldexp(1.0f, -8));
  v.push_back(1.0f + 3 * std::ldexp(1.0f, -8));
  return v;
}

void require_record(const io::SafetensorsReader& r, const std::string& name, DType dtype, const Shape& shape) {
  INFO("tensor " << name);
  REQUIRE(r.contains(name));
  CHECK(r.record(name).dtype == dtype);
  CHECK(r.record(name).shape == shape);
}

// Checks every tensor of the interop set (and the "<name>.f64" companions
// holding the writer's own decoding of the 16-bit tensors).
void check_interop_file(const std::string& path) {
  INFO("file " << path);
  io::SafetensorsReader r(path);
  CHECK(r.metadata() == kMetadata);
  CHECK(r.size() == 12);

  require_record(r, "f32", DType::F32, Shape{2, 3, 4});
  CHECK(r.load<float>("f32").to_vector() == f32_values());
  require_record(r, "f64", DType::F64, Shape{5});
  CHECK(r.load<double>("f64").to_vector() == f64_values());

  require_record(r, "f16", DType::F16, Shape{3, 2});
  require_record(r, "f16.f64", DType::F64, Shape{3, 2});
  const std::vector<double> f16 = r.load<double>("f16").to_vector();
  CHECK(f16 == r.load<double>("f16.f64").to_vector());
  const std::vector<double> f16_src = f16_source();
  for (size_t i = 0; i < f16.size(); ++i) CHECK(std::fabs(f16[i] - f16_src[i]) <= std::fabs(f16_src[i]) * std::ldexp(1.0, -11));
  CHECK(f16[5] == 1.0 + std::ldexp(1.0, -10));  // rounded once, from double

  require_record(r, "bf16", DType::BF16, Shape{7});
  require_record(r, "bf16.f64", DType::F64, Shape{7});
  const std::vector<double> bf16 = r.load<double>("bf16").to_vector();
  CHECK(bf16 == r.load<double>("bf16.f64").to_vector());
  const std::vector<float> bf16_src = bf16_source();
  for (size_t i = 0; i < bf16.size(); ++i) CHECK(std::fabs(bf16[i] - bf16_src[i]) <= std::fabs(bf16_src[i]) * std::ldexp(1.0, -8));
  CHECK(bf16[5] == 1.0);                          // tie to even
  CHECK(bf16[6] == 1.0 + std::ldexp(1.0, -6));    // tie to even

  require_record(r, "i64", DType::I64, Shape{2, 2});
  CHECK(r.load<int64_t>("i64").to_vector() ==
        std::vector<int64_t>{kI64Min, -1, (int64_t(1) << 53) + 1, kI64Max});
  require_record(r, "i32", DType::I32, Shape{4});
  CHECK(r.load<int64_t>("i32").to_vector() == std::vector<int64_t>{-2147483648LL, -7, 0, 2147483647LL});
  require_record(r, "u8", DType::U8, Shape{3});
  CHECK(r.load<int64_t>("u8").to_vector() == std::vector<int64_t>{0, 128, 255});
  require_record(r, "bool", DType::Bool, Shape{2, 2});
  CHECK(r.load<int64_t>("bool").to_vector() == std::vector<int64_t>{1, 0, 0, 1});
  require_record(r, "scalar", DType::F32, Shape{});
  CHECK(r.load<float>("scalar").item() == 2.5f);
  require_record(r, "empty", DType::F32, Shape{0, 3});
  CHECK(r.load<float>("empty").numel() == 0);
}

// The interop set, written by lgh (without the companions).
io::SafetensorsWriter interop_writer() {
  io::SafetensorsWriter w;
  w.add("f32", TensorF::from_data({2, 3, 4}, f32_values()));
  w.add("f64", TensorD::from_data({5}, f64_values()));
  w.add("f16", TensorD::from_data({3, 2}, f16_source()), DType::F16);
  w.add("bf16", TensorF::from_data({7}, bf16_source()), DType::BF16);
  w.add("i64", Tensor<int64_t>::from_data({2, 2}, {kI64Min, -1, (int64_t(1) << 53) + 1, kI64Max}));
  w.add("i32", Tensor<int64_t>::from_data({4}, {-2147483648LL, -7, 0, 2147483647LL}), DType::I32);
  w.add("u8", Tensor<int64_t>::from_data({3}, {0, 128, 255}), DType::U8);
  w.add("bool", Tensor<int64_t>::from_data({2, 2}, {1, 0, 0, 1}), DType::Bool);
  w.add("scalar", TensorF::scalar(2.5f));
  w.add("empty", TensorF::empty({0, 3}));
  for (const auto& kv : kMetadata) w.set_metadata(kv.first, kv.second);
  return w;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// The Python interpreter with numpy, or "" (and a skip notice) without one.
std::string python_with_numpy() {
#ifdef LGH_TEST_PYTHON
  const std::string py = LGH_TEST_PYTHON;
  if (std::system((quoted(py) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) return py;
  WARN("LGH_TEST_SKIPPED: " << py << " cannot import numpy; Python interop not checked");
#else
  WARN("LGH_TEST_SKIPPED: no python3 found at configure time; Python interop not checked");
#endif
  return "";
}

int run_script(const std::string& py, const std::string& mode, const std::string& file) {
  const std::string cmd = quoted(py) + " " + quoted(kScript) + " " + mode + " " + quoted(file);
  INFO(cmd);
  return std::system(cmd.c_str());
}

}  // namespace

TEST_CASE("reads a file written by the reference implementation from PyTorch", "[io][safetensors][interop]") {
  check_interop_file(kFixtures + "reference_torch.safetensors");
}

TEST_CASE("reads a file written by the numpy implementation", "[io][safetensors][interop]") {
  const std::string path = kFixtures + "interop_numpy.safetensors";
  check_interop_file(path);
  // That writer lays the buffer out in its own order; names() follows it.
  CHECK(io::SafetensorsReader(path).names() ==
        std::vector<std::string>{"u8", "f64", "bool", "f16", "empty", "scalar", "i64", "bf16.f64", "f32", "i32",
                                 "f16.f64", "bf16"});
}

TEST_CASE("Python reads what lgh writes, and lgh reads what Python writes", "[io][safetensors][interop][.python]") {
  const std::string py = python_with_numpy();
  if (py.empty()) return;
  ScratchDir tmp("interop");

  const std::string ours = tmp.file("from_lgh.safetensors");
  interop_writer().write(ours);
  CHECK(run_script(py, "verify", ours) == 0);

  const std::string theirs = tmp.file("from_python.safetensors");
  REQUIRE(run_script(py, "write", theirs) == 0);
  check_interop_file(theirs);
}

TEST_CASE("the Python check fails when a value differs", "[io][safetensors][interop][.python]") {
  const std::string py = python_with_numpy();
  if (py.empty()) return;
  ScratchDir tmp("interop");
  // One element off by one ulp, in an otherwise identical file.
  io::SafetensorsWriter w = interop_writer();
  std::vector<float> v = f32_values();
  v[5] = std::nextafter(v[5], 10.0f);
  io::SafetensorsWriter off;
  off.add("f32", TensorF::from_data({2, 3, 4}, v));
  const std::string good = tmp.file("good.safetensors"), bad = tmp.file("bad.safetensors");
  w.write(good);
  // Rebuild the set with the altered f32 tensor.
  io::SafetensorsReader r(good);
  for (const std::string& name : r.names()) {
    if (name == "f32") continue;
    const DType dt = r.record(name).dtype;
    if (dt == DType::I64 || dt == DType::I32 || dt == DType::U8 || dt == DType::Bool)
      off.add(name, r.load<int64_t>(name), dt);
    else
      off.add(name, r.load<double>(name), dt);
  }
  for (const auto& kv : r.metadata()) off.set_metadata(kv.first, kv.second);
  off.write(bad);
  CHECK(run_script(py, "verify", good) == 0);
  CHECK(run_script(py, "verify", bad) != 0);
}
