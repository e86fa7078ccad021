// Image: an 8-bit, interleaved (HWC) raster, with PNG/JPEG/BMP reading and
// PNG/JPEG writing.
//
// Decoding takes untrusted input (data sets, user images), so it is done by
// the most hardened decoder available (docs/architecture.md, "Images"):
//   * PNG through libpng and JPEG through libjpeg-turbo when the program
//     links them (lgh::lgh does whenever CMake finds them, and defines
//     LGH_HAVE_LIBPNG / LGH_HAVE_LIBJPEG for every translation unit alike);
//   * BMP, and PNG/JPEG in a build without those libraries, through stb_image,
//     compiled here with static linkage and only the formats it must serve.
// Every decoder first reads the header, and the dimensions are checked
// against ImageLimits before the pixel buffer is allocated. Writing (our own
// pixels, not untrusted input) is stb_image_write's for PNG, and libjpeg's
// for JPEG where linked (stb's JPEG encoder shifts negative ints).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/io/atomic_file.hpp"

#if defined(LGH_HAVE_LIBJPEG)
#include <csetjmp>
#include <jpeglib.h>
#endif
#if defined(LGH_HAVE_LIBPNG)
#include <png.h>
#endif

// The one place stb_image and stb_image_write are compiled.
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
#define STBI_NO_STDIO  // files are read by read_image, so the size limit applies first
#define STBI_ONLY_BMP
#if !defined(LGH_HAVE_LIBPNG)
#define STBI_ONLY_PNG
#endif
#if !defined(LGH_HAVE_LIBJPEG)
#define STBI_ONLY_JPEG
#endif
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

// What a decoder accepts. A file's header is checked against these before
// any pixel memory is allocated, so a 100-byte file cannot ask for gigabytes.
// The defaults are far above every data set lgh reads (RHD 320x320, FreiHAND
// 224x224, STB and Dexter+Object 640x480).
struct ImageLimits {
  int64_t max_width = 16384;
  int64_t max_height = 16384;
  int64_t max_pixels = int64_t(64) << 20;      // width x height: 64 Mpx (256 MiB at 4 channels)
  int64_t max_file_bytes = int64_t(256) << 20;  // read_image refuses larger files before reading them
};

// The process-wide limits that read_image/decode_image use by default.
// Set them before images are read from several threads.
inline ImageLimits& image_limits() {
  static ImageLimits limits;
  return limits;
}

namespace detail {

enum class ImageFormat { Unknown, Png, Jpeg, Bmp };

inline ImageFormat sniff_image_format(const uint8_t* b, size_t n) {
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 8 && std::memcmp(b, png_magic, 8) == 0) return ImageFormat::Png;
  if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return ImageFormat::Jpeg;
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return ImageFormat::Bmp;
  return ImageFormat::Unknown;
}

// Throws unless a w x h image is within `limits` (called before allocating).
inline void check_image_size(int64_t w, int64_t h, const ImageLimits& limits, const std::string& what) {
  LGH_CHECK(w > 0 && h > 0, "cannot read image " << what << ": its header gives the size " << w << "x" << h);
  LGH_CHECK(w <= limits.max_width && h <= limits.max_height && w * h <= limits.max_pixels,
            "cannot read image " << what << ": its header gives the size " << w << "x" << h
                                 << ", beyond the limit of " << limits.max_width << "x" << limits.max_height << " and "
                                 << limits.max_pixels << " pixels (lgh::data::image_limits())");
}

// Converts interleaved 8-bit pixels between 1 (grey), 2 (grey, alpha),
// 3 (RGB) and 4 (RGBA) channels the way stb_image does (grey = (77 R + 150 G
// + 29 B) >> 8, new alpha opaque), so that every decoder gives the same result.
inline Image convert_channels(Image img, int channels) {
  if (channels == 0 || channels == img.channels) return img;
  const int ci = img.channels;
  Image out(img.width, img.height, channels);
  const size_t n = static_cast<size_t>(img.width) * img.height;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* s = &img.pixels[i * ci];
    uint8_t* d = &out.pixels[i * channels];
    const bool colour = ci >= 3;
    const uint8_t grey = colour ? static_cast<uint8_t>((s[0] * 77 + s[1] * 150 + s[2] * 29) >> 8) : s[0];
    const uint8_t alpha = ci == 2 ? s[1] : (ci == 4 ? s[3] : 255);
    switch (channels) {
      case 1: d[0] = grey; break;
      case 2: d[0] = grey; d[1] = alpha; break;
      default:
        for (int c = 0; c < 3; ++c) d[c] = colour ? s[c] : grey;
        if (channels == 4) d[3] = alpha;
    }
  }
  return out;
}

