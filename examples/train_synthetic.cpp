// Trains the `small` model on the built-in synthetic hands with the paper's
// two stages, shortened to a few minutes, then evaluates it on a held-out
// synthetic stream and draws what it learned. A readable end-to-end use of
// the library: data, model, losses, optimiser, weights, metrics and pictures.
//
//   stage 1: the backbone alone learns 2D joints (ℓ1 on the soft-argmax of
//            its heatmaps H0), Adam lr 1e-3;
//   stage 2: everything, with the loss of Eq. (10) and the Gumbel-softmax
//            selector, Adam with one group each for θ (1e-1), the fusion
//            layers (1e-2) and the rest (1e-4).
//
//   train_synthetic [--stage1-steps N] [--steps N] [--batch B] [--out DIR] [--threads N] [--seed N]
//
// Writes DIR/weights.safetensors, DIR/predictions.png (the backbone's 2D
// skeletons over held-out crops, ground truth faint) and DIR/groups.png (the hand
// skeleton coloured by the joint group each joint was assigned to).
#include <lgh/lgh.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

using namespace lgh;

namespace {

struct Args {
  int stage1_steps = 300;
  int steps = 150;
  int batch = 8;
  int threads = 0;
  uint64_t seed = 1;
  std::string out = "train_synthetic_out";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", flag.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--steps") a.steps = std::atoi(value().c_str());
    else if (flag == "--stage1-steps") a.stage1_steps = std::atoi(value().c_str());
    else if (flag == "--batch") a.batch = std::atoi(value().c_str());
    else if (flag == "--threads") a.threads = std::atoi(value().c_str());
    else if (flag == "--seed") a.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (flag == "--out") a.out = value();
    else {
      std::fprintf(stderr,
                   "usage: train_synthetic [--stage1-steps N] [--steps N] [--batch B] [--out DIR] [--threads N] [--seed N]\n");
      std::exit(flag == "--help" || flag == "-h" ? 0 : 2);
    }
  }
  if (a.steps < 1 || a.batch < 1 || a.stage1_steps < 0) {
    std::fprintf(stderr, "error: --steps and --batch must be positive, --stage1-steps not negative\n");
    std::exit(2);
  }
  return a;
}

// A synthetic stream seen through the training crop and augmentation.
std::unique_ptr<data::Loader> make_loader(uint64_t seed, int64_t batch, int size, bool augment) {
  data::SyntheticConfig sc;
  sc.image_size = 160;  // a little larger than the crop, so augmentation has room
  sc.seed = seed;
  sc.count = 1 << 20;
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.num_workers = 1;
  lo.seed = seed;
  lo.augment = augment;
  lo.crop.size = size;
  return std::make_unique<data::Loader>(std::make_shared<data::SyntheticHands>(sc), lo);
}

// Crop b of a batch as an 8-bit image, for drawing.
data::Image to_image(const TensorF& images, int64_t b) {
  const TensorF crop = images.narrow(0, b, b + 1).contiguous();
  return data::image_from_chw(crop.data(), static_cast<int>(images.size(3)), static_cast<int>(images.size(2)));
}

std::array<std::array<double, 2>, data::kNumJoints> joints_2d(const TensorF& uv, int64_t b) {
  std::array<std::array<double, 2>, data::kNumJoints> out{};
  for (int j = 0; j < data::kNumJoints; ++j) out[j] = {uv.at({b, j, 0}), uv.at({b, j, 1})};
  return out;
}

