// STB's .mat label files read with matio. Needs matio's header and library:
// link lgh::matio (which also defines LGH_HAVE_MATIO, so including
// lgh/data/stb.hpp is enough).
#pragma once

#include <matio.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/stb.hpp"

namespace lgh {
namespace data {

namespace detail {

// matio trusts the sizes inside a MAT file: a 354-byte file whose
// dimensions subelement declares 4 GB makes Mat_VarReadInfo allocate 8.5 GB
// (found by fuzzing; tests/fuzz/regressions/stb_mat/). So the file's
// structure is checked here first, and matio only sees files that pass:
// MATLAB 5 files (STB's are; version 4 files and MATLAB 7.3's HDF5 are
// refused), at most kMaxMatFileBytes, whose every top-level variable is a
// numeric or char array (no cells, structs, objects, sparse arrays) with at
// most 32 dimensions and a name of at most 63 bytes, each element within
// the bytes that hold it. Compressed variables are checked on their first
// inflated bytes, where those headers are.
constexpr size_t kMaxMatFileBytes = size_t(64) << 20;  // STB's label files are under 1 MB

struct MatTag {
  uint32_t type = 0, size = 0;
  size_t header = 8;  // 4 for the small data element format
};

inline uint32_t mat_u32(const unsigned char* p, bool big_endian) {
  return big_endian ? (uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3])
                    : (uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]);
}

// The tag at b[at..n); false when it does not fit.
inline bool mat_tag(const unsigned char* b, size_t n, size_t at, bool big_endian, MatTag* t) {
  if (at > n || n - at < 8) return false;
  const uint32_t w = mat_u32(b + at, big_endian);
  if (w >> 16) {  // small element: type and size in one word, data in the next 4 bytes
    t->type = w & 0xffff;
    t->size = w >> 16;
    t->header = 4;
    return t->size <= 4;
  }
  t->type = w;
  t->size = mat_u32(b + at + 4, big_endian);
  t->header = 8;
  return t->size <= n - at - 8;
}

// Checks the headers of a miMATRIX payload b[0..n) (or of its first n
// inflated bytes): array flags, dimensions, name.
inline std::string mat_matrix_problem(const unsigned char* b, size_t n, bool big_endian) {
  MatTag flags, dims, name;
  if (!mat_tag(b, n, 0, big_endian, &flags) || flags.type != 6 || flags.size != 8)
    return "a variable without valid array flags";
  const uint32_t cls = mat_u32(b + flags.header, big_endian) & 0xff;
  if (cls != 4 && (cls < 6 || cls > 15))
    return "a variable of MATLAB class " + std::to_string(cls) + " (only numeric and char arrays are read)";
  const size_t at_dims = flags.header + 8;
  if (!mat_tag(b, n, at_dims, big_endian, &dims) || dims.type != 5 || dims.size < 8 || dims.size > 32 * 4 ||
      dims.size % 4 != 0)
    return "a variable with invalid dimensions";
  const size_t at_name = at_dims + dims.header + ((dims.size + 7) / 8) * 8;
  if (!mat_tag(b, n, at_name, big_endian, &name) || name.type != 1 || name.size > 63)
    return "a variable with an invalid name";
  return "";
}

// What is wrong with the MAT file's structure, or "" when matio may read it.
inline std::string mat_structure_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return "cannot open the file";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return "cannot determine the file size";
  if (static_cast<uint64_t>(size) > kMaxMatFileBytes)
    return std::to_string(size) + " bytes, more than the limit of " + std::to_string(kMaxMatFileBytes);
  in.seekg(0, std::ios::beg);
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) return "read error";
  const unsigned char* b = bytes.data();
  const size_t n = bytes.size();
  // The 128-byte header: text, subsystem offset, version, endian indicator.
  if (n < 128 || !((b[126] == 'I' && b[127] == 'M') || (b[126] == 'M' && b[127] == 'I')))
    return "not a MATLAB 5 file";
  const bool big_endian = b[126] == 'M';
  const unsigned version = big_endian ? (b[124] << 8 | b[125]) : (b[125] << 8 | b[124]);
  if (version == 0x0200) return "a MATLAB 7.3 (HDF5) file; STB's label files are MATLAB 5 files (save with -v7)";
  if (version != 0x0100) return "MAT version " + std::to_string(version) + ", expected a MATLAB 5 file";
  for (size_t at = 128; at < n;) {
    MatTag t;
    if (!mat_tag(b, n, at, big_endian, &t) || t.header != 8)
      return "a data element at byte " + std::to_string(at) + " runs past the end of the file";
    const unsigned char* payload = b + at + 8;
    std::string problem;
    if (t.type == 14) {  // miMATRIX
      problem = mat_matrix_problem(payload, t.size, big_endian);
    } else if (t.type == 15) {  // miCOMPRESSED: a zlib stream holding one miMATRIX element
      unsigned char head[512];
      z_stream z{};
      if (inflateInit(&z) != Z_OK) return "zlib failed to start";
      z.next_in = const_cast<unsigned char*>(payload);
      z.avail_in = t.size;
      z.next_out = head;
      z.avail_out = sizeof(head);
      const int rc = inflate(&z, Z_SYNC_FLUSH);
      const size_t got = sizeof(head) - z.avail_out;
      inflateEnd(&z);
      if (rc != Z_OK && rc != Z_STREAM_END) return "a compressed variable at byte " + std::to_string(at) + " does not inflate";
      MatTag inner;
      if (got < 8 || mat_u32(head, big_endian) != 14) return "a compressed variable that holds no array";
      inner.size = mat_u32(head + 4, big_endian);
      problem = mat_matrix_problem(head + 8, std::min<size_t>(got - 8, inner.size), big_endian);
    } else {
      return "a data element of type " + std::to_string(t.type) + " at byte " + std::to_string(at) +
             " (expected a variable)";
    }
    if (!problem.empty()) return problem + " at byte " + std::to_string(at);
    at += 8 + (t.type == 15 ? size_t(t.size) : ((size_t(t.size) + 7) / 8) * 8);
  }
  return "";
}
}  // namespace detail

// STB's sequences hold 1,500 frames; a label file declaring more than this
// is refused before matio allocates its data.
constexpr int64_t kMaxStbFrames = 100000;

// handPara from one STB label file: a real 3 x 21 x N double (or single) array.
inline StbLabels read_stb_labels_mat(const std::string& path) {
  const std::string problem = detail::mat_structure_problem(path);
  LGH_CHECK(problem.empty(), "stb: '" << path << "': " << problem);
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
