#!/usr/bin/env python3
"""Golden fixtures for the C++ model (tests/fixtures/model/<name>/).

For each small config this writes
  weights.safetensors  the state dict of a randomly initialised model, as a plain
                       dump (no __metadata__: the loader must infer the config
                       from the shapes); F32, num_batches_tracked I64.
  case.safetensors     inputs and reference results (F32 unless noted):
    image                        [B,3,S,S] in [0,1]
    eval_hard.{uv,depth,selector}  eval-mode BN, selector 'hard'
    eval_soft.{uv,depth,selector}  eval-mode BN, selector 'soft', tau = eval_soft.tau
    eval.<name>                  eval-mode intermediates (selector-independent):
                                 h0, t, neck, group<k>.features, group<k>.fused
                                 (fusion only), group<k>.uvd [B,J,3] at 1/4 scale
    train.uniforms [J,K], train.tau   selector 'sample' on these uniforms
    train.xyz [B,J,3] mm, train.K [B,4] = (fx,fy,cx,cy), train.z_root [B], train.s0 [B]
    train.uv, train.depth, train.selector, train.xyz_pred, train.loss (scalar)
                                 one forward in training mode (BN batch statistics)
                                 and Eq. (10) with beta = train.beta
    grad.<key>                   d train.loss / d parameter, every parameter that
                                 requires grad (same key names as the weights)
    after.<key>                  BN running_mean / running_var / num_batches_tracked
                                 (I64) after that training forward
  and __metadata__: "lgh.config" (the model config as JSON) and "lgh.case"
  (taus, beta, batch, seed, and the measured float32-vs-float64 discrepancy of
  every stored result, as max|f32 - f64| / max|f64|, which tells how tight a
  float32 implementation can be checked).

Everything is computed in float64 from float32-representable weights and inputs,
then stored as float32: a C++ double run compares at ~1e-6 and a float run at the
documented tolerances (outputs 1e-4 relative to the tensor's max magnitude,
gradients 1e-3 of each tensor's max magnitude).

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_model_fixtures.py
Deterministic: the same torch build rewrites the same bytes.
"""
import argparse
import contextlib
import copy
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgh_model as L  # noqa: E402
import safetensors_np as st  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "model"))

FIXTURE_CONFIGS = {
    # (A) the paper's structure scaled down: three groups with fusion, P0 = P1,
    # a nested hourglass (depth 2) with two modules per level.
    "k3_fusion": (L.Config(S=64, F=16, P0=8, P1=8, K=3, fusion=True, hourglass_depth=2, hourglass_modules=2), 101),
    # (B) one group (no fusion layer exists), P0 != P1 (so b_conv1 has a skip
    # convolution and a P0/P1 mix-up shows), a single-level hourglass (low2_ at
    # the top) with one module per level: the other branches of shape inference.
    "k1": (L.Config(S=64, F=16, P0=6, P1=10, K=1, fusion=False, hourglass_depth=1, hourglass_modules=1), 202),
}
BATCH = 2
SOFT_TAU = 0.7
TRAIN_TAU = 2.0
LOSS_BETA = 20.0
# A float32 run of this file's own model must reproduce the forward outputs
# this closely (relative to each tensor's max), or the random model is rejected
# as too ill-conditioned to test a float32 implementation with.
MAX_F32_OUTPUT_DISCREPANCY = 3e-5
# Every ReLU input and every 2x2 max-pool decision of the float64 reference must
# be at least this far (relative to the layer's RMS) from its kink, so that a
# double-precision implementation takes the same branches.
MIN_KINK_MARGIN = 1e-9


def f32(x):
    """A float32-representable copy in float64 (inputs are what a float32 file holds)."""
    return x.to(torch.float32).to(torch.float64)


