// Image: an 8-bit, interleaved (HWC) raster, with PNG/JPEG reading and
// writing through stb. The stb implementations are compiled here with static
// linkage (STB_*_STATIC), so the library stays header-only and links nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/io/atomic_file.hpp"

#ifndef LGH_STB_INCLUDED
#define LGH_STB_INCLUDED
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

namespace lgh {
namespace data {

struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // row-major, channels interleaved

  Image() = default;
  Image(int w, int h, int c, uint8_t fill = 0)
      : width(w), height(h), channels(c), pixels(static_cast<size_t>(w) * h * c, fill) {}

  bool empty() const { return pixels.empty(); }
  uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
  const uint8_t* at(int x, int y) const { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
};

namespace detail {
// Takes over stb's pixel buffer (null: the load failed, `what` names the input).
inline Image adopt_stb_pixels(unsigned char* p, int w, int h, int file_channels, int channels, const std::string& what) {
  LGH_CHECK(p != nullptr, "cannot read image " << what << ": " << stbi_failure_reason());
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels ? channels : file_channels;
  img.pixels.assign(p, p + static_cast<size_t>(w) * h * img.channels);
  stbi_image_free(p);
  return img;
}

// stb's write callback: appends the encoded bytes to a std::string.
inline void stb_append(void* ctx, void* data, int size) {
  auto* out = static_cast<std::string*>(ctx);
  out->append(static_cast<const char*>(data), static_cast<size_t>(size));
}
}  // namespace detail

// An 8-bit RGB image from a planar [3, height, width] float image in [0, 1]
// (a network input, a crop): values are clamped and rounded.
inline Image image_from_chw(const float* chw, int width, int height) {
  Image img(width, height, 3);
  const size_t plane = static_cast<size_t>(width) * height;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c)
      img.pixels[i * 3 + c] = static_cast<uint8_t>(std::min(1.f, std::max(0.f, chw[c * plane + i])) * 255.f + 0.5f);
  return img;
}

// Reads a PNG/JPEG/BMP file; `channels` forces 1, 3 or 4 channels (0 keeps the file's).
inline Image read_image(const std::string& path, int channels = 3) {
  int w = 0, h = 0, c = 0;
  unsigned char* p = stbi_load(path.c_str(), &w, &h, &c, channels);
  return detail::adopt_stb_pixels(p, w, h, c, channels, "'" + path + "'");
}

inline Image decode_image(const uint8_t* bytes, size_t size, const std::string& what, int channels = 3) {
  int w = 0, h = 0, c = 0;
  unsigned char* p = stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &c, channels);
  return detail::adopt_stb_pixels(p, w, h, c, channels, what);
}

// Writes PNG (by default) or JPEG (".jpg"/".jpeg"), atomically.
inline void write_image(const std::string& path, const Image& img, int jpeg_quality = 95) {
  LGH_CHECK(!img.empty(), "write_image: empty image for '" << path << "'");
  std::string bytes;
  const auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  int ok;
  if (ends_with(".jpg") || ends_with(".jpeg") || ends_with(".JPG"))
    ok = stbi_write_jpg_to_func(detail::stb_append, &bytes, img.width, img.height, img.channels,
                                img.pixels.data(), jpeg_quality);
  else
    ok = stbi_write_png_to_func(detail::stb_append, &bytes, img.width, img.height, img.channels,
                                img.pixels.data(), img.width * img.channels);
  LGH_CHECK(ok != 0, "cannot encode image for '" << path << "'");
  io::write_file_atomic(path, bytes);
}

}  // namespace data
}  // namespace lgh
