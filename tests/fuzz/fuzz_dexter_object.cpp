// Fuzz harness: the Dexter+Object reader. The input is the annotation file
// of sequence Grasp1, whose colour folder holds two 8x8 frames.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "lgh/data/dexter_object.hpp"

namespace {
const std::string& dexter_root() {
  static const std::string root = [] {
    const std::string r = lgh_fuzz::scratch() / "dexter_object";
    std::filesystem::create_directories(r + "/data/Grasp1/color");
    std::filesystem::create_directories(r + "/data/Grasp1/annotations");
    for (int i = 0; i < 2; ++i)
      lgh::data::write_image(r + "/data/Grasp1/color/image_" + std::to_string(i) + ".png",
                             lgh::data::Image(8, 8, 3, 100));
    return r;
  }();
  return root;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& root = dexter_root();
  lgh_fuzz::write_file(root + "/data/Grasp1/annotations/Grasp13D.txt", data, size);
  lgh_fuzz::refusing_only_with_lgh_error([&] {
    lgh::data::DexterObjectOptions opt;
    opt.sequences = {"Grasp1"};
    opt.image_width = opt.image_height = 8;
    const lgh::data::DexterObjectDataset ds(root, opt);
    for (int64_t i = 0; i < ds.size(); ++i) lgh_fuzz::refusing_only_with_lgh_error([&] { ds.get(i); });
  });
  return 0;
}