def make_inputs(cfg, seed, batch=BATCH):
    """Random images, calibration images, uniforms and a plausible ground truth."""
    g = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    J, K, S = cfg.J, cfg.K, cfg.S
    image = f32(uniform((batch, 3, S, S), 0.0, 1.0))
    calibration = f32(uniform((4, 3, S, S), 0.0, 1.0))
    # Away from 0 and 1, where the Gumbel transform is steep.
    uniforms = f32(uniform((J, K), 0.02, 0.98))
    # Hands 400-700 mm away, bone scale s0 30-45 mm, joints spread over a few s0
    # around the root; the crop intrinsics put the root near the crop centre with
    # the hand filling about two thirds of the crop.
    z_root = f32(uniform((batch,), 400.0, 700.0))
    s0 = f32(uniform((batch,), 30.0, 45.0))
    root_xy = uniform((batch, 2), -50.0, 50.0)
    rel = torch.randn((batch, J, 3), generator=g, dtype=torch.float64) * torch.tensor([1.5, 1.5, 1.0])
    if J > 12:
        rel[:, 12] = 0.0  # joint 12 (middle MCP) is the root
    xyz = torch.cat([root_xy, z_root.view(-1, 1)], 1).view(batch, 1, 3) + s0.view(-1, 1, 1) * rel
    fx = uniform((batch,), 0.9, 1.1) * S * z_root / (9.0 * s0)
    fy = fx * uniform((batch,), 0.98, 1.02)
    u_root = S / 2 + uniform((batch,), -4.0, 4.0)
    v_root = S / 2 + uniform((batch,), -4.0, 4.0)
    cx = u_root - fx * root_xy[:, 0] / z_root
    cy = v_root - fy * root_xy[:, 1] / z_root
    intrinsics = f32(torch.stack([fx, fy, cx, cy], 1))
    return {"image": image, "calibration": calibration, "uniforms": uniforms, "xyz": f32(xyz),
            "K": intrinsics, "z_root": z_root, "s0": s0}


def random_model(cfg, seed, calibration_images):
    torch.manual_seed(seed)  # the default init, overwritten below, draws from it
    model = L.LearnableGroupsHandModel(cfg).to(torch.float64)
    L.randomize_(model, seed, calibration_images)
    return model


def eval_results(model, image, soft_tau=SOFT_TAU, intermediates=True):
    """Eval-mode outputs for the hard and soft selectors (+ intermediates)."""
    model.eval()
    with torch.no_grad():
        inter = model.forward_intermediates(image)
        out = {}
        for mode, tau in (("hard", 1.0), ("soft", soft_tau)):
            uv, depth, s = model.combine(inter["uvd"], mode, tau)
            out[f"eval_{mode}.uv"], out[f"eval_{mode}.depth"], out[f"eval_{mode}.selector"] = uv, depth, s
        if intermediates:
            for name in ("h0", "t", "neck"):
                out[f"eval.{name}"] = inter[name]
            for k in range(model.cfg.K):
                for part in ("features", "fused", "uvd"):
                    if f"group{k}.{part}" in inter:
                        out[f"eval.group{k}.{part}"] = inter[f"group{k}.{part}"]
    return out


def train_results(model, inp):
    """One training-mode forward (BN batch statistics, 'sample' selector) and
    the Eq. (10) loss with its gradients; BN running stats after that step."""
    model = copy.deepcopy(model)
    model.train()
    model.zero_grad(set_to_none=True)
    dt = next(model.parameters()).dtype
    uv, depth, s = model(inp["image"].to(dt), "sample", TRAIN_TAU, inp["uniforms"].to(dt))
    args = [inp[k].to(dt) for k in ("xyz", "K", "z_root", "s0")]
    loss = L.eq10_loss(uv, depth, *args, beta=LOSS_BETA)
    loss.backward()
    out = {"train.uv": uv, "train.depth": depth, "train.selector": s,
           "train.xyz_pred": L.backproject(uv, depth, args[1], args[2], args[3]), "train.loss": loss}
    for name, p in model.named_parameters():
        if p.requires_grad:
            out[f"grad.{name}"] = p.grad
    for name, b in model.named_buffers():
        if name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked"):
            out[f"after.{name}"] = b
    return {k: v.detach() for k, v in out.items()}


