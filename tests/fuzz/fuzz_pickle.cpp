// Fuzz harness: the restricted unpickler and the RHD reader on top of it
// (an RHD root whose anno_training.pickle is the input, with three small
// images per sample number 0-2).
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "fuzz_common.hpp"
#include "lgh/data/pickle.hpp"
#include "lgh/data/rhd.hpp"

namespace {

// Touches every value reachable from the root once (arrays converted):
// containers may contain themselves, any number of times (a list appended
// to itself twice reaches 2^depth paths; tests/fuzz/regressions/pickle/).
void walk(const lgh::data::pickle::Value& root) {
  using lgh::data::pickle::Kind;
  using lgh::data::pickle::Value;
  std::unordered_set<const Value*> seen;
  std::vector<const Value*> todo{&root};
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    if (!seen.insert(v).second) continue;
    switch (v->kind) {
      case Kind::Tuple:
      case Kind::List: todo.insert(todo.end(), v->items.begin(), v->items.end()); break;
      case Kind::Dict:
        for (const auto& e : v->entries) {
          todo.push_back(e.first);
          todo.push_back(e.second);
        }
        break;
      case Kind::Array:
        if (v->array_ready) {
          double sum = 0;
          for (double x : v->array.to_doubles()) sum += x;
          (void)sum;
        }
        break;
      default: break;
    }
  }
}

const std::string& rhd_root() {
  static const std::string root = [] {
    const std::string r = lgh_fuzz::scratch() / "rhd";
    for (int key = 0; key < 3; ++key) {
      const std::string num = lgh::data::detail::zero_pad(key, 5);
      lgh::data::Image rgb(8, 8, 3, static_cast<uint8_t>(40 * key));
      lgh::data::Image mask(8, 8, 1, 0);
      for (int i = 0; i < 16; ++i) mask.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(key == 1 ? 5 : 20);
      std::filesystem::create_directories(r + "/training/color");
      std::filesystem::create_directories(r + "/training/mask");
      lgh::data::write_image(r + "/training/color/" + num + ".png", rgb);
      lgh::data::write_image(r + "/training/mask/" + num + ".png", mask);
    }
    return r;
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  lgh_fuzz::refusing_only_with_lgh_error([&] {
    const auto doc = lgh::data::pickle::loads(bytes, "fuzz input");
    walk(doc.root());
  });
  lgh_fuzz::refusing_only_with_lgh_error([&] {
    const std::string& root = rhd_root();
    lgh_fuzz::write_file(root + "/training/anno_training.pickle", bytes);
    lgh::data::RhdOptions opt;
    opt.image_size = 8;
    const lgh::data::RhdDataset rhd(root, opt);
    for (int64_t i = 0; i < rhd.size() && i < 3; ++i) lgh_fuzz::refusing_only_with_lgh_error([&] { rhd.get(i); });
  });
  return 0;
}
