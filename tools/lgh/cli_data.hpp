// The --data flag of `lgh train` and `lgh eval`: synthetic | rhd:DIR |
// stb:DIR | freihand:DIR | do:DIR (evaluation only), opened as data sets.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "lgh/core/error.hpp"
#include "lgh/data/dexter_object.hpp"
#include "lgh/data/freihand.hpp"
#include "lgh/data/rhd.hpp"
#include "lgh/data/synthetic.hpp"
#include "lgh/eval/evaluate.hpp"
#include "lgh/eval/metrics.hpp"
#if defined(LGH_HAVE_MATIO)
#include "lgh/data/stb_mat.hpp"
#endif

namespace lgh_cli {

struct DataSpec {
  std::string kind;  // synthetic, rhd, stb, freihand, do
  std::string dir;
};

// Validator text for --help.
inline const char* data_spec_help(bool training) {
  return training ? "Training data: synthetic, rhd:DIR, stb:DIR or freihand:DIR"
                  : "Data: synthetic (held-out synthetic hands), rhd:DIR (evaluation set), stb:DIR (B1), "
                    "freihand:DIR (evaluation split, else training) or do:DIR (Dexter+Object)";
}

// Checked while parsing (a usage error, exit 2).
inline CLI::Validator data_spec_validator(bool training) {
  return CLI::Validator(
      [training](std::string& s) -> std::string {
        if (s == "synthetic") return {};
        const auto colon = s.find(':');
        const std::string kind = colon == std::string::npos ? s : s.substr(0, colon);
        const bool known = kind == "rhd" || kind == "stb" || kind == "freihand" || (!training && kind == "do");
        if (!known || colon == std::string::npos || colon + 1 == s.size())
          return std::string("--data must be ") + (training ? "synthetic, rhd:DIR, stb:DIR or freihand:DIR"
                                                            : "synthetic, rhd:DIR, stb:DIR, freihand:DIR or do:DIR") +
                 ", got '" + s + "'";
        return {};
      },
      training ? "synthetic|rhd:DIR|stb:DIR|freihand:DIR" : "synthetic|rhd:DIR|stb:DIR|freihand:DIR|do:DIR");
}

inline DataSpec parse_data_spec(const std::string& s) {
  if (s == "synthetic") return {"synthetic", ""};
  const auto colon = s.find(':');
  LGH_CHECK(colon != std::string::npos, "--data '" << s << "' is not a data source");
  DataSpec d{s.substr(0, colon), s.substr(colon + 1)};
  LGH_CHECK(std::filesystem::is_directory(d.dir), "--data " << s << ": '" << d.dir << "' is not a directory");
  return d;
}

inline std::shared_ptr<const lgh::data::Dataset> open_stb_split(const std::string& dir, const std::string& split) {
#if defined(LGH_HAVE_MATIO)
  lgh::data::StbOptions o;
  o.split = split;
  return std::make_shared<lgh::data::StbDataset>(lgh::data::open_stb(dir, o));
#else
  LGH_FAIL("--data stb:" << dir << ": this build of lgh has no .mat reader (matio was not found at build time)");
#endif
}

// The training split of a source.
inline std::shared_ptr<const lgh::data::Dataset> open_training_data(const DataSpec& d, uint64_t seed, int image_size) {
  using namespace lgh::data;
  if (d.kind == "synthetic") {
    SyntheticConfig c;
    c.image_size = image_size;
    c.seed = seed;
    c.count = int64_t(1) << 20;
    static_assert((int64_t(1) << 20) <= lgh::eval::kMaxTrainingIndex, "training streams stay below the held-out indices");
    return std::make_shared<SyntheticHands>(c);
  }
  if (d.kind == "rhd") return std::make_shared<RhdDataset>(d.dir, RhdOptions{"training"});
  if (d.kind == "stb") return open_stb_split(d.dir, "train");
  if (d.kind == "freihand") return std::make_shared<FreiHandDataset>(d.dir, FreiHandOptions{"training"});
  LGH_FAIL("--data " << d.kind << ": not a training source");
}

// The evaluation split of a source: the held-out synthetic stream, RHD's
// evaluation set, STB's B1, FreiHAND's evaluation split (the training split
// when the directory has none, e.g. one written by `lgh synth`), or
// Dexter+Object. `samples` bounds the synthetic stream.
inline std::shared_ptr<const lgh::data::Dataset> open_evaluation_data(const DataSpec& d, int64_t samples, int image_size) {
  using namespace lgh::data;
  if (d.kind == "synthetic") return lgh::eval::synthetic_heldout(samples, image_size);
  if (d.kind == "rhd") return std::make_shared<RhdDataset>(d.dir, RhdOptions{"evaluation"});
  if (d.kind == "stb") return open_stb_split(d.dir, "test");
  if (d.kind == "freihand") {
    const bool has_eval = std::filesystem::exists(std::filesystem::path(d.dir) / "evaluation_xyz.json");
    return std::make_shared<FreiHandDataset>(d.dir, FreiHandOptions{has_eval ? "evaluation" : "training"});
  }
  if (d.kind == "do") return std::make_shared<DexterObjectDataset>(d.dir);
  LGH_FAIL("--data " << d.kind << ": not an evaluation source");
}

// The protocol a source is evaluated with by default.
inline lgh::eval::Protocol default_protocol(const DataSpec& d) {
  if (d.kind == "stb") return lgh::eval::Protocol::Stb;
  if (d.kind == "freihand") return lgh::eval::Protocol::FreiHand;
  if (d.kind == "do") return lgh::eval::Protocol::DexterObject;
  return lgh::eval::Protocol::Rhd;
}

}  // namespace lgh_cli
