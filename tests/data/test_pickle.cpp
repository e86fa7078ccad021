#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "data_test_utils.hpp"
#include "lgh/data/pickle.hpp"

using namespace lgh;
using namespace lgh::data;
using lgh_test::fixture;

namespace {

const pickle::Value* child(const pickle::Value& dict, const std::string& key) {
  // Python ints and strs both appear as keys; try the integer reading too.
  if (const pickle::Value* v = dict.find(key)) return v;
  for (const auto& e : dict.entries)
    if (e.first->kind == pickle::Kind::Int && std::to_string(e.first->integer) == key) return e.second;
  return nullptr;
}

const pickle::Value* lookup(const pickle::Value& root, const std::string& path) {
  const pickle::Value* v = &root;
  size_t start = 0;
  while (v && start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string key = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    v = child(*v, key);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return v;
}

void check_array(const pickle::Value* v, const nlohmann::json& want, const std::string& what) {
  INFO(what);
  REQUIRE(v != nullptr);
  REQUIRE(v->kind == pickle::Kind::Array);
  REQUIRE(v->array_ready);
  const pickle::NDArray& a = v->array;
  const std::string dtype = want["dtype"];
  CHECK(a.dtype.kind == dtype[0]);
  CHECK(a.dtype.itemsize == std::stoi(dtype.substr(1)));
  CHECK(a.shape == want["shape"].get<std::vector<int64_t>>());
  const auto values = want["values"].get<std::vector<double>>();
  REQUIRE(a.numel() == static_cast<int64_t>(values.size()));
  const std::vector<double> got = a.to_doubles();
  for (size_t i = 0; i < values.size(); ++i) REQUIRE(got[i] == values[i]);
}

}  // namespace

TEST_CASE("pickles written by Python 3 at protocols 2 to 5 load with their values", "[data][pickle]") {
  const auto expected = lgh_test::read_json(fixture("pickle/expected.json"));
  for (int proto : {2, 3, 4, 5}) {
    const std::string path = fixture("pickle/p" + std::to_string(proto) + ".pickle");
    INFO(path);
    const pickle::Document doc = pickle::load_file(path);
    const pickle::Value& root = doc.root();
    REQUIRE(root.kind == pickle::Kind::Dict);
    for (const auto& item : expected["arrays"].items()) check_array(lookup(root, item.key()), item.value(), item.key());

    const pickle::Value* ints = root.find("ints");
    REQUIRE(ints);
    REQUIRE(ints->kind == pickle::Kind::List);
    const auto want_ints = expected["ints"].get<std::vector<int64_t>>();
    REQUIRE(ints->items.size() == want_ints.size());
    for (size_t i = 0; i < want_ints.size(); ++i) {
      REQUIRE(ints->items[i]->kind == pickle::Kind::Int);
      CHECK(ints->items[i]->integer == want_ints[i]);
    }
    const pickle::Value* floats = root.find("floats");
    REQUIRE(floats);
    REQUIRE(floats->kind == pickle::Kind::Tuple);
    const auto want_floats = expected["floats"].get<std::vector<double>>();
    REQUIRE(floats->items.size() == want_floats.size());
    for (size_t i = 0; i < want_floats.size(); ++i) CHECK(floats->items[i]->real == want_floats[i]);

    const pickle::Value* flags = root.find("flags");
    REQUIRE(flags);
    REQUIRE(flags->items.size() == 3);
    CHECK(flags->items[0]->kind == pickle::Kind::Bool);
    CHECK(flags->items[0]->boolean);
    CHECK(flags->items[1]->kind == pickle::Kind::Bool);
    CHECK_FALSE(flags->items[1]->boolean);
    CHECK(flags->items[2]->kind == pickle::Kind::None);

    const pickle::Value* text = root.find("text");
    REQUIRE(text);
    CHECK(text->kind == pickle::Kind::Str);
    CHECK(text->text == "h\xc3\xa9llo");
    const pickle::Value* raw = root.find("raw");
    REQUIRE(raw);
    CHECK(raw->kind == pickle::Kind::Bytes);
    CHECK(raw->text == std::string("\x00\xff", 2));
  }
}

TEST_CASE("a Python 2 cPickle stream with str keys and byte-string array data loads", "[data][pickle]") {
  const auto expected = lgh_test::read_json(fixture("pickle/expected.json"));
  const pickle::Document doc = pickle::load_file(fixture("pickle/py2.pickle"));
  const pickle::Value& root = doc.root();
  for (const char* key : {"0/xyz", "0/uv_vis", "0/K", "7/xyz"})
    check_array(lookup(root, key), expected["arrays"][key], key);
  check_array(root.find("small"), expected["py2_small"], "small");
  // Python 2 str keys arrive as byte strings and still match by name.
  const pickle::Value* entry = lookup(root, "0");
  REQUIRE(entry);
  REQUIRE(entry->entries.size() == 3);
  CHECK(entry->entries[0].first->kind == pickle::Kind::Bytes);
  CHECK_NOTHROW(pickle::expect_array(pickle::expect_key(*entry, "xyz", "entry 0"), {42, 3}, "entry 0"));
  CHECK_THROWS_WITH(pickle::expect_array(pickle::expect_key(*entry, "xyz", "entry 0"), {21, 3}, "entry 0"),
                    Catch::Contains("[42, 3]") && Catch::Contains("expected [21, 3]"));
  CHECK_THROWS_WITH(pickle::expect_key(*entry, "missing", "entry 0"), Catch::Contains("missing key 'missing'"));
}

TEST_CASE("every truncation of a pickle raises lgh::Error", "[data][pickle]") {
  for (const char* name : {"pickle/p2.pickle", "pickle/p4.pickle", "pickle/py2.pickle"}) {
    const std::string bytes = pickle::read_file_bytes(fixture(name));
    REQUIRE(bytes.size() > 100);
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO(name << " cut to " << n << " bytes");
      REQUIRE_THROWS_AS(pickle::loads(bytes.substr(0, n), name), Error);
    }
  }
}