// Prints the mean loss of the last `every` steps with throughput and ETA.
class Progress {
 public:
  Progress(const char* stage, int steps, int batch) : stage_(stage), steps_(steps), batch_(batch) {}
  void add(int step, double loss, double tau = -1) {
    window_ += loss;
    ++count_;
    if ((step + 1) % 10 != 0 && step + 1 != steps_) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    last = window_ / count_;
    if (first < 0) first = last;
    std::printf("%s step %4d/%d  loss %.4f", stage_, step + 1, steps_, last);
    if (tau > 0) std::printf("  tau %.2f", tau);
    std::printf("  %.1f images/s  ETA %.0f s\n", (step + 1) * batch_ / elapsed, elapsed / (step + 1) * (steps_ - step - 1));
    std::fflush(stdout);
    window_ = 0;
    count_ = 0;
  }
  double first = -1, last = 0;

 private:
  const char* stage_;
  int steps_, batch_;
  double window_ = 0;
  int count_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  if (args.threads > 0) set_num_threads(args.threads);
  std::filesystem::create_directories(args.out);

  const nn::ModelConfig config = nn::ModelConfig::small();
  nn::LearnableGroupsModel<float> model(config, args.seed);
  nn::flatten(model);  // parameters and gradients in flat buffers, grouped for Adam
  std::printf("the small model (%lld parameters) on synthetic hands: %d + %d steps of %d crops, %d threads\n",
              static_cast<long long>(model.num_parameters()), args.stage1_steps, args.steps, args.batch, num_threads());
  auto train = make_loader(args.seed, args.batch, static_cast<int>(config.input_size), true);
  model.train();

  // Stage 1: 2D on the backbone's heatmaps.
  {
    std::vector<optim::ParamGroup<float>> groups(1);
    groups[0] = {"backbone", model.backbone->trainable_parameters(), 1e-3};
    optim::Adam<float> adam(groups);
    Progress progress("stage 1 (2D)", args.stage1_steps, args.batch);
    for (int step = 0; step < args.stage1_steps; ++step) {
      data::Batch batch;
      train->next(batch);
      model.zero_grad();
      const TensorF uv = nn::heatmap_keypoints(model.backbone->forward(batch.image).heatmaps);
      const TensorF loss = ops::l1_loss(uv, batch.uv);  // mean |error| in crop pixels
      loss.backward();
      adam.step();
      progress.add(step, loss.item());
    }
  }

  // Stage 2: Eq. (10) on everything, at the paper's learning rates; 1e-4 for
  // the rest keeps the pretrained backbone from being disturbed (at 1e-3 its
  // held-out 2D error rose within 30 steps).
  std::vector<optim::ParamGroup<float>> groups(3);
  groups[0] = {"backbone", model.parameters(nn::ParamGroup::Backbone), 1e-4};
  groups[1] = {"selector", model.parameters(nn::ParamGroup::Selector), 1e-1};
  groups[2] = {"fusion", model.parameters(nn::ParamGroup::Fusion), 1e-2};
  optim::Adam<float> adam(groups);
  const optim::TemperatureSchedule tau;  // 5, -0.1 every 1,000 steps (Eq. 8)
  Progress progress("stage 2 (3D)", args.steps, args.batch);
  for (int step = 0; step < args.steps; ++step) {
    data::Batch batch;
    train->next(batch);
    nn::SelectorOptions sel;
    sel.mode = nn::SelectorMode::Sample;
    sel.temperature = tau.value(step);
    sel.noise = Philox(args.seed, static_cast<uint64_t>(step));  // one noise stream per step
    model.zero_grad();
    const auto out = model.forward(batch.image, sel);
    const auto loss = nn::pose_loss(out.uvd, batch.K, batch.z_root, batch.s0, batch.xyz);
    loss.total.backward();
    adam.step();
    progress.add(step, loss.total.item(), sel.temperature);
  }

  io::save_weights(model, args.out + "/weights.safetensors", {{"lgh.tau", std::to_string(tau.value(args.steps))}});

