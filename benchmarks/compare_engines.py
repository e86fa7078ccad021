#!/usr/bin/python3
"""Inference of the model on the CPU: lgh against the engines a deployment
engineer would pick instead, ONNX Runtime and OpenVINO (and PyTorch eager),
same architecture, batch, threads and precision (fp32), alternating within
one run; prints a markdown table of medians.

  /usr/bin/python3 benchmarks/compare_engines.py --lgh build/tools/lgh/lgh --threads 2 \\
      --case paper:1 --case paper:8 --case small:1

What it does:
  1. Creates (once) a virtual environment that sees Debian's python3-torch and
     numpy, and installs the pinned engines from PyPI into it (ENGINES below).
     Nothing of it is a dependency of the library or of its tests.
  2. Exports the PyTorch statement of the model (tests/reference/lgh_model.py,
     eval mode, hard selector) to ONNX for each config and batch.
  3. Checks every engine's outputs against PyTorch on the same image (uv and
     depth within 1e-4 of each output's largest magnitude).
  4. For each case, `rounds` times in turn: `lgh bench --mode infer`, ONNX
     Runtime, OpenVINO and PyTorch, each in its own process with the same
     number of threads, `iters` timed runs after `warmup` untimed ones.
     Medians are pooled over the rounds.

The speed-up column is (the faster engine's median) / (lgh's median): > 1 means
lgh is faster than both.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(ROOT, "tests", "reference")

# Pinned: a table is only comparable with the versions it was measured with.
ENGINES = ["onnxruntime==1.32.0", "openvino==2026.4.1"]
DEFAULT_VENV = os.path.join(ROOT, "build", "engines-venv")
TOLERANCE = 1e-4


# ---- environment ---------------------------------------------------------------------------
def in_venv(venv):
    return os.path.realpath(sys.prefix) == os.path.realpath(venv)


def ensure_venv(venv):
    """Creates the environment when missing (or when its pins changed) and
    returns its python."""
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "lgh-engines.txt")
    wanted = "\n".join(ENGINES) + "\n"
    if os.path.exists(stamp) and open(stamp).read() == wanted:
        return python
    print(f"compare_engines: setting up {venv} with {' '.join(ENGINES)}", file=sys.stderr)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *ENGINES], check=True)
    with open(stamp, "w") as f:
        f.write(wanted)
    return python


# ---- export and checks (run inside the environment) ----------------------------------------
def build_model(config):
    import torch
    sys.path.insert(0, REFERENCE)
    import lgh_model

    torch.manual_seed(1)
    model = lgh_model.LearnableGroupsHandModel(lgh_model.named_config(config))
    model.eval()

    class Wrapper(torch.nn.Module):
        """image -> (uv, depth) with the hard selector, the inference path."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, image):
            uv, depth, _ = self.m(image, "hard")
            return uv, depth

    return Wrapper(model).eval(), model.cfg


def export(config, batch, path):
    import warnings

    import torch

    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")

    wrapper, cfg = build_model(config)
    image = torch.rand(batch, 3, cfg.S, cfg.S, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.onnx.export(wrapper, (image,), path, input_names=["image"], output_names=["uv", "depth"],
                          opset_version=13, do_constant_folding=True)
    # Exporting a wrapper leaves the wrapped model in training mode afterwards.
    wrapper.eval()
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(image)]
    return image.numpy(), ref


def ort_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"image": x})


def ov_session(path, threads):
    import openvino as ov

    core = ov.Core()
    # fp32 explicitly: on CPUs with AMX or AVX512-BF16 OpenVINO would otherwise run in bf16.
    compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                                                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    req = compiled.create_infer_request()

    def run(x):
        res = req.infer({0: x})
        return [res[o] for o in compiled.outputs]

    return run


def torch_session(config, threads):
    import torch

    torch.set_num_threads(threads)
    wrapper, _ = build_model(config)

    def run(x):
        with torch.no_grad():
            return [t.numpy() for t in wrapper(torch.from_numpy(x))]

    return run


def make_session(engine, path, config, threads):
    if engine == "ort":
        return ort_session(path, threads)
    if engine == "openvino":
        return ov_session(path, threads)
    return torch_session(config, threads)