// ---- stb_image (BMP; PNG and JPEG without the system libraries) ------------

// stb_image 2.27 writes past its Huffman tables when a DHT segment declares
// more than 256 codes (stb_image.h:1990; found by fuzzing, kept in
// tests/fuzz/regressions/image/). stb reads a DHT segment wherever the
// marker FF C4 appears, before or between scans (in entropy-coded data an
// FF byte is always followed by 00 or a marker), so every FF C4 pair is read
// as stb would read it, bytes past the end as 0, and a table of more than
// 256 codes refuses the file before stb sees it.
inline bool jpeg_huffman_tables_fit(const uint8_t* b, size_t n) {
  const auto at = [&](size_t i) -> unsigned { return i < n ? b[i] : 0u; };
  for (size_t m = 0; m + 1 < n; ++m) {
    if (b[m] != 0xff || b[m + 1] != 0xc4) continue;
    size_t pos = m + 2;
    long remaining = static_cast<long>((at(pos) << 8) | at(pos + 1)) - 2;
    pos += 2;
    while (remaining > 0 && pos < n) {
      const unsigned q = at(pos++);
      if ((q >> 4) > 1 || (q & 15) > 3) break;  // stb stops here with an error
      unsigned codes = 0;
      for (int i = 0; i < 16; ++i) codes += at(pos++);
      if (codes > 256) return false;
      pos += codes;
      remaining -= 17 + static_cast<long>(codes);
    }
  }
  return true;
}

inline Image decode_with_stb(const uint8_t* bytes, size_t size, const std::string& what, int channels,
                             const ImageLimits& limits) {
  LGH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()),
            "cannot read image " << what << ": " << size << " bytes is too large");
  LGH_CHECK(sniff_image_format(bytes, size) != ImageFormat::Jpeg || jpeg_huffman_tables_fit(bytes, size),
            "cannot read image " << what << " (JPEG): a Huffman table declares more than 256 codes");
  int w = 0, h = 0, c = 0;
  LGH_CHECK(stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &c),
            "cannot read image " << what << ": " << stbi_failure_reason());
  check_image_size(w, h, limits, what);
  unsigned char* p = stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &c, channels);
  LGH_CHECK(p != nullptr, "cannot read image " << what << ": " << stbi_failure_reason());
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels ? channels : c;
  img.pixels.assign(p, p + static_cast<size_t>(w) * h * img.channels);
  stbi_image_free(p);
  return img;
}

#if defined(LGH_HAVE_LIBJPEG)
// ---- libjpeg-turbo ---------------------------------------------------------
// libjpeg reports errors by calling error_exit, which must not return: it
// longjmps back to jpeg_guarded. Everything the decoder touches lives in
// JpegDecode (owned by the caller, so no local of the function that calls
// setjmp changes between setjmp and longjmp), and the code between them keeps
// no object with a destructor on the stack.
struct JpegDecode {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 256] = {0};
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  ImageLimits limits;
  bool created = false;
  bool cmyk = false;
  Image* out = nullptr;
};

inline JpegDecode* jpeg_state(j_common_ptr cinfo) { return reinterpret_cast<JpegDecode*>(cinfo->client_data); }

inline void jpeg_fail(j_common_ptr cinfo) {
  JpegDecode* s = jpeg_state(cinfo);
  (*cinfo->err->format_message)(cinfo, s->message);
  std::longjmp(s->jump, 1);
}

// Warnings (level -1) mean corrupt data that libjpeg would paper over with
// grey: refused like errors. Trace messages (level >= 0) are ignored.
inline void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_fail(cinfo);
}

// A progressive file may hold any number of scans, each a pass over the
// whole image: a small file could keep the decoder busy for minutes. Real
// encoders write about ten; more than kMaxJpegScans is refused.
constexpr int kMaxJpegScans = 500;
inline void jpeg_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  const int scans = reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number;
  if (scans > kMaxJpegScans) {
    std::snprintf(jpeg_state(cinfo)->message, sizeof(jpeg_state(cinfo)->message),
                  "more than %d progressive scans", kMaxJpegScans);
    std::longjmp(jpeg_state(cinfo)->jump, 1);
  }
}

