#!/usr/bin/python3
"""The unfused PyTorch sequences of lgh's fused CUDA kernels, timed at the same
shapes as benchmarks/bench_kernels.cu (J = 21, K = 3, P = 32, 64 x 64 maps;
batch 1, 32, 64), eager and under torch.compile, written as JSON in
bench_kernels' format (one result per op, pass, implementation and batch).

On a GPU each iteration flushes the L2 (a fill of twice its size, outside the
timed region) and is timed with CUDA events; the median and the minimum are
reported, with the bytes the op must move (the same formulas as
bench_kernels), GB/s and the percentage of a device-to-device copy measured
in the same run. `--device cpu` runs the same sequences on the CPU (wall
clock, no flush): a check that the script works, not a comparison.

  python3 benchmarks/torch_fused_ops.py --json torch_fused.json
  python3 benchmarks/torch_fused_ops.py --device cpu --batches 1 --iters 2 --no-compile --json /tmp/t.json

The sequences, as a PyTorch user writes them:
  gumbel_softmax     theta + -log(-log(rand)), / tau, softmax, argmax one-hot,
                     straight-through (y_hard - y.detach() + y)
  group_select       (x * S^T[None, :, :, None]).sum(1) * (4, 4, 1)
  group_fusion       cat of the K branches, K conv2d 1x1 (+ batch_norm eval + relu)
  soft_argmax_depth  softmax over H*W of beta * h, sums against the coordinate
                     grids and the depth map (the authors' form), Eq. (3)
  adam               torch.optim.Adam over the paper's three parameter groups
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

J, K, P, H, W, C = 21, 3, 32, 64, 64, 3
PARAMS = 7502833


class Timer:
    def __init__(self, device, warmup, iters):
        self.device, self.warmup, self.iters = device, warmup, iters
        self.cuda = device.type == "cuda"
        if self.cuda:
            props = torch.cuda.get_device_properties(device)
            self.l2 = int(getattr(props, "L2_cache_size", 64 << 20))
            self.flush_buf = torch.empty(max(2 * self.l2, 1 << 20), dtype=torch.uint8, device=device)

    def time(self, fn, setup=None):
        """Median and minimum microseconds of fn(state), state = setup() run
        untimed before each call (e.g. the forward whose backward is timed)."""
        setup = setup or (lambda: None)
        for i in range(self.warmup):
            state = setup()
            self.flush(i)
            fn(state)
        times = []
        for i in range(self.iters):
            state = setup()
            self.flush(i)
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn(state)
                b.record()
                b.synchronize()
                times.append(1000.0 * a.elapsed_time(b))
            else:
                t0 = time.perf_counter()
                fn(state)
                times.append(1e6 * (time.perf_counter() - t0))
        return statistics.median(times), min(times)

    def flush(self, i):
        if self.cuda:
            self.flush_buf.fill_(i & 0xFF)


def copy_bandwidth(device, timer):
    """Device-to-device copy, bytes read + written per second (GPU only)."""
    if device.type != "cuda":
        return None
    n = max(1 << 30, 16 * timer.l2)
    a = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    b = torch.empty_like(a)
    saved = timer.warmup, timer.iters
    timer.warmup, timer.iters = 3, 20
    median, _ = timer.time(lambda _: b.copy_(a))
    timer.warmup, timer.iters = saved
    return 2.0 * n / (median * 1e-6)


# ---- the sequences ----------------------------------------------------------------
# Each builder returns {pass: Case}; `compiled` wraps the differentiable forward
# in torch.compile. A backward case runs its forward untimed (setup) and times
# torch.autograd.grad of that forward's output.

class Case:
    def __init__(self, run, nbytes, flops=0, setup=None):
        self.run, self.bytes, self.flops, self.setup = run, nbytes, flops, setup


def forward_case(fn, nbytes, flops=0):
    return Case(lambda _: fn(), nbytes, flops)


def backward_case(forward, inputs, nbytes, flops=0):
    """Times the gradient of forward()'s output(s) w.r.t. inputs, with random
    output gradients drawn once."""
    outs = forward()
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    grads = [torch.rand_like(o) for o in outs]

    def setup():
        o = forward()
        return list(o) if isinstance(o, (list, tuple)) else [o]

    return Case(lambda o: torch.autograd.grad(o, inputs, grads), nbytes, flops, setup)

def gumbel_softmax_cases(dev, dt, compiled):
    theta = (torch.rand(J, K, device=dev, dtype=dt) * 2 - 1).requires_grad_()
    tau = 5.0

    def fwd(theta):
        u = torch.rand(J, K, device=dev, dtype=dt).clamp_(1e-7, 1 - 1e-7)
        g = -torch.log(-torch.log(u))
        y = torch.softmax((theta + g) / tau, dim=1)
        y_hard = F.one_hot(y.argmax(dim=1), K).to(dt)
        return y_hard - y.detach() + y

    f = compiled(fwd)
    n, e = J * K, theta.element_size()
    return {
        "forward": forward_case(lambda: f(theta), 3 * n * e),
        "backward": backward_case(lambda: f(theta), [theta], 3 * n * e),
    }


def group_select_cases(dev, dt, compiled, B):
    s = torch.rand(J, K, device=dev, dtype=dt).requires_grad_()
    x = (torch.rand(B, K, J, C, device=dev, dtype=dt) * 64).requires_grad_()
    scale = torch.tensor([4.0, 4.0, 1.0], device=dev, dtype=dt)

    def fwd(s, x):
        return (x * s.t()[None, :, :, None]).sum(dim=1) * scale

    f = compiled(fwd)
    nx, ny, ns, e = B * K * J * C, B * J * C, J * K, x.element_size()
    return {
        "forward": forward_case(lambda: f(s, x), (nx + ny + ns) * e),
        "backward": backward_case(lambda: f(s, x), [s, x], (2 * nx + ny + 2 * ns) * e),
    }


def group_fusion_cases(dev, dt, compiled, B):
    M, HW = K * P, H * W
    feats = [(torch.rand(B, P, H, W, device=dev, dtype=dt) * 2 - 1).requires_grad_() for _ in range(K)]
    weights = [((torch.rand(P, M, 1, 1, device=dev, dtype=dt) - 0.5) * 0.4).requires_grad_() for _ in range(K)]
    biases = [((torch.rand(P, device=dev, dtype=dt) - 0.5) * 0.2).requires_grad_() for _ in range(K)]
    mean = [torch.rand(P, device=dev, dtype=dt) * 0.1 for _ in range(K)]
    var = [torch.rand(P, device=dev, dtype=dt) + 0.5 for _ in range(K)]
    gamma = [torch.rand(P, device=dev, dtype=dt) + 0.5 for _ in range(K)]
    beta = [torch.rand(P, device=dev, dtype=dt) * 0.1 for _ in range(K)]

    def fwd(feats, weights, biases):
        cat = torch.cat(feats, dim=1)  # Eq. (9): the concatenation, materialised
        return [F.conv2d(cat, weights[k], biases[k]) for k in range(K)]

    def fwd_eval(feats, weights, biases):
        cat = torch.cat(feats, dim=1)
        return [F.relu(F.batch_norm(F.conv2d(cat, weights[k], biases[k]), mean[k], var[k], gamma[k], beta[k],
                                    training=False, eps=1e-5)) for k in range(K)]

    f, fe = compiled(fwd), compiled(fwd_eval)
    e = feats[0].element_size()
    feat, wts, gemm = K * B * P * HW, K * P * M, 2.0 * B * HW * M * M

    def fwd_eval_nograd():
        with torch.no_grad():
            return fe(feats, weights, biases)

    return {
        "forward": forward_case(lambda: f(feats, weights, biases), (2 * feat + wts + K * P) * e, gemm),
        "forward_eval": forward_case(fwd_eval_nograd, (2 * feat + wts + 3 * K * P) * e, gemm),
        "backward": backward_case(lambda: f(feats, weights, biases), feats + weights + biases,
                                  (3 * feat + 2 * wts + K * P) * e, 2 * gemm),
    }


def soft_argmax_cases(dev, dt, compiled, B):
    h = (torch.rand(B, J, H, W, device=dev, dtype=dt) * 2 - 1).requires_grad_()
    dm = (torch.rand(B, J, H, W, device=dev, dtype=dt) * 2 - 1).requires_grad_()
    beta = (torch.rand(J, device=dev, dtype=dt) * 9 + 1).requires_grad_()
    wx = torch.arange(W, device=dev, dtype=dt).view(1, 1, 1, W).expand(1, 1, H, W)  # the authors' grids
    wy = torch.arange(H, device=dev, dtype=dt).view(1, 1, H, 1).expand(1, 1, H, W)
    intr = torch.rand(B, 4, device=dev, dtype=dt) * 100 + 100
    z_root = torch.rand(B, device=dev, dtype=dt) * 400 + 400
    s0 = torch.rand(B, device=dev, dtype=dt) * 40 + 20

    def uvd_of(h, dm, beta):
        p = torch.softmax((beta.view(1, J, 1, 1) * h).view(B, J, -1), dim=-1).view(B, J, H, W)
        u = (p * wx).sum(dim=(2, 3))
        v = (p * wy).sum(dim=(2, 3))
        d = (p * dm).sum(dim=(2, 3))
        return torch.stack([u, v, d], dim=-1)

    def with_backproject(h, dm, beta):
        uvd = uvd_of(h, dm, beta)
        z = s0[:, None] * uvd[..., 2] + z_root[:, None]  # Eq. (2)
        x = z * (uvd[..., 0] - intr[:, None, 2]) / intr[:, None, 0]  # Eq. (3)
        y = z * (uvd[..., 1] - intr[:, None, 3]) / intr[:, None, 1]
        return torch.stack([x, y, z], dim=-1)

    f, fb = compiled(uvd_of), compiled(with_backproject)
    e, maps, px = h.element_size(), B * J, B * J * H * W
    return {
        "forward": forward_case(lambda: f(h, dm, beta), (2 * px + J + 5 * maps) * e),
        "forward_backproject": forward_case(lambda: fb(h, dm, beta), (2 * px + J + 8 * maps + 6 * B) * e),
        "backward_backproject": backward_case(lambda: fb(h, dm, beta), [h, dm, beta],
                                              (4 * px + 2 * J + 8 * maps + 6 * B) * e),
    }


def adam_cases(dev, dt, use_compile):
    sizes = [J * K, K * (P * K * P + P)]
    sizes.append(PARAMS - sum(sizes))
    params = [torch.nn.Parameter(torch.rand(n, device=dev, dtype=dt) * 2 - 1) for n in sizes]
    for p in params:
        p.grad = torch.rand_like(p) * 2 - 1
    groups = [{"params": [params[0]], "lr": 1e-1}, {"params": [params[1]], "lr": 1e-2},
              {"params": [params[2]], "lr": 1e-4}]
    opt = torch.optim.Adam(groups)  # PyTorch's default: the multi-tensor (foreach) path on CUDA
    e = params[0].element_size()
    step = torch.compile(opt.step) if use_compile else opt.step
    cases = {"step": forward_case(step, 7 * PARAMS * e)}
    if not use_compile and dev.type == "cuda":
        try:
            fused = torch.optim.Adam([{"params": [p.detach().clone().requires_grad_()], "lr": g["lr"]}
                                      for p, g in zip(params, groups)], fused=True)
            for q, p in zip((g["params"][0] for g in fused.param_groups), params):
                q.grad = p.grad.clone()
            cases["step_fused_adam"] = forward_case(fused.step, 7 * PARAMS * e)
        except (RuntimeError, TypeError):
            pass
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,32,64")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true", help="eager only")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device available", file=sys.stderr)
        return 1
    batches = [int(b) for b in args.batches.split(",")]
    dt = torch.float32
    torch.manual_seed(2021)
    timer = Timer(dev, args.warmup, args.iters)
    copy_bps = copy_bandwidth(dev, timer)
    impls = [("torch_eager", False)]
    if not args.no_compile:
        if hasattr(torch, "compile"):
            impls.append(("torch_compile", True))
        else:
            print("note: this PyTorch has no torch.compile; eager only", file=sys.stderr)

    results = []

    def record(op, impl, batch, shape, cases):
        for name, case in cases.items():
            nbytes, flops = case.bytes, case.flops
            median, best = timer.time(case.run, case.setup)
            gbs = nbytes / (median * 1e-6) / 1e9
            results.append({
                "op": op, "pass": name, "impl": impl, "batch": batch, "dtype": "float32", "shape": shape,
                "time_us": median, "time_us_min": best, "bytes": nbytes, "gb_per_s": gbs,
                "pct_of_copy": (100.0 * gbs * 1e9 / copy_bps) if copy_bps else None,
                "gflop_per_s": (flops / (median * 1e-6) / 1e9) if flops else None,
            })
            print(f"  {op} {name} {impl} batch {batch}: {median:.2f} us", file=sys.stderr)

    for impl, use_compile in impls:
        compiled = torch.compile if use_compile else (lambda fn: fn)
        record("gumbel_softmax", impl, 1, "theta [21, 3]", gumbel_softmax_cases(dev, dt, compiled))
        record("adam", impl, 1, "7502833 parameters in 3 groups", adam_cases(dev, dt, use_compile))
        for B in batches:
            record("group_select", impl, B, f"x [{B}, 3, 21, 3]", group_select_cases(dev, dt, compiled, B))
            record("group_fusion", impl, B, f"3 x [{B}, 32, 64, 64]", group_fusion_cases(dev, dt, compiled, B))
            record("soft_argmax_depth", impl, B, f"[{B}, 21, 64, 64]", soft_argmax_cases(dev, dt, compiled, B))

    out = {
        "impl": "torch", "torch": torch.__version__,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if dev.type == "cuda" else None,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32 if dev.type == "cuda" else None,
        "copy_gb_per_s": copy_bps / 1e9 if copy_bps else None,
        "iters": args.iters, "warmup": args.warmup, "results": results,
    }
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"{'op':18} {'pass':22} {'impl':14} {'batch':>5} {'median_us':>10} {'GB/s':>9} {'%copy':>7}")
    for r in results:
        pct = f"{r['pct_of_copy']:.1f}%" if r["pct_of_copy"] is not None else "-"
        print(f"{r['op']:18} {r['pass']:22} {r['impl']:14} {r['batch']:5d} {r['time_us']:10.2f} "
              f"{r['gb_per_s']:9.1f} {pct:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
