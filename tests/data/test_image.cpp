// Image decoding (data/image.hpp): libpng and libjpeg-turbo where linked,
// stb_image for BMP (and as the fallback); every decoder gives the same
// layout and channel conversions, and corrupt files are refused with an
// lgh::Error naming the input.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "data_test_utils.hpp"
#include "lgh/data/image.hpp"

using namespace lgh;
using namespace lgh::data;
using Catch::Contains;

namespace {

Image pattern(int w, int h, int c) {
  Image img(w, h, c);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i * 37 + i / 7) % 256);
  return img;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Image decode(const std::string& bytes, int channels) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "'test'", channels);
}

}  // namespace

TEST_CASE("PNG round trips with 1 to 4 channels and converts like stb", "[data][image]") {
  lgh_test::ScratchDir dir("image");
  for (int c = 1; c <= 4; ++c) {
    INFO("channels " << c);
    const Image img = pattern(7, 5, c);
    write_image(dir.file("p.png"), img);
    const Image back = read_image(dir.file("p.png"), 0);
    REQUIRE(back.width == 7);
    REQUIRE(back.height == 5);
    REQUIRE(back.channels == c);
    CHECK(back.pixels == img.pixels);
    // Forced channel counts: grey = (77 R + 150 G + 29 B) >> 8, alpha dropped or opaque.
    const Image rgb = read_image(dir.file("p.png"), 3), grey = read_image(dir.file("p.png"), 1),
                rgba = read_image(dir.file("p.png"), 4);
    for (int i = 0; i < 35; ++i) {
      const uint8_t* s = &img.pixels[static_cast<size_t>(i * c)];
      const bool colour = c >= 3;
      const uint8_t r = s[0], g = colour ? s[1] : s[0], b = colour ? s[2] : s[0];
      const uint8_t a = c == 2 ? s[1] : (c == 4 ? s[3] : 255);
      CHECK(rgb.pixels[static_cast<size_t>(3 * i)] == r);
      CHECK(rgb.pixels[static_cast<size_t>(3 * i + 1)] == g);
      CHECK(rgb.pixels[static_cast<size_t>(3 * i + 2)] == b);
      CHECK(grey.pixels[static_cast<size_t>(i)] == (colour ? (r * 77 + g * 150 + b * 29) >> 8 : r));
      CHECK(rgba.pixels[static_cast<size_t>(4 * i + 3)] == a);
    }
  }
}

TEST_CASE("JPEG decodes close to what was encoded, grey and colour", "[data][image]") {
  lgh_test::ScratchDir dir("image");
  for (int c : {1, 3}) {
    Image img(32, 16, c);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 32; ++x)
        for (int k = 0; k < c; ++k) img.at(x, y)[k] = static_cast<uint8_t>(40 + 4 * x + 2 * y + 30 * k);
    write_image(dir.file("p.jpg"), img, 100);
    const Image back = read_image(dir.file("p.jpg"), c);
    REQUIRE(back.width == 32);
    REQUIRE(back.height == 16);
    REQUIRE(back.channels == c);
    int worst = 0;
    for (size_t i = 0; i < img.pixels.size(); ++i) worst = std::max(worst, std::abs(int(img.pixels[i]) - int(back.pixels[i])));
    CHECK(worst <= 6);  // quality 100 on a smooth ramp
  }
}

TEST_CASE("BMP files decode through stb", "[data][image]") {
  // 2x2, 24 bits, rows bottom-up and padded to 4 bytes, pixels stored BGR.
  std::string bmp = std::string("BM") + std::string("\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00", 12);
  bmp += std::string("\x28\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x18\x00", 16) + std::string(24, '\0');
  bmp += std::string("\x00\x00\xff\x00\xff\x00\x00\x00", 8);  // bottom row: red, green
  bmp += std::string("\xff\x00\x00\xff\xff\xff\x00\x00", 8);  // top row: blue, white
  const Image img = decode(bmp, 0);
  REQUIRE(img.width == 2);
  REQUIRE(img.height == 2);
  REQUIRE(img.channels == 3);
  CHECK(img.pixels == std::vector<uint8_t>{0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 255, 0});
}

TEST_CASE("corrupt and unknown image data is refused naming the input", "[data][image]") {
  lgh_test::ScratchDir dir("image");
  write_image(dir.file("a.png"), pattern(16, 16, 3));
  write_image(dir.file("a.jpg"), pattern(16, 16, 3));
  for (const char* name : {"a.png", "a.jpg"}) {
    INFO(name);
    const std::string bytes = file_bytes(dir.file(name));
    // Every truncation is an error (libjpeg's "premature end" warning included).
    for (size_t keep : {size_t(0), size_t(3), size_t(20), bytes.size() / 2, bytes.size() - 3}) {
      lgh_test::write_text(dir.file("t"), bytes.substr(0, keep));
      CHECK_THROWS_WITH(read_image(dir.file("t")), Contains("cannot read image '" + dir.file("t") + "'"));
    }
  }
  lgh_test::write_text(dir.file("x.gif"), "GIF89a\x01\x00\x01\x00");
  CHECK_THROWS_WITH(read_image(dir.file("x.gif")), Contains("not a PNG, JPEG or BMP file"));
  CHECK_THROWS_WITH(read_image(dir.file("missing.png")), Contains("missing.png") && Contains("cannot open"));
  CHECK_THROWS_WITH(decode("BM", 3), Contains("'test'"));
}

TEST_CASE("stb_image's Huffman overflow is refused by every JPEG path", "[data][image][regression]") {
  // The fuzzing finding against Debian's stb_image 2.27: a DHT segment of
  // 16 x 17 = 272 codes (stb_image.h:1990 writes past size[257]).
  const std::string jpeg = file_bytes(std::string(LGH_TEST_DATA_DIR) + "/fuzz/regressions/image/stb_huffman_257_codes.jpg");
  REQUIRE(jpeg.size() == 23);
  CHECK_THROWS_WITH(decode(jpeg, 3), Contains("'test'"));
  CHECK_FALSE(data::detail::jpeg_huffman_tables_fit(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size()));
  CHECK_THROWS_WITH(data::detail::decode_with_stb(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), "'stb'", 3, ImageLimits{}),
                    Contains("'stb'") && Contains("more than 256 codes"));
  // A real JPEG's tables fit.
  lgh_test::ScratchDir dir("image");
  write_image(dir.file("a.jpg"), pattern(8, 8, 3));
  const std::string ok = file_bytes(dir.file("a.jpg"));
  CHECK(data::detail::jpeg_huffman_tables_fit(reinterpret_cast<const uint8_t*>(ok.data()), ok.size()));
}