inline void jpeg_decode_body(JpegDecode* s) {
  jpeg_decompress_struct& ci = s->cinfo;
  jpeg_create_decompress(&ci);
  s->created = true;
  ci.client_data = s;
  s->progress.progress_monitor = jpeg_progress;
  ci.progress = &s->progress;
  jpeg_mem_src(&ci, s->bytes, static_cast<unsigned long>(s->size));
  jpeg_read_header(&ci, TRUE);
  const int64_t w = ci.image_width, h = ci.image_height;
  if (w <= 0 || h <= 0 || w > s->limits.max_width || h > s->limits.max_height || w * h > s->limits.max_pixels) {
    std::snprintf(s->message, sizeof(s->message), "%s %lldx%lld, beyond the limit of %lldx%lld and %lld pixels",
                  "its header gives the size", static_cast<long long>(w), static_cast<long long>(h),
                  static_cast<long long>(s->limits.max_width), static_cast<long long>(s->limits.max_height),
                  static_cast<long long>(s->limits.max_pixels));
    std::longjmp(s->jump, 1);
  }
  // Adobe CMYK/YCCK files come out as (inverted) CMYK and are turned into RGB below.
  s->cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
  ci.out_color_space = ci.num_components == 1 ? JCS_GRAYSCALE : (s->cmyk ? JCS_CMYK : JCS_RGB);
  jpeg_start_decompress(&ci);
  Image& img = *s->out;
  img.width = static_cast<int>(ci.output_width);
  img.height = static_cast<int>(ci.output_height);
  img.channels = ci.output_components;
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * img.channels);
  while (ci.output_scanline < ci.output_height) {
    JSAMPROW row = img.pixels.data() + static_cast<size_t>(ci.output_scanline) * img.width * img.channels;
    jpeg_read_scanlines(&ci, &row, 1);
  }
  jpeg_finish_decompress(&ci);
}

inline bool jpeg_guarded(JpegDecode* s) {
  if (setjmp(s->jump)) return false;
  jpeg_decode_body(s);
  return true;
}

inline Image decode_jpeg(const uint8_t* bytes, size_t size, const std::string& what, int channels,
                         const ImageLimits& limits) {
  Image img;
  JpegDecode s;
  s.bytes = bytes;
  s.size = size;
  s.limits = limits;
  s.out = &img;
  s.cinfo.err = jpeg_std_error(&s.err);
  s.err.error_exit = jpeg_fail;
  s.err.emit_message = jpeg_message;
  s.cinfo.client_data = &s;
  const bool ok = jpeg_guarded(&s);
  if (s.created) jpeg_destroy_decompress(&s.cinfo);
  LGH_CHECK(ok, "cannot read image " << what << " (JPEG): " << s.message);
  if (s.cmyk) {
    // Adobe stores CMYK inverted: R = C K / 255 (likewise G, B), as stb does.
    Image rgb(img.width, img.height, 3);
    const size_t n = static_cast<size_t>(img.width) * img.height;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &img.pixels[4 * i];
      for (int c = 0; c < 3; ++c) {
        const unsigned t = unsigned(p[c]) * p[3] + 128;
        rgb.pixels[3 * i + c] = static_cast<uint8_t>((t + (t >> 8)) >> 8);
      }
    }
    img = std::move(rgb);
  }
  return convert_channels(std::move(img), channels);
}
#endif

#if defined(LGH_HAVE_LIBPNG)
// ---- libpng ----------------------------------------------------------------
// The same structure as the JPEG decoder: libpng longjmps to png_jmpbuf on
// an error (after png_error_fn has kept the message), everything it touches
// lives in PngDecode.
struct PngDecode {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[512] = {0};
  const uint8_t* bytes = nullptr;
  size_t size = 0, pos = 0;
  ImageLimits limits;
  Image* out = nullptr;
  std::vector<png_bytep> rows;
};

inline void png_error_fn(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngDecode*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", msg);
  png_longjmp(png, 1);
}
inline void png_warning_fn(png_structp, png_const_charp) {}  // e.g. an unusual colour profile: harmless

inline void png_read_fn(png_structp png, png_bytep data, png_size_t n) {
  auto* s = static_cast<PngDecode*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) png_error(png, "truncated file");
  std::memcpy(data, s->bytes + s->pos, n);
  s->pos += n;
}

