// lgh::Error: the one exception type of the library.
//
// Every failure the library detects (bad shapes, bad files, a missing CUDA
// backend) throws lgh::Error. what() is the message meant for the user; where()
// says which source line raised it, for bug reports.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lgh {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string where = {})
      : std::runtime_error(message), where_(std::move(where)) {}

  // "file:line" of the check that failed (empty when raised without LGH_CHECK).
  const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

namespace detail {
[[noreturn]] inline void throw_error(const char* file, int line, const std::string& message) {
  std::string where = std::string(file) + ":" + std::to_string(line);
  throw Error(message, std::move(where));
}
}  // namespace detail

}  // namespace lgh

// LGH_CHECK(cond, a << b << c): throws lgh::Error with the streamed message
// when cond is false. The message is built only on failure.
#define LGH_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::ostringstream lgh_check_stream_;                                    \
      lgh_check_stream_ << __VA_ARGS__;                                        \
      ::lgh::detail::throw_error(__FILE__, __LINE__, lgh_check_stream_.str()); \
    }                                                                          \
  } while (0)

// LGH_FAIL(a << b): unconditional lgh::Error.
#define LGH_FAIL(...) LGH_CHECK(false, __VA_ARGS__)
