#!/usr/bin/env python3
"""PyTorch reference values for the CPU ops of lgh::ops.

Writes tests/fixtures/ops_<name>.json for batchnorm, pooling, shape_ops,
reduce, softmax, linear and loss. Each file holds "cases": a list of objects
whose tensors are {"shape": [...], "data": [... row-major ...]} (float64),
plus plain numbers and strings for the arguments. Deterministic: rerunning it
reproduces the files byte for byte.

Usage: python3 tests/reference/ops_reference.py   (needs torch)
"""
import json
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))


def t(x):
    x = x.detach().contiguous()
    return {"shape": list(x.shape), "data": [float(v) for v in x.reshape(-1).tolist()]}


def rand(gen, *shape, scale=1.0, shift=0.0):
    return torch.randn(*shape, generator=gen) * scale + shift


def grads(out, gy, inputs):
    """Gradients of sum(out * gy) with respect to each input (None if unused)."""
    gs = torch.autograd.grad(out, inputs, gy, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(gs, inputs)]


def write(name, cases):
    path = os.path.join(FIXTURES, "ops_%s.json" % name)
    with open(path, "w") as f:
        json.dump({"generator": "tests/reference/ops_reference.py", "torch": torch.__version__.split("+")[0],
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def batchnorm(gen):
    cases = []
    for training, affine, momentum, shape in [
        (True, True, 0.1, (2, 3, 4, 5)),
        (True, False, 0.1, (3, 2, 3, 3)),
        (True, True, 0.3, (1, 4, 3, 5)),
        (False, True, 0.1, (2, 3, 4, 5)),
        (False, False, 0.1, (2, 2, 3, 1)),
    ]:
        C = shape[1]
        x = rand(gen, *shape, scale=2.0, shift=0.5).requires_grad_()
        w = (rand(gen, C, scale=0.5, shift=1.0).requires_grad_() if affine else None)
        b = (rand(gen, C, scale=0.5).requires_grad_() if affine else None)
        rm = rand(gen, C, scale=0.3)
        rv = torch.rand(C, generator=gen) + 0.5
        rm_in, rv_in = rm.clone(), rv.clone()
        y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=1e-5)
        gy = rand(gen, *shape)
        inputs = [x] + ([w, b] if affine else [])
        g = grads(y, gy, inputs)
        case = {"training": training, "affine": affine, "momentum": momentum, "eps": 1e-5,
                "x": t(x), "running_mean": t(rm_in), "running_var": t(rv_in), "gy": t(gy),
                "y": t(y), "running_mean_after": t(rm), "running_var_after": t(rv), "gx": t(g[0])}
        if affine:
            case.update({"weight": t(w), "bias": t(b), "gweight": t(g[1]), "gbias": t(g[2])})
        cases.append(case)
    write("batchnorm", cases)


def pooling(gen):
    cases = []
    for kernel, stride, padding, shape in [
        (2, 2, 0, (2, 3, 6, 8)),
        (2, 2, 0, (1, 2, 7, 5)),  # odd sizes: the last row / column is dropped
        (3, 2, 1, (2, 2, 7, 6)),
        (3, 1, 1, (1, 2, 5, 5)),  # overlapping windows
    ]:
        x = rand(gen, *shape).requires_grad_()
        y, idx = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
        gy = rand(gen, *y.shape)
        (gx,) = grads(y, gy, [x])
        cases.append({"op": "max_pool2d", "kernel": kernel, "stride": stride, "padding": padding,
                      "x": t(x), "y": t(y), "indices": t(idx.double()), "gy": t(gy), "gx": t(gx)})
    # Ties: PyTorch keeps the first maximum of the window in row-major order.
    x = torch.tensor([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0],
                        [-1.0, -3.0, 5.0, 4.0], [-3.0, -1.0, 4.0, 5.0]]]]).requires_grad_()
    y, idx = F.max_pool2d(x, 2, 2, 0, return_indices=True)
    gy = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    (gx,) = grads(y, gy, [x])
    cases.append({"op": "max_pool2d", "kernel": 2, "stride": 2, "padding": 0, "x": t(x), "y": t(y),
                  "indices": t(idx.double()), "gy": t(gy), "gx": t(gx)})
    for shape in [(2, 3, 3, 4), (1, 1, 1, 1)]:
        x = rand(gen, *shape).requires_grad_()
        y = F.interpolate(x, scale_factor=2, mode="nearest")
        gy = rand(gen, *y.shape)
        (gx,) = grads(y, gy, [x])
        cases.append({"op": "upsample_nearest2x", "x": t(x), "y": t(y), "gy": t(gy), "gx": t(gx)})
    write("pooling", cases)


