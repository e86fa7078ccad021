// STB's .mat label files read with matio. Needs matio's header and library:
// link lgh::matio (which also defines LGH_HAVE_MATIO, so including
// lgh/data/stb.hpp is enough).
#pragma once

#include <matio.h>

#include <fstream>
#include <memory>
#include <string>

#include "lgh/core/error.hpp"
#include "lgh/data/stb.hpp"

namespace lgh {
namespace data {

namespace detail {
// MATLAB 7.3 files are HDF5 containers; STB's labels are MATLAB 5 files,
// and reading them must not hand untrusted bytes to the HDF5 parser. The
// version sits at bytes 124-125 of the 128-byte header, in the byte order
// that bytes 126-127 ("IM" little-endian, "MI" big-endian) give.
inline bool is_mat73_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char h[128];
  if (!in.read(reinterpret_cast<char*>(h), sizeof(h))) return false;
  int version = -1;
  if (h[126] == 'I' && h[127] == 'M') version = h[124] | (h[125] << 8);
  if (h[126] == 'M' && h[127] == 'I') version = (h[124] << 8) | h[125];
  return version == 0x0200;
}
}  // namespace detail

// STB's sequences hold 1,500 frames; a label file declaring more than this
// is refused before matio allocates its data.
constexpr int64_t kMaxStbFrames = 100000;

// handPara from one STB label file: a real 3 x 21 x N double (or single) array.
inline StbLabels read_stb_labels_mat(const std::string& path) {
  LGH_CHECK(!detail::is_mat73_file(path), "stb: '" << path << "' is a MATLAB 7.3 (HDF5) file; STB's label files "
                                                               "are MATLAB 5 files (save them with -v7 or earlier)");
  std::unique_ptr<mat_t, int (*)(mat_t*)> mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY), &Mat_Close);
  LGH_CHECK(mat != nullptr, "stb: cannot open '" << path << "' as a MATLAB file");
  // The variable's header first: type and dimensions are checked before its data is read.
  {
    std::unique_ptr<matvar_t, void (*)(matvar_t*)> info(Mat_VarReadInfo(mat.get(), "handPara"), &Mat_VarFree);
    LGH_CHECK(info != nullptr, "stb: '" << path << "' has no readable variable 'handPara'");
    LGH_CHECK(!info->isComplex && (info->class_type == MAT_C_DOUBLE || info->class_type == MAT_C_SINGLE),
              "stb: '" << path << "': handPara is not a real double or single array");
    std::string sizes;
    for (int i = 0; info->dims != nullptr && i < info->rank; ++i)
      sizes += (i ? " x " : "") + std::to_string(info->dims[i]);
    LGH_CHECK(info->dims != nullptr && (info->rank == 2 || info->rank == 3) && info->dims[0] == 3 &&
                  info->dims[1] == 21 && (info->rank == 2 || (info->dims[2] >= 1 && info->dims[2] <= size_t(kMaxStbFrames))),
              "stb: '" << path << "': handPara has " << info->rank << " dimensions of sizes " << sizes
                       << ", expected 3 x 21 x frames (of at most " << kMaxStbFrames << " frames)");
  }
  std::unique_ptr<matvar_t, void (*)(matvar_t*)> var(Mat_VarRead(mat.get(), "handPara"), &Mat_VarFree);
  LGH_CHECK(var != nullptr, "stb: '" << path << "' has no readable variable 'handPara'");
  const bool is_double = var->class_type == MAT_C_DOUBLE && var->data_type == MAT_T_DOUBLE;
  const bool is_single = var->class_type == MAT_C_SINGLE && var->data_type == MAT_T_SINGLE;
  LGH_CHECK(!var->isComplex && (is_double || is_single) && var->data != nullptr,
            "stb: '" << path << "': handPara is not a real double or single array");
  const int64_t frames = var->rank == 2 ? 1 : (var->rank == 3 ? static_cast<int64_t>(var->dims[2]) : 0);
  LGH_CHECK(var->rank >= 2 && var->rank <= 3 && var->dims[0] == 3 && var->dims[1] == 21 && frames > 0 &&
                frames <= kMaxStbFrames,
            "stb: '" << path << "': handPara has " << var->rank << " dimensions of sizes " << var->dims[0] << " x "
                     << (var->rank > 1 ? var->dims[1] : 0) << (var->rank > 2 ? " x " + std::to_string(var->dims[2]) : "")
                     << ", expected 3 x 21 x frames");
  StbLabels labels;
  labels.frames = frames;
  const size_t n = static_cast<size_t>(frames) * 3 * 21;
  LGH_CHECK(var->nbytes >= n * (is_double ? sizeof(double) : sizeof(float)),
            "stb: '" << path << "': handPara holds fewer bytes than its dimensions say");
  labels.values.resize(n);
  if (is_double) {
    const auto* d = static_cast<const double*>(var->data);
    labels.values.assign(d, d + n);
  } else {
    const auto* f = static_cast<const float*>(var->data);
    for (size_t i = 0; i < n; ++i) labels.values[i] = f[i];
  }
  return labels;
}

// The STB dataset under `root` with labels read from its .mat files.
inline StbDataset open_stb(const std::string& root, StbOptions options = {}) {
  return StbDataset(root, std::move(options), &read_stb_labels_mat);
}

}  // namespace data
}  // namespace lgh
