// SafetensorsReader / SafetensorsWriter: round trips per dtype, 16-bit
// rounding against hand-derived bit patterns, metadata, strided input,
// atomic writes, and one hand-crafted malformed file per validation rule.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "lgh/io/safetensors.hpp"
#include "scratch_dir.hpp"

using namespace lgh;
using Catch::Contains;
using lgh_test::write_bytes;
namespace fs = std::filesystem;

namespace {

using ScratchDir = lgh_test::ScratchDir;

std::string u64le(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A file made of the given header text (length field computed) and data.
std::string st_file(const std::string& header, const std::string& data) {
  return u64le(header.size()) + header + data;
}

// The data buffer of a file, located by its length field (not by the reader).
std::string data_buffer(const std::string& file) {
  REQUIRE(file.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[static_cast<size_t>(i)]);
  REQUIRE(8 + n <= file.size());
  return file.substr(static_cast<size_t>(8 + n));
}

std::vector<uint16_t> u16s(const std::string& bytes) {
  std::vector<uint16_t> v;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2)
    v.push_back(static_cast<uint16_t>(static_cast<unsigned char>(bytes[i]) |
                                      (static_cast<unsigned char>(bytes[i + 1]) << 8)));
  return v;
}

// Eight bytes of data: two F32 values, 1.0 and -2.0, spelled out.
const std::string kTwoFloats("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);

// Writes `bytes` to a fresh file and checks that opening it throws an
// lgh::Error whose message names the file and contains `problem`.
void require_rejected(const std::string& bytes, const std::string& problem) {
  ScratchDir tmp("safetensors");
  const std::string path = tmp.file("bad.safetensors");
  write_bytes(path, bytes);
  INFO("expected problem: " << problem);
  REQUIRE_THROWS_AS(io::SafetensorsReader(path), lgh::Error);
  REQUIRE_THROWS_WITH(io::SafetensorsReader(path), Contains(path) && Contains(problem));
}

// An entry of `n` F32 values at [begin, begin + 4n).
std::string f32_entry(const std::string& name, int n, int begin) {
  return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) + "],\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(begin + 4 * n) + "]}";
}

template <typename T>
Tensor<T> round_trip(const Tensor<T>& t, DType as, const std::string& dir_file) {
  io::SafetensorsWriter w;
  w.add("t", t, as);
  w.write(dir_file);
  io::SafetensorsReader r(dir_file);
  REQUIRE(r.record("t").dtype == as);
  return r.load<T>("t");
}

}  // namespace

// ---- the crafting helpers themselves -------------------------------------------------

TEST_CASE("a hand-crafted valid file is read", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const std::string path = tmp.file("ok.safetensors");
  // Padded with trailing spaces, as the format allows.
  write_bytes(path, st_file("{" + f32_entry("a", 2, 0) + "}   ", kTwoFloats));
  io::SafetensorsReader r(path);
  REQUIRE(r.names() == std::vector<std::string>{"a"});
  CHECK(r.path() == path);
  CHECK(r.metadata().empty());
  const TensorF a = r.load<float>("a");
  REQUIRE(a.shape() == Shape{2});
  CHECK(a.at({0}) == 1.0f);
  CHECK(a.at({1}) == -2.0f);
}

TEST_CASE("an empty file list and a metadata-only file are valid", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  write_bytes(tmp.file("a"), st_file("{}", ""));
  CHECK(io::SafetensorsReader(tmp.file("a")).names().empty());
  write_bytes(tmp.file("b"), st_file(R"({"__metadata__":{"k":"v"}})", ""));
  io::SafetensorsReader b(tmp.file("b"));
  CHECK(b.names().empty());
  CHECK(b.metadata().at("k") == "v");
}

// ---- writer output against the spec -------------------------------------------------

