// Training the model on data of your own, through the library: a Dataset
// that reads your files, the trainer (both stages of the paper, checkpoints,
// held-out evaluation), then the published metrics on your held-out images.
//
// The data format here is a simple one you might have: a folder of images and
// labels.json, a list of
//   {"image": "hand_0000.png", "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
//    "xyz_mm": [[x, y, z] x 21], "left": false}
// with the joints in camera space (mm) in the canonical order of
// lgh/data/hand.hpp (RHD's: wrist, then each finger tip -> MCP). Anything
// else works the same way: implement size(), get() and name().
//
//   train_your_data --data DIR --out RUN [--steps N] [--batch B] [--threads N]
//   train_your_data --make-example-data N --data DIR ...   (writes N synthetic hands as DIR first)
#include <lgh/lgh.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

using namespace lgh;

namespace {

// Your data set: one HandSample per entry of labels.json.
class FolderHands : public data::Dataset {
 public:
  explicit FolderHands(std::string dir) : dir_(std::move(dir)) {
    std::ifstream in(dir_ + "/labels.json");
    LGH_CHECK(in.good(), "cannot read '" << dir_ << "/labels.json'");
    in >> labels_;
    LGH_CHECK(labels_.is_array() && !labels_.empty(), "'" << dir_ << "/labels.json' is not a non-empty list");
  }

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  std::string name() const override { return "folder:" + dir_; }

  // Called from the loader's worker threads: only reads shared state.
  data::HandSample get(int64_t index) const override {
    const nlohmann::json& e = labels_.at(static_cast<size_t>(index));
    data::HandSample s;
    s.id = dir_ + "/" + e.at("image").get<std::string>();
    s.rgb = data::read_image(s.id, 3);
    const auto K = e.at("K");
    s.K = {K[0][0].get<double>(), K[1][1].get<double>(), K[0][2].get<double>(), K[1][2].get<double>()};
    for (int j = 0; j < data::kNumJoints; ++j) {
      for (int c = 0; c < 3; ++c) s.xyz[j][c] = e.at("xyz_mm")[j][c].get<double>();
      s.uv[j] = data::project(s.K, s.xyz[j]);  // 2D labels: the projection of the 3D ones
      s.visible[j] = true;
    }
    s.is_left = e.value("left", false);  // left hands are mirrored to right ones by the crop
    return s;
  }

 private:
  std::string dir_;
  nlohmann::json labels_;
};

// Writes `count` synthetic hands in the format above (so that this example
// runs anywhere).
void make_example_data(const std::string& dir, int64_t count) {
  std::filesystem::create_directories(dir);
  data::SyntheticConfig sc;
  sc.image_size = 160;
  sc.seed = 42;
  sc.count = count;
  const data::SyntheticHands hands(sc);
  nlohmann::json labels = nlohmann::json::array();
  for (int64_t i = 0; i < count; ++i) {
    const data::HandSample s = hands.get(i);
    char name[32];
    std::snprintf(name, sizeof name, "hand_%04lld.png", static_cast<long long>(i));
    data::write_image(dir + "/" + name, s.rgb);
    nlohmann::json xyz = nlohmann::json::array();
    for (const auto& p : s.xyz) xyz.push_back({p[0], p[1], p[2]});
    labels.push_back({{"image", name},
                      {"K", {{s.K.fx, 0, s.K.cx}, {0, s.K.fy, s.K.cy}, {0, 0, 1}}},
                      {"xyz_mm", xyz},
                      {"left", false}});
  }
  io::write_file_atomic(dir + "/labels.json", labels.dump(1) + "\n");
  std::printf("wrote %lld example hands to %s\n", static_cast<long long>(count), dir.c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  std::string data_dir, out;
  int64_t steps = 200, batch = 8, make = 0;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--data") data_dir = argv[++i];
    else if (i + 1 < argc && flag == "--out") out = argv[++i];
    else if (i + 1 < argc && flag == "--steps") steps = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--batch") batch = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--threads") threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && flag == "--make-example-data") make = std::atoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: train_your_data [--make-example-data N] --data DIR --out RUN [--steps N] [--batch B] [--threads N]\n");
      return flag == "--help" || flag == "-h" ? 0 : 2;
    }
  }
  if (data_dir.empty() || out.empty() || steps < 1 || batch < 1) {
    std::fprintf(stderr, "error: --data and --out are needed, --steps and --batch must be positive\n");
    return 2;
  }
  if (threads > 0) set_num_threads(threads);
  if (make > 0) make_example_data(data_dir, make);

  // Your data, split into training and held-out parts (the last 20%).
  const auto all = std::make_shared<FolderHands>(data_dir);
  const int64_t held = std::max<int64_t>(1, all->size() / 5);
  const auto train_part = std::make_shared<eval::IndexWindow>(all, 0, all->size() - held);
  const auto heldout = std::make_shared<eval::IndexWindow>(all, all->size() - held, held);

  // The paper's two stages, the `small` model; checkpoints and logs in `out`.
  train::TrainOptions o;
  o.out_dir = out;
  o.steps = steps;
  o.batch = batch;
  o.plan = train::StagePlan::Both;
  o.eval_every = std::max<int64_t>(1, steps / 2);
  o.eval_samples = held;
  o.checkpoint_every = std::max<int64_t>(1, steps / 4);
  o.log_every = std::max<int64_t>(1, steps / 10);
  o.resume = std::filesystem::exists(out + "/" + train::Trainer::kStateFile);  // run it again to continue
  o.on_log = [](const train::LogRow& r) {
    std::printf("step %lld/%lld (%s): loss %.4f, %.1f images/s\n", static_cast<long long>(r.step),
                static_cast<long long>(r.steps), train::stage_name(r.stage), r.loss, r.images_per_s);
  };
  o.on_eval = [](const train::HeldOutRecord& r) {
    std::printf("held-out at step %lld: EPE %.1f mm, 2D %.1f px\n", static_cast<long long>(r.step), r.epe_mm, r.epe_2d_px);
  };
  train::Trainer trainer(nn::ModelConfig::small(), train_part, heldout, o);
  trainer.run();

  // The published metrics on the held-out part, with the final weights.
  auto model = io::load_model<float>(trainer.path(train::Trainer::kLastFile));
  const eval::EvalResult r = eval::evaluate(*model, heldout);
  std::printf("held-out (%lld hands): EPE mean %.1f mm, median %.1f mm, AUC 20-50 %.3f; 2D %.1f px\n",
              static_cast<long long>(r.metrics.samples), r.metrics.xyz.curve.epe_mean, r.metrics.xyz.curve.epe_median,
              r.metrics.xyz.auc_20_50, r.metrics.uv.epe_mean);
  std::printf("weights: %s\n", trainer.path(train::Trainer::kLastFile).c_str());
  return 0;
} catch (const lgh::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
