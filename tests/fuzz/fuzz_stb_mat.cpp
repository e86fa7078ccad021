// Fuzz harness: STB's .mat label reader (matio underneath). The input is
// the .mat file.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "lgh/data/stb_mat.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lgh_fuzz::scratch() / "labels.mat";
  lgh_fuzz::write_file(path, data, size);
  lgh_fuzz::refusing_only_with_lgh_error([&] {
    const lgh::data::StbLabels labels = lgh::data::read_stb_labels_mat(path);
    if (labels.frames < 1 || labels.values.size() != static_cast<size_t>(labels.frames) * 63) __builtin_trap();
  });
  return 0;
}
