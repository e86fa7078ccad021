#!/usr/bin/env python3
"""Writes tests/fixtures/adam_reference.json: torch.optim.Adam (PyTorch 1.13,
default single-tensor path) over three parameter groups for 20 steps, in
float32 and float64, with a fixed sequence of gradients.

  backbone: w [3, 4], b [5]   lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01
  fusion:   w [2, 3, 2]       lr 5e-2, betas (0.8, 0.99),  eps 1e-6  (lr set to 2e-2 before step 10)
  selector: theta [4, 3]      lr 1e-1, betas (0.5, 0.9),   eps 1e-4, amsgrad

At step 7 (0-based) backbone.b has no gradient and at step 12 selector.theta
has none: PyTorch skips them and does not advance their step counts.

Deterministic; run with Debian's python3-torch:  python3 tests/reference/adam_reference.py
"""
import json
import os

import torch

torch.manual_seed(1234)
torch.set_num_threads(1)

STEPS = 20
GROUPS = [
    dict(name="backbone", lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=False,
         params=[("w", [3, 4]), ("b", [5])]),
    dict(name="fusion", lr=5e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.0, amsgrad=False,
         params=[("w", [2, 3, 2])]),
    dict(name="selector", lr=1e-1, beta1=0.5, beta2=0.9, eps=1e-4, weight_decay=0.0, amsgrad=True,
         params=[("theta", [4, 3])]),
]
LR_CHANGES = [dict(step=10, group=1, lr=2e-2)]
NO_GRAD = {7: "backbone.b", 12: "selector.theta"}


def tensor_json(t):
    return {"shape": list(t.shape), "data": [float(x) for x in t.detach().reshape(-1).tolist()]}


# Initial values and gradients, drawn once in float32 (so that the float64
# run starts from exactly the same numbers).
names = [f"{g['name']}.{n}" for g in GROUPS for n, _ in g["params"]]
shapes = {f"{g['name']}.{n}": s for g in GROUPS for n, s in g["params"]}
init = {k: torch.randn(shapes[k], dtype=torch.float32) for k in names}
grads = []
for step in range(STEPS):
    # Varying scales, and a sign flip half way, exercise the moment averages
    # and AMSGrad's running maximum.
    scale = 0.1 * (1 + step % 5) * (-1.0 if step >= 10 else 1.0)
    gs = {}
    for k in names:
        gs[k] = None if NO_GRAD.get(step) == k else (scale * torch.randn(shapes[k])).to(torch.float32)
    grads.append(gs)


def run(dtype):
    params = {k: init[k].clone().to(dtype).requires_grad_(True) for k in names}
    opt = torch.optim.Adam([
        dict(params=[params[f"{g['name']}.{n}"] for n, _ in g["params"]], lr=g["lr"],
             betas=(g["beta1"], g["beta2"]), eps=g["eps"], weight_decay=g["weight_decay"], amsgrad=g["amsgrad"])
        for g in GROUPS
    ])
    after = []
    for step in range(STEPS):
        for c in LR_CHANGES:
            if c["step"] == step:
                opt.param_groups[c["group"]]["lr"] = c["lr"]
        for k in names:
            params[k].grad = None if grads[step][k] is None else grads[step][k].to(dtype).clone()
        opt.step()
        after.append({k: tensor_json(params[k]) for k in names})
    steps = {k: int(opt.state[params[k]]["step"].item()) for k in names}
    return after, steps


after32, steps32 = run(torch.float32)
after64, steps64 = run(torch.float64)
assert steps32 == steps64

fixture = {
    "generator": "tests/reference/adam_reference.py",
    "torch_version": torch.__version__,
    "groups": [{k: v for k, v in g.items() if k != "params"} | {"params": [n for n, _ in g["params"]]}
               for g in GROUPS],
    "lr_changes": LR_CHANGES,
    "initial": {k: tensor_json(init[k]) for k in names},
    "grads": [{k: (None if g[k] is None else tensor_json(g[k])) for k in names} for g in grads],
    "after_float32": after32,
    "after_float64": after64,
    "final_step_counts": steps32,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "adam_reference.json")
with open(out, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes)")
