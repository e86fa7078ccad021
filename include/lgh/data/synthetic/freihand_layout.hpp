// Writes any Dataset in FreiHAND's file layout (DESIGN.md §6), so that the
// synthetic hands can be read back by the FreiHAND reader and used by tools
// written for FreiHAND:
//
//   DIR/training/rgb/%08d.jpg    the images
//   DIR/training/mask/%08d.jpg   1-channel masks, 255 = hand (when the sample has one)
//   DIR/training_K.json          list of 3x3 intrinsics
//   DIR/training_xyz.json        list of 21x3 joints in metres, FreiHAND order (root -> tip per finger)
//   DIR/training_scale.json      list of the middle finger's MCP-PIP length in metres
//   DIR/training_vis.json        (ours) list of 21 visibility flags, FreiHAND order
//   DIR/contact_sheet.png        (ours) the first samples with their skeletons drawn
//
// Samples are generated and written on the worker threads; every file is
// written atomically, so an interrupted run leaves only complete files.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/core/parallel.hpp"
#include "lgh/data/dataset.hpp"
#include "lgh/data/draw.hpp"
#include "lgh/data/image.hpp"
#include "lgh/io/atomic_file.hpp"

namespace lgh {
namespace data {

struct FreiHandWriteOptions {
  int jpeg_quality = 95;
  int contact_sheet_samples = 16;  // 0: no contact sheet
  int contact_sheet_columns = 4;
  int contact_sheet_tile = 256;    // larger samples are shrunk to at most this side
  // Called now and then (at most every `progress_interval_s`) with the
  // number of samples written so far, the total and the elapsed seconds.
  std::function<void(int64_t done, int64_t total, double seconds)> progress;
  double progress_interval_s = 1.0;
};

struct FreiHandWriteReport {
  int64_t samples = 0;
  double seconds = 0;
};

// Prepares `dir` for writing: refuses a path that exists and is not a
// directory, creates DIR/training/{rgb,mask}. Throws lgh::Error naming the
// path otherwise.
inline void prepare_freihand_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  LGH_CHECK(!dir.empty(), "output directory: empty path");
  std::error_code ec;
  const fs::path root(dir);
  if (fs::exists(root, ec))
    LGH_CHECK(fs::is_directory(root, ec), "output directory '" << dir << "' exists and is not a directory");
  for (const char* sub : {"training/rgb", "training/mask"}) {
    fs::create_directories(root / sub, ec);
    LGH_CHECK(!ec, "cannot create directory '" << (root / sub).string() << "': " << ec.message());
  }
}

// The contact sheet tile of a sample: its image, shrunk to at most
// `max_side`, with the skeleton drawn (occluded joints as rings).
inline Image contact_tile(const HandSample& s, int max_side) {
  const int side = std::max(s.rgb.width, s.rgb.height);
  const int factor = std::max(1, (side + max_side - 1) / max_side);
  Image tile = downsample(s.rgb, factor);
  auto uv = s.uv;
  for (auto& p : uv)  // pixel centres at integers: x -> (x + 0.5) / f - 0.5
    for (double& c : p) c = (c + 0.5) / factor - 0.5;
  draw_skeleton(tile, uv, s.visible);
  return tile;
}

inline FreiHandWriteReport write_freihand_layout(const Dataset& data, int64_t count, const std::string& dir,
                                                 const FreiHandWriteOptions& opt = {}) {
  namespace fs = std::filesystem;
  using Clock = std::chrono::steady_clock;
  LGH_CHECK(count >= 1 && count <= data.size(),
            "write_freihand_layout: count must be in [1, " << data.size() << "] for " << data.name() << ", got "
                                                           << count);
  LGH_CHECK(count <= 100000000, "write_freihand_layout: at most 10^8 samples fit FreiHAND's 8-digit names");
  LGH_CHECK(opt.jpeg_quality >= 1 && opt.jpeg_quality <= 100, "write_freihand_layout: jpeg_quality must be in [1, 100]");
  prepare_freihand_dir(dir);
  const fs::path root(dir);

  const size_t n = static_cast<size_t>(count);
  std::vector<std::array<std::array<double, 3>, 3>> K(n);
  std::vector<std::array<std::array<double, 3>, kNumJoints>> xyz(n);
  std::vector<double> scale(n);
  std::vector<std::array<bool, kNumJoints>> vis(n);
  const int sheet_n = static_cast<int>(std::min<int64_t>(std::max(0, opt.contact_sheet_samples), count));
  std::vector<Image> tiles(static_cast<size_t>(sheet_n));

  const auto start = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::atomic<int64_t> done{0};
  std::mutex report_mutex;
  double last_report = 0;

  parallel_for(0, count, 1, [&](int64_t lo, int64_t hi) {
    char name[32];
    for (int64_t i = lo; i < hi; ++i) {
      const HandSample s = data.get(i);
      LGH_CHECK(s.rgb.channels == 3 && !s.rgb.empty(), data.name() << " sample " << i << ": expected an RGB image");
      std::snprintf(name, sizeof(name), "%08lld.jpg", static_cast<long long>(i));
      write_image((root / "training" / "rgb" / name).string(), s.rgb, opt.jpeg_quality);
      if (!s.mask.empty()) write_image((root / "training" / "mask" / name).string(), s.mask, opt.jpeg_quality);
      const size_t k = static_cast<size_t>(i);
      K[k] = {{{s.K.fx, 0, s.K.cx}, {0, s.K.fy, s.K.cy}, {0, 0, 1}}};
      for (int j = 0; j < kNumJoints; ++j) {
        const int f = freihand_from_canonical(j);
        for (int c = 0; c < 3; ++c) xyz[k][f][c] = s.xyz[j][c] / 1000.0;  // mm -> m
        vis[k][f] = s.visible[j];
      }
      double d2 = 0;
      for (int c = 0; c < 3; ++c) {
        const double d = s.xyz[kRootJoint][c] - s.xyz[kRefBoneChild][c];
        d2 += d * d;
      }
      scale[k] = std::sqrt(d2) / 1000.0;
      if (i < sheet_n) tiles[k] = contact_tile(s, opt.contact_sheet_tile);
      const int64_t d = ++done;
      if (opt.progress) {
        std::unique_lock<std::mutex> lock(report_mutex, std::try_to_lock);
        if (lock.owns_lock()) {
          const double t = elapsed();
          if (t - last_report >= opt.progress_interval_s) {
            last_report = t;
            opt.progress(d, count, t);
          }
        }
      }
    }
  });

  const auto dump = [&](const char* file, const nlohmann::json& j) {
    io::write_file_atomic((root / file).string(), j.dump());
  };
  dump("training_K.json", K);
  dump("training_xyz.json", xyz);
  dump("training_scale.json", scale);
  dump("training_vis.json", vis);
  if (sheet_n > 0)
    write_image((root / "contact_sheet.png").string(), tile_images(tiles, std::max(1, opt.contact_sheet_columns)));
  FreiHandWriteReport r;
  r.samples = count;
  r.seconds = elapsed();
  if (opt.progress) opt.progress(count, count, r.seconds);
  return r;
}

}  // namespace data
}  // namespace lgh
