// Resource limits of the data readers (docs/reliability.md): inputs that
// declare huge sizes are refused with an lgh::Error naming the input before
// memory of that size is allocated.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "data_test_utils.hpp"
#include "lgh/data/freihand.hpp"
#include "lgh/data/image.hpp"
#include "lgh/data/pickle.hpp"
#if defined(LGH_HAVE_MATIO)
#include "lgh/data/stb_mat.hpp"
#endif

using namespace lgh;
using namespace lgh::data;
using Catch::Contains;

namespace {

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string le32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
}

uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A PNG of a signature, an IHDR chunk (RGB, 8 bits) and the start of an
// (empty) IDAT chunk: everything before the pixels.
std::string png_header(uint32_t width, uint32_t height) {
  const std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc32(ihdr)) + be32(0) + "IDAT" +
         be32(crc32("IDAT"));
}

// A baseline JPEG up to its scan header: SOF0 (three components) and SOS.
std::string jpeg_header(uint16_t width, uint16_t height) {
  std::string s("\xff\xd8\xff\xc0\x00\x11\x08", 7);
  s += {static_cast<char>(height >> 8), static_cast<char>(height), static_cast<char>(width >> 8), static_cast<char>(width)};
  s += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
  s += std::string("\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00", 14);
  return s;
}

// A 24-bit BMP header (no pixels).
std::string bmp_header(uint32_t width, uint32_t height) {
  std::string s = "BM" + le32(54) + le32(0) + le32(54);
  s += le32(40) + le32(width) + le32(height) + std::string("\x01\x00\x18\x00", 4) + le32(0) + le32(0) + le32(2835) +
       le32(2835) + le32(0) + le32(0);
  return s;
}

Image decode(const std::string& bytes, const std::string& what) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), what);
}

}  // namespace

TEST_CASE("image headers of 60000x60000 are refused before the pixels are allocated", "[data][limits][image]") {
  const auto refused = Contains("its header gives the size 60000x60000, beyond the limit of 16384x16384");
  SECTION("PNG") { REQUIRE_THROWS_WITH(decode(png_header(60000, 60000), "'big.png'"), Contains("'big.png'") && refused); }
  SECTION("JPEG") { REQUIRE_THROWS_WITH(decode(jpeg_header(60000, 60000), "'big.jpg'"), Contains("'big.jpg'") && refused); }
  SECTION("BMP") { REQUIRE_THROWS_WITH(decode(bmp_header(60000, 60000), "'big.bmp'"), Contains("'big.bmp'") && refused); }
  SECTION("from a file") {
    lgh_test::ScratchDir dir("limits");
    lgh_test::write_text(dir.file("big.png"), png_header(60000, 60000));
    REQUIRE_THROWS_WITH(read_image(dir.file("big.png")), Contains("big.png") && refused);
  }
}

TEST_CASE("image limits are configurable", "[data][limits][image]") {
  Image img(40, 30, 3, 7);
  lgh_test::ScratchDir dir("limits");
  write_image(dir.file("small.png"), img);
  ImageLimits limits;
  limits.max_width = 39;
  REQUIRE_THROWS_WITH(read_image(dir.file("small.png"), 3, limits), Contains("40x30, beyond the limit of 39x16384"));
  limits = ImageLimits{};
  limits.max_pixels = 1199;
  REQUIRE_THROWS_WITH(read_image(dir.file("small.png"), 3, limits), Contains("and 1199 pixels"));
  limits = ImageLimits{};
  limits.max_file_bytes = 10;
  REQUIRE_THROWS_WITH(read_image(dir.file("small.png"), 3, limits), Contains("beyond the limit of 10"));
  // The process-wide default.
  const ImageLimits saved = image_limits();
  image_limits().max_height = 29;
  CHECK_THROWS_WITH(read_image(dir.file("small.png")), Contains("40x30"));
  image_limits() = saved;
  CHECK(read_image(dir.file("small.png")).pixels == img.pixels);
}

