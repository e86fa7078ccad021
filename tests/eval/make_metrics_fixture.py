#!/usr/bin/python3
"""A numpy statement of the evaluation protocol of DESIGN.md §5, and the
fixture it writes for tests/eval/test_metrics.cpp.

The protocol, as the published evaluation code computes it (the authors'
utils/eval_utils.py, EvalUtil.get_measures, and eval_RHD.py; FreiHAND's
alignment):
  * per joint, the Euclidean errors over the samples where the joint counts;
  * EPE mean / median: the mean over joints of each joint's mean / median;
  * PCK at thresholds linspace(lo, hi, n); the curve is the mean over joints;
    AUC is the mean over joints of trapz(pck_j, t) / trapz(1, t);
  * 3D: linspace(0, 50, 20) mm; "AUC 20-50" = the normalised trapezoid over the
    last 12 thresholds of that grid (pck[8:], 21.05..50 mm); beside it the true
    20-50 mm figure on linspace(20, 50, 31);
  * 2D: linspace(0, 30, 20) px;
  * freihand: also after aligning each predicted hand to its ground truth by
    Procrustes analysis (centre, unit Frobenius norm, R = U V^T of
    svd(gt_n^T pred_n), scale = the sum of its singular values), on
    linspace(0, 50, 100) mm;
  * do: the five fingertips (joints 1, 5, 9, 13, 17), each hand first moved by
    the scale and translation that best fit it to the ground truth.

Run from the repository root:  /usr/bin/python3 tests/eval/make_metrics_fixture.py
"""
import json
import os

import numpy as np

J = 21
TIPS = [1, 5, 9, 13, 17]


def summarize(errors, lo, hi, steps):
    """errors: list of 1-D arrays, one per joint (possibly empty)."""
    t = np.linspace(lo, hi, steps)
    norm = np.trapz(np.ones_like(t), t)
    means, medians, aucs, curves = [], [], [], []
    for e in errors:
        if len(e) == 0:
            continue
        e = np.asarray(e, dtype=np.float64)
        means.append(e.mean())
        medians.append(np.median(e))
        curve = np.array([(e <= x).mean() for x in t])
        curves.append(curve)
        aucs.append(np.trapz(curve, t) / norm)
    curve = np.mean(np.array(curves), axis=0)
    return dict(epe_mean=float(np.mean(means)), epe_median=float(np.mean(medians)), auc=float(np.mean(aucs)),
                thresholds=t.tolist(), pck=curve.tolist(), joints=len(means))


def summarize_3d(errors, steps=20):
    s = summarize(errors, 0.0, 50.0, steps)
    out = {"epe_mean_mm": s["epe_mean"], "epe_median_mm": s["epe_median"], "auc_0_50": s["auc"],
           "thresholds_mm": s["thresholds"], "pck": s["pck"], "joints": s["joints"]}
    if steps == 20:
        t, p = np.array(s["thresholds"])[8:], np.array(s["pck"])[8:]
        out["auc_20_50"] = float(np.trapz(p, t) / np.trapz(np.ones_like(t), t))
    exact = summarize(errors, 20.0, 50.0, 31)
    out["auc_20_50_exact"] = exact["auc"]
    out["pck_20_50_exact"] = exact["pck"]
    return out


def procrustes(pred, gt):
    tg, tp = gt.mean(0), pred.mean(0)
    g, p = gt - tg, pred - tp
    sg, sp = np.linalg.norm(g) + 1e-8, np.linalg.norm(p) + 1e-8
    g, p = g / sg, p / sp
    u, w, vt = np.linalg.svd(g.T @ p)
    R = u @ vt
    return (p @ R.T) * w.sum() * sg + tg


def scale_translation(pred, gt):
    mp, mg = pred.mean(0), gt.mean(0)
    pc, gc = pred - mp, gt - mg
    s = (pc * gc).sum() / (pc * pc).sum()
    return s * pc + mg


