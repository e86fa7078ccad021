// Fuzz harness: image decoding (PNG, JPEG, BMP) from memory, as every data
// set reader and the tool decode untrusted files.
#include <cstdint>

#include "fuzz_common.hpp"
#include "lgh/data/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Limits below the defaults keep each input fast; the checks are the same.
  lgh::data::ImageLimits limits;
  limits.max_width = limits.max_height = 4096;
  limits.max_pixels = 4 << 20;
  for (int channels : {0, 3}) {
    lgh_fuzz::refusing_only_with_lgh_error([&] {
      const lgh::data::Image img = lgh::data::decode_image(data, size, "fuzz input", channels, limits);
      // What a successful decode promises.
      if (img.width < 1 || img.height < 1 || img.width > limits.max_width || img.height > limits.max_height ||
          img.channels < 1 || img.channels > 4 || (channels != 0 && img.channels != channels) ||
          img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
        __builtin_trap();
    });
  }
  return 0;
}