inline void png_decode_body(PngDecode* s) {
  png_structp png = s->png;
  png_infop info = s->info;
  png_set_read_fn(png, s, png_read_fn);
  // png_read_info reads the chunks before the pixel data (libpng allocates
  // no pixel memory there), then the size is checked.
  png_read_info(png, info);
  const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (w <= 0 || h <= 0 || w > s->limits.max_width || h > s->limits.max_height || w * h > s->limits.max_pixels) {
    std::snprintf(s->message, sizeof(s->message), "%s %lldx%lld, beyond the limit of %lldx%lld and %lld pixels",
                  "its header gives the size", static_cast<long long>(w), static_cast<long long>(h),
                  static_cast<long long>(s->limits.max_width), static_cast<long long>(s->limits.max_height),
                  static_cast<long long>(s->limits.max_pixels));
    png_longjmp(png, 1);
  }
  // 8-bit grey, grey+alpha, RGB or RGBA, whatever the file stores: palettes
  // and low bit depths expanded, tRNS turned into alpha, 16 bits cut to 8
  // (the high byte, as stb does). No gamma conversion (stb applies none).
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (channels < 1 || channels > 4 || png_get_bit_depth(png, info) != 8 ||
      rowbytes != static_cast<size_t>(w) * channels) {
    std::snprintf(s->message, sizeof(s->message), "unsupported pixel layout (%d channels, %d bits)", channels,
                  png_get_bit_depth(png, info));
    png_longjmp(png, 1);
  }
  Image& img = *s->out;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.channels = channels;
  img.pixels.resize(static_cast<size_t>(w) * h * channels);
  s->rows.resize(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) s->rows[static_cast<size_t>(y)] = img.pixels.data() + static_cast<size_t>(y) * rowbytes;
  png_read_image(png, s->rows.data());
  png_read_end(png, nullptr);
}

inline bool png_guarded(PngDecode* s) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_decode_body(s);
  return true;
}

inline Image decode_png(const uint8_t* bytes, size_t size, const std::string& what, int channels,
                        const ImageLimits& limits) {
  Image img;
  PngDecode s;
  s.bytes = bytes;
  s.size = size;
  s.limits = limits;
  s.out = &img;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_error_fn, png_warning_fn);
  LGH_CHECK(s.png != nullptr, "cannot read image " << what << ": libpng could not start");
  s.info = png_create_info_struct(s.png);
  bool ok = s.info != nullptr;
  if (!ok) std::snprintf(s.message, sizeof(s.message), "out of memory");
  if (ok) ok = png_guarded(&s);
  png_destroy_read_struct(&s.png, s.info ? &s.info : nullptr, nullptr);
  LGH_CHECK(ok, "cannot read image " << what << " (PNG): " << s.message);
  return convert_channels(std::move(img), channels);
}
#endif

#if defined(LGH_HAVE_LIBJPEG)
// JPEG encoding through libjpeg-turbo: stb_image_write 1.16's encoder
// left-shifts negative ints (stb_image_write.h:1263, undefined behaviour
// that UBSan reports on every JPEG written). Same error handling as above.
struct JpegEncode {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  const Image* img = nullptr;  // 1 or 3 channels
  int quality = 95;
  bool created = false;
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
};

inline void jpeg_encode_fail(j_common_ptr cinfo) {
  auto* s = reinterpret_cast<JpegEncode*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, s->message);
  std::longjmp(s->jump, 1);
}

inline void jpeg_encode_body(JpegEncode* s) {
  jpeg_compress_struct& ci = s->cinfo;
  jpeg_create_compress(&ci);
  s->created = true;
  ci.client_data = s;
  jpeg_mem_dest(&ci, &s->out, &s->out_size);
  ci.image_width = static_cast<JDIMENSION>(s->img->width);
  ci.image_height = static_cast<JDIMENSION>(s->img->height);
  ci.input_components = s->img->channels;
  ci.in_color_space = s->img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, s->quality, TRUE);
  if (s->quality > 90 && s->img->channels == 3)  // no chroma subsampling at high quality (as stb did)
    for (int c = 0; c < ci.num_components; ++c) ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
  jpeg_start_compress(&ci, TRUE);
  const size_t stride = static_cast<size_t>(s->img->width) * s->img->channels;
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(s->img->pixels.data()) + ci.next_scanline * stride;
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
}

inline bool jpeg_encode_guarded(JpegEncode* s) {
  if (setjmp(s->jump)) return false;
  jpeg_encode_body(s);
  return true;
}