TEST_CASE("writer output follows the format byte for byte", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const std::string path = tmp.file("w.safetensors");
  io::SafetensorsWriter w;
  w.add("t", TensorF::from_data({2}, {1.0f, -2.0f}));
  w.add("n", Tensor<int64_t>::from_data({1}, {int64_t(-2)}));
  w.set_metadata("k", "v");
  w.write(path);

  const std::string file = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[static_cast<size_t>(i)]);
  REQUIRE(8 + n + 16 == file.size());
  CHECK(n % 8 == 0);  // aligned data
  const nlohmann::json header = nlohmann::json::parse(file.substr(8, static_cast<size_t>(n)));
  const nlohmann::json expected = {
      {"t", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
      {"n", {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {8, 16}}}},
      {"__metadata__", {{"k", "v"}}}};
  CHECK(header == expected);
  CHECK(data_buffer(file) == kTwoFloats + std::string("\xfe\xff\xff\xff\xff\xff\xff\xff", 8));
}

// ---- round trips per dtype ---------------------------------------------------------------

TEST_CASE("F32 and F64 round trip exactly", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  PhiloxEngine rng(7);
  const TensorF f = TensorF::normal({3, 5}, 0.0, 10.0, rng);
  CHECK(round_trip(f, DType::F32, tmp.file("f32")).to_vector() == f.to_vector());
  const TensorD d = TensorD::normal({4, 2, 3}, 0.0, 1e300, rng);
  CHECK(round_trip(d, DType::F64, tmp.file("f64")).to_vector() == d.to_vector());
  // float widened to F64 and read back as float is exact too.
  CHECK(round_trip(f, DType::F64, tmp.file("f32as64")).to_vector() == f.to_vector());
}

TEST_CASE("double stored as F32 and F64 read as float round to nearest even", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const double tie = 1.0 + std::ldexp(1.0, -24);  // halfway between 1 and 1 + 2^-23
  const double above = tie + std::ldexp(1.0, -40);
  const TensorD d = TensorD::from_data({2}, {tie, above});
  const TensorD r = round_trip(d, DType::F32, tmp.file("a"));
  CHECK(r.at({0}) == 1.0);
  CHECK(r.at({1}) == 1.0 + std::ldexp(1.0, -23));

  io::SafetensorsWriter w;
  w.add("t", d);  // F64
  w.write(tmp.file("b"));
  const TensorF f = io::SafetensorsReader(tmp.file("b")).load<float>("t");
  CHECK(f.at({0}) == 1.0f);
  CHECK(f.at({1}) == 1.0f + std::ldexp(1.0f, -23));
}

TEST_CASE("F16: exact values survive, others round to nearest even, bits as IEEE binary16", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const float ulp11 = std::ldexp(1.0f, -11);  // half an ulp of half at 1
  const TensorF t = TensorF::from_data(
      {2, 4}, {1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), 1.0f + ulp11, 1.0f + 3 * ulp11, -0.0f, 0.5f});
  const std::string path = tmp.file("f16");
  const TensorF back = round_trip(t, DType::F16, path);
  // Bit patterns derived by hand from the binary16 layout (1 sign, 5 exponent
  // bits biased by 15, 10 mantissa bits).
  const std::vector<uint16_t> bits = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3C00, 0x3C02, 0x8000, 0x3800};
  CHECK(u16s(data_buffer(read_bytes(path))) == bits);
  const std::vector<float> want = {1.0f,  -2.0f, 65504.0f, std::ldexp(1.0f, -24), 1.0f, 1.0f + 4 * ulp11,
                                   -0.0f, 0.5f};
  CHECK(back.to_vector() == want);
  CHECK(std::signbit(back.at({1, 2})));
}

