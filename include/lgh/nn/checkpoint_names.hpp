// The one place where the reference model's checkpoint key names are chosen.
// Code uses the paper's names (JointGroupSelector, GroupFusion, ...); these
// are the PyTorch state-dict names of the authors' release, kept so that a
// checkpoint of their code converts to ours by a plain dump.
#pragma once

#include <string>

namespace lgh {
namespace nn {
namespace names {

inline const std::string kBackbone = "backbone";            // stem, hourglass and 2D head
inline const std::string kStemConv = "conv1_";
inline const std::string kStemBn = "bn1";
inline const std::string kStemResiduals[3] = {"r1", "r4", "r5"};
inline const std::string kHourglass = "hourglass.0";        // the single stage
inline const std::string kHourglassUp = "up1_";
inline const std::string kHourglassLow1 = "low1_";
inline const std::string kHourglassInner = "low2";          // nested level
inline const std::string kHourglassBottom = "low2_";        // modules of the innermost level
inline const std::string kHourglassLow3 = "low3_";
inline const std::string kHeadResiduals = "Residual";
inline const std::string kFeatureConv = "lin_.0.0";         // features T = ReLU(BN(conv))
inline const std::string kFeatureBn = "lin_.0.1";
inline const std::string kHeatmapConv = "tmpOut.0";          // H0
inline const std::string kNeck = "backbone_conv";           // concat[H0, T] -> Res2D -> Res2D

inline const std::string kSelector = "meta_S";               // θ of Eq. (8)
inline const std::string kFusion = "nddr_layer0.Conv_Task_List";  // Eq. (9)

// Per-group layers: key "<name>.<k>".
inline const std::string kBranchConv0 = "b_conv0";
inline const std::string kBranchConv1 = "b_conv1";
inline const std::string kBranchDown1 = "b_down1";
inline const std::string kBranchDown2 = "b_down2";
inline const std::string kBranchUp2 = "b_up2";
inline const std::string kBranchUp1 = "b_up1";
inline const std::string kBranchUp0 = "b_up0";
inline const std::string kHeatmapHead = "b_htmaps_conv";
inline const std::string kDepthHead = "b_depth_conv";
inline const std::string kSoftArgmax = "b_get_uv";

inline std::string group_key(const std::string& name, int k) { return name + "." + std::to_string(k); }

}  // namespace names
}  // namespace nn
}  // namespace lgh
