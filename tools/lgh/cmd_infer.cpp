// lgh infer: 2D and 3D hands from images, with no ground truth (DESIGN.md §7).
// The work is lgh::eval::estimate_hand; this file parses the flags, finds the
// images and the shipped model, and writes the JSON and the overlays.
//
//   lgh infer [--weights W] --image IMG|DIR... [--bbox x,y,w,h] [--K fx,fy,cx,cy]
//             [--bone-mm L] [--root all-bones|reference-bone] --json OUT [--overlay DIR]
//             [--device cpu|cuda] [--threads N]
//
// Defaults: the model shipped in models/ (see models/README.md); the whole
// image as the hand's box; intrinsics with the principal point at the centre
// and a focal length of 1.2 x the longer side; a reference bone (middle
// finger MCP-PIP) of 42 mm. Every output is written only once all images
// have been processed, so an error leaves no output behind.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "lgh/data/image.hpp"
#include "lgh/eval/estimate.hpp"
#include "lgh/io/atomic_file.hpp"
#include "lgh/io/weights.hpp"

namespace lgh_cli {

namespace fs = std::filesystem;

namespace {

// The model shipped with the project, found in this order: $LGH_MODELS_DIR,
// <prefix>/share/lgh/models beside an installed binary, the source tree.
constexpr const char* kShippedModel = "lgh_small_synthetic.safetensors";

std::string shipped_model_path() {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("LGH_MODELS_DIR")) tried.push_back(fs::path(env) / kShippedModel);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) tried.push_back(exe.parent_path().parent_path() / "share" / "lgh" / "models" / kShippedModel);
#if defined(LGH_SOURCE_MODELS_DIR)
  tried.push_back(fs::path(LGH_SOURCE_MODELS_DIR) / kShippedModel);
#endif
  std::string list;
  for (const fs::path& p : tried) {
    if (fs::is_regular_file(p)) return p.string();
    list += (list.empty() ? "'" : ", '") + p.string() + "'";
  }
  LGH_FAIL("no --weights given and the shipped model '" << kShippedModel << "' was not found (looked at " << list
                                                        << "; set LGH_MODELS_DIR)");
}

struct InferArgs {
  std::string weights, bbox, K, json, overlay, root = "all-bones", device = "cpu";
  std::vector<std::string> images;
  double bone_mm = lgh::nn::kDefaultBoneLengthMm;
  int threads = 0;
};

bool parse_numbers(const std::string& s, size_t n, std::vector<double>* out) {
  std::vector<double> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const double x = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(x)) return false;
    v.push_back(x);
  }
  if (v.size() != n || (!s.empty() && s.back() == ',')) return false;
  if (out) *out = v;
  return true;
}

CLI::Validator numbers_validator(const std::string& flag, const std::string& form) {
  return CLI::Validator(
      [flag, form](std::string& s) -> std::string {
        std::vector<double> v;
        if (!parse_numbers(s, 4, &v)) return flag + " must be " + form + " (four numbers), got '" + s + "'";
        if (flag == "--bbox" && (v[2] <= 0 || v[3] <= 0))
          return "--bbox: width and height must be positive, got '" + s + "'";
        if (flag == "--K" && (v[0] <= 0 || v[1] <= 0)) return "--K: focal lengths must be positive, got '" + s + "'";
        return {};
      },
      form);
}

bool is_image_file(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp";
}

// Files as given, folders as their images in name order.
std::vector<std::string> list_images(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    if (fs::is_directory(in)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path().string());
      LGH_CHECK(!found.empty(), "--image '" << in << "': the folder holds no .png, .jpg, .jpeg or .bmp image");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      LGH_CHECK(fs::is_regular_file(in), "--image '" << in << "': no such file or folder");
      out.push_back(in);
    }
  }
  return out;
}