TEST_CASE("BF16: rounding to nearest even, bits as the top half of binary32", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const float ulp8 = std::ldexp(1.0f, -8);  // half an ulp of bfloat16 at 1
  const TensorF t = TensorF::from_data({5}, {1.0f, -2.0f, 1.0f + ulp8, 1.0f + 3 * ulp8, 1.0f / 3.0f});
  const std::string path = tmp.file("bf16");
  const TensorF back = round_trip(t, DType::BF16, path);
  // 1/3 = 0x3EAAAAAB: dropped half 0xAAAB > 0x8000, so it rounds up to 0x3EAB.
  const std::vector<uint16_t> bits = {0x3F80, 0xC000, 0x3F80, 0x3F82, 0x3EAB};
  CHECK(u16s(data_buffer(read_bytes(path))) == bits);
  CHECK(back.at({2}) == 1.0f);
  CHECK(back.at({3}) == 1.0f + 4 * ulp8);
  CHECK(back.at({4}) == 0.333984375f);  // 0x3EAB = (1 + 43/128) / 4
}

TEST_CASE("double stored as F16/BF16 is rounded once, not via float", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  // 1 + 2^-11 + 2^-40 is just above the half tie between 1 and 1 + 2^-10; a
  // nearest-even float drops the 2^-40 and turns it into a tie (-> 1).
  const double h = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  const double b = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  const double exact_tie = 1.0 + std::ldexp(1.0, -11);
  const std::string p16 = tmp.file("h"), p16b = tmp.file("b");
  const TensorD rh = round_trip(TensorD::from_data({3}, {h, -h, exact_tie}), DType::F16, p16);
  CHECK(u16s(data_buffer(read_bytes(p16))) == std::vector<uint16_t>{0x3C01, 0xBC01, 0x3C00});
  CHECK(rh.at({0}) == 1.0 + std::ldexp(1.0, -10));
  const TensorD rb = round_trip(TensorD::from_data({2}, {b, 1e39}), DType::BF16, p16b);
  CHECK(u16s(data_buffer(read_bytes(p16b))) == std::vector<uint16_t>{0x3F81, 0x7F80});
  CHECK(rb.at({0}) == 1.0 + std::ldexp(1.0, -7));
  CHECK(std::isinf(rb.at({1})));
}

TEST_CASE("I64 round trips exactly, narrower integer dtypes when the values fit", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  const auto big = Tensor<int64_t>::from_data({2, 2}, {lo, -1, (int64_t(1) << 53) + 1, hi});
  CHECK(round_trip(big, DType::I64, tmp.file("i64")).to_vector() == big.to_vector());

  const auto i32 = Tensor<int64_t>::from_data({3}, {-2147483648LL, 0, 2147483647LL});
  CHECK(round_trip(i32, DType::I32, tmp.file("i32")).to_vector() == i32.to_vector());
  const auto u8 = Tensor<int64_t>::from_data({3}, {0, 128, 255});
  CHECK(round_trip(u8, DType::U8, tmp.file("u8")).to_vector() == u8.to_vector());
  const auto b = Tensor<int64_t>::from_data({4}, {1, 0, 0, 1});
  const std::string bool_path = tmp.file("bool");
  CHECK(round_trip(b, DType::Bool, bool_path).to_vector() == b.to_vector());
  CHECK(data_buffer(read_bytes(bool_path)) == std::string("\x01\x00\x00\x01", 4));

  io::SafetensorsWriter w;
  REQUIRE_THROWS_WITH(w.add("x", Tensor<int64_t>::from_data({2}, {0, 2147483648LL}), DType::I32),
                      Contains("'x'") && Contains("2147483648") && Contains("I32"));
  REQUIRE_THROWS_WITH(w.add("y", Tensor<int64_t>::from_data({1}, {-1}), DType::U8), Contains("'y'") && Contains("U8"));
  REQUIRE_THROWS_WITH(w.add("z", Tensor<int64_t>::from_data({1}, {2}), DType::Bool), Contains("'z'") && Contains("BOOL"));
  CHECK(w.size() == 0);
}