// The encoded JPEG of `img` (alpha dropped, as JPEG has none).
inline std::string encode_jpeg(const Image& img, int quality, const std::string& what) {
  const Image rgb_or_grey = convert_channels(img, img.channels <= 2 ? 1 : 3);
  JpegEncode s;
  s.img = &rgb_or_grey;
  s.quality = std::min(100, std::max(1, quality));
  s.cinfo.err = jpeg_std_error(&s.err);
  s.err.error_exit = jpeg_encode_fail;
  s.cinfo.client_data = &s;
  const bool ok = jpeg_encode_guarded(&s);
  if (s.created) jpeg_destroy_compress(&s.cinfo);
  std::string bytes;
  if (ok && s.out != nullptr) bytes.assign(reinterpret_cast<const char*>(s.out), s.out_size);
  std::free(s.out);
  LGH_CHECK(ok, "cannot encode image for " << what << " (JPEG): " << s.message);
  return bytes;
}
#endif

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

// Decodes PNG, JPEG or BMP data (the format comes from the content, not a
// name); `channels` forces 1, 3 or 4 channels (0 keeps the file's); `what`
// names the input in errors. Sizes beyond `limits` are refused before any
// pixel memory is allocated.
inline Image decode_image(const uint8_t* bytes, size_t size, const std::string& what, int channels = 3,
                          const ImageLimits& limits = image_limits()) {
  LGH_CHECK(channels >= 0 && channels <= 4, "decode_image: channels must be 0 to 4, got " << channels);
  switch (detail::sniff_image_format(bytes, size)) {
    case detail::ImageFormat::Png:
#if defined(LGH_HAVE_LIBPNG)
      return detail::decode_png(bytes, size, what, channels, limits);
#else
      return detail::decode_with_stb(bytes, size, what, channels, limits);
#endif
    case detail::ImageFormat::Jpeg:
#if defined(LGH_HAVE_LIBJPEG)
      return detail::decode_jpeg(bytes, size, what, channels, limits);
#else
      return detail::decode_with_stb(bytes, size, what, channels, limits);
#endif
    case detail::ImageFormat::Bmp: return detail::decode_with_stb(bytes, size, what, channels, limits);
    case detail::ImageFormat::Unknown: break;
  }
  LGH_FAIL("cannot read image " << what << ": not a PNG, JPEG or BMP file (" << size << " bytes)");
}

// Reads a PNG/JPEG/BMP file; `channels` forces 1, 3 or 4 channels (0 keeps the file's).
inline Image read_image(const std::string& path, int channels = 3, const ImageLimits& limits = image_limits()) {
  const std::string what = "'" + path + "'";
  std::ifstream in(path, std::ios::binary);
  LGH_CHECK(in.good(), "cannot read image " << what << ": cannot open the file (missing or not readable?)");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  LGH_CHECK(size >= 0, "cannot read image " << what << ": cannot determine the file size");
  LGH_CHECK(size <= limits.max_file_bytes, "cannot read image " << what << ": the file is " << size
                                                                << " bytes, beyond the limit of "
                                                                << limits.max_file_bytes << " (lgh::data::image_limits())");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  LGH_CHECK(in.good() || size == 0, "cannot read image " << what << ": read error");
  return decode_image(bytes.data(), bytes.size(), what, channels, limits);
}

namespace detail {
// stb's write callback: appends the encoded bytes to a std::string.
inline void stb_append(void* ctx, void* data, int size) {
  auto* out = static_cast<std::string*>(ctx);
  out->append(static_cast<const char*>(data), static_cast<size_t>(size));
}
}  // namespace detail

// Writes PNG (by default) or JPEG (".jpg"/".jpeg"; through libjpeg-turbo
// where linked, whose encoder is free of stb_image_write's undefined
// behaviour), atomically.
inline void write_image(const std::string& path, const Image& img, int jpeg_quality = 95) {
  LGH_CHECK(!img.empty(), "write_image: empty image for '" << path << "'");
  std::string bytes;
  const auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  int ok = 1;
  if (ends_with(".jpg") || ends_with(".jpeg") || ends_with(".JPG"))
#if defined(LGH_HAVE_LIBJPEG)
    bytes = detail::encode_jpeg(img, jpeg_quality, "'" + path + "'");
#else
    ok = stbi_write_jpg_to_func(detail::stb_append, &bytes, img.width, img.height, img.channels,
                                img.pixels.data(), jpeg_quality);
#endif
  else
    ok = stbi_write_png_to_func(detail::stb_append, &bytes, img.width, img.height, img.channels,
                                img.pixels.data(), img.width * img.channels);
  LGH_CHECK(ok != 0, "cannot encode image for '" << path << "'");
  io::write_file_atomic(path, bytes);
}

}  // namespace data
}  // namespace lgh
