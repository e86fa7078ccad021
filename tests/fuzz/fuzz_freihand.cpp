// Fuzz harness: the FreiHAND reader. The input holds training_K.json,
// training_xyz.json and (optionally) training_vis.json, separated by lines
// "@@"; the root has two 8x8 images and masks.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "lgh/data/freihand.hpp"

namespace {
const std::string& freihand_root() {
  static const std::string root = [] {
    const std::string r = lgh_fuzz::scratch() / "freihand";
    std::filesystem::create_directories(r + "/training/rgb");
    std::filesystem::create_directories(r + "/training/mask");
    for (int i = 0; i < 2; ++i) {
      const std::string num = lgh::data::detail::zero_pad(i, 8);
      lgh::data::write_image(r + "/training/rgb/" + num + ".jpg", lgh::data::Image(8, 8, 3, 100));
      lgh::data::write_image(r + "/training/mask/" + num + ".jpg", lgh::data::Image(8, 8, 1, 200));
    }
    return r;
  }();
  return root;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& root = freihand_root();
  const auto parts = lgh_fuzz::split(data, size, "\n@@\n", 3);
  lgh_fuzz::write_file(root + "/training_K.json", parts[0]);
  lgh_fuzz::write_file(root + "/training_xyz.json", parts.size() > 1 ? parts[1] : std::string());
  std::filesystem::remove(root + "/training_vis.json");
  if (parts.size() > 2) lgh_fuzz::write_file(root + "/training_vis.json", parts[2]);
  lgh_fuzz::refusing_only_with_lgh_error([&] {
    lgh::data::FreiHandOptions opt;
    opt.image_size = 8;
    opt.max_annotations = 1000;  // the limit's code path, at a size that keeps inputs fast
    const lgh::data::FreiHandDataset ds(root, opt);
    for (int64_t i = 0; i < ds.size(); ++i) lgh_fuzz::refusing_only_with_lgh_error([&] { ds.get(i); });
  });
  return 0;
}
