#!/usr/bin/env python3
"""PyTorch statement of the learnable-joint-groups hand pose model.

This is the model the C++ `lgh::nn` model is tested against (DESIGN §2). The
module attributes are named after the authors' checkpoint keys, so that
`state_dict()` of the `paper` config has exactly the names, shapes and order
of shared/reference/state_dict_keys.tsv. The checkpoint names map to the
paper's terms as follows:

    backbone           shared feature extraction (stem, hourglass, head: T, H0)
    backbone_conv      neck: concat[H0, T] -> Res2D -> Res2D
    meta_S.weight      selector logits theta [J, K]                  (Eq. 8)
    b_conv0 .. b_up0   the K group branches (features F_k)
    nddr_layer0        feature fusion across groups                  (Eq. 9)
    b_htmaps_conv      per-group heatmap head
    b_depth_conv       per-group relative depth-map head
    b_get_uv           per-group soft-argmax (beta, coordinate grids)

Conventions fixed here (the C++ side must match them):
  * Residual skip: conv4 (or identity) is applied to the block's raw input x,
    not to relu(bn(x)).
  * Group branch: b0 = b_conv0(x), b1 = b_conv1(b0) (b1 reads b0, as the
    authors' nets/Net.py), b2 = b_down1(b1), b3 = b_down2(b2).
  * Concat orders: neck [H0, T]; b_up1 input [Up(b3), b2]; b_up0 input
    [b21, b1, b0]; fusion input [F_1, ..., F_K] in group order.
  * Soft-argmax coordinates: u = column index, v = row index, 0-based at 1/4
    of the input resolution; the output is scaled by exactly 4.
  * Hard selection breaks ties toward the lowest group index.

Usage:
    cfg = named_config("paper")
    model = LearnableGroupsHandModel(cfg)
    uv, depth, selector = model(images, selector="hard")
    loss = eq10_loss(uv, depth, xyz, intrinsics, z_root, s0)
"""
import dataclasses
import json

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class Config:
    S: int = 256                 # input crop size, a multiple of 64
    F: int = 256                 # backbone feature channels
    P0: int = 32                 # neck output / group-branch input channels
    P1: int = 32                 # group feature channels
    K: int = 3                   # number of joint groups
    fusion: bool = True          # Eq. (9) fusion; only meaningful for K > 1
    hourglass_depth: int = 4
    hourglass_modules: int = 2   # residual modules per hourglass level
    J: int = 21

    def __post_init__(self):
        if self.S <= 0 or self.S % 64 != 0:
            raise ValueError(f"S must be a positive multiple of 64, got {self.S}")
        if self.F < 2 or self.F % 2 != 0:
            raise ValueError(f"F must be even and >= 2 (bottleneck halves it), got {self.F}")
        for name in ("P0", "P1", "K", "hourglass_depth", "hourglass_modules", "J"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if (self.S // 4) % (2 ** self.hourglass_depth) != 0:
            raise ValueError(f"S/4 = {self.S // 4} is not divisible by 2^hourglass_depth")

    @property
    def uses_fusion(self):
        # Fusion mixes groups; with one group there is nothing to mix.
        return self.fusion and self.K > 1

    def to_json(self):
        d = dataclasses.asdict(self)
        d["fusion"] = self.uses_fusion
        return json.dumps(d, sort_keys=True)


NAMED_CONFIGS = {
    "paper": Config(S=256, F=256, P0=32, P1=32, K=3, fusion=True, hourglass_depth=4, hourglass_modules=2),
    "small": Config(S=128, F=64, P0=32, P1=32, K=3, fusion=True, hourglass_depth=4, hourglass_modules=2),
}
# Parameter counts (nn.Parameters, the frozen coordinate grids included),
# as the authors count them.
NAMED_PARAMETER_COUNTS = {"paper": 7_502_833, "small": 1_342_513}


def named_config(name):
    return NAMED_CONFIGS[name]


# ---- backbone: stacked-hourglass building blocks ---------------------------------------
class Residual(nn.Module):
    """Pre-activation bottleneck: BN, ReLU, 1x1 in->out/2, BN, ReLU,
    3x3 out/2->out/2, BN, ReLU, 1x1 out/2->out, plus a skip (1x1 conv4 on the
    raw input when in != out, identity otherwise). No ReLU after the sum."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = cout // 2
        self.bn = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=True)
        if cin != cout:
            self.conv4 = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn(x)))
        out = self.conv2(F.relu(self.bn1(out)))
        out = self.conv3(F.relu(self.bn2(out)))
        skip = self.conv4(x) if hasattr(self, "conv4") else x
        return out + skip


def _residuals(n, c):
    return nn.ModuleList([Residual(c, c) for _ in range(n)])


class Hourglass(nn.Module):
    """One hourglass level: out = up1(x) + upsample2(low3(inner(low1(pool(x))))),
    where inner is the next level, or `modules` residuals at depth 1. The
    submodules are created in the authors' order (low2 first), which fixes
    the state-dict order."""

    def __init__(self, depth, modules, c):
        super().__init__()
        if depth > 1:
            self.low2 = Hourglass(depth - 1, modules, c)
        else:
            self.low2_ = _residuals(modules, c)
        self.up1_ = _residuals(modules, c)
        self.low1_ = _residuals(modules, c)
        self.low3_ = _residuals(modules, c)

    def forward(self, x):
        up1 = x
        for m in self.up1_:
            up1 = m(up1)
        low = F.max_pool2d(x, 2, 2)
        for m in self.low1_:
            low = m(low)
        if hasattr(self, "low2"):
            low = self.low2(low)
        else:
            for m in self.low2_:
                low = m(low)
        for m in self.low3_:
            low = m(low)
        return up1 + F.interpolate(low, scale_factor=2, mode="nearest")


class Backbone(nn.Module):
    """Shared feature extraction: stem to 1/4 resolution, one hourglass stage,
    then features T (F channels) and 2D heatmaps H0 (J channels)."""

    def __init__(self, cfg):
        super().__init__()
        self.conv1_ = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(64)
        self.r1 = Residual(64, 128)
        self.r4 = Residual(128, 128)
        self.r5 = Residual(128, cfg.F)
        self.hourglass = nn.ModuleList([Hourglass(cfg.hourglass_depth, cfg.hourglass_modules, cfg.F)])
        self.Residual = _residuals(cfg.hourglass_modules, cfg.F)
        self.lin_ = nn.ModuleList([nn.Sequential(nn.Conv2d(cfg.F, cfg.F, 1, bias=True), nn.BatchNorm2d(cfg.F),
                                                 nn.ReLU())])
        self.tmpOut = nn.ModuleList([nn.Conv2d(cfg.F, cfg.J, 1, bias=True)])

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1_(x)))
        x = self.r1(x)
        x = F.max_pool2d(x, 2, 2)
        x = self.r5(self.r4(x))
        x = self.hourglass[0](x)
        for m in self.Residual:
            x = m(x)
        t = self.lin_[0](x)
        h0 = self.tmpOut[0](t)
        return h0, t


# ---- neck and group branches --------------------------------------------------------------
class Res2D(nn.Module):
    """ReLU(conv3x3, BN, ReLU, conv3x3, BN  +  skip), skip = conv1x1 + BN when
    in != out, identity otherwise."""

    def __init__(self, cin, cout):
        super().__init__()
        self.res_branch = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout))
        if cin != cout:
            self.skip_con = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=True), nn.BatchNorm2d(cout))

    def forward(self, x):
        skip = self.skip_con(x) if hasattr(self, "skip_con") else x
        return F.relu(self.res_branch(x) + skip)


class Basic(nn.Module):
    """conv (k x k, 'same' padding) + BN + ReLU."""

    def __init__(self, cin, cout, k=1):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=True), nn.BatchNorm2d(cout),
                                   nn.ReLU())

    def forward(self, x):
        return self.block(x)


class Down(nn.Module):
    """Halves the resolution: ReLU(conv3x3 s2, BN, ReLU, conv3x3, BN, ReLU
    + conv1x1 s2, BN). Note the ReLU at the end of the residual branch too."""

    def __init__(self, cin, cout):
        super().__init__()
        self.res_branch = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU())
        self.skip_con = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=True), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.res_branch(x) + self.skip_con(x))


class Up(nn.Module):
    """Doubles the resolution: transposed conv 4x4 s2 p1 + BN + ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=True),
                                   nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return self.block(x)


class JointGroupSelector(nn.Module):
    """Holds theta [J, K], the logits of the relaxed one-hot selector (Eq. 8),
    initialised to 0.5 everywhere as the authors' nets/Net.py does (equal
    logits: no group is preferred)."""

    def __init__(self, J, K):
        super().__init__()
        self.weight = nn.Parameter(torch.full((J, K), 0.5))

    def forward(self, mode, tau=1.0, uniforms=None):
        return select_groups(self.weight, mode, tau, uniforms)


def select_groups(theta, mode, tau=1.0, uniforms=None):
    """S~ [J, K] from theta (Eq. 8).

    hard:   one-hot of argmax_k theta_jk (ties -> lowest k); no gradient to theta.
    soft:   softmax(theta / tau) row-wise.
    sample: softmax((theta + g) / tau), g = -log(-log U), with the uniforms U
            [J, K] given explicitly so that another implementation can be fed
            the same draw.
    """
    if mode == "hard":
        # torch.argmax returns the first maximal index.
        idx = torch.argmax(theta, dim=1)
        return F.one_hot(idx, theta.shape[1]).to(theta.dtype)
    if mode == "soft":
        return torch.softmax(theta / tau, dim=1)
    if mode == "sample":
        if uniforms is None or uniforms.shape != theta.shape:
            raise ValueError("selector 'sample' needs uniforms of shape [J, K]")
        g = -torch.log(-torch.log(uniforms.to(theta.dtype)))
        return torch.softmax((theta + g) / tau, dim=1)
    raise ValueError(f"unknown selector mode {mode!r}")


class GroupFusion(nn.Module):
    """Eq. (9): for each group k, conv1x1 over concat[F_1..F_K] (K*P1 -> P1),
    BN, ReLU. The 1x1 weight starts as the generalised weighted sum
    [alpha_1^k I, ..., alpha_K^k I] with alpha_k^k = 0.9 and the others
    (1 - 0.9)/(K - 1), bias 0."""

    def __init__(self, K, P1, own_weight=0.9):
        super().__init__()
        self.Conv_Task_List = nn.ModuleList([
            nn.Sequential(nn.Conv2d(K * P1, P1, 1, bias=True), nn.BatchNorm2d(P1), nn.ReLU()) for _ in range(K)])
        other = (1.0 - own_weight) / (K - 1)
        eye = torch.eye(P1)
        with torch.no_grad():
            for k, seq in enumerate(self.Conv_Task_List):
                w = torch.cat([eye * (own_weight if i == k else other) for i in range(K)], dim=1)
                seq[0].weight.copy_(w.view(P1, K * P1, 1, 1))
                seq[0].bias.zero_()

    def forward(self, feats):
        cat = torch.cat(feats, dim=1)
        return [seq(cat) for seq in self.Conv_Task_List]


class SoftArgmaxDepth(nn.Module):
    """Per group: p = softmax over H*W of beta_j * heatmap_j; u = sum p * wx,
    v = sum p * wy, d = sum p * depthmap_j. wx[r, c] = c and wy[r, c] = r at
    1/4 of the input resolution; they are frozen parameters, as in the
    authors' checkpoint."""

    def __init__(self, J, size):
        super().__init__()
        cols = torch.arange(size, dtype=torch.float32)
        self.wx = nn.Parameter(cols.view(1, size).repeat(size, 1), requires_grad=False)
        self.wy = nn.Parameter(cols.view(size, 1).repeat(1, size), requires_grad=False)
        # beta as a depthwise 1x1 convolution without bias: one scalar per joint.
        # Initialised to 1 (the C++ model does the same), so that the soft-argmax
        # starts at each heatmap's maximum; the authors' SoftHeatmap
        # (nets/Block_lib.py) leaves PyTorch's default, U(-1, 1) here.
        self.beta = nn.Conv2d(J, J, 1, groups=J, bias=False)
        nn.init.ones_(self.beta.weight)

    def forward(self, heatmaps, depthmaps):
        B, J, H, W = heatmaps.shape
        p = torch.softmax(self.beta(heatmaps).reshape(B, J, H * W), dim=2).reshape(B, J, H, W)
        u = (p * self.wx).sum(dim=(2, 3))
        v = (p * self.wy).sum(dim=(2, 3))
        d = (p * depthmaps).sum(dim=(2, 3))
        return torch.stack([u, v, d], dim=2)  # [B, J, 3]


def _head(cfg):
    return nn.Sequential(nn.Conv2d(cfg.P1, cfg.P0, 3, padding=1, bias=True), nn.ReLU(),
                         nn.Conv2d(cfg.P0, cfg.J, 3, padding=1, bias=True))


class LearnableGroupsHandModel(nn.Module):
    """The full model. forward(image [B,3,S,S] in [0,1], selector, tau, uniforms)
    returns (uv [B,J,2] in input pixels, depth [B,J] relative to the root in
    units of s0, selector S~ [J,K])."""

    def __init__(self, cfg=NAMED_CONFIGS["paper"]):
        super().__init__()
        self.cfg = cfg
        K, P0, P1, J = cfg.K, cfg.P0, cfg.P1, cfg.J
        # Attribute creation order = the checkpoint's key order.
        self.backbone = Backbone(cfg)
        self.backbone_conv = nn.ModuleList([Res2D(J + cfg.F, 128), Res2D(128, P0)])
        self.meta_S = JointGroupSelector(J, K)
        self.b_conv0 = nn.ModuleList([Basic(P0, P0, 1) for _ in range(K)])
        self.b_conv1 = nn.ModuleList([Res2D(P0, P1) for _ in range(K)])
        self.b_down1 = nn.ModuleList([Down(P1, P1) for _ in range(K)])
        self.b_down2 = nn.ModuleList([Down(P1, P1) for _ in range(K)])
        self.b_up2 = nn.ModuleList([nn.Sequential(Up(P1, P1)) for _ in range(K)])
        self.b_up1 = nn.ModuleList([nn.Sequential(Basic(2 * P1, P1, 1), Up(P1, P1)) for _ in range(K)])
        self.b_up0 = nn.ModuleList([nn.Sequential(Basic(P0 + 2 * P1, 2 * P1, 1), Res2D(2 * P1, P1))
                                    for _ in range(K)])
        self.b_htmaps_conv = nn.ModuleList([_head(cfg) for _ in range(K)])
        self.b_get_uv = nn.ModuleList([SoftArgmaxDepth(J, cfg.S // 4) for _ in range(K)])
        self.b_depth_conv = nn.ModuleList([_head(cfg) for _ in range(K)])
        if cfg.uses_fusion:
            self.nddr_layer0 = GroupFusion(K, P1)

    def group_features(self, x, k):
        """F_k of group k from the neck output x (P0 channels, 1/4 resolution).
        b1 reads b0, not x (the authors' nets/Net.py: bf_1 = b_conv1[j](bf_0))."""
        b0 = self.b_conv0[k](x)
        b1 = self.b_conv1[k](b0)
        b2 = self.b_down1[k](b1)
        b3 = self.b_down2[k](b2)
        b21 = self.b_up1[k](torch.cat([self.b_up2[k](b3), b2], dim=1))
        return self.b_up0[k](torch.cat([b21, b1, b0], dim=1))

    def forward_intermediates(self, image):
        """Everything up to the per-group (u, v, d): a dict of named tensors
        (used by the fixtures to localise a mismatch)."""
        h0, t = self.backbone(image)
        x = torch.cat([h0, t], dim=1)  # heatmaps first
        for m in self.backbone_conv:
            x = m(x)
        out = {"h0": h0, "t": t, "neck": x}
        feats = [self.group_features(x, k) for k in range(self.cfg.K)]
        fused = self.nddr_layer0(feats) if self.cfg.uses_fusion else feats
        uvd = []
        for k in range(self.cfg.K):
            hm = self.b_htmaps_conv[k](fused[k])
            dm = self.b_depth_conv[k](fused[k])
            uvd.append(self.b_get_uv[k](hm, dm))
            out[f"group{k}.features"] = feats[k]
            if self.cfg.uses_fusion:
                out[f"group{k}.fused"] = fused[k]
            out[f"group{k}.heatmaps"] = hm
            out[f"group{k}.depthmaps"] = dm
            out[f"group{k}.uvd"] = uvd[k]
        out["uvd"] = torch.stack(uvd, dim=1)  # [B, K, J, 3]
        return out

    def forward(self, image, selector="hard", tau=1.0, uniforms=None):
        uvd = self.forward_intermediates(image)["uvd"]
        return self.combine(uvd, selector, tau, uniforms)

    def combine(self, uvd, selector="hard", tau=1.0, uniforms=None):
        """(uv, depth, S~) from the per-group predictions uvd [B, K, J, 3]."""
        s = self.meta_S(selector, tau, uniforms)  # [J, K]
        # Eq. (5) relaxed: each joint's prediction is sum_k S~_jk x_jk.
        combined = torch.einsum("bkjc,jk->bjc", uvd, s)
        uv = 4.0 * combined[..., :2]  # 1/4-resolution grid -> input pixels
        depth = combined[..., 2]
        return uv, depth, s


# ---- Eq. (1)-(3) and Eq. (10) ---------------------------------------------------------------
def backproject(uv, depth, intrinsics, z_root, s0):
    """Eq. (3): camera-space joints [B,J,3] in mm.
    z_j = s0 d_j + z_root; x_j = z_j (u_j - cx)/fx; y_j = z_j (v_j - cy)/fy,
    with intrinsics [B,4] = (fx, fy, cx, cy) of the crop, z_root [B], s0 [B]."""
    fx, fy, cx, cy = (intrinsics[:, i].view(-1, 1) for i in range(4))
    z = s0.view(-1, 1) * depth + z_root.view(-1, 1)
    x = z * (uv[..., 0] - cx) / fx
    y = z * (uv[..., 1] - cy) / fy
    return torch.stack([x, y, z], dim=2)


def eq10_loss(uv, depth, xyz_gt, intrinsics, z_root, s0, beta=20.0):
    """Eq. (10) with beta = 20, on coordinates normalised by the hand scale:

        X^ = backproject(uv, depth, intrinsics, z_root, s0)      [B, J, 3] mm
        L  = mean_{b,j,c in {x,y}} |X^_bjc - X_bjc| / s0_b
             + beta * mean_{b,j} |Z^_bj - Z_bj| / s0_b

    i.e. torch.nn.L1Loss (mean reduction) on xyz / s0, once over the x and y
    components (B*J*2 terms) and once over z (B*J terms). Since
    Z^ - Z = s0 (d - d_gt), the z term does not depend on z_root.
    """
    pred = backproject(uv, depth, intrinsics, z_root, s0) / s0.view(-1, 1, 1)
    gt = xyz_gt / s0.view(-1, 1, 1)
    l1 = nn.L1Loss()
    return l1(pred[..., :2], gt[..., :2]) + beta * l1(pred[..., 2], gt[..., 2])


def count_parameters(model):
    """nn.Parameters including the frozen grids wx/wy (the published counts
    include them); BN running statistics are buffers and not counted."""
    return sum(p.numel() for p in model.parameters())


# ---- random weights for tests -----------------------------------------------------------------
def randomize_(model, seed, calibration_images, theta_margin=0.3):
    """Random, well-conditioned weights for golden tests (not the training init).

    Convolutions get uniform weights with variance 2/fan_in (ReLU gain) and small
    biases; BN gets random affine parameters; beta is positive; theta is random,
    with every group selected by some joint under hard selection (when J >= K)
    and a gap of at least `theta_margin` between each row's best and second-best
    logit, so that rounding cannot flip the argmax.

    BN running statistics are set layer by layer, in eval mode, from the
    statistics of the layer's actual input on `calibration_images` and then
    perturbed (mean += 0.1 std N(0,1), var *= U(0.8, 1.25)). Calibrating in eval
    mode keeps activations of order one through the whole depth (perturbations do
    not compound), and a floor of 0.1 x the median channel variance keeps nearly
    constant channels from amplifying rounding errors. num_batches_tracked is a
    random count. Everything ends up float32-representable.
    """
    g = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    def normal(shape):
        return torch.randn(shape, generator=g, dtype=torch.float64)

    cfg = model.cfg
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)) and not name.endswith(".beta"):
                w = mod.weight
                if isinstance(mod, nn.ConvTranspose2d):
                    # Each output sees cin * (k/stride)^2 inputs.
                    fan_in = w.shape[0] * (w.shape[2] // mod.stride[0]) * (w.shape[3] // mod.stride[1])
                else:
                    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
                a = (6.0 / fan_in) ** 0.5
                w.copy_(uniform(w.shape, -a, a))
                if mod.bias is not None:
                    mod.bias.copy_(uniform(mod.bias.shape, -0.1, 0.1))
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(uniform(mod.weight.shape, 0.6, 1.4))
                mod.bias.copy_(uniform(mod.bias.shape, -0.2, 0.2))
                mod.num_batches_tracked.fill_(int(torch.randint(1, 10000, (1,), generator=g)))
            elif isinstance(mod, SoftArgmaxDepth):
                mod.beta.weight.copy_(uniform(mod.beta.weight.shape, 0.5, 1.5))

        J, K = cfg.J, cfg.K
        theta = uniform((J, K), -1.0, 1.0)
        # Each group wins for at least one joint; the winner leads by a margin.
        winners = torch.randint(0, K, (J,), generator=g)
        n = min(J, K)
        winners[torch.randperm(J, generator=g)[:n]] = torch.randperm(K, generator=g)[:n]
        for j in range(J):
            others = torch.cat([theta[j, :winners[j]], theta[j, winners[j] + 1:]])
            lead = others.max() if K > 1 else theta[j, 0]
            theta[j, winners[j]] = lead + theta_margin + float(uniform((), 0.0, 0.5))
        model.meta_S.weight.copy_(theta)
        round_to_float32_(model)

        def calibrate(mod, inputs):
            x = inputs[0]
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=True)
            var = torch.maximum(var, 0.1 * var.median()).clamp_min(1e-4)
            mod.running_mean.copy_(mean + 0.1 * var.sqrt() * normal(mean.shape).to(x.dtype))
            mod.running_var.copy_(var * uniform(var.shape, 0.8, 1.25).to(x.dtype))
            # Round now: later layers are calibrated on what the file will hold.
            mod.running_mean.copy_(mod.running_mean.float().to(x.dtype))
            mod.running_var.copy_(mod.running_var.float().to(x.dtype))

        was_training = model.training
        model.eval()
        hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        try:
            model.forward_intermediates(calibration_images.to(next(model.parameters()).dtype))
        finally:
            for h in hooks:
                h.remove()
        model.train(was_training)
        round_to_float32_(model)
    return model


def round_to_float32_(model):
    """Rounds every floating parameter and buffer to a float32 value in place
    (keeping its dtype), so that a float64 copy computes on exactly the values
    a float32 file holds."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float32).to(t.dtype))


def state_dict_numpy(model):
    """The state dict as numpy: floating tensors as float32, integers as int64."""
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        out[k] = v.to(torch.float32).numpy() if v.is_floating_point() else v.to(torch.int64).numpy()
    return out