def shape_ops(gen):
    cases = []
    a = rand(gen, 2, 3, 2, 2).requires_grad_()
    b = rand(gen, 2, 5, 2, 2).requires_grad_()
    c = rand(gen, 2, 1, 2, 2).requires_grad_()
    y = torch.cat([a, b, c], 1)
    gy = rand(gen, *y.shape)
    ga, gb, gc = grads(y, gy, [a, b, c])
    cases.append({"op": "concat", "dim": 1, "inputs": [t(a), t(b), t(c)], "y": t(y), "gy": t(gy),
                  "grads": [t(ga), t(gb), t(gc)]})
    a = rand(gen, 3, 2, 4).requires_grad_()
    b = rand(gen, 3, 2, 1).requires_grad_()
    y = torch.cat([a, b], -1)
    gy = rand(gen, *y.shape)
    ga, gb = grads(y, gy, [a, b])
    cases.append({"op": "concat", "dim": -1, "inputs": [t(a), t(b)], "y": t(y), "gy": t(gy),
                  "grads": [t(ga), t(gb)]})
    x = rand(gen, 2, 3, 4, 5).requires_grad_()
    y = x.permute(2, 0, 3, 1)
    gy = rand(gen, *y.shape)
    (gx,) = grads(y, gy, [x])
    cases.append({"op": "permute", "order": [2, 0, 3, 1], "x": t(x), "y": t(y), "gy": t(gy), "gx": t(gx)})
    x = rand(gen, 3, 7, 2).requires_grad_()
    y = x[:, 2:-1]
    gy = rand(gen, *y.shape)
    (gx,) = grads(y, gy, [x])
    cases.append({"op": "slice", "dim": 1, "start": 2, "end": -1, "x": t(x), "y": t(y), "gy": t(gy), "gx": t(gx)})
    write("shape_ops", cases)


def reduce(gen):
    cases = []
    x = rand(gen, 3, 4, 5)
    for op in ["sum", "mean"]:
        fn = torch.sum if op == "sum" else torch.mean
        cases.append({"op": op, "dims": None, "keepdim": False, "x": t(x), "y": t(fn(x))})
        for dims, keepdim in [([1], False), ([0, 2], True), ([2, 0], False), ([-1], True), ([0, 1, 2], False)]:
            cases.append({"op": op, "dims": dims, "keepdim": keepdim, "x": t(x),
                          "y": t(fn(x, dim=dims, keepdim=keepdim))})
    write("reduce", cases)


def softmax(gen):
    cases = []
    for shape, dim in [((3, 7), -1), ((2, 5, 3), 1), ((2, 3, 4), 0), ((4,), 0)]:
        x = rand(gen, *shape, scale=3.0).requires_grad_()
        gy = rand(gen, *shape)
        for op in ["softmax", "log_softmax"]:
            y = F.softmax(x, dim) if op == "softmax" else F.log_softmax(x, dim)
            (gx,) = grads(y, gy, [x])
            cases.append({"op": op, "dim": dim, "x": t(x), "y": t(y), "gy": t(gy), "gx": t(gx)})
    # Large logits: a naive exp overflows.
    x = torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1003.0, -1000.5]]).requires_grad_()
    gy = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.25, -0.75]])
    for op in ["softmax", "log_softmax"]:
        y = F.softmax(x, 1) if op == "softmax" else F.log_softmax(x, 1)
        (gx,) = grads(y, gy, [x])
        cases.append({"op": op, "dim": 1, "x": t(x), "y": t(y), "gy": t(gy), "gx": t(gx)})
    write("softmax", cases)


def linear(gen):
    cases = []
    for shape, out, bias in [((4, 6), 3, True), ((2, 3, 5), 4, False), ((1, 7), 9, True)]:
        x = rand(gen, *shape).requires_grad_()
        w = rand(gen, out, shape[-1], scale=0.5).requires_grad_()
        b = rand(gen, out).requires_grad_() if bias else None
        y = F.linear(x, w, b)
        gy = rand(gen, *y.shape)
        g = grads(y, gy, [x, w] + ([b] if bias else []))
        case = {"op": "linear", "x": t(x), "w": t(w), "y": t(y), "gy": t(gy), "gx": t(g[0]), "gw": t(g[1])}
        if bias:
            case.update({"b": t(b), "gb": t(g[2])})
        cases.append(case)
    a = rand(gen, 5, 3).requires_grad_()
    b = rand(gen, 3, 4).requires_grad_()
    y = a @ b
    gy = rand(gen, *y.shape)
    ga, gb = grads(y, gy, [a, b])
    cases.append({"op": "matmul", "a": t(a), "b": t(b), "y": t(y), "gy": t(gy), "ga": t(ga), "gb": t(gb)})
    write("linear", cases)


def loss(gen):
    cases = []
    p = rand(gen, 3, 4, 2, scale=1.5).requires_grad_()
    tg = rand(gen, 3, 4, 2, scale=1.5).requires_grad_()
    with torch.no_grad():  # exact ties: the l1 gradient is 0 there
        tg[0, 0, 0] = p[0, 0, 0]
        tg[1, 2, 1] = p[1, 2, 1]
    for op in ["l1_loss", "smooth_l1_loss"]:
        for reduction in ["mean", "sum", "none"]:
            for beta in ([1.0, 0.5] if op == "smooth_l1_loss" else [0.0]):
                if op == "l1_loss":
                    y = F.l1_loss(p, tg, reduction=reduction)
                else:
                    y = F.smooth_l1_loss(p, tg, reduction=reduction, beta=beta)
                gy = torch.tensor(0.75) if reduction != "none" else rand(gen, *p.shape)
                gp, gt = grads(y, gy, [p, tg])
                cases.append({"op": op, "reduction": reduction, "beta": beta, "pred": t(p), "target": t(tg),
                              "y": t(y), "gy": t(gy), "gpred": t(gp), "gtarget": t(gt)})
    write("loss", cases)


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    for seed, fn in enumerate([batchnorm, pooling, shape_ops, reduce, softmax, linear, loss]):
        gen = torch.Generator().manual_seed(1000 + seed)
        fn(gen)


if __name__ == "__main__":
    main()