def discrepancy(a, b):
    """max|a - b| / max|b| (0 for an all-zero b that a matches)."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    scale = float(b.abs().max()) if b.numel() else 0.0
    err = float((a - b).abs().max()) if b.numel() else 0.0
    return err / scale if scale > 0 else err


def to_numpy(t):
    t = t.detach().cpu()
    return t.to(torch.float32).numpy() if t.is_floating_point() else t.to(torch.int64).numpy()


# ---- ReLU / max-pool decisions --------------------------------------------------------------
# The model's only non-smooth points (besides |.| in the loss) are ReLU at 0 and
# the choice of maximum in a 2x2 max-pool window. Gradients jump there, so two
# implementations agree on gradients only where they take the same branches.
# These helpers observe (record) or impose (replay) those decisions by wrapping
# torch.nn.functional.relu / max_pool2d for the duration of a block; the model
# calls them in a fixed order, so the k-th call of one run matches the k-th of
# another.
_RELU, _MAX_POOL2D = F.relu, F.max_pool2d


def _pool_windows(x):
    B, C, H, W = x.shape
    return x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)


@contextlib.contextmanager
def kink_decisions(record=None, replay=None):
    """record: a list receiving each ReLU input and each max-pool window tensor
    (float64 copies) in call order. replay: such a list from another run whose
    decisions (ReLU masks, window argmax) are imposed on this run."""
    calls = [0]

    def observe(x):
        i = calls[0]
        calls[0] += 1
        if record is not None:
            record.append(x.detach().to(torch.float64).clone())
        return replay[i] if replay is not None else None

    def relu(x, inplace=False):
        ref = observe(x)
        return _RELU(x) if ref is None else x * (ref > 0).to(x.dtype)

    def max_pool2d(x, kernel_size, stride=None, *args, **kwargs):
        if kernel_size != 2 or stride not in (None, 2) or args or kwargs:
            raise NotImplementedError("only the model's 2x2 stride-2 max-pool is wrapped")
        win = _pool_windows(x)
        ref = observe(win)
        if ref is None:
            return _MAX_POOL2D(x, 2, 2)
        return torch.gather(win, -1, torch.argmax(ref, dim=-1, keepdim=True)).squeeze(-1)

    F.relu, F.max_pool2d = relu, max_pool2d
    try:
        yield
    finally:
        F.relu, F.max_pool2d = _RELU, _MAX_POOL2D


def kink_margins(recorded):
    """(smallest margin, count within 1e-4) over all recorded decisions, each
    margin relative to its layer's RMS: |x| for ReLU inputs, top1 - top2 for
    max-pool windows."""
    smallest, near = float("inf"), 0
    for x in recorded:
        rms = float(x.pow(2).mean().sqrt()) or 1.0
        if x.dim() == 5:  # max-pool windows
            top = torch.topk(x, 2, dim=-1).values
            m = (top[..., 0] - top[..., 1]) / rms
        else:
            m = x.abs() / rms
        smallest = min(smallest, float(m.min()))
        near += int((m < 1e-4).sum())
    return smallest, near


def build_fixture(cfg, seed):
    inp = make_inputs(cfg, seed)
    model = random_model(cfg, seed, inp["calibration"])
    weights = L.state_dict_numpy(model)

    ev = eval_results(model, inp["image"])
    decisions = []
    with kink_decisions(record=decisions):
        tr = train_results(model, inp)
    margin, near = kink_margins(decisions)
    if margin < MIN_KINK_MARGIN:
        raise RuntimeError(f"a ReLU / max-pool decision is within {margin:.1e} of its kink; choose another seed")
    xyz_margin = float((tr["train.xyz_pred"] - inp["xyz"]).abs().min() / inp["s0"].min())
    if xyz_margin < 1e-6:
        raise RuntimeError("a predicted coordinate sits on the kink of the L1 loss; choose another seed")
    gmax = max(float(v.abs().max()) for k, v in tr.items() if k.startswith("grad."))
    # Conv biases feeding a training-mode BN (directly, or through the
    # shift-invariant residual stream of the backbone) have an exactly zero
    # gradient; the stored values are float64 rounding noise.
    zero_grads = sorted(k for k, v in tr.items() if k.startswith("grad.") and float(v.abs().max()) <= 1e-12 * gmax)

    # The same computation in float32: forward outputs measure how well-conditioned
    # the random model is; gradients are measured twice, as they are (ReLU and
    # max-pool decisions may flip where float32 rounding crosses a kink) and with
    # the float64 run's decisions imposed (the part every implementation controls).
    m32 = copy.deepcopy(model).to(torch.float32)
    inp32 = {k: v.to(torch.float32) for k, v in inp.items()}
    ev32 = eval_results(m32, inp32["image"])
    tr32 = train_results(m32, inp32)
    with kink_decisions(replay=decisions):
        tr32_same_kinks = train_results(m32, inp32)
    f32_err = {k: discrepancy(ev32[k], ev[k]) for k in ev}
    f32_err.update({k: discrepancy(tr32[k], tr[k]) for k in tr
                    if not k.endswith("num_batches_tracked") and k not in zero_grads})
    f32_grad_same_kinks = max(discrepancy(tr32_same_kinks[k], tr[k]) for k in tr
                              if k.startswith("grad.") and k not in zero_grads)
    for k, e in f32_err.items():
        if k.startswith(("eval_", "train.")) and e > MAX_F32_OUTPUT_DISCREPANCY:
            raise RuntimeError(f"{k}: a float32 run differs by {e:.2e} of its max "
                               f"(> {MAX_F32_OUTPUT_DISCREPANCY:.0e}); too ill-conditioned for a float32 test")

    case = {"image": inp["image"]}
    case.update(ev)
    case.update({"eval_soft.tau": torch.tensor(SOFT_TAU), "train.tau": torch.tensor(TRAIN_TAU),
                 "train.beta": torch.tensor(LOSS_BETA), "train.uniforms": inp["uniforms"], "train.xyz": inp["xyz"],
                 "train.K": inp["K"], "train.z_root": inp["z_root"], "train.s0": inp["s0"]})
    case.update(tr)
    stats = {
        "batch": BATCH, "seed": seed, "eval_soft_tau": SOFT_TAU, "train_tau": TRAIN_TAU,
        "loss_beta": LOSS_BETA, "computed_in": "float64",
        "zero_gradients": zero_grads,
        "kink_margin_min": float(f"{margin:.3g}"), "kink_decisions_within_1e-4_rms": near,
        "float32_discrepancy": {k: float(f"{v:.3g}") for k, v in f32_err.items()},
        "float32_gradient_discrepancy_max_same_kinks": float(f"{f32_grad_same_kinks:.3g}"),
    }
    meta = {"lgh.config": cfg.to_json(), "lgh.case": json.dumps(stats, sort_keys=True)}
    return weights, {k: to_numpy(v) for k, v in case.items()}, meta, stats


def summary(stats):
    err = stats["float32_discrepancy"]
    out = max(v for k, v in err.items() if k.startswith(("eval_", "train.")))
    grad = max(v for k, v in err.items() if k.startswith("grad."))
    return (f"float32 vs float64: outputs {out:.1e}, gradients {grad:.1e} "
            f"({stats['float32_gradient_discrepancy_max_same_kinks']:.1e} with the same ReLU/max-pool "
            f"decisions); smallest kink margin {stats['kink_margin_min']:.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT, help="output folder (default: tests/fixtures/model)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, (cfg, seed) in FIXTURE_CONFIGS.items():
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        weights, case, meta, stats = build_fixture(cfg, seed)
        st.save_file(weights, os.path.join(folder, "weights.safetensors"))
        st.save_file(case, os.path.join(folder, "case.safetensors"), metadata=meta)
        print(f"wrote {os.path.relpath(folder)}: {len(weights)} weights, {len(case)} case tensors; {summary(stats)}")

if __name__ == "__main__":
    main()