TEST_CASE("scalars and zero-size tensors round trip", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  io::SafetensorsWriter w;
  w.add("s", TensorF::scalar(2.5f));
  w.add("e", TensorF::empty({0, 3}));
  w.add("after", TensorF::from_data({1}, {7.0f}));
  w.write(tmp.file("x"));
  io::SafetensorsReader r(tmp.file("x"));
  const TensorF s = r.load<float>("s");
  CHECK(s.ndim() == 0);
  CHECK(s.item() == 2.5f);
  CHECK(r.load<float>("e").shape() == Shape{0, 3});
  CHECK(r.load<float>("after").item() == 7.0f);
  CHECK(r.record("e").begin == 4);
  CHECK(r.record("e").end == 4);
}

TEST_CASE("metadata round trips", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  io::SafetensorsWriter w;
  w.add("t", TensorF::ones({1}));
  const std::string config = R"({"name": "small", "groups": 3, "fusion": true, "path": "a\\b"})";
  const std::string unicode = "gr\xc3\xb6\xc3\x9f" "e \xe2\x9c\x93";
  w.set_metadata("config", "old");
  w.set_metadata("config", config);  // replaces
  w.set_metadata("note", unicode);
  w.set_metadata("empty", "");
  w.write(tmp.file("m"));
  io::SafetensorsReader r(tmp.file("m"));
  const std::map<std::string, std::string> want = {{"config", config}, {"note", unicode}, {"empty", ""}};
  CHECK(r.metadata() == want);
  CHECK(nlohmann::json::parse(r.metadata().at("config")).at("groups") == 3);
}

TEST_CASE("non-contiguous tensors are written in row-major order", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  std::vector<float> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const TensorF base = TensorF::from_data({2, 3, 4}, v);
  const TensorF perm = base.permute({2, 0, 1});       // [4, 2, 3]
  const TensorF cut = base.narrow(2, 1, 3);            // [2, 3, 2], strided
  REQUIRE_FALSE(perm.is_contiguous());
  REQUIRE_FALSE(cut.is_contiguous());
  io::SafetensorsWriter w;
  w.add("perm", perm);
  w.add("cut", cut, DType::F64);
  w.write(tmp.file("nc"));
  io::SafetensorsReader r(tmp.file("nc"));
  const TensorF p = r.load<float>("perm");
  REQUIRE(p.shape() == Shape{4, 2, 3});
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 3; ++c) REQUIRE(p.at({a, b, c}) == static_cast<float>(b * 12 + c * 4 + a));
  const TensorD c = r.load<double>("cut");
  REQUIRE(c.shape() == Shape{2, 3, 2});
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t k = 0; k < 2; ++k) REQUIRE(c.at({a, b, k}) == static_cast<double>(a * 12 + b * 4 + k + 1));
}

TEST_CASE("the writer snapshots tensors when they are added", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  TensorF t = TensorF::from_data({2}, {1.0f, 2.0f});
  io::SafetensorsWriter w;
  w.add("t", t);
  t.fill_(9.0f);
  w.write(tmp.file("s"));
  CHECK(io::SafetensorsReader(tmp.file("s")).load<float>("t").to_vector() == std::vector<float>{1.0f, 2.0f});
}

// ---- reader API ------------------------------------------------------------------------

TEST_CASE("names are in file order; records describe the buffer", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  io::SafetensorsWriter w;
  w.add("z", TensorF::zeros({2}));
  w.add("a", TensorD::zeros({3}));
  w.add("m", TensorF::zeros({1, 1}), DType::F16);
  w.write(tmp.file("o"));
  io::SafetensorsReader r(tmp.file("o"));
  CHECK(r.names() == std::vector<std::string>{"z", "a", "m"});
  CHECK(r.contains("a"));
  CHECK_FALSE(r.contains("b"));
  const io::TensorRecord& a = r.record("a");
  CHECK(a.name == "a");
  CHECK(a.dtype == DType::F64);
  CHECK(a.shape == Shape{3});
  CHECK(a.begin == 8);
  CHECK(a.end == 32);
  CHECK(r.record("m").begin == 32);
  CHECK(r.record("m").nbytes() == 2);
  REQUIRE_THROWS_WITH(r.record("missing.weight"), Contains(tmp.file("o")) && Contains("missing.weight"));
  REQUIRE_THROWS_WITH(r.load<float>("missing.weight"), Contains(tmp.file("o")) && Contains("missing.weight"));
}