TEST_CASE("corrupted pickles either load or raise lgh::Error", "[data][pickle]") {
  const std::string good = pickle::read_file_bytes(fixture("pickle/py2.pickle"));
  std::mt19937 rng(7);
  int failures = 0, loads = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
    try {
      pickle::loads(bytes, "corrupt");
      ++loads;  // damage inside raw array data goes unnoticed, as in Python
    } catch (const Error&) {
      ++failures;
    }
  }
  // Any other exception type, or a crash, fails the test; both outcomes
  // must actually have occurred for the trial set to mean anything.
  CHECK(failures > 0);
  CHECK(loads > 0);
}

TEST_CASE("globals other than numpy's reconstruction helpers are refused", "[data][pickle]") {
  CHECK_THROWS_WITH(pickle::load_file(fixture("pickle/evil_system_p2.pickle")),
                    Catch::Contains("refusing to load global 'posix.system'") &&
                        Catch::Contains("evil_system_p2.pickle"));
  CHECK_THROWS_WITH(pickle::load_file(fixture("pickle/evil_eval_p4.pickle")),
                    Catch::Contains("refusing to load global 'builtins.eval'"));
  CHECK_THROWS_WITH(pickle::load_file(fixture("pickle/user_class_p4.pickle")),
                    Catch::Contains("refusing to load global '__main__.UserClass'"));
}

TEST_CASE("malformed or unsupported pickles are reported", "[data][pickle]") {
  CHECK_THROWS_WITH(pickle::load_file(fixture("pickle/bad_shape_py2.pickle")),
                    Catch::Contains("shape [42, 3]") && Catch::Contains("100"));
  CHECK_THROWS_WITH(pickle::load_file(fixture("pickle/p0.pickle")), Catch::Contains("unsupported opcode"));
  CHECK_THROWS_WITH(pickle::load_file(fixture("pickle/does_not_exist.pickle")),
                    Catch::Contains("does_not_exist.pickle"));
  // Unknown protocol numbers and trailing garbage after a complete value.
  CHECK_THROWS_WITH(pickle::loads(std::string("\x80\x09N.", 4)), Catch::Contains("protocol 9"));
  CHECK_THROWS_WITH(pickle::loads(std::string("\x80\x02NN.", 5)), Catch::Contains("2 values on the stack"));
}

TEST_CASE("a list that contains itself loads without recursion", "[data][pickle]") {
  const pickle::Document doc = pickle::load_file(fixture("pickle/cycle_p2.pickle"));
  const pickle::Value& root = doc.root();
  REQUIRE(root.kind == pickle::Kind::List);
  REQUIRE(root.items.size() == 1);
  CHECK(root.items[0] == &root);
}
