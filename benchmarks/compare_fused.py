#!/usr/bin/python3
"""Markdown table of the fused kernels (bench_kernels --json) against the
unfused PyTorch sequences (torch_fused_ops.py --json), per op, pass and batch:
medians in microseconds, speed-up = PyTorch time / lgh time (> 1: lgh is
faster), and each side's rate as a percentage of its run's device-to-device
copy bandwidth.

  python3 benchmarks/compare_fused.py lgh_kernels.json torch_fused.json
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        ours = json.load(f)
    with open(sys.argv[2]) as f:
        theirs = json.load(f)
    torch_by_key = {}
    for r in theirs["results"]:
        torch_by_key[(r["op"], r["pass"], r["batch"], r["impl"])] = r

    def pct(r):
        return f"{r['pct_of_copy']:.0f}%" if r and r.get("pct_of_copy") is not None else "-"

    def us(r):
        return f"{r['time_us']:.1f}" if r else "-"

    def speedup(r, base):
        return f"{r['time_us'] / base['time_us']:.2f}x" if r else "-"

    print(f"lgh: {ours['device']}, copy {ours['copy_gb_per_s']:.0f} GB/s; "
          f"PyTorch {theirs.get('torch', '?')}: {theirs['device']}")
    print()
    print("| op | pass | batch | lgh (us) | lgh % copy | eager (us) | speed-up | compile (us) | speed-up | eager % copy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in ours["results"]:
        key = (r["op"], r["pass"], r["batch"])
        eager = torch_by_key.get(key + ("torch_eager",))
        comp = torch_by_key.get(key + ("torch_compile",))
        print(f"| {r['op']} | {r['pass']} | {r['batch']} | {us(r)} | {pct(r)} | {us(eager)} | {speedup(eager, r)} | "
              f"{us(comp)} | {speedup(comp, r)} | {pct(eager)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
