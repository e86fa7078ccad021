// The training augmentation of the paper (Implementation Details; DESIGN.md
// §2): random scale in [1, 1.2], rotation in [-pi, pi] about the crop
// centre, translation in [-20, 20] px and hue jitter in [-0.1, 0.1]. The
// crop (crop.hpp) applies a draw exactly, labels included.
//
// Randomness is a pure function of (seed, epoch, sample index): each sample
// of each epoch gets its own Philox stream, so a batch's content never
// depends on which worker thread built it or when.
#pragma once

#include <cstdint>

#include "lgh/core/error.hpp"
#include "lgh/core/philox.hpp"
#include "lgh/data/crop.hpp"

namespace lgh {
namespace data {

struct AugmentOptions {
  double scale_min = 1.0, scale_max = 1.2;  // crop box side multiplier (zoom out)
  double rotation_max = 3.141592653589793;  // radians, uniform in [-max, max]
  // Uniform in [-max, max] pixels of a crop of `translation_reference_size`
  // pixels, scaled with the actual crop size so that a 128-pixel crop moves
  // the hand by the same fraction as the paper's 256-pixel one.
  double translation_max = 20;
  double translation_reference_size = 256;
  double hue_max = 0.1;  // fraction of the colour circle
};

// One draw; the five numbers are taken from `rng` in a fixed order (scale,
// rotation, tx, ty, hue), so a given engine state always gives the same draw.
inline Augmentation draw_augmentation(const AugmentOptions& o, int crop_size, PhiloxEngine& rng) {
  LGH_CHECK(o.scale_min > 0 && o.scale_min <= o.scale_max,
            "augmentation scale range [" << o.scale_min << ", " << o.scale_max << "] is invalid");
  LGH_CHECK(o.rotation_max >= 0 && o.translation_max >= 0 && o.hue_max >= 0 && o.translation_reference_size > 0,
            "augmentation ranges must be non-negative");
  Augmentation a;
  a.scale = rng.uniform(o.scale_min, o.scale_max);
  a.rotation = rng.uniform(-o.rotation_max, o.rotation_max);
  const double t = o.translation_max * crop_size / o.translation_reference_size;
  a.tx = rng.uniform(-t, t);
  a.ty = rng.uniform(-t, t);
  a.hue = rng.uniform(-o.hue_max, o.hue_max);
  return a;
}

// The generator for sample `index` in `epoch` under `seed`: the key is the
// seed, the stream (epoch, index) packed as epoch * 2^40 + index.
inline PhiloxEngine augmentation_engine(uint64_t seed, int64_t epoch, int64_t index) {
  LGH_CHECK(epoch >= 0 && epoch < (int64_t(1) << 24) && index >= 0 && index < (int64_t(1) << 40),
            "augmentation_engine: epoch " << epoch << " or index " << index << " out of range");
  return PhiloxEngine(seed, (static_cast<uint64_t>(epoch) << 40) | static_cast<uint64_t>(index));
}

}  // namespace data
}  // namespace lgh
