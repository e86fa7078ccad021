// STB's .mat label files read with matio. Needs matio's header and library:
// link lgh::matio (which also defines LGH_HAVE_MATIO, so including
// lgh/data/stb.hpp is enough).
#pragma once

#include <matio.h>

#include <memory>
#include <string>

#include "lgh/core/error.hpp"
#include "lgh/data/stb.hpp"

namespace lgh {
namespace data {

// handPara from one STB label file: a real 3 x 21 x N double (or single) array.
inline StbLabels read_stb_labels_mat(const std::string& path) {
  std::unique_ptr<mat_t, int (*)(mat_t*)> mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY), &Mat_Close);
  LGH_CHECK(mat != nullptr, "stb: cannot open '" << path << "' as a MATLAB file");
  std::unique_ptr<matvar_t, void (*)(matvar_t*)> var(Mat_VarRead(mat.get(), "handPara"), &Mat_VarFree);
  LGH_CHECK(var != nullptr, "stb: '" << path << "' has no readable variable 'handPara'");
  const bool is_double = var->class_type == MAT_C_DOUBLE && var->data_type == MAT_T_DOUBLE;
  const bool is_single = var->class_type == MAT_C_SINGLE && var->data_type == MAT_T_SINGLE;
  LGH_CHECK(!var->isComplex && (is_double || is_single) && var->data != nullptr,
            "stb: '" << path << "': handPara is not a real double or single array");
  const int64_t frames = var->rank == 2 ? 1 : (var->rank == 3 ? static_cast<int64_t>(var->dims[2]) : 0);
  LGH_CHECK(var->rank >= 2 && var->rank <= 3 && var->dims[0] == 3 && var->dims[1] == 21 && frames > 0,
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
