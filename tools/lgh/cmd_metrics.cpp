// lgh metrics: the figures of the published protocol from predictions and
// ground truth stored as safetensors (DESIGN.md §5, §7). The work is
// lgh::eval::compute_metrics.
//
//   lgh metrics --pred P --gt G --protocol rhd|stb|freihand|do --json OUT
//
// P and G hold `xyz` [N,J,3] in mm, optionally `uv` [N,J,2] (original-image
// pixels, in both for the 2D figures) and, in G, `vis` [N,J] (joints with 0
// do not count).
#include <cstdio>
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "commands.hpp"
#include "lgh/eval/metrics.hpp"
#include "lgh/io/atomic_file.hpp"

namespace lgh_cli {

namespace {

struct MetricsArgs {
  std::string pred, gt, protocol, json;
};

lgh::eval::PoseSet read_poses(const std::string& path, bool with_vis) {
  lgh::io::SafetensorsReader f(path);
  LGH_CHECK(f.contains("xyz"), "'" << path << "' has no tensor 'xyz' (expected float [N,J,3] in mm)");
  lgh::eval::PoseSet p;
  p.xyz = f.load<double>("xyz");
  LGH_CHECK(p.xyz.ndim() == 3 && p.xyz.size(2) == 3 && p.xyz.size(0) >= 1 && p.xyz.size(1) >= 1,
            "'" << path << "': tensor 'xyz' has shape " << p.xyz.shape().str() << ", expected [N,J,3]");
  if (f.contains("uv")) p.uv = f.load<double>("uv");
  if (with_vis && f.contains("vis")) p.vis = f.load<double>("vis");
  return p;
}

void run_metrics(const MetricsArgs& a) {
  using namespace lgh;
  { io::AtomicFile probe(a.json); }  // an unwritable --json fails before any work
  const eval::PoseSet pred = read_poses(a.pred, false), gt = read_poses(a.gt, true);
  LGH_CHECK(pred.xyz.shape() == gt.xyz.shape(), "'xyz' has shape " << pred.xyz.shape().str() << " in '" << a.pred
                                                                   << "' but " << gt.xyz.shape().str() << " in '"
                                                                   << a.gt << "'");
  const eval::Protocol protocol = eval::parse_protocol(a.protocol);
  eval::EvaluationMetrics m;
  try {
    m = eval::compute_metrics(pred, gt, protocol);
  } catch (const Error& e) {
    LGH_FAIL("'" << a.pred << "' against '" << a.gt << "': " << e.what());
  }
  io::write_file_atomic(a.json, m.to_json().dump(2) + "\n");
  std::printf("metrics (%s): %lld samples, EPE mean %.2f mm, median %.2f mm, AUC 0-50 %.3f, AUC 20-50 %.3f -> %s\n",
              eval::protocol_name(protocol), static_cast<long long>(m.samples), m.xyz.curve.epe_mean,
              m.xyz.curve.epe_median, m.xyz.curve.auc, m.xyz.auc_20_50, a.json.c_str());
}

}  // namespace

void add_metrics_command(CLI::App& app) {
  auto a = std::make_shared<MetricsArgs>();
  CLI::App* cmd = app.add_subcommand("metrics", "Compute the published metrics from predictions and ground truth");
  cmd->add_option("--pred", a->pred, "Predictions (safetensors): xyz [N,J,3] mm, optional uv [N,J,2] px")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--gt", a->gt, "Ground truth (safetensors): xyz [N,J,3] mm, optional uv [N,J,2] px and vis [N,J]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--protocol", a->protocol,
                  "rhd or stb (EPE, PCK and AUC on 0-50 mm), freihand (also after Procrustes alignment, 100 "
                  "thresholds) or do (5 fingertips after the best root and scale)")
      ->required()
      ->check(CLI::IsMember({"rhd", "stb", "freihand", "do"}));
  cmd->add_option("--json", a->json,
                  "Output: epe_mean_mm, epe_median_mm, auc_0_50, auc_20_50 (the reference's last 12 of 20 "
                  "thresholds), auc_20_50_exact, thresholds_mm, pck, uv (2D), aligned (freihand)")
      ->required();
  cmd->callback([a] { run_metrics(*a); });
}

}  // namespace lgh_cli
