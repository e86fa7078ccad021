#!/usr/bin/env python3
"""Writes a random model and its eval-mode outputs for a named config, for
comparing the C++ model with PyTorch at full size.

    /usr/bin/python3 tests/reference/dump_model_case.py --config paper --out DIR [--seed N] [--batch B]

DIR/weights.safetensors  random weights (see lgh_model.randomize_), a plain
                         state-dict dump without __metadata__
DIR/case.safetensors     image [B,3,S,S] in [0,1];
                         eval_hard.{uv,depth,selector}, eval_soft.{uv,depth,selector}
                         (eval-mode BN; soft with tau = eval_soft.tau);
                         eval.group<k>.uvd [B,J,3] (per-group soft-argmax, 1/4 scale);
                         with --intermediates also eval.{h0,t,neck,group<k>.features,
                         group<k>.fused}.
                         __metadata__: "lgh.config" (JSON) and "lgh.case" (JSON:
                         seed, batch, tau, and the float32-vs-float64 discrepancy
                         max|f32 - f64| / max|f64| of each output).

The weights are drawn and calibrated in float32 (fast), the reference outputs
are computed in float64 from the same float32-representable values and stored
as float32. One thread; `paper` with --batch 1 takes about 20 s.
"""
import argparse
import copy
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgh_model as L  # noqa: E402
import make_model_fixtures as fixtures  # noqa: E402
import safetensors_np as st  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="Random weights and eval-mode reference outputs for a named config.")
    ap.add_argument("--config", required=True, choices=sorted(L.NAMED_CONFIGS))
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1, help="images in the batch (default 1)")
    ap.add_argument("--tau", type=float, default=fixtures.SOFT_TAU, help="temperature of the soft selector")
    ap.add_argument("--intermediates", action="store_true", help="also store the (large) intermediate features")
    ap.add_argument("--no-float32-check", action="store_true", help="skip measuring the float32 discrepancy")
    args = ap.parse_args()
    if args.batch < 1:
        ap.error("--batch must be >= 1")
    torch.set_num_threads(1)
    t0 = time.time()

    cfg = L.named_config(args.config)
    g = torch.Generator().manual_seed(args.seed)
    image = torch.rand((args.batch, 3, cfg.S, cfg.S), generator=g, dtype=torch.float32)
    # BN statistics are calibrated on the case's own images plus one more: at the
    # innermost hourglass level (2x2 for `small`) statistics of unrelated images
    # would leave the eval-mode activations far from order one.
    extra = torch.rand((1, 3, cfg.S, cfg.S), generator=g, dtype=torch.float32)
    calibration = torch.cat([image, extra])
    torch.manual_seed(args.seed)
    model = L.LearnableGroupsHandModel(cfg)
    L.randomize_(model, args.seed, calibration)
    weights = L.state_dict_numpy(model)

    m64 = copy.deepcopy(model).to(torch.float64)
    ref = fixtures.eval_results(m64, image.to(torch.float64), soft_tau=args.tau, intermediates=True)
    stats = {"seed": args.seed, "batch": args.batch, "eval_soft_tau": args.tau, "computed_in": "float64"}
    if not args.no_float32_check:
        got = fixtures.eval_results(model, image, soft_tau=args.tau, intermediates=True)
        stats["float32_discrepancy"] = {k: float(f"{fixtures.discrepancy(got[k], ref[k]):.3g}")
                                        for k in ref if k.startswith(("eval_", "eval.group"))
                                        and (args.intermediates or k.endswith(".uvd") or k.startswith("eval_"))}

    case = {"image": image}
    for k, v in ref.items():
        if k.startswith("eval_") or k.endswith(".uvd") or args.intermediates:
            case[k] = v
    case["eval_soft.tau"] = torch.tensor(args.tau)
    os.makedirs(args.out, exist_ok=True)
    st.save_file(weights, os.path.join(args.out, "weights.safetensors"))
    st.save_file({k: fixtures.to_numpy(v) for k, v in case.items()}, os.path.join(args.out, "case.safetensors"),
                 metadata={"lgh.config": cfg.to_json(), "lgh.case": json.dumps(stats, sort_keys=True)})
    worst = max(stats.get("float32_discrepancy", {"-": float("nan")}).values())
    print(f"wrote {args.out}: config {args.config}, {L.count_parameters(model)} parameters, batch {args.batch}; "
          f"float32 discrepancy {worst:.1e}; {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
