// Pieces the dataset readers share: file names, checked image reads whose
// errors name the sample, and label helpers.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <sys/stat.h>

#include "lgh/core/error.hpp"
#include "lgh/data/hand.hpp"
#include "lgh/data/image.hpp"
#include "lgh/data/sample.hpp"

namespace lgh {
namespace data {
namespace detail {

inline std::string zero_pad(int64_t value, int width) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*lld", width, static_cast<long long>(value));
  return buf;
}

inline bool is_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
inline bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Reads an image for `sample`; width/height > 0 are checked. Every failure
// names the sample and the file.
inline Image read_sample_image(const std::string& path, int channels, const std::string& sample, int width = 0,
                               int height = 0) {
  LGH_CHECK(is_file(path), sample << ": image file '" << path << "' is missing");
  Image img;
  try {
    img = read_image(path, channels);
  } catch (const Error& e) {
    throw Error(sample + ": " + e.what(), e.where());
  }
  LGH_CHECK((width <= 0 || img.width == width) && (height <= 0 || img.height == height),
            sample << ": image '" << path << "' is " << img.width << "x" << img.height << ", expected " << width
                   << "x" << height);
  return img;
}

// The first channel of an image (masks stored as RGB or grey alike).
inline Image first_channel(const Image& img) {
  if (img.channels == 1) return img;
  Image out(img.width, img.height, 1);
  for (size_t i = 0, n = static_cast<size_t>(img.width) * img.height; i < n; ++i)
    out.pixels[i] = img.pixels[i * static_cast<size_t>(img.channels)];
  return out;
}

inline std::array<double, 2> project_point(const Intrinsics& K, const std::array<double, 3>& p) {
  return {K.fx * p[0] / p[2] + K.cx, K.fy * p[1] / p[2] + K.cy};
}

// uv inside the image (pixel centres at integers, so the image spans
// [-0.5, W - 0.5)), in front of the camera.
inline bool inside_image(const std::array<double, 2>& uv, double z, int width, int height) {
  return z > 0 && uv[0] >= -0.5 && uv[1] >= -0.5 && uv[0] < width - 0.5 && uv[1] < height - 0.5;
}

// Fills uv from xyz and marks joints visible when inside the image
// (for datasets annotated in 3D only).
inline void project_labels(HandSample& s, int width, int height) {
  for (int j = 0; j < kNumJoints; ++j) {
    const auto& p = s.xyz[j];
    if (!(std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2])) || p[2] <= 0) {
      s.uv[j] = {std::nan(""), std::nan("")};
      s.visible[j] = false;
      continue;
    }
    s.uv[j] = project_point(s.K, p);
    s.visible[j] = inside_image(s.uv[j], p[2], width, height);
  }
}

// Intrinsics from a row-major 3x3 matrix; refuses skew or a projective last row.
template <typename Get>
inline Intrinsics intrinsics_from_matrix(Get&& k, const std::string& context) {
  const double fx = k(0, 0), fy = k(1, 1), s = k(0, 1);
  LGH_CHECK(fx > 0 && fy > 0 && std::isfinite(k(0, 2)) && std::isfinite(k(1, 2)),
            context << ": camera matrix has focal lengths " << fx << ", " << fy << "; expected positive values");
  LGH_CHECK(std::abs(s) <= 1e-6 * fx && k(1, 0) == 0 && k(2, 0) == 0 && k(2, 1) == 0 && std::abs(k(2, 2) - 1) < 1e-6,
            context << ": camera matrix is not of the form [fx 0 cx; 0 fy cy; 0 0 1]");
  return Intrinsics{fx, fy, k(0, 2), k(1, 2)};
}

}  // namespace detail
}  // namespace data
}  // namespace lgh
