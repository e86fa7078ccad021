#!/usr/bin/python3
"""Writes tests/fixtures/conv_reference.json: conv2d and conv_transpose2d
forward outputs and the gradients of input, weight and bias for a fixed
upstream gradient, computed by PyTorch in float64.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/conv_reference.py
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(1)


def t2j(t):
    return {"shape": list(t.shape), "data": [round(float(v), 15) for v in t.detach().reshape(-1).tolist()]}


# (kind, N, C_in, H, W, C_out, k, stride, padding, output_padding, bias)
CASES = [
    ("conv", 2, 3, 9, 8, 4, 3, 1, 1, 0, True),     # 3x3 same padding
    ("conv", 1, 3, 13, 11, 5, 7, 2, 3, 0, True),   # the stem: 7x7 stride 2
    ("conv", 2, 6, 5, 7, 4, 1, 1, 0, 0, True),     # pointwise
    ("conv", 2, 4, 8, 8, 3, 3, 2, 1, 0, False),    # 3x3 stride 2 (Down), no bias
    ("conv", 1, 2, 6, 5, 3, 1, 2, 0, 0, True),     # 1x1 stride 2 (Down's skip)
    ("conv", 1, 2, 4, 4, 2, 3, 1, 0, 0, True),     # valid padding
    ("convT", 2, 4, 5, 6, 3, 4, 2, 1, 0, True),    # Up: 4x4 stride 2 pad 1
    ("convT", 1, 3, 3, 4, 2, 3, 2, 1, 1, True),    # output_padding
    ("convT", 2, 3, 4, 4, 5, 1, 1, 0, 0, False),   # pointwise transposed
    ("convT", 1, 2, 3, 3, 2, 3, 1, 0, 0, True),
]

cases = []
for kind, n, cin, h, w, cout, k, s, p, op, has_bias in CASES:
    x = torch.randn(n, cin, h, w, dtype=torch.float64, requires_grad=True)
    if kind == "conv":
        weight = torch.randn(cout, cin, k, k, dtype=torch.float64, requires_grad=True)
    else:
        weight = torch.randn(cin, cout, k, k, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64, requires_grad=True) if has_bias else None
    if kind == "conv":
        y = F.conv2d(x, weight, bias, stride=s, padding=p)
    else:
        y = F.conv_transpose2d(x, weight, bias, stride=s, padding=p, output_padding=op)
    gy = torch.randn_like(y)
    y.backward(gy)
    case = {
        "kind": kind, "stride": s, "padding": p, "output_padding": op,
        "x": t2j(x), "weight": t2j(weight), "y": t2j(y), "gy": t2j(gy),
        "gx": t2j(x.grad), "gweight": t2j(weight.grad),
    }
    if has_bias:
        case["bias"] = t2j(bias)
        case["gbias"] = t2j(bias.grad)
    cases.append(case)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "conv_reference.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/reference/conv_reference.py", "torch": torch.__version__, "cases": cases}, f)
print("wrote", os.path.normpath(out), "with", len(cases), "cases")
