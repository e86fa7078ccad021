// Running the model on an image: the path a program of yours follows to get
// a 3D hand in millimetres from a photo, with no ground truth.
//
//   estimate_pose --weights W [--image IMG] [--bbox x,y,w,h] [--out overlay.png]
//
// eval::estimate_hand crops the hand's box (here the whole image unless
// --bbox is given), runs the model (eval mode, hard selector), maps the 2D
// joints back to the image, recovers the root depth from the 2D joints, the
// relative depths and an assumed bone length (the fit to every bone of the
// hand, nn::recover_root_depth_all_bones), and back-projects every joint with
// the intrinsics (default: principal point at the centre, focal length 1.2 x
// the longer side). Without --image, a synthetic hand is used, so the ground
// truth can be printed beside the estimate. The shipped model is
// models/lgh_small_synthetic.safetensors.
#include <lgh/lgh.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace lgh;

int main(int argc, char** argv) try {
  std::string weights, image_path, out = "estimate_pose.png";
  eval::EstimateOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--weights") weights = argv[++i];
    else if (i + 1 < argc && flag == "--image") image_path = argv[++i];
    else if (i + 1 < argc && flag == "--out") out = argv[++i];
    else if (i + 1 < argc && flag == "--bbox") {
      eval::PixelBox b;
      if (std::sscanf(argv[++i], "%lf,%lf,%lf,%lf", &b.x, &b.y, &b.w, &b.h) != 4) {
        std::fprintf(stderr, "error: --bbox needs x,y,w,h\n");
        return 2;
      }
      options.box = b;
    } else {
      std::fprintf(stderr, "usage: estimate_pose --weights W [--image IMG] [--bbox x,y,w,h] [--out overlay.png]\n");
      return flag == "--help" || flag == "-h" ? 0 : 2;
    }
  }
  if (weights.empty()) {
    std::fprintf(stderr, "error: --weights is needed (e.g. models/lgh_small_synthetic.safetensors)\n");
    return 2;
  }

  // The model: its config comes from the file's metadata (or its shapes).
  auto model = io::load_model<float>(weights);

  // The image: yours, or a synthetic hand with known joints and camera.
  data::Image image;
  data::HandSample truth;
  if (!image_path.empty()) {
    image = data::read_image(image_path, 3);
  } else {
    data::SyntheticConfig sc;
    sc.image_size = 224;
    sc.seed = 7;
    truth = data::SyntheticHands(sc).get(3);
    image = truth.rgb;
    options.K = std::array<double, 4>{truth.K.fx, truth.K.fy, truth.K.cx, truth.K.cy};
    std::printf("no --image: synthetic hand 3 (seed 7), with its camera\n");
  }

  const eval::HandEstimate e = eval::estimate_hand(*model, image, options);
  std::printf("root depth %.0f mm; intrinsics %.1f %.1f %.1f %.1f\n", e.root_depth_mm, e.K[0], e.K[1], e.K[2], e.K[3]);
  std::printf("%-12s %18s %26s\n", "joint", "uv (px)", "xyz (mm)");
  for (int j = 0; j < data::kNumJoints; ++j)
    std::printf("%-12s %8.1f %8.1f   %8.1f %8.1f %8.1f   group %d\n", data::joint_name(j), e.uv_px[j][0], e.uv_px[j][1],
                e.xyz_mm[j][0], e.xyz_mm[j][1], e.xyz_mm[j][2], e.groups[j] + 1);
  if (image_path.empty()) {
    // Against the ground truth: 2D in pixels, 3D in mm (absolute, and relative
    // to the root, which does not depend on the recovered depth).
    double e2 = 0, e3 = 0, rel = 0;
    const int r = data::kRootJoint;
    for (int j = 0; j < data::kNumJoints; ++j) {
      e2 += std::hypot(e.uv_px[j][0] - truth.uv[j][0], e.uv_px[j][1] - truth.uv[j][1]) / data::kNumJoints;
      double d = 0, dr = 0;
      for (int c = 0; c < 3; ++c) {
        d += std::pow(e.xyz_mm[j][c] - truth.xyz[j][c], 2);
        dr += std::pow((e.xyz_mm[j][c] - e.xyz_mm[r][c]) - (truth.xyz[j][c] - truth.xyz[r][c]), 2);
      }
      e3 += std::sqrt(d) / data::kNumJoints;
      rel += std::sqrt(dr) / data::kNumJoints;
    }
    std::printf("against the truth: 2D %.1f px, 3D %.1f mm (root depth off by %.0f mm), root-relative 3D %.1f mm\n", e2,
                e3, e.root_depth_mm - truth.xyz[r][2], rel);
  }
  data::write_image(out, eval::draw_estimate(image, e));
  std::printf("wrote %s\n", out.c_str());
  return 0;
} catch (const lgh::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