void run_infer(const InferArgs& a) {
  using namespace lgh;
  const Device device = Device::parse(a.device);
  require_device(device, "infer");
  apply_threads(a.threads);
  const std::vector<std::string> files = list_images(a.images);
  // Overlays are named after their image: two images with one name would overwrite each other.
  std::vector<std::string> overlay_paths;
  if (!a.overlay.empty()) {
    std::set<std::string> names;
    for (const std::string& f : files) {
      const std::string name = fs::path(f).stem().string() + ".png";
      LGH_CHECK(names.insert(name).second, "--overlay: two images would both be drawn to '" << name
                                                                                           << "' (rename one)");
      overlay_paths.push_back((fs::path(a.overlay) / name).string());
    }
  }
  { io::AtomicFile probe(a.json); }

  const std::string weights = a.weights.empty() ? shipped_model_path() : a.weights;
  io::SafetensorsReader weights_file(weights);
  nn::LearnableGroupsModel<float> model(io::read_config(weights_file));
  io::load_weights(model, weights_file);
  model.to(device);  // each crop is copied there, its prediction read back (eval::estimate_hand)

  eval::EstimateOptions o;
  std::vector<double> v;
  if (!a.bbox.empty() && parse_numbers(a.bbox, 4, &v)) o.box = eval::PixelBox{v[0], v[1], v[2], v[3]};
  if (!a.K.empty() && parse_numbers(a.K, 4, &v)) o.K = std::array<double, 4>{v[0], v[1], v[2], v[3]};
  o.bone_length_mm = a.bone_mm;
  o.root_method = a.root == "reference-bone" ? nn::RootMethod::ReferenceBone : nn::RootMethod::AllBones;

  nlohmann::json images = nlohmann::json::array();
  std::vector<data::Image> overlays;
  for (const std::string& f : files) {
    const data::Image img = data::read_image(f, 3);
    eval::HandEstimate e;
    try {
      e = eval::estimate_hand(model, img, o);
    } catch (const Error& err) {
      LGH_FAIL("'" << f << "': " << err.what());
    }
    images.push_back(eval::to_json(e, f));
    if (!a.overlay.empty()) overlays.push_back(eval::draw_estimate(img, e));
  }
  if (!a.overlay.empty()) {
    std::error_code ec;
    fs::create_directories(a.overlay, ec);
    LGH_CHECK(!ec && fs::is_directory(a.overlay), "--overlay: cannot create the folder '" << a.overlay << "'");
    for (size_t i = 0; i < overlays.size(); ++i) data::write_image(overlay_paths[i], overlays[i]);
  }
  const nlohmann::json out = {{"weights", weights},
                              {"root_method", a.root},
                              {"bone_mm", a.bone_mm},
                              {"images", images}};
  io::write_file_atomic(a.json, out.dump(2) + "\n");
  std::printf("infer: %zu image(s) with '%s' -> %s%s%s\n", files.size(), weights.c_str(), a.json.c_str(),
              a.overlay.empty() ? "" : ", overlays in ", a.overlay.c_str());
}

}  // namespace

void add_infer_command(CLI::App& app) {
  auto a = std::make_shared<InferArgs>();
  CLI::App* cmd = app.add_subcommand("infer", "Estimate 2D and 3D hands in images (no ground truth needed)");
  cmd->add_option("--weights", a->weights, "Model weights (default: the shipped small model, models/)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--image", a->images, "Image files (.png, .jpg, .bmp) or folders of them")->required()->expected(1, -1);
  cmd->add_option("--bbox", a->bbox,
                  "The hand's box x,y,w,h in pixels (squared and grown by 1.2, as the training crops; default: the "
                  "whole image, squared)")
      ->check(numbers_validator("--bbox", "x,y,w,h"));
  cmd->add_option("--K", a->K, "Intrinsics fx,fy,cx,cy in pixels (default: centre, focal 1.2 x the longer side)")
      ->check(numbers_validator("--K", "fx,fy,cx,cy"));
  cmd->add_option("--bone-mm", a->bone_mm,
                  "Length of the reference bone (middle finger MCP-PIP) in mm, which sets the hand's size and depth")
      ->check(CLI::Range(1.0, 1000.0))
      ->capture_default_str();
  cmd->add_option("--root", a->root,
                  "Root depth: all-bones (robust fit to every bone) or reference-bone (Iqbal et al.'s closed form)")
      ->check(CLI::IsMember({"all-bones", "reference-bone"}))
      ->capture_default_str();
  cmd->add_option("--json", a->json,
                  "Output: {images: [{file, width, height, bbox, intrinsics, uv_px, xyz_mm, root_depth_mm, groups}]}")
      ->required();
  cmd->add_option("--overlay", a->overlay, "Folder for each image with the skeleton drawn (<name>.png)");
  add_device_option(cmd, a->device);
  add_threads_option(cmd, a->threads);
  cmd->callback([a] { run_infer(*a); });
}

}  // namespace lgh_cli