  // Held-out evaluation: a synthetic stream with another seed, plain crops,
  // eval-mode BN, hard selector; 3D with the ground-truth s0 and z_root
  // (the RHD/STB protocol).
  model.eval();
  auto test = make_loader(args.seed + 1000003, 8, static_cast<int>(config.input_size), false);
  double err2d = 0, err3d = 0, err_backbone = 0;
  int64_t n = 0;
  std::vector<data::Image> tiles;
  for (int i = 0; i < 4; ++i) {
    data::Batch batch;
    test->next(batch);
    autograd::NoGradGuard no_grad;
    const auto out = model.forward(batch.image);
    const TensorF uv = out.uv().contiguous();
    const TensorF uv_backbone = nn::heatmap_keypoints(out.heatmaps);  // what stage 1 trained
    const TensorF xyz = ops::backproject(out.uvd, batch.K, batch.z_root, batch.s0);
    for (int64_t b = 0; b < batch.size(); ++b) {
      for (int j = 0; j < data::kNumJoints; ++j) {
        err2d += std::hypot(uv.at({b, j, 0}) - batch.uv.at({b, j, 0}), uv.at({b, j, 1}) - batch.uv.at({b, j, 1}));
        err_backbone += std::hypot(uv_backbone.at({b, j, 0}) - batch.uv.at({b, j, 0}),
                                   uv_backbone.at({b, j, 1}) - batch.uv.at({b, j, 1}));
        double d2 = 0;
        for (int c = 0; c < 3; ++c) d2 += std::pow(xyz.at({b, j, c}) - batch.xyz.at({b, j, c}), 2);
        err3d += std::sqrt(d2);
        ++n;
      }
      if (i == 0) {
        data::Image img = to_image(batch.image, b);
        std::array<bool, data::kNumJoints> all{};
        all.fill(true);
        data::SkeletonStyle faint;
        faint.show_hidden = false;
        faint.line_width = 1;
        faint.joint_radius = 1;
        data::draw_skeleton(img, joints_2d(batch.uv, b), std::array<bool, data::kNumJoints>{}, faint);  // ground truth: faint
        data::draw_skeleton(img, joints_2d(uv_backbone, b), all);  // the backbone's prediction (stage 1)
        tiles.push_back(img);
      }
    }
  }
  std::printf("held-out synthetic crops (%lld px): backbone 2D error %.2f px; full model 2D error %.2f px, "
              "3D error %.1f mm (ground-truth s0 and root)\n",
              static_cast<long long>(config.input_size), err_backbone / n, err2d / n, err3d / n);
  std::printf("stage 2 loss went from %.4f (first 10 steps) to %.4f (last 10)\n", progress.first, progress.last);
  data::write_image(args.out + "/predictions.png", data::tile_images(tiles, 4));

  // The learned joint groups: each joint drawn in the colour of its group on
  // a reference pose (the first held-out hand).
  const std::vector<int> group = model.selector->assignment();
  const data::Rgb palette[] = {{230, 80, 60}, {60, 160, 230}, {90, 200, 90}, {230, 200, 60}, {180, 90, 220}};
  data::Image canvas(256, 256, 3, 255);
  data::Batch ref;
  make_loader(args.seed + 1000003, 1, 256, false)->next(ref);
  const auto pose = joints_2d(ref.uv, 0);
  for (int j = 1; j < data::kNumJoints; ++j) {
    const int p = data::kParent[j];
    data::draw_line(canvas, pose[p][0], pose[p][1], pose[j][0], pose[j][1], data::Rgb{120, 120, 120}, 2);
  }
  std::printf("learned groups (joint: group):");
  for (int j = 0; j < data::kNumJoints; ++j) {
    data::draw_disc(canvas, pose[j][0], pose[j][1], 6, palette[group[j] % 5]);
    std::printf(" %s:%d", data::joint_name(j), group[j]);
  }
  std::printf("\n");
  data::write_image(args.out + "/groups.png", canvas);
  std::printf("wrote %s/weights.safetensors, %s/predictions.png, %s/groups.png\n", args.out.c_str(), args.out.c_str(),
              args.out.c_str());
  return 0;
} catch (const lgh::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
