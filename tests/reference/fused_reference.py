#!/usr/bin/env python3
"""PyTorch reference values for the fused ops (tests/ops/test_{gumbel_softmax,
group_select,group_fusion,soft_argmax_depth,backproject}.cpp).

Writes tests/fixtures/fused_<op>.json: inputs, outputs and the gradients of
sum(outputs * grad_output) for a given grad_output, all in float64, every
tensor as {"shape": [...], "data": [... row-major ...]}. The model equations
are written here the way the authors' PyTorch code computes them (concat +
conv2d for the fusion, RelaxedOneHotCategorical for the selector, softmax +
coordinate grids for the soft-argmax), not the way the C++ fuses them.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/fused_reference.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures")


def t(x):
    x = x.detach().to(torch.float64).contiguous()
    return {"shape": list(x.shape), "data": [float(v) for v in x.reshape(-1).tolist()]}


def write(name, payload):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(path))


def rng_tensor(rng, shape, lo=-1.0, hi=1.0):
    return torch.from_numpy(rng.uniform(lo, hi, size=shape))


# ---- Eq. (8): Gumbel-softmax selector ------------------------------------------
def gumbel_softmax_cases(rng):
    cases = []
    for J, K, tau in [(21, 3, 5.0), (4, 1, 0.5), (5, 4, 0.3), (6, 2, 1.0)]:
        theta = rng_tensor(rng, (J, K), -2.0, 2.0).requires_grad_(True)
        dy = rng_tensor(rng, (J, K))
        # The authors' sampler: RelaxedOneHotCategorical(tau, logits=theta).rsample().
        # It draws U = clamp_probs(torch.rand(...)); draw the same U first to
        # record it, then let the distribution draw it again.
        torch.manual_seed(1234 + J * 10 + K)
        u = torch.distributions.utils.clamp_probs(torch.rand((J, K)))
        torch.manual_seed(1234 + J * 10 + K)
        y = torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau), logits=theta).rsample()
        g = -torch.log(-torch.log(u))
        explicit = torch.softmax((theta + g) / tau, dim=1)
        assert torch.allclose(y, explicit, atol=1e-12, rtol=1e-12), "sampler/uniform mismatch"
        (dtheta_sample,) = torch.autograd.grad(y, theta, dy)
        y_soft = torch.softmax(theta / tau, dim=1)
        (dtheta_soft,) = torch.autograd.grad(y_soft, theta, dy)
        cases.append({
            "tau": tau, "theta": t(theta), "uniforms": t(u), "grad_output": t(dy),
            "sample": t(y), "sample_grad_theta": t(dtheta_sample),
            "soft": t(y_soft), "soft_grad_theta": t(dtheta_soft),
        })
    return {"cases": cases}


# ---- masked group selection -----------------------------------------------------
def group_select_cases(rng):
    cases = []
    for B, K, J, C, scale in [(2, 3, 5, 3, [4.0, 4.0, 1.0]), (1, 1, 3, 2, None), (3, 2, 4, 3, None)]:
        s = torch.softmax(rng_tensor(rng, (J, K), -2, 2), dim=1).requires_grad_(True)
        x = rng_tensor(rng, (B, K, J, C), -3, 3).requires_grad_(True)
        dy = rng_tensor(rng, (B, J, C))
        # As the authors' forward: each group's prediction times its selector
        # column, summed over the groups.
        y = sum(x[:, k] * s[:, k].view(1, J, 1) for k in range(K))
        if scale is not None:
            y = y * torch.tensor(scale).view(1, 1, C)
        ds, dx = torch.autograd.grad(y, (s, x), dy)
        cases.append({
            "selector": t(s), "x": t(x), "scale": scale if scale is not None else [],
            "grad_output": t(dy), "y": t(y), "grad_selector": t(ds), "grad_x": t(dx),
        })
    return {"cases": cases}


# ---- Eq. (9): concat + 1x1 fusion ---------------------------------------------------
def group_fusion_cases(rng):
    cases = []
    for K, B, P, H, W in [(3, 2, 4, 3, 5), (2, 1, 2, 2, 2), (1, 2, 3, 2, 3)]:
        feats = [rng_tensor(rng, (B, P, H, W)).requires_grad_(True) for _ in range(K)]
        weights = [rng_tensor(rng, (P, K * P, 1, 1), -0.5, 0.5).requires_grad_(True) for _ in range(K)]
        biases = [rng_tensor(rng, (P,), -0.5, 0.5).requires_grad_(True) for _ in range(K)]
        dgs = [rng_tensor(rng, (B, P, H, W)) for _ in range(K)]
        cat = torch.cat(feats, 1)
        outs = [F.conv2d(cat, weights[k], biases[k]) for k in range(K)]
        grads = torch.autograd.grad(outs, feats + weights + biases, dgs)
        # Eval mode: conv + BatchNorm2d (running statistics) + ReLU.
        bn = []
        evals = []
        with torch.no_grad():
            for k in range(K):
                gamma = rng_tensor(rng, (P,), 0.5, 1.5)
                beta = rng_tensor(rng, (P,), -0.5, 0.5)
                mean = rng_tensor(rng, (P,), -0.5, 0.5)
                var = rng_tensor(rng, (P,), 0.2, 2.0)
                evals.append(F.relu(F.batch_norm(outs[k], mean, var, gamma, beta, training=False, eps=1e-5)))
                bn.append({"gamma": t(gamma), "beta": t(beta), "running_mean": t(mean), "running_var": t(var)})
        cases.append({
            "features": [t(f) for f in feats], "weights": [t(w) for w in weights], "biases": [t(b) for b in biases],
            "grad_outputs": [t(g) for g in dgs], "outputs": [t(o) for o in outs],
            "grad_features": [t(g) for g in grads[:K]], "grad_weights": [t(g) for g in grads[K:2 * K]],
            "grad_biases": [t(g) for g in grads[2 * K:]],
            "bn": bn, "bn_eps": 1e-5, "eval_outputs": [t(o) for o in evals],
        })
    return {"cases": cases}


# ---- soft-argmax with depth ------------------------------------------------------------
def soft_argmax_depth_reference(h, dm, beta):
    # As the authors' SoftHeatmap: beta as a depthwise 1x1 conv, softmax over
    # H*W, then expectations against the coordinate grids wx (column), wy (row).
    B, J, H, W = h.shape
    z = h * beta.view(1, J, 1, 1)
    p = torch.softmax(z.reshape(B, J, H * W), dim=2).reshape(B, J, H, W)
    wx = torch.arange(W, dtype=h.dtype).view(1, W).repeat(H, 1)
    wy = torch.arange(H, dtype=h.dtype).view(H, 1).repeat(1, W)
    u = (p * wx).sum(dim=(2, 3))
    v = (p * wy).sum(dim=(2, 3))
    d = (p * dm).sum(dim=(2, 3))
    return torch.stack([u, v, d], dim=2)


def soft_argmax_depth_cases(rng):
    cases = []
    # (B, J, H, W, heatmap range, beta range): the last one has logits of
    # magnitude ~1e3, where exp() without the max shift overflows.
    for B, J, H, W, hr, br in [(2, 3, 4, 5, 1.0, (0.5, 2.0)), (1, 2, 6, 3, 2.0, (0.2, 1.0)),
                               (2, 2, 5, 7, 50.0, (10.0, 20.0))]:
        h = rng_tensor(rng, (B, J, H, W), -hr, hr).requires_grad_(True)
        dm = rng_tensor(rng, (B, J, H, W), -2, 2).requires_grad_(True)
        beta = rng_tensor(rng, (J,), *br).requires_grad_(True)
        dy = rng_tensor(rng, (B, J, 3))
        y = soft_argmax_depth_reference(h, dm, beta)
        dh, ddm, dbeta = torch.autograd.grad(y, (h, dm, beta), dy)
        cases.append({
            "heatmaps": t(h), "depthmaps": t(dm), "beta": t(beta), "grad_output": t(dy), "y": t(y),
            "grad_heatmaps": t(dh), "grad_depthmaps": t(ddm), "grad_beta": t(dbeta),
        })
    return {"cases": cases}


# ---- Eq. (1)-(3): back-projection ------------------------------------------------------
def backproject_cases(rng):
    cases = []
    for B, J in [(2, 4), (1, 21)]:
        uvd = torch.cat([rng_tensor(rng, (B, J, 2), 0, 256), rng_tensor(rng, (B, J, 1), -2, 2)], 2).requires_grad_(True)
        k = torch.cat([rng_tensor(rng, (B, 2), 200, 800), rng_tensor(rng, (B, 2), 100, 160)], 1)
        z_root = rng_tensor(rng, (B,), 300, 900)
        s0 = rng_tensor(rng, (B,), 20, 40)
        dy = rng_tensor(rng, (B, J, 3))
        # Eq. (3): (s0 d + z_root) M^-1 [u, v, 1]^T with M = [[fx,0,cx],[0,fy,cy],[0,0,1]].
        M = torch.zeros(B, 3, 3)
        M[:, 0, 0], M[:, 1, 1], M[:, 0, 2], M[:, 1, 2], M[:, 2, 2] = k[:, 0], k[:, 1], k[:, 2], k[:, 3], 1.0
        uv1 = torch.cat([uvd[..., :2], torch.ones(B, J, 1)], 2)
        z = s0.view(B, 1, 1) * uvd[..., 2:] + z_root.view(B, 1, 1)
        xyz = z * torch.einsum("bij,bnj->bni", torch.linalg.inv(M), uv1)
        (duvd,) = torch.autograd.grad(xyz, uvd, dy)
        cases.append({
            "uvd": t(uvd), "intrinsics": t(k), "z_root": t(z_root), "s0": t(s0), "grad_output": t(dy),
            "xyz": t(xyz), "grad_uvd": t(duvd),
        })
    return {"cases": cases}


def main():
    rng = np.random.default_rng(20210202)
    write("fused_gumbel_softmax.json", gumbel_softmax_cases(rng))
    write("fused_group_select.json", group_select_cases(rng))
    write("fused_group_fusion.json", group_fusion_cases(rng))
    write("fused_soft_argmax_depth.json", soft_argmax_depth_cases(rng))
    write("fused_backproject.json", backproject_cases(rng))


if __name__ == "__main__":
    main()
