#!/usr/bin/env python3
"""Self-checks of the PyTorch reference model and of the files made from it.

    /usr/bin/python3 tests/reference/test_reference_model.py [-v] [TestCase[.test]]

Checks: the `paper` state dict has exactly the names, shapes and order of
shared/reference/state_dict_keys.tsv; the published parameter counts; the
Eq. (9) fusion initialisation; the Eq. (8) selector modes; a finite-difference
check of the Eq. (10) loss through the whole model on a tiny config in float64;
the committed fixtures against a fresh recomputation; the safetensors
reader/writer and the .pth converter. About half a minute on one thread.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import lgh_model as L  # noqa: E402
import make_model_fixtures as fixtures  # noqa: E402
import pth_to_safetensors as converter  # noqa: E402
import safetensors_np as st  # noqa: E402

torch.set_num_threads(1)

# The key list of the authors' checkpoint; looked for next to the repository
# (a shared/ folder beside or inside it).
KEY_LIST_CANDIDATES = [
    os.path.join(ROOT, "shared", "reference", "state_dict_keys.tsv"),
    os.path.join(ROOT, "..", "shared", "reference", "state_dict_keys.tsv"),
]
TINY = L.Config(S=64, F=2, P0=2, P1=3, K=2, fusion=True, hourglass_depth=1, hourglass_modules=1, J=3)


def key_list():
    for path in KEY_LIST_CANDIDATES:
        if os.path.isfile(path):
            rows = []
            with open(path) as f:
                for line in f:
                    if line.startswith("#") or not line.strip():
                        continue
                    name, shape, dtype = line.rstrip("\n").split("\t")
                    rows.append((name, tuple(int(d) for d in shape.split("x")) if shape else (), dtype))
            return rows
    return None


class StateDictLayout(unittest.TestCase):
    def test_paper_keys_shapes_and_order_match_the_checkpoint(self):
        rows = key_list()
        if rows is None:
            self.skipTest("state_dict_keys.tsv not found")
        sd = L.LearnableGroupsHandModel(L.named_config("paper")).state_dict()
        mine = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()]
        self.assertEqual(len(rows), 1104)
        self.assertEqual(len(mine), len(rows))
        for a, b in zip(mine, rows):
            self.assertEqual(a, b)

    def test_published_parameter_counts(self):
        for name, count in L.NAMED_PARAMETER_COUNTS.items():
            with self.subTest(config=name):
                self.assertEqual(L.count_parameters(L.LearnableGroupsHandModel(L.named_config(name))), count)

    def test_grids_are_frozen_column_and_row_indices(self):
        m = L.LearnableGroupsHandModel(TINY)
        g = m.b_get_uv[1]
        self.assertFalse(g.wx.requires_grad or g.wy.requires_grad)
        n = TINY.S // 4
        self.assertTrue(torch.equal(g.wx[2], torch.arange(n, dtype=torch.float32)))  # columns
        self.assertTrue(torch.equal(g.wy[:, 5], torch.arange(n, dtype=torch.float32)))  # rows

    def test_no_fusion_layer_with_one_group_or_fusion_off(self):
        for cfg in (L.Config(S=64, F=4, P0=2, P1=2, K=1, fusion=True, hourglass_depth=1, hourglass_modules=1),
                    L.Config(S=64, F=4, P0=2, P1=2, K=3, fusion=False, hourglass_depth=1, hourglass_modules=1)):
            sd = L.LearnableGroupsHandModel(cfg).state_dict()
            self.assertFalse(any(k.startswith("nddr_layer0.") for k in sd))
            self.assertFalse(json.loads(cfg.to_json())["fusion"])

    def test_skip_convolutions_only_where_channels_change(self):
        sd = L.LearnableGroupsHandModel(TINY).state_dict()  # P0 = 2 != P1 = 3
        self.assertIn("b_conv1.0.skip_con.0.weight", sd)
        sd = L.LearnableGroupsHandModel(L.named_config("paper")).state_dict()
        self.assertNotIn("b_conv1.0.skip_con.0.weight", sd)
        self.assertNotIn("backbone.r4.conv4.weight", sd)

    def test_invalid_configs_are_refused(self):
        for bad in (dict(S=96), dict(S=0), dict(F=3), dict(K=0), dict(hourglass_depth=5, S=64)):
            with self.subTest(**bad), self.assertRaises(ValueError):
                L.Config(**bad)


class Fusion(unittest.TestCase):
    def test_initialisation_is_a_weighted_sum(self):
        # Eq. (9): with BN at its initial state (identity up to eps) the fused
        # feature is G_k = relu(0.9 F_k + 0.1/(K-1) sum_{i != k} F_i).
        torch.manual_seed(0)
        for K in (2, 3, 4):
            P = 5
            fusion = L.GroupFusion(K, P).double().eval()
            feats = [torch.randn(2, P, 3, 4, dtype=torch.float64) for _ in range(K)]
            out = fusion(feats)
            for k in range(K):
                # The weights are float32 parameters: compare with the rounded alphas.
                own, other = (float(torch.tensor(a, dtype=torch.float32)) for a in (0.9, 0.1 / (K - 1)))
                mix = own * feats[k] + other * sum(f for i, f in enumerate(feats) if i != k)
                conv = fusion.Conv_Task_List[k][0](torch.cat(feats, 1))
                self.assertTrue(torch.allclose(conv, mix, rtol=0, atol=1e-14))
                self.assertTrue(torch.allclose(out[k], F.relu(mix / (1 + 1e-5) ** 0.5), rtol=0, atol=1e-14))
                self.assertEqual(float(fusion.Conv_Task_List[k][0].bias.abs().max()), 0.0)


class Selector(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(7)
        self.theta = torch.rand((21, 3), generator=g, dtype=torch.float64) * 2 - 1
        self.u = torch.rand((21, 3), generator=g, dtype=torch.float64) * 0.98 + 0.01

    def test_hard_is_one_hot_argmax_with_ties_to_the_lowest_group(self):
        s = L.select_groups(self.theta, "hard")
        self.assertTrue(torch.equal(s.sum(1), torch.ones(21, dtype=torch.float64)))
        self.assertTrue(torch.equal(s.argmax(1), self.theta.argmax(1)))
        self.assertTrue(set(s.unique().tolist()) <= {0.0, 1.0})
        tied = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.7, 0.7], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
        self.assertEqual(L.select_groups(tied, "hard").argmax(1).tolist(), [0, 1, 0])
        # The initialisation (all 0.5, as the authors) selects group 0 for every joint.
        init = L.JointGroupSelector(21, 3).weight.detach()
        self.assertTrue(bool((L.select_groups(init, "hard")[:, 0] == 1).all()))

    def test_soft_is_a_tempered_softmax(self):
        for tau in (0.3, 1.0, 5.0):
            s = L.select_groups(self.theta, "soft", tau)
            self.assertTrue(torch.allclose(s.sum(1), torch.ones(21, dtype=torch.float64)))
            self.assertTrue(torch.allclose(s, torch.softmax(self.theta / tau, 1)))
        cold = L.select_groups(self.theta, "soft", 1e-4)
        self.assertTrue(torch.allclose(cold, L.select_groups(self.theta, "hard"), atol=1e-6))

    def test_sample_is_gumbel_softmax_on_the_given_uniforms(self):
        tau = 2.0
        s = L.select_groups(self.theta, "sample", tau, self.u)
        g = -torch.log(-torch.log(self.u))
        self.assertTrue(torch.allclose(s, torch.softmax((self.theta + g) / tau, 1), rtol=0, atol=1e-15))
        self.assertTrue(torch.allclose(s.sum(1), torch.ones(21, dtype=torch.float64)))
        # Same distribution as torch's RelaxedOneHotCategorical, which draws U
        # with torch.rand: replay the same draw.
        torch.manual_seed(11)
        u = torch.distributions.utils.clamp_probs(torch.rand((21, 3), dtype=torch.float64))
        torch.manual_seed(11)
        y = torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64),
                                                         logits=self.theta).rsample()
        self.assertTrue(torch.allclose(L.select_groups(self.theta, "sample", tau, u), y, rtol=0, atol=1e-12))
        # tau -> 0: one-hot of argmax(theta + g).
        cold = L.select_groups(self.theta, "sample", 1e-4, self.u)
        self.assertTrue(torch.equal(cold.argmax(1), (self.theta + g).argmax(1)))
        self.assertTrue(torch.allclose(cold.max(1).values, torch.ones(21, dtype=torch.float64), atol=1e-6))

    def test_sample_needs_uniforms_and_modes_are_checked(self):
        with self.assertRaises(ValueError):
            L.select_groups(self.theta, "sample", 1.0)
        with self.assertRaises(ValueError):
            L.select_groups(self.theta, "argmax")


class Loss(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(3)
        B, J = 2, 4
        self.uv = (torch.rand((B, J, 2), generator=g, dtype=torch.float64) * 64).requires_grad_(True)
        self.depth = (torch.rand((B, J), generator=g, dtype=torch.float64) * 4 - 2).requires_grad_(True)
        self.K = torch.tensor([[110.0, 105.0, 30.0, 34.0], [90.0, 92.0, 33.0, 29.0]], dtype=torch.float64)
        self.z_root = torch.tensor([520.0, 640.0], dtype=torch.float64)
        self.s0 = torch.tensor([35.0, 41.0], dtype=torch.float64)
        self.xyz = torch.rand((B, J, 3), generator=g, dtype=torch.float64) * 150 - 75
        self.xyz[..., 2] += self.z_root.view(-1, 1)

    def test_definition(self):
        uv, d = self.uv.detach(), self.depth.detach()
        fx, fy, cx, cy = (self.K[:, i].view(-1, 1) for i in range(4))
        z = self.s0.view(-1, 1) * d + self.z_root.view(-1, 1)
        x, y = z * (uv[..., 0] - cx) / fx, z * (uv[..., 1] - cy) / fy
        s0 = self.s0.view(-1, 1)
        expected = (torch.cat([(x - self.xyz[..., 0]).abs() / s0, (y - self.xyz[..., 1]).abs() / s0]).mean()
                    + 20 * ((z - self.xyz[..., 2]).abs() / s0).mean())
        got = L.eq10_loss(uv, d, self.xyz, self.K, self.z_root, self.s0)
        self.assertAlmostEqual(float(got), float(expected), places=12)
        # The z term is beta * mean |d - d_gt|: independent of z_root.
        d_gt = (self.xyz[..., 2] - self.z_root.view(-1, 1)) / s0
        z_term = got - L.eq10_loss(uv, d, self.xyz, self.K, self.z_root, self.s0, beta=0.0)
        self.assertAlmostEqual(float(z_term), float(20 * (d - d_gt).abs().mean()), places=12)

    def test_gradcheck_of_the_loss(self):
        f = lambda uv, d: L.eq10_loss(uv, d, self.xyz, self.K, self.z_root, self.s0)  # noqa: E731
        self.assertTrue(torch.autograd.gradcheck(f, (self.uv, self.depth), eps=1e-6, atol=1e-8, rtol=1e-6))


class WholeModelGradient(unittest.TestCase):
    def test_finite_differences_of_the_loss_through_the_model(self):
        """Eq. (10) through the whole tiny model in training mode (BN batch
        statistics, 'sample' selector) against central differences in float64,
        for theta, beta, the fusion, a head, group-branch / neck / backbone BN
        parameters and a 2x2 corner of the input image."""
        from torch.nn.utils.stateless import functional_call

        inp = fixtures.make_inputs(TINY, 5)
        model = fixtures.random_model(TINY, 5, inp["calibration"]).train()
        named = dict(model.named_parameters())
        names = ["meta_S.weight", "b_get_uv.0.beta.weight", "nddr_layer0.Conv_Task_List.1.0.weight",
                 "b_depth_conv.1.2.bias", "b_down2.0.res_branch.4.weight", "backbone_conv.1.skip_con.1.bias",
                 "backbone.r5.bn1.weight", "backbone.hourglass.0.low1_.0.bn2.weight"]
        image = inp["image"]

        def loss(corner, *values):
            top = torch.cat([corner, image[:, :, :2, 2:]], 3)
            full = torch.cat([top, image[:, :, 2:]], 2)
            uv, depth, _ = functional_call(model, dict(zip(names, values)), (full, "sample", 2.0, inp["uniforms"]))
            return L.eq10_loss(uv, depth, inp["xyz"], inp["K"], inp["z_root"], inp["s0"])

        values = [named[n].detach().clone().requires_grad_(True) for n in names]
        corner = image[:, :, :2, :2].clone().requires_grad_(True)
        self.assertTrue(torch.autograd.gradcheck(loss, (corner, *values), eps=1e-6, atol=1e-6, rtol=1e-4))


class Fixtures(unittest.TestCase):
    """The committed fixtures load into a fresh model and reproduce their own
    results (recomputed in float64 from the stored float32 values)."""

    def check_fixture(self, name):
        folder = os.path.join(fixtures.OUT, name)
        if not os.path.isdir(folder):
            self.skipTest(f"{folder} not generated")
        weights, wmeta = st.load_file(os.path.join(folder, "weights.safetensors"))
        case, meta = st.load_file(os.path.join(folder, "case.safetensors"))
        self.assertIsNone(wmeta)
        cfg_json = json.loads(meta["lgh.config"])
        self.assertEqual(converter.infer_config(weights), cfg_json)  # shapes alone give the config
        cfg = L.Config(**cfg_json)
        model = L.LearnableGroupsHandModel(cfg).double()
        sd = model.state_dict()
        self.assertEqual(list(weights), list(sd))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        image = torch.from_numpy(case["image"]).double()
        ev = fixtures.eval_results(model, image, soft_tau=float(case["eval_soft.tau"]))
        for k, v in ev.items():
            ref = case[k].astype(np.float64)
            scale = max(float(np.abs(ref).max()), 1e-30)
            self.assertLess(float(np.abs(v.numpy() - ref).max()) / scale, 1e-6, k)
        hard = case["eval_hard.selector"]
        self.assertEqual(len(set(hard.argmax(1).tolist())), cfg.K, "every group is selected by some joint")
        inp = {"image": image, "uniforms": case["train.uniforms"], "xyz": case["train.xyz"], "K": case["train.K"],
               "z_root": case["train.z_root"], "s0": case["train.s0"]}
        inp = {k: torch.as_tensor(v).double() for k, v in inp.items()}
        tr = fixtures.train_results(model, inp)
        zero = set(json.loads(meta["lgh.case"])["zero_gradients"])
        gmax = max(float(np.abs(case[k]).max()) for k in case if k.startswith("grad."))
        for k, v in tr.items():
            ref = case[k].astype(np.float64)
            scale = gmax if k in zero else max(float(np.abs(ref).max()), 1e-30)
            self.assertLess(float(np.abs(v.numpy() - ref).max()) / scale, 1e-6, k)
        grads = {k[5:] for k in case if k.startswith("grad.")}
        self.assertEqual(grads, {n for n, p in model.named_parameters() if p.requires_grad})
        after = {k[6:] for k in case if k.startswith("after.")}
        self.assertEqual(after, {n for n, _ in model.named_buffers()})
        self.assertTrue(all(case[f"after.{k}"].dtype == np.float32 for k in after if "running_" in k))
        nbt = [k for k in case if k.endswith("num_batches_tracked")]
        self.assertTrue(nbt and all(case[k].dtype == np.int64 and case[k].shape == () for k in nbt))
        self.assertTrue(all(int(case["after." + k]) == int(weights[k]) + 1 for k in weights
                            if k.endswith("num_batches_tracked")))

    def test_k3_fusion(self):
        self.check_fixture("k3_fusion")

    def test_k1(self):
        self.check_fixture("k1")


class SafetensorsFormat(unittest.TestCase):
    def test_round_trip_and_layout(self):
        tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(5, dtype=np.int64),
                   "d": np.array([1.5, -2.0]), "b": np.array([True, False, True]), "e": np.zeros((0, 2), np.float32)}
        blob = st.serialize(tensors, {"lgh.config": "{}"})
        n = int.from_bytes(blob[:8], "little")
        self.assertEqual(n % 8, 0)
        header = json.loads(blob[8:8 + n])
        self.assertEqual(header["n"], {"dtype": "I64", "shape": [], "data_offsets": [24, 32]})
        back, meta = st.deserialize(blob)
        self.assertEqual(meta, {"lgh.config": "{}"})
        for k, v in tensors.items():
            self.assertEqual(back[k].dtype, v.dtype)
            self.assertTrue(np.array_equal(back[k], v))

    def test_malformed_files_are_refused(self):
        good = st.serialize({"a": np.ones(2, np.float32), "b": np.ones(3, np.float32)})
        n = int.from_bytes(good[:8], "little")
        header = json.loads(good[8:8 + n])

        def rebuild(h, data=good[8 + n:]):
            text = json.dumps(h).encode()
            text += b" " * (-len(text) % 8)
            return len(text).to_bytes(8, "little") + text + data

        hole = dict(header, b={"dtype": "F32", "shape": [2], "data_offsets": [12, 20]})
        overlap = dict(header, b={"dtype": "F32", "shape": [3], "data_offsets": [4, 16]})
        wrong_size = dict(header, b={"dtype": "F32", "shape": [4], "data_offsets": [8, 20]})
        for bad in (good[:5], good[:8 + n - 1], good + b"\0\0\0\0", rebuild(hole), rebuild(overlap),
                    rebuild(wrong_size), rebuild(dict(header, a={"dtype": "X9", "shape": [2], "data_offsets": [0, 8]})),
                    (10 ** 12).to_bytes(8, "little") + good[8:]):
            with self.assertRaises(st.SafetensorsError):
                st.deserialize(bad)


class Converter(unittest.TestCase):
    def test_pth_round_trip_with_dataparallel_prefix(self):
        cfg = L.Config(S=64, F=4, P0=2, P1=2, K=2, fusion=True, hourglass_depth=2, hourglass_modules=1)
        sd = L.LearnableGroupsHandModel(cfg).state_dict()
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "m.pth"), os.path.join(tmp, "m.safetensors")
            torch.save({"epoch": 2, "model_state_dict": {"module." + k: v for k, v in sd.items()},
                        "optimizer_state_dict": {"param_groups": [{"lr": 1e-4}]}}, src)
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(converter.main([src, dst, "--config-metadata"]), 0)
            back, meta = st.load_file(dst)
            self.assertEqual(list(back), list(sd))
            for k, v in sd.items():
                self.assertTrue(np.array_equal(back[k], v.numpy()), k)
            self.assertEqual(json.loads(meta["lgh.config"]), json.loads(cfg.to_json()))
            torch.save([1, 2], src)
            proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "pth_to_safetensors.py"), src,
                                   os.path.join(tmp, "x.safetensors")], capture_output=True, text=True)
            self.assertEqual(proc.returncode, 1)
            self.assertTrue(proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "x.safetensors")))


if __name__ == "__main__":
    unittest.main()
