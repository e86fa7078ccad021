// Dataset: random access to annotated hand images. Readers of the public
// datasets and the synthetic generator implement it; the loader draws
// batches from it.
#pragma once

#include <cstdint>
#include <string>

#include "lgh/data/sample.hpp"

namespace lgh {
namespace data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Sample `index` in [0, size()). Must be safe to call from several threads
  // at once. Throws lgh::Error naming the file and the sample when the data
  // is missing or corrupt.
  virtual HandSample get(int64_t index) const = 0;
  // A short name for messages, e.g. "rhd:evaluation".
  virtual std::string name() const = 0;
};

}  // namespace data
}  // namespace lgh