TEST_CASE("load with an expected shape names the file, the tensor and both shapes", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  io::SafetensorsWriter w;
  w.add("conv.weight", TensorF::zeros({2, 3}));
  w.write(tmp.file("s"));
  io::SafetensorsReader r(tmp.file("s"));
  CHECK(r.load<float>("conv.weight", Shape{2, 3}).shape() == Shape{2, 3});
  REQUIRE_THROWS_WITH(r.load<float>("conv.weight", Shape{3, 2}),
                      Contains(tmp.file("s")) && Contains("conv.weight") && Contains("[2, 3]") &&
                          Contains("expected [3, 2]"));
}

TEST_CASE("loading across float and integer dtypes is an error naming both", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  io::SafetensorsWriter w;
  w.add("f", TensorF::zeros({2}), DType::BF16);
  w.add("i", Tensor<int64_t>::zeros({2}));
  w.write(tmp.file("x"));
  io::SafetensorsReader r(tmp.file("x"));
  REQUIRE_THROWS_WITH(r.load<int64_t>("f"),
                      Contains(tmp.file("x")) && Contains("'f'") && Contains("BF16") && Contains("int64_t"));
  REQUIRE_THROWS_WITH(r.load<float>("i"), Contains(tmp.file("x")) && Contains("'i'") && Contains("I64") &&
                                              Contains("load<float>"));
  REQUIRE_THROWS_WITH(r.load<double>("i"), Contains("I64") && Contains("load<double>"));
  CHECK(r.load<double>("f").to_vector() == std::vector<double>{0.0, 0.0});
}

