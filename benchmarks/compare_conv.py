#!/usr/bin/python3
"""Runs bench_conv (Google Benchmark, lgh) and torch_conv.py (PyTorch eager)
on the shapes of conv_shapes.json in one session, with the same threads, and
prints a markdown table of medians and speed-ups (PyTorch time / lgh time).

  /usr/bin/python3 benchmarks/compare_conv.py --bench build-bench/benchmarks/bench_conv --threads 2
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path of the bench_conv executable")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.5)
    args = ap.parse_args()

    env = dict(os.environ, LGH_NUM_THREADS=str(args.threads))
    r = subprocess.run([args.bench, "--benchmark_format=json", f"--benchmark_repetitions={args.repetitions}",
                        "--benchmark_report_aggregates_only=true", f"--benchmark_min_time={args.min_time}"],
                       env=env, check=True, capture_output=True, text=True)
    ours = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].replace("/real_time", "")
            unit = {"ms": 1.0, "us": 1e-3, "ns": 1e-6}[b["time_unit"]]
            ours[name] = b["real_time"] * unit

    t = subprocess.run([sys.executable, os.path.join(HERE, "torch_conv.py"), "--threads", str(args.threads),
                        "--min-time", str(args.min_time * args.repetitions)],
                       check=True, capture_output=True, text=True)
    theirs = json.loads(t.stdout)

    print("| benchmark | lgh median (ms) | PyTorch median (ms) | speed-up |")
    print("|---|---|---|---|")
    for name in ours:
        if name in theirs:
            print(f"| `{name}` | {ours[name]:.3f} | {theirs[name]:.3f} | {theirs[name] / ours[name]:.2f}x |")


if __name__ == "__main__":
    main()
