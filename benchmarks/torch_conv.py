#!/usr/bin/python3
"""PyTorch eager timings of the shapes in conv_shapes.json, in the same two
modes as bench_conv.cpp (forward at batch 1 under no_grad; forward+backward at
batch 8). Prints JSON {name: median_ms}. Threads: --threads (default 2)."""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F


def timed(fn, min_time, min_reps=5):
    for _ in range(2):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    here = os.path.dirname(os.path.abspath(__file__))
    shapes = json.load(open(os.path.join(here, "conv_shapes.json")))["shapes"]
    out = {}
    for s in shapes:
        if args.filter and args.filter not in s["name"]:
            continue
        tr = s.get("transposed", False)
        wshape = (s["c"], s["o"], s["k"], s["k"]) if tr else (s["o"], s["c"], s["k"], s["k"])
        conv = (lambda x, w, b: F.conv_transpose2d(x, w, b, s["s"], s["p"])) if tr else \
               (lambda x, w, b: F.conv2d(x, w, b, s["s"], s["p"]))
        x1 = torch.rand(1, s["c"], s["h"], s["h"]) * 2 - 1
        w = torch.rand(*wshape) * 2 - 1
        b = torch.rand(s["o"]) * 2 - 1

        def fwd():
            with torch.no_grad():
                conv(x1, w, b)
        out["fwd_b1/" + s["name"]] = timed(fwd, args.min_time)

        x8 = (torch.rand(8, s["c"], s["h"], s["h"]) * 2 - 1).requires_grad_()
        wg = w.clone().requires_grad_()
        bg = b.clone().requires_grad_()
        gy = torch.rand_like(conv(x8, wg, bg))

        def fwdbwd():
            y = conv(x8, wg, bg)
            y.backward(gy)
        out["fwdbwd_b8/" + s["name"]] = timed(fwdbwd, args.min_time)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