TEST_CASE("a BOOL byte other than 0 or 1 is rejected on load", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const std::string path = tmp.file("b");
  write_bytes(path, st_file(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x01\x02", 2)));
  io::SafetensorsReader r(path);
  REQUIRE_THROWS_WITH(r.load<int64_t>("b"), Contains(path) && Contains("'b'") && Contains("expected 0 or 1"));
}

// ---- writer errors and atomicity ---------------------------------------------------------

TEST_CASE("writer rejects duplicate, reserved and mistyped tensors", "[io][safetensors]") {
  io::SafetensorsWriter w;
  w.add("a", TensorF::zeros({1}));
  REQUIRE_THROWS_WITH(w.add("a", TensorF::zeros({2})), Contains("'a'") && Contains("twice"));
  REQUIRE_THROWS_WITH(w.add("__metadata__", TensorF::zeros({1})), Contains("reserved"));
  REQUIRE_THROWS_WITH(w.add("", TensorF::zeros({1})), Contains("empty tensor name"));
  REQUIRE_THROWS_WITH(w.add("f", TensorF::zeros({1}), DType::I64), Contains("'f'") && Contains("I64"));
  REQUIRE_THROWS_WITH(w.add("g", Tensor<int64_t>::zeros({1}), DType::F32), Contains("'g'") && Contains("F32"));
  REQUIRE_THROWS_WITH(w.add("u", TensorF()), Contains("'u'") && Contains("undefined"));
  CHECK(w.size() == 1);
}

TEST_CASE("write into a missing directory fails and leaves nothing behind", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const std::string path = (tmp.path() / "no_such_dir" / "w.safetensors").string();
  io::SafetensorsWriter w;
  w.add("t", TensorF::zeros({4}));
  REQUIRE_THROWS_WITH(w.write(path), Contains(path));
  CHECK_FALSE(fs::exists(tmp.path() / "no_such_dir"));
  CHECK(tmp.entries() == 0);
}

TEST_CASE("a failed write leaves the previous file intact and no temporary file", "[io][safetensors]") {
  ScratchDir tmp("safetensors");
  const std::string path = tmp.file("w.safetensors");
  io::SafetensorsWriter first;
  first.add("t", TensorF::from_data({2}, {1.0f, -2.0f}));
  first.write(path);
  const std::string before = read_bytes(path);

  // A tensor name that is not UTF-8 cannot be put in the JSON header.
  io::SafetensorsWriter bad;
  bad.add("bad\xff", TensorF::zeros({2}));
  REQUIRE_THROWS_WITH(bad.write(path), Contains(path) && Contains("UTF-8"));
  CHECK(read_bytes(path) == before);
  CHECK(tmp.entries() == 1);

  // Failing only at the final rename (the target is a directory): the fully
  // written temporary file is removed.
  const std::string dir_target = tmp.file("is_a_dir");
  fs::create_directory(dir_target);
  fs::create_directory(dir_target + "/child");
  REQUIRE_THROWS_WITH(first.write(dir_target), Contains(dir_target));
  CHECK(tmp.entries() == 2);

  // A successful write replaces the file.
  io::SafetensorsWriter second;
  second.add("u", TensorF::zeros({1}));
  second.write(path);
  CHECK(io::SafetensorsReader(path).names() == std::vector<std::string>{"u"});
  CHECK(tmp.entries() == 2);
}

// ---- validation: one malformed file per rule -------------------------------------------------

TEST_CASE("reject: missing file and directory", "[io][safetensors][validation]") {
  ScratchDir tmp("safetensors");
  REQUIRE_THROWS_WITH(io::SafetensorsReader(tmp.file("nope.safetensors")),
                      Contains(tmp.file("nope.safetensors")) && Contains("cannot open"));
  REQUIRE_THROWS_WITH(io::SafetensorsReader(tmp.str()), Contains(tmp.str()) && Contains("directory"));
}

TEST_CASE("reject: file shorter than 8 bytes", "[io][safetensors][validation]") {
  require_rejected("", "truncated");
  require_rejected(std::string("\x02\x00\x00\x00\x00", 5), "truncated");
  require_rejected(std::string(7, '\0'), "7 bytes long");
}

TEST_CASE("reject: header length past the end of the file", "[io][safetensors][validation]") {
  const std::string header = "{" + f32_entry("a", 2, 0) + "}";
  std::string file = st_file(header, kTwoFloats);
  file.replace(0, 8, u64le(header.size() + kTwoFloats.size() + 1));
  require_rejected(file, "past the end of the file");
  require_rejected(u64le(1), "past the end of the file");
}

TEST_CASE("reject: absurdly large header length", "[io][safetensors][validation]") {
  require_rejected(u64le(uint64_t(1) << 40) + "{}", "too large");
  require_rejected(u64le(~uint64_t(0)) + "{}", "too large");
  require_rejected(u64le(100ull * 1024 * 1024 + 1) + "{}", "too large");
}

TEST_CASE("reject: header not valid JSON", "[io][safetensors][validation]") {
  require_rejected(st_file("{\"a\": ", ""), "not valid JSON");
  require_rejected(st_file("", ""), "not valid JSON");
  require_rejected(st_file("{\"a\":1} x", ""), "not valid JSON");
  require_rejected(st_file("{\"\xff\":1}", ""), "not valid JSON");  // not UTF-8
}

TEST_CASE("reject: header not an object", "[io][safetensors][validation]") {
  require_rejected(st_file("[1, 2]", ""), "header is a JSON array, expected an object");
  require_rejected(st_file("\"a\"", ""), "expected an object");
}

TEST_CASE("reject: entry not an object", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a": 3})", ""), "tensor 'a': entry is a JSON number");
  require_rejected(st_file(R"({"a": ["F32", [1], [0, 4]]})", std::string(4, '\0')), "tensor 'a': entry is a JSON array");
}

