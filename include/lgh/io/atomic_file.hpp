// Atomic file output: data goes to a temporary file beside the target, which
// is renamed over the target only once fully written and flushed. A crash or
// an error midway leaves the target untouched (and no partial file behind).
#pragma once

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

#include "lgh/core/error.hpp"

namespace lgh {
namespace io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path)
      : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    LGH_CHECK(out_.good(), "cannot open '" << path_ << "' for writing (directory missing or not writable?)");
  }
  ~AtomicFile() {
    if (!committed_) {
      out_.close();
      std::remove(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream() { return out_; }
  void write(const void* data, size_t bytes) { out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes)); }

  // Flushes, syncs and renames over the target.
  void commit() {
    out_.flush();
    LGH_CHECK(out_.good(), "error writing '" << path_ << "' (disk full?)");
    out_.close();
    if (FILE* f = std::fopen(tmp_.c_str(), "rb+")) {
      ::fsync(::fileno(f));
      std::fclose(f);
    }
    LGH_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot move the written file into place at '" << path_ << "'");
    committed_ = true;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically.
inline void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace io
}  // namespace lgh