def metrics(pred, gt, vis, protocol, pred_uv=None, gt_uv=None):
    N = gt.shape[0]
    joints = TIPS if protocol == "do" else list(range(J))
    e3 = [[] for _ in range(J)]
    ea = [[] for _ in range(J)]
    e2 = [[] for _ in range(J)]
    for i in range(N):
        ids = [j for j in joints if vis is None or vis[i, j] != 0]
        if not ids:
            continue
        p, g = pred[i, ids], gt[i, ids]
        if protocol == "do" and len(ids) >= 2:
            p = scale_translation(p, g)
        d = np.sqrt(((p - g) ** 2).sum(1))
        for k, j in enumerate(ids):
            e3[j].append(d[k])
        if protocol == "freihand":
            a = procrustes(p, g)
            da = np.sqrt(((a - g) ** 2).sum(1))
            for k, j in enumerate(ids):
                ea[j].append(da[k])
        if pred_uv is not None:
            d2 = np.sqrt(((pred_uv[i, ids] - gt_uv[i, ids]) ** 2).sum(1))
            for k, j in enumerate(ids):
                e2[j].append(d2[k])
    out = summarize_3d(e3)
    if pred_uv is not None:
        s = summarize(e2, 0.0, 30.0, 20)
        out["uv"] = {"epe_mean_px": s["epe_mean"], "epe_median_px": s["epe_median"], "auc_0_30": s["auc"],
                     "thresholds_px": s["thresholds"], "pck": s["pck"]}
    if protocol == "freihand":
        out["aligned"] = summarize_3d(ea, 100)
    return out


def rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def case(name, protocol, seed, n, with_vis, with_uv):
    rng = np.random.default_rng(seed)
    gt = rng.normal(scale=40.0, size=(n, J, 3)) + np.array([0.0, 0.0, 600.0])
    # Errors spread over the whole 0-50 mm range and beyond, plus for
    # freihand a global rotation, scale and shift that alignment removes.
    pred = gt + rng.normal(scale=1.0, size=(n, J, 3)) * rng.uniform(0.5, 30.0, size=(n, J, 1))
    if protocol in ("freihand", "do"):
        for i in range(n):
            c = gt[i].mean(0)
            pred[i] = (pred[i] - c) @ rotation(rng).T * rng.uniform(0.8, 1.2) + c + rng.normal(scale=20, size=3) \
                if protocol == "freihand" else (pred[i] - c) * rng.uniform(0.8, 1.2) + c + rng.normal(scale=20, size=3)
    vis = None
    if with_vis:
        vis = (rng.uniform(size=(n, J)) > 0.25).astype(np.float64)
        vis[:, 3] = 0  # a joint never measured: left out of every average
        if protocol == "do":
            vis[:, TIPS[0]] = 1
    gt_uv = pred_uv = None
    if with_uv:
        gt_uv = rng.uniform(0, 320, size=(n, J, 2))
        pred_uv = gt_uv + rng.normal(size=(n, J, 2)) * rng.uniform(0.2, 25.0, size=(n, J, 1))
    # Inputs with 3 decimals keep the fixture small; the expected figures are
    # computed from exactly the values stored.
    pred, gt = np.round(pred, 3), np.round(gt, 3)
    if with_uv:
        pred_uv, gt_uv = np.round(pred_uv, 3), np.round(gt_uv, 3)
    expected = metrics(pred, gt, vis, protocol, pred_uv, gt_uv)
    c = {"name": name, "protocol": protocol, "pred_xyz": pred.tolist(), "gt_xyz": gt.tolist(), "expected": expected}
    if vis is not None:
        c["vis"] = vis.tolist()
    if with_uv:
        c["pred_uv"] = pred_uv.tolist()
        c["gt_uv"] = gt_uv.tolist()
    return c


def main():
    cases = [
        case("rhd_all_joints", "rhd", 1, 24, False, True),
        case("stb_masked", "stb", 2, 21, True, True),
        case("freihand_aligned", "freihand", 3, 16, False, False),
        case("do_fingertips", "do", 4, 20, True, False),
    ]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "metrics_reference.json")
    with open(out, "w") as f:
        json.dump({"generator": "tests/eval/make_metrics_fixture.py", "numpy": np.__version__, "cases": cases}, f)
    print("wrote", out)


if __name__ == "__main__":
    main()