TEST_CASE("reject: entry missing a field", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", kTwoFloats), "tensor 'a': entry has no 'dtype'");
  require_rejected(st_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", kTwoFloats), "entry has no 'shape'");
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[2]}})", kTwoFloats), "entry has no 'data_offsets'");
}

TEST_CASE("reject: unknown dtype", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                   "tensor 'a': unknown dtype 'F17'");
  require_rejected(st_file(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                   "unknown dtype 'f32'");
  require_rejected(st_file(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                   "dtype is a JSON number, expected a string");
}

TEST_CASE("reject: shape not an array of non-negative integers", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", kTwoFloats),
                   "tensor 'a': shape is a JSON number, expected an array");
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kTwoFloats),
                   "non-integer extent");
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", kTwoFloats),
                   "non-integer extent");
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})", kTwoFloats),
                   "9 dimensions");
}

TEST_CASE("reject: negative shape entries", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[-2,-1],"data_offsets":[0,8]}})", kTwoFloats),
                   "tensor 'a': shape [-2,-1] has a negative extent -2");
}

TEST_CASE("reject: element or byte count overflowing 64 bits", "[io][safetensors][validation]") {
  // 2^32 * 2^32 elements.
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", kTwoFloats),
                   "overflows 64 bits");
  // 2^61 elements fit, 2^61 * 8 bytes do not.
  require_rejected(st_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", kTwoFloats),
                   "overflows 64 bits");
  // An extent beyond int64.
  require_rejected(st_file(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]}})", kTwoFloats),
                   "overflows 64");
}

TEST_CASE("reject: data_offsets not two unsigned integers", "[io][safetensors][validation]") {
  const std::string pre = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)";
  for (const std::string off : {"[0]", "[0,4,8]", "[-8,0]", "[0,8.0]", "\"0,8\"", "[0,\"8\"]",
                                "[0,18446744073709551616]"}) {
    INFO(off);
    require_rejected(st_file(pre + off + "}}", kTwoFloats), "tensor 'a': data_offsets is ");
  }
}

TEST_CASE("reject: data_offsets begin > end", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", kTwoFloats),
                   "tensor 'a': data_offsets [8, 0] has begin > end");
}

TEST_CASE("reject: data_offsets past the end of the buffer", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", kTwoFloats),
                   "tensor 'a': data_offsets [0, 12] runs past the end of the data buffer (8 bytes)");
}

TEST_CASE("reject: byte range not matching the shape", "[io][safetensors][validation]") {
  require_rejected(st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kTwoFloats),
                   "tensor 'a': data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12");
  require_rejected(st_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                   "needs 4");
}

TEST_CASE("reject: overlapping tensors", "[io][safetensors][validation]") {
  const std::string data(12, '\0');
  require_rejected(st_file("{" + f32_entry("a", 2, 0) + "," + f32_entry("b", 2, 4) + "}", data), "overlap");
  // The same bytes claimed twice.
  require_rejected(st_file("{" + f32_entry("a", 2, 0) + "," + f32_entry("b", 2, 0) + "}", kTwoFloats), "overlap");
  // A zero-size tensor inside another one.
  require_rejected(st_file("{" + f32_entry("a", 2, 0) + "," + f32_entry("e", 0, 4) + "}", kTwoFloats), "overlap");
}

TEST_CASE("reject: holes in the data buffer", "[io][safetensors][validation]") {
  const std::string data(12, '\0');
  require_rejected(st_file("{" + f32_entry("a", 1, 0) + "," + f32_entry("b", 1, 8) + "}", data),
                   "bytes [4, 8) before tensor 'b' belong to no tensor");
  require_rejected(st_file("{" + f32_entry("a", 2, 4) + "}", data), "bytes [0, 4) before tensor 'a'");
  require_rejected(st_file("{" + f32_entry("a", 2, 0) + "}", data), "bytes [8, 12) at its end");
  require_rejected(st_file("{}", "x"), "bytes [0, 1) at its end");
}

