#!/usr/bin/python3
"""Runs `lgh bench` from two builds of lgh (e.g. default flags and
-DLGH_NATIVE_ARCH=ON) for each case, alternating them within one session, and
prints a markdown table: the pooled medians and minimums of each, and the
median over rounds of the ratio of the two runs of a round (A time / B
time). On a machine shared with other work the load changes between rounds,
which moves the pooled medians; the two runs of one round see about the same
load, so their ratio is the steadier figure.

  /usr/bin/python3 benchmarks/compare_builds.py --a build-default/tools/lgh/lgh --b build/tools/lgh/lgh \
      --threads 2 --case paper:1:infer --case small:1:infer
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run_lgh(lgh, config, batch, mode, threads, iters, warmup):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "bench.json")
        subprocess.run([lgh, "bench", "--config", config, "--batch", str(batch), "--mode", mode, "--threads",
                        str(threads), "--iters", str(iters), "--warmup", str(warmup), "--json", out],
                       check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)["times_ms"]


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the first lgh binary")
    ap.add_argument("--b", required=True, help="the second lgh binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10, help="alternate A/B this many times; medians pooled")
    ap.add_argument("--case", action="append", required=True, help="config:batch:mode")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()

    rows, raw = [], []
    for case in args.case:
        config, batch, mode = case.split(":")
        a, b, ratios = [], [], []
        for _ in range(args.rounds):
            ra = run_lgh(args.a, config, int(batch), mode, args.threads, args.iters, args.warmup)
            rb = run_lgh(args.b, config, int(batch), mode, args.threads, args.iters, args.warmup)
            a += ra
            b += rb
            ratios.append(median(ra) / median(rb))
        ma, mb, r = median(a), median(b), median(ratios)
        rows.append((config, batch, mode, ma, mb, min(a), min(b), r))
        raw.append({"config": config, "batch": int(batch), "mode": mode, "a_ms": a, "b_ms": b, "round_ratios": ratios})
        print(f"{case}: A {ma:.1f} ms, B {mb:.1f} ms, A/B per round {r:.2f}", file=sys.stderr)

    print("| config | batch | mode | A median (ms) | B median (ms) | A min (ms) | B min (ms) | A / B (median of rounds) |")
    print("|---|---|---|---|---|---|---|---|")
    for config, batch, mode, ma, mb, mina, minb, r in rows:
        print(f"| {config} | {batch} | {mode} | {ma:.1f} | {mb:.1f} | {mina:.1f} | {minb:.1f} | {r:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": args.a, "b": args.b, "threads": args.threads, "cases": raw}, f, indent=1)


if __name__ == "__main__":
    main()
