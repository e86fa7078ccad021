#!/usr/bin/python3
"""PyTorch eager timings of the model, the counterpart of `lgh bench`.

Same architecture (tests/reference/lgh_model.py), same config, batch, mode and
threads: `infer` runs eval mode under no_grad with the hard selector; `train`
runs train mode with a sampled selector (tau 5), the Eq. (10) loss, backward
and an Adam step with the paper's three parameter groups. Prints JSON with the
median, mean and min per iteration.

--device cuda runs it on the GPU (each iteration ends with a synchronisation,
as `lgh bench --device cuda`); --compile wraps the model in torch.compile
(the warm-up iterations pay the compilation). TF32 stays at PyTorch's
defaults (allowed for convolutions, not for matrix products).

  /usr/bin/python3 benchmarks/torch_model.py --config small --batch 8 --mode train --threads 2
  python3 benchmarks/torch_model.py --config paper --batch 32 --mode train --device cuda --compile
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import lgh_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="small", choices=["small", "paper"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--mode", default="infer", choices=["infer", "train"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    cfg = lgh_model.named_config(args.config)
    model = lgh_model.LearnableGroupsHandModel(cfg).to(dev)
    fwd = torch.compile(model) if args.compile else model
    B, S, J, K = args.batch, cfg.S, cfg.J, cfg.K
    image = torch.rand(B, 3, S, S, device=dev)

    if args.mode == "train":
        model.train()
        intr = torch.tensor([[2.5 * S, 2.5 * S, S / 2, S / 2]] * B, device=dev)
        z_root = torch.full((B,), 500.0, device=dev)
        s0 = torch.full((B,), 40.0, device=dev)
        xyz = torch.rand(B, J, 3, device=dev) * 620 - 60
        selector = [p for n, p in model.named_parameters() if n.startswith("meta_S")]
        fusion = [p for n, p in model.named_parameters() if n.startswith("nddr_layer0")]
        rest = [p for n, p in model.named_parameters()
                if p.requires_grad and not n.startswith("meta_S") and not n.startswith("nddr_layer0")]
        groups = [{"params": rest, "lr": 1e-4}, {"params": selector, "lr": 1e-1}]
        if fusion:
            groups.append({"params": fusion, "lr": 1e-2})
        opt = torch.optim.Adam(groups)

        def step():
            opt.zero_grad()
            uniforms = torch.rand(J, K, device=dev).clamp_(1e-7, 1 - 1e-7)
            uv, depth, _ = fwd(image, "sample", 5.0, uniforms)
            loss = lgh_model.eq10_loss(uv, depth, xyz, intr, z_root, s0)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                fwd(image, "hard")

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    print(json.dumps({"config": args.config, "mode": args.mode, "batch": B, "threads": args.threads,
                      "iters": args.iters, "median_ms": med, "mean_ms": statistics.mean(times),
                      "min_ms": min(times), "images_per_s": 1000.0 * B / med, "times_ms": times,
                      "device": str(dev), "compile": args.compile, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