TEST_CASE("reject: __metadata__ not a map of strings", "[io][safetensors][validation]") {
  const std::string a = "," + f32_entry("a", 2, 0) + "}";
  require_rejected(st_file(R"({"__metadata__":["x"])" + a, kTwoFloats), "__metadata__ is a JSON array");
  require_rejected(st_file(R"({"__metadata__":"x")" + a, kTwoFloats), "__metadata__ is a JSON string");
  require_rejected(st_file(R"({"__metadata__":{"k":1})" + a, kTwoFloats),
                   "__metadata__ value of 'k' is a JSON number, expected a string");
  require_rejected(st_file(R"({"__metadata__":{"k":{"x":"y"}})" + a, kTwoFloats), "value of 'k' is a JSON object");
}

TEST_CASE("reject: duplicate keys", "[io][safetensors][validation]") {
  // nlohmann's DOM keeps only the last duplicate: a repeated tensor name must
  // still be caught.
  require_rejected(st_file("{" + f32_entry("a", 1, 0) + "," + f32_entry("a", 1, 4) + "}", kTwoFloats),
                   "the key 'a' twice (duplicate tensor name)");
  require_rejected(st_file(R"({"__metadata__":{},"__metadata__":{}})", ""), "'__metadata__' twice");
  require_rejected(st_file(R"({"a":{"dtype":"F64","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kTwoFloats),
                   "repeats the key 'dtype'");
  require_rejected(st_file(R"({"__metadata__":{"k":"1","k":"2"}})", ""), "repeats the key 'k'");
}

TEST_CASE("reject: deeply nested header without crashing", "[io][safetensors][validation]") {
  const int depth = 200000;
  require_rejected(st_file(std::string(depth, '[') + std::string(depth, ']'), ""), "expected an object");
}

TEST_CASE("corrupted bytes give a valid file or an lgh::Error, nothing else", "[io][safetensors][validation]") {
  ScratchDir tmp("safetensors");
  const std::string good_path = tmp.file("good");
  io::SafetensorsWriter w;
  w.add("a", TensorF::from_data({2, 2}, {1, 2, 3, 4}));
  w.add("b", Tensor<int64_t>::from_data({1}, {1}), DType::Bool);
  w.add("c", TensorD::from_data({1}, {0.5}), DType::F16);
  w.set_metadata("k", "v");
  w.write(good_path);
  const std::string good = read_bytes(good_path);
  PhiloxEngine rng(11);
  const std::string path = tmp.file("mutated");
  int rejected = 0, accepted = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng.uniform(0.0, 3.0));
    for (int f = 0; f < flips; ++f) {
      // Mostly the length field and the header, where the structure is.
      const size_t limit = trial % 4 == 0 ? bytes.size() : std::min<size_t>(bytes.size(), 8 + 120);
      const size_t pos = static_cast<size_t>(rng.uniform(0.0, static_cast<double>(limit))) % bytes.size();
      bytes[pos] = static_cast<char>(static_cast<int>(rng.uniform(0.0, 256.0)) & 0xff);
    }
    if (trial % 7 == 0) bytes.resize(static_cast<size_t>(rng.uniform(0.0, static_cast<double>(bytes.size()))));
    write_bytes(path, bytes);
    try {
      io::SafetensorsReader r(path);
      for (const std::string& name : r.names()) {
        const DType dt = r.record(name).dtype;
        const bool is_int = dt == DType::I64 || dt == DType::I32 || dt == DType::U8 || dt == DType::Bool;
        int64_t n = -1;
        try {
          n = is_int ? r.load<int64_t>(name).numel() : r.load<double>(name).numel();
        } catch (const lgh::Error&) {
          REQUIRE(dt == DType::Bool);  // a corrupted BOOL byte
          continue;
        }
        REQUIRE(n == r.record(name).shape.numel());
      }
      ++accepted;
    } catch (const lgh::Error& e) {
      REQUIRE(std::string(e.what()).find(path) != std::string::npos);
      ++rejected;
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0);
}