TEST_CASE("a pickle with huge array dimensions is refused before allocation", "[data][limits][pickle]") {
  // Protocol 5: numpy.core.numeric._frombuffer(8 bytes, dtype('f8'), shape, 'C').
  const auto long8 = [](uint64_t v) {
    std::string s("\x8a\x08", 2);
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
    return s;
  };
  const auto frombuffer = [](const std::string& data, const std::string& shape) {
    std::string p("\x80\x05", 2);
    p += "cnumpy.core.numeric\n_frombuffer\n(";
    p += "C" + std::string(1, static_cast<char>(data.size())) + data;
    p += "cnumpy\ndtype\n(\x8c\x02" "f8tR";
    p += "(" + shape + "t";
    p += "\x8c\x01" "Ct";
    p += "R.";
    return p;
  };
  const uint64_t big = uint64_t(1) << 40;
  REQUIRE_THROWS_WITH(pickle::loads(frombuffer(std::string(8, '\0'), long8(big) + long8(big)), "huge.pickle"),
                      Contains("huge.pickle") &&
                          Contains("numpy array of shape [1099511627776, 1099511627776] does not match its 8 data bytes"));
  // Element count times item size may not overflow either: 2^61 elements of 8 bytes.
  REQUIRE_THROWS_WITH(pickle::loads(frombuffer(std::string(8, '\0'), long8(uint64_t(1) << 61)), "huge.pickle"),
                      Contains("does not match its 8 data bytes"));
  // A zero extent makes the array empty whatever follows it.
  const auto empty = pickle::loads(frombuffer("", long8(5) + long8(0) + long8(big) + long8(big)), "empty.pickle");
  CHECK(empty.root().array.numel() == 0);
  CHECK(empty.root().array.shape == std::vector<int64_t>{5, 0, int64_t(big), int64_t(big)});
  // numpy's own bound on the number of dimensions.
  std::string ones;
  for (int i = 0; i < 65; ++i) ones += long8(1);
  REQUIRE_THROWS_WITH(pickle::loads(frombuffer(std::string(8, '\0'), ones), "deep.pickle"),
                      Contains("numpy array with 65 dimensions, more than 64"));
}

TEST_CASE("FreiHAND annotation files of 10^8 samples are refused", "[data][limits][freihand]") {
  lgh_test::ScratchDir dir("limits");
  const std::string root = lgh_test::copy_fixture(dir, "freihand");
  SECTION("by their size, before they are read") {
    // 10^8 intrinsics take about 6 GB of JSON: a sparse file of that size.
    std::filesystem::resize_file(root + "/training_K.json", 6000000000ull);
    REQUIRE_THROWS_WITH(FreiHandDataset(root), Contains("training_K.json' is 6000000000 bytes, more than the limit of 268435456"));
  }
  SECTION("by their number of entries, while they are parsed") {
    // The first 10^6 + 1 entries of a longer list: parsing stops at the
    // entry past the limit (the file need not even be complete).
    std::string text = "[";
    for (int i = 0; i <= 1000000; ++i) text += "0,";
    lgh_test::write_text(root + "/training_K.json", text);
    REQUIRE_THROWS_WITH(FreiHandDataset(root), Contains("training_K.json' lists more than 1000000 annotations"));
  }
  SECTION("by their number of values, however they nest") {
    FreiHandOptions opt;
    opt.max_annotations = 10;  // at most 1280 JSON values
    std::string text = "[[";
    for (int i = 0; i < 2000; ++i) text += "0,";
    lgh_test::write_text(root + "/training_xyz.json", text + "0]]");
    REQUIRE_THROWS_WITH(FreiHandDataset(root, opt), Contains("training_xyz.json' holds more than 1280 JSON values"));
  }
  SECTION("the fixture itself is within the limits") { CHECK(FreiHandDataset(root).num_annotations() == 3); }
}

