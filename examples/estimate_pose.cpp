// From one image to a 3D hand in millimetres, the inference path a user's
// program follows: crop the hand, run the model, lift the 2D joints and
// relative depths to camera space.
//
//   estimate_pose [--weights W] [--index N] [--out overlay.png]
//
// The image is synthetic hand number N (so the ground truth is known and
// printed beside the estimate). Without --weights the `small` model runs with
// its random initial weights, which shows the plumbing, not accuracy; pass the
// weights.safetensors that train_synthetic or `lgh train` wrote.
//
// No ground truth is used for the 3D lift: the root depth comes from the
// closed form of Iqbal et al. (2018) given the predicted 2D joints, their
// relative depths and one known bone length (nn::recover_root_depth), then
// Eq. (3) back-projects every joint with the crop's intrinsics.
#include <lgh/lgh.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace lgh;

int main(int argc, char** argv) try {
  std::string weights, out = "estimate_pose.png";
  int64_t index = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--weights") weights = argv[++i];
    else if (i + 1 < argc && flag == "--index") index = std::atoll(argv[++i]);
    else if (i + 1 < argc && flag == "--out") out = argv[++i];
    else {
      std::fprintf(stderr, "usage: estimate_pose [--weights W] [--index N] [--out overlay.png]\n");
      return flag == "--help" || flag == "-h" ? 0 : 2;
    }
  }

  // The model: config from the file's metadata (or inferred from its shapes).
  nn::ModelConfig config = nn::ModelConfig::small();
  std::unique_ptr<nn::LearnableGroupsModel<float>> model;
  if (!weights.empty()) {
    io::SafetensorsReader file(weights);
    config = io::read_config(file);
    model = std::make_unique<nn::LearnableGroupsModel<float>>(config);
    io::load_weights(*model, file);
  } else {
    std::printf("no --weights: the small model with random initial weights\n");
    model = std::make_unique<nn::LearnableGroupsModel<float>>(config);
  }
  model->eval();  // BN running statistics, hard selector

  // The image and its camera; here a synthetic hand, any HandSample will do.
  data::SyntheticConfig sc;
  sc.seed = 7;
  const data::HandSample sample = data::SyntheticHands(sc).get(index);

  // The crop (DESIGN.md §2): a square box with a 1.2x margin, resized to S.
  // Its intrinsics K' are the original camera seen through the crop.
  data::CropOptions crop_options;
  crop_options.size = static_cast<int>(config.input_size);
  const data::CropSample crop = data::crop_hand(sample, crop_options);
  const int64_t S = config.input_size;
  const TensorF image = TensorF::from_data({1, 3, S, S}, crop.image);

  // The network: uvd[j] = (u, v) in crop pixels and d, the depth relative to
  // the root joint in units of the reference bone s0.
  nn::ModelOutput<float> pred;
  {
    autograd::NoGradGuard no_grad;
    pred = model->forward(image);
  }
  double uvd[data::kNumJoints][3];
  for (int j = 0; j < data::kNumJoints; ++j)
    for (int c = 0; c < 3; ++c) uvd[j][c] = pred.uvd.at({0, j, c});

  // The 3D lift with one assumed bone length (s0 = 42 mm, an adult's middle
  // finger proximal phalanx); no ground truth enters.
  const std::array<double, 4> K = {crop.K.fx, crop.K.fy, crop.K.cx, crop.K.cy};
  const double s0 = nn::kDefaultBoneLengthMm;
  const nn::RootRecovery root = nn::recover_root_depth(uvd, K, s0);
  double xyz[data::kNumJoints][3];
  nn::backproject_hand(uvd, K, root.z_root, s0, data::kNumJoints, xyz);

  std::printf("root depth %.1f mm (ground truth %.1f mm)%s\n", root.z_root, crop.z_root,
              root.exact ? "" : " [closest fit: the predicted bone cannot reach its length]");
  std::printf("%-12s %28s %28s %9s\n", "joint", "estimate xyz (mm)", "ground truth xyz (mm)", "error");
  double mean_error = 0;
  for (int j = 0; j < data::kNumJoints; ++j) {
    const double e = std::sqrt(std::pow(xyz[j][0] - crop.xyz[j][0], 2) + std::pow(xyz[j][1] - crop.xyz[j][1], 2) +
                               std::pow(xyz[j][2] - crop.xyz[j][2], 2));
    mean_error += e / data::kNumJoints;
    std::printf("%-12s %8.1f %8.1f %8.1f   %8.1f %8.1f %8.1f %7.1f mm\n", data::joint_name(j), xyz[j][0], xyz[j][1],
                xyz[j][2], crop.xyz[j][0], crop.xyz[j][1], crop.xyz[j][2], e);
  }
  // Two more views of the same estimate: root-relative (the hand's shape,
  // whatever its distance), and with the ground-truth root depth and s0 (the
  // RHD/STB evaluation protocol). A 2D error on the reference bone moves the
  // recovered root far along the ray, so a weakly trained model is off by
  // metres there while its root-relative shape is much closer.
  double protocol[data::kNumJoints][3];
  nn::backproject_hand(uvd, K, crop.z_root, crop.s0, data::kNumJoints, protocol);
  const int r = data::kRootJoint;
  double relative_error = 0, protocol_error = 0;
  for (int j = 0; j < data::kNumJoints; ++j) {
    double rel = 0, pro = 0;
    for (int c = 0; c < 3; ++c) {
      rel += std::pow((xyz[j][c] - xyz[r][c]) - (crop.xyz[j][c] - crop.xyz[r][c]), 2);
      pro += std::pow(protocol[j][c] - crop.xyz[j][c], 2);
    }
    relative_error += std::sqrt(rel) / data::kNumJoints;
    protocol_error += std::sqrt(pro) / data::kNumJoints;
  }
  std::printf("mean joint error: %.1f mm with the recovered root, %.1f mm root-relative, %.1f mm with the "
              "ground-truth root and s0\n",
              mean_error, relative_error, protocol_error);
  std::printf("learned groups (group of each joint):");
  for (int g : model->selector->assignment()) std::printf(" %d", g);
  std::printf("\n");

  // The estimate drawn over the crop, the ground truth faint beneath it.
  data::Image overlay = data::image_from_chw(crop.image.data(), crop.size, crop.size);
  std::array<std::array<double, 2>, data::kNumJoints> uv{};
  for (int j = 0; j < data::kNumJoints; ++j) uv[j] = {uvd[j][0], uvd[j][1]};
  std::array<bool, data::kNumJoints> shown{};
  shown.fill(true);
  data::SkeletonStyle faint;
  faint.show_hidden = false;
  faint.line_width = 1;
  faint.joint_radius = 1;
  data::draw_skeleton(overlay, crop.uv, std::array<bool, data::kNumJoints>{}, faint);
  data::draw_skeleton(overlay, uv, shown);
  data::write_image(out, overlay);
  std::printf("wrote %s\n", out.c_str());
  return 0;
} catch (const lgh::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
