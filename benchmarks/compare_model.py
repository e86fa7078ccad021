#!/usr/bin/python3
"""Runs `lgh bench` and its PyTorch counterpart (torch_model.py) for each case,
alternating within one session, and prints a markdown table of medians and
speed-ups (PyTorch time / lgh time; > 1 means lgh is faster).

  /usr/bin/python3 benchmarks/compare_model.py --lgh build/tools/lgh/lgh --threads 2 \
      --case paper:1:infer --case small:8:infer --case small:8:train
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_lgh(lgh, config, batch, mode, threads, iters, warmup):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "bench.json")
        subprocess.run([lgh, "bench", "--config", config, "--batch", str(batch), "--mode", mode, "--threads",
                        str(threads), "--iters", str(iters), "--warmup", str(warmup), "--json", out],
                       check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)


def run_torch(config, batch, mode, threads, iters, warmup):
    r = subprocess.run([sys.executable, os.path.join(HERE, "torch_model.py"), "--config", config, "--batch",
                        str(batch), "--mode", mode, "--threads", str(threads), "--iters", str(iters), "--warmup",
                        str(warmup)], check=True, capture_output=True, text=True)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lgh", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternate lgh/PyTorch this many times; medians pooled")
    ap.add_argument("--case", action="append", required=True, help="config:batch:mode")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()

    rows, raw = [], []
    for case in args.case:
        config, batch, mode = case.split(":")
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours += run_lgh(args.lgh, config, int(batch), mode, args.threads, args.iters, args.warmup)["times_ms"]
            theirs += run_torch(config, int(batch), mode, args.threads, args.iters, args.warmup)["times_ms"]
        med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else 0.5 * (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2])
        a, b = med(ours), med(theirs)
        rows.append((config, batch, mode, a, b, b / a))
        raw.append({"config": config, "batch": int(batch), "mode": mode, "lgh_ms": ours, "torch_ms": theirs})
        print(f"{case}: lgh {a:.1f} ms, PyTorch {b:.1f} ms, speed-up {b / a:.2f}x", file=sys.stderr)

    print(f"| config | batch | mode | lgh median (ms) | PyTorch median (ms) | speed-up |")
    print(f"|---|---|---|---|---|---|")
    for config, batch, mode, a, b, r in rows:
        print(f"| {config} | {batch} | {mode} | {a:.1f} | {b:.1f} | {r:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f)


if __name__ == "__main__":
    main()