def relative_error(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def check(path, config, image, ref, threads):
    for engine in ("ort", "openvino"):
        out = make_session(engine, path, config, threads)(image)
        for name, got, want in zip(("uv", "depth"), out, ref):
            err = relative_error(got, want)
            if not err <= TOLERANCE:
                raise SystemExit(f"compare_engines: {engine} {name} differs from PyTorch by {err:.2e} "
                                 f"of its largest magnitude (tolerance {TOLERANCE:g})")
            print(f"compare_engines: {config} {engine} {name} within {err:.1e} of PyTorch", file=sys.stderr)


def worker(args):
    """One engine's timings, as JSON on stdout."""
    import time

    import numpy as np

    run = make_session(args.worker, args.model, args.config, args.threads)
    x = np.load(args.image)
    for _ in range(args.warmup):
        run(x)
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"times_ms": times}))


# ---- the driver ------------------------------------------------------------------------------
def run_lgh(lgh, config, batch, threads, iters, warmup):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "bench.json")
        subprocess.run([lgh, "bench", "--config", config, "--batch", str(batch), "--mode", "infer", "--threads",
                        str(threads), "--iters", str(iters), "--warmup", str(warmup), "--json", out],
                       check=True, stderr=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)["times_ms"]


def run_worker(engine, model, image, config, args):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", engine, "--model", model,
                        "--image", image, "--config", config, "--threads", str(args.threads), "--iters",
                        str(args.iters), "--warmup", str(args.warmup)], check=True, capture_output=True, text=True)
    return json.loads(r.stdout)["times_ms"]


def versions():
    import numpy
    import onnxruntime
    import openvino
    import torch

    return {"onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__.split("-")[0],
            "torch": torch.__version__, "numpy": numpy.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lgh", help="the lgh binary (build/tools/lgh/lgh)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternate the engines this many times; medians pooled")
    ap.add_argument("--case", action="append", help="config:batch (default paper:1, paper:8, small:1)")
    ap.add_argument("--engines", default="ort,openvino,torch", help="comma-separated subset of ort,openvino,torch")
    ap.add_argument("--venv", default=DEFAULT_VENV, help="virtual environment for the engines")
    ap.add_argument("--json", help="also write the raw timings here")
    # Internal: one engine's timing run.
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--image", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        return worker(args)
    if not args.lgh:
        ap.error("--lgh is required")
    if not in_venv(args.venv):
        python = ensure_venv(args.venv)
        os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])

    import numpy as np

    engines = [e for e in args.engines.split(",") if e]
    cases = args.case or ["paper:1", "paper:8", "small:1"]
    lgh = os.path.abspath(args.lgh)
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as d:
        for case in cases:
            config, batch = case.split(":")
            batch = int(batch)
            model = os.path.join(d, f"{config}_b{batch}.onnx")
            image, ref = export(config, batch, model)
            image_path = os.path.join(d, f"{config}_b{batch}.npy")
            np.save(image_path, image)
            check(model, config, image, ref, args.threads)
            times = {"lgh": []}
            times.update({e: [] for e in engines})
            for r in range(args.rounds):
                times["lgh"] += run_lgh(lgh, config, batch, args.threads, args.iters, args.warmup)
                for e in engines:
                    times[e] += run_worker(e, model, image_path, config, args)
                print(f"compare_engines: {case} round {r + 1}/{args.rounds}: " +
                      ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in times.items()), file=sys.stderr)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((config, batch, med))
            raw.append({"config": config, "batch": batch, "threads": args.threads, "times_ms": times})

    names = {"ort": "ONNX Runtime", "openvino": "OpenVINO", "torch": "PyTorch eager"}
    v = versions()
    print(f"Versions: onnxruntime {v['onnxruntime']}, openvino {v['openvino']}, torch {v['torch']}; "
          f"{args.threads} threads, fp32, medians of {args.rounds} x {args.iters} runs.\n")
    print("| config | batch | lgh (ms) | " + " | ".join(f"{names[e]} (ms)" for e in engines) +
          " | faster engine / lgh |")
    print("|---|---|---|" + "---|" * len(engines) + "---|")
    for config, batch, med in rows:
        best = min(med[e] for e in engines if e != "torch") if any(e != "torch" for e in engines) else med["torch"]
        print(f"| {config} | {batch} | {med['lgh']:.1f} | " + " | ".join(f"{med[e]:.1f}" for e in engines) +
              f" | {best / med['lgh']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": v, "results": raw}, f, indent=1)


if __name__ == "__main__":
    main()
