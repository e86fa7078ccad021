// Shared by the fuzz harnesses (docs/reliability.md): a scratch directory
// per process, writing an input to a file, splitting one input into parts.
//
// Each harness defines LLVMFuzzerTestOneInput. It is linked either with
// libFuzzer (clang, LGH_BUILD_FUZZERS=ON) or with replay_main.cpp, which
// runs it on files and directories (the committed seeds and regressions, as
// ctest tests of the ordinary build). A reader may refuse an input only with
// lgh::Error: any other exception escapes the harness and is a finding, as
// is every sanitizer report.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lgh/core/error.hpp"

namespace lgh_fuzz {

// A fresh directory under $TMPDIR (else /tmp), removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/lgh-fuzz-XXXXXX";
    if (::mkdtemp(&templ[0]) == nullptr) {
      std::perror("lgh fuzz: mkdtemp");
      std::abort();
    }
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  std::string path_;
};

inline const ScratchDir& scratch() {
  static ScratchDir dir;
  return dir;
}

inline void write_file(const std::string& path, const void* data, size_t size) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f.good()) {
    std::fprintf(stderr, "lgh fuzz: cannot write '%s'\n", path.c_str());
    std::abort();
  }
}
inline void write_file(const std::string& path, const std::string& text) { write_file(path, text.data(), text.size()); }

// Splits an input into at most `max_parts` parts at `separator` (the last
// part keeps any further separators).
inline std::vector<std::string> split(const uint8_t* data, size_t size, const std::string& separator, size_t max_parts) {
  const std::string all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  while (parts.size() + 1 < max_parts) {
    const size_t at = all.find(separator, start);
    if (at == std::string::npos) break;
    parts.push_back(all.substr(start, at - start));
    start = at + separator.size();
  }
  parts.push_back(all.substr(start));
  return parts;
}

// Runs f; a refusal with lgh::Error is an expected outcome.
template <typename F>
void refusing_only_with_lgh_error(F&& f) {
  try {
    f();
  } catch (const lgh::Error&) {
  }
}

}  // namespace lgh_fuzz