#if defined(LGH_HAVE_MATIO)
namespace {
// A MATLAB 5 file: the 128-byte header, then `elements`.
std::string mat5(const std::string& elements) {
  std::string mat(116, ' ');
  mat.replace(0, 10, "MATLAB 5.0");
  return mat + std::string(8, '\0') + std::string("\x00\x01IM", 4) + elements;
}
// The headers of a double array "handPara" of the given dimensions, up to
// its real part's tag (declaring `data_bytes`).
std::string handpara_headers(const std::vector<uint32_t>& dims, uint32_t dims_bytes, uint32_t data_bytes) {
  std::string body = le32(6) + le32(8) + le32(6) + le32(0);  // array flags: double
  body += le32(5) + le32(dims_bytes);
  for (uint32_t d : dims) body += le32(d);
  if (dims.size() % 2) body += le32(0);
  body += le32(1) + le32(8) + "handPara";
  return body + le32(9) + le32(data_bytes);
}
}  // namespace

TEST_CASE("an STB label file declaring 10^6 frames is refused before its data is read", "[data][limits][stb]") {
  // A compressed variable: 3 x 21 x 1000000 doubles (504 MB) declared in a
  // few dozen bytes; only its headers are there.
  const std::string inner = handpara_headers({3, 21, 1000000}, 12, 3u * 21u * 1000000u * 8u);
  const std::string matrix = le32(14) + le32(static_cast<uint32_t>(inner.size()) + 3u * 21u * 1000000u * 8u) + inner;
  uLongf zsize = compressBound(matrix.size());
  std::string z(zsize, '\0');
  REQUIRE(compress(reinterpret_cast<Bytef*>(&z[0]), &zsize, reinterpret_cast<const Bytef*>(matrix.data()), matrix.size()) == Z_OK);
  z.resize(zsize);
  lgh_test::ScratchDir dir("limits");
  lgh_test::write_text(dir.file("B1Counting_SK.mat"), mat5(le32(15) + le32(static_cast<uint32_t>(z.size())) + z));
  REQUIRE_THROWS_WITH(read_stb_labels_mat(dir.file("B1Counting_SK.mat")),
                      Contains("B1Counting_SK.mat") &&
                          Contains("3 x 21 x 1000000, expected 3 x 21 x frames (of at most 100000 frames)"));
}

TEST_CASE("STB label files whose sizes do not fit are refused before matio reads them", "[data][limits][stb]") {
  lgh_test::ScratchDir dir("limits");
  const auto refused = [&](const std::string& bytes, const std::string& why) {
    lgh_test::write_text(dir.file("x.mat"), bytes);
    CHECK_THROWS_WITH(read_stb_labels_mat(dir.file("x.mat")), Contains("x.mat") && Contains(why));
  };
  // The fuzzing finding: a dimensions subelement declaring 4 GB made matio
  // allocate 8.5 GB (tests/fuzz/regressions/stb_mat/).
  std::string body = handpara_headers({3, 21, 2}, 0xff00000cu, 0);
  refused(mat5(le32(14) + le32(static_cast<uint32_t>(body.size())) + body), "a variable with invalid dimensions at byte 128");
  // A variable longer than the file.
  body = handpara_headers({3, 21, 2}, 12, 3 * 21 * 2 * 8);
  refused(mat5(le32(14) + le32(static_cast<uint32_t>(body.size()) + 3 * 21 * 2 * 8) + body), "runs past the end of the file");
  // Cells and structs are not read.
  body = handpara_headers({3, 21, 2}, 12, 0);
  body[8] = 1;  // class mxCELL
  refused(mat5(le32(14) + le32(static_cast<uint32_t>(body.size())) + body), "MATLAB class 1");
  // Version 4 and 7.3 (HDF5) files.
  refused(std::string(200, '\0'), "not a MATLAB 5 file");
  std::string v73 = mat5("");
  v73[124] = 0;
  v73[125] = 2;
  refused(v73, "MATLAB 7.3 (HDF5)");
  // The regression input itself.
  CHECK_THROWS_WITH(read_stb_labels_mat(std::string(LGH_TEST_DATA_DIR) + "/fuzz/regressions/stb_mat/dims_declaring_4gb.mat"),
                    Contains("runs past the end of the file"));
}
#endif
